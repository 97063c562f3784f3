"""DynamoDB Export to S3 files (DynamoDB JSON: one ``{"Item": {...}}`` per line) as change records.

An export is a snapshot of the table, so each item becomes an ``INSERT`` whose ``NewImage`` is the item: the
stages (:func:`~pipeline.keep_events`, :func:`~pipeline.project`, :func:`~pipeline.encode` ...) then treat it
like a change that came through a stream, e.g. to try a column selection on real data in a notebook.
A whole export (its manifests checked, every data file, full or incremental, into S3) is what
:mod:`pipeline.backfill` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["from_export"]

_BOM = "\ufeff"


def from_export(
    documents: Iterable[str | bytes], keys: Iterable[str] = (), table: str | None = None
) -> Iterator[dict[str, Any]]:
    """One INSERT change record per export item; each document is a line of an export file (or a whole file).

    *keys* names the table's key attributes (copied into ``dynamodb.Keys``); *table* gives ``@tableName``.
    Blank lines are skipped; a document that is not ``{"Item": {...}}`` raises ValueError naming its line.

    >>> lines = ['{"Item": {"id": {"S": "a"}, "n": {"N": "1.50"}}}', "", '{"Item": {"id": {"S": "b"}}}']
    >>> [c["dynamodb"]["Keys"] for c in from_export(lines, keys=["id"])]
    [{'id': {'S': 'a'}}, {'id': {'S': 'b'}}]
    >>> from pipeline import encode, project
    >>> [r.value for r in encode("csv")(project("id,n,@eventName")(from_export(lines)))]
    [b'a,1.50,INSERT\\n', b'b,,INSERT\\n']
    >>> list(from_export(['{"Items": []}']))
    Traceback (most recent call last):
    ValueError: line 1: not a DynamoDB export item ({"Item": {...}})
    """
    if isinstance(keys, str):
        raise TypeError("keys is a collection of attribute names, not one string")
    names = tuple(keys)

    def changes() -> Iterator[dict[str, Any]]:
        for line, document in enumerate(documents, 1):
            text = document.decode("utf-8") if isinstance(document, bytes) else document
            text = text.removeprefix(_BOM)
            if not text.strip():
                continue
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {line}: not JSON ({exc.msg} at {exc.pos})") from None
            item = doc.get("Item") if type(doc) is dict else None
            if type(item) is not dict:
                raise ValueError(f'line {line}: not a DynamoDB export item ({{"Item": {{...}}}})')
            missing = [name for name in names if name not in item]
            if missing:
                raise ValueError(f"line {line}: the item has no key attribute {missing[0]!r}")
            change: dict[str, Any] = {
                "eventName": "INSERT",
                "dynamodb": {"Keys": {name: item[name] for name in names}, "NewImage": item},
            }
            if table is not None:
                change["tableName"] = table
            yield change

    return changes()
