"""An export's lines as change records in the *Kinesis Data Streams for DynamoDB* format, for the parse stage.

The handler's own stages then do all the work (no second projection or encoding): :func:`change_bytes` turns
one data-file line into the JSON of the change a stream would carry, which the parse stage reads as it reads
a stream's (:func:`change_loads` gives it as a dict):

* **full export**: ``{"Item": {...}}`` is an ``INSERT`` whose ``NewImage`` is the item, at the export time;
* **incremental export**: ``{"Metadata": {"WriteTimestampMicros": ...}, "Keys": ..., "NewImage"?, "OldImage"?}``
  at its write time. With the ``NEW_AND_OLD_IMAGES`` view: both images is a ``MODIFY``, only ``NewImage`` an
  ``INSERT``, only ``OldImage`` a ``REMOVE``. With ``NEW_IMAGE``: a ``NewImage`` is a ``MODIFY`` (the export
  does not tell a new item from a changed one; the item exists with this image), keys alone a ``REMOVE``.

``ApproximateCreationDateTime`` is in microseconds (the stream's microsecond precision), so a change the stream
carries after the export sorts after the backfilled row. ``tableName`` and ``awsRegion`` come from the table's
ARN. Nothing else a stream record has (``eventID``, ``SizeBytes``, the Kinesis metadata) exists for an export.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from typing import Any

from ..parse import strict_loads
from ..records import RecordError

__all__ = ["change_bytes", "change_loads", "write_micros"]

Loads = Callable[[bytes], Any]
_WRITE_TIME = re.compile(rb'"WriteTimestampMicros"\s*:\s*(?:\{\s*"N"\s*:\s*)?"?(-?\d+)')


def write_micros(line: bytes, default: int) -> int:
    """An incremental export line's ``WriteTimestampMicros``, found without parsing it (else *default*).

    Used only to choose the output prefix; the change's own time comes from the parsed line.

    >>> write_micros(b'{"Metadata":{"WriteTimestampMicros":{"N":"1767225600123456"}},"Keys":{}}', 0)
    1767225600123456
    >>> write_micros(b'{oops', 7)
    7
    """
    match = _WRITE_TIME.search(line, 0, 200) or _WRITE_TIME.search(line)
    return int(match[1]) if match else default


def _metadata_micros(doc: dict[str, Any]) -> int:
    meta = doc.get("Metadata")
    value = meta.get("WriteTimestampMicros") if type(meta) is dict else None
    if type(value) is dict:  # DynamoDB JSON: {"N": "1767225600123456"}
        value = value.get("N")
    if type(value) is str and value.isdigit():
        return int(value)
    if type(value) is int:
        return value
    raise RecordError("incremental export record has no Metadata.WriteTimestampMicros")


def change_loads(
    table: str,
    region: str,
    export_micros: int,
    *,
    incremental: bool = False,
    view: str = "NEW_AND_OLD_IMAGES",
    keys: Collection[str] = (),
    loads: Loads | None = None,
) -> Loads:
    """A ``loads`` for :func:`pipeline.parse`: one export line -> its change record.

    *keys* names the key attributes copied from a full export's item into ``dynamodb.Keys`` (the export does
    not say which they are; an incremental export has its own ``Keys``).

    >>> loads = change_loads("orders", "eu-west-1", 1767225600000000, keys=["id"])
    >>> loads(b'{"Item": {"id": {"S": "a"}, "n": {"N": "1.50"}}}')  # doctest: +NORMALIZE_WHITESPACE
    {'eventName': 'INSERT', 'tableName': 'orders', 'awsRegion': 'eu-west-1', 'eventSource': 'aws:dynamodb',
     'recordFormat': 'application/json', 'dynamodb': {'ApproximateCreationDateTime': 1767225600000000,
     'Keys': {'id': {'S': 'a'}}, 'NewImage': {'id': {'S': 'a'}, 'n': {'N': '1.50'}}}}
    >>> changes = change_loads("orders", "eu-west-1", 0, incremental=True)
    >>> changes(b'{"Metadata": {"WriteTimestampMicros": {"N": "1767225600000001"}}, "Keys": {"id": {"S": "a"}},'
    ...         b' "OldImage": {"id": {"S": "a"}}}')["eventName"]
    'REMOVE'
    """
    load = loads or strict_loads
    names = tuple(keys)
    base = {"tableName": table, "awsRegion": region, "eventSource": "aws:dynamodb", "recordFormat": "application/json"}

    def full(line: bytes) -> dict[str, Any]:
        doc = load(line)
        item = doc.get("Item") if type(doc) is dict else None
        if type(item) is not dict:
            raise RecordError('not a DynamoDB export item ({"Item": {...}})')
        ddb = {
            "ApproximateCreationDateTime": export_micros,
            "Keys": {name: item[name] for name in names if name in item},
            "NewImage": item,
        }
        return {"eventName": "INSERT", **base, "dynamodb": ddb}

    new_only = "MODIFY" if view == "NEW_IMAGE" else "INSERT"

    def change(line: bytes) -> dict[str, Any]:
        doc = load(line)
        if type(doc) is not dict or type(doc.get("Keys")) is not dict:
            raise RecordError("not an incremental export record (Metadata, Keys, NewImage, OldImage)")
        new, old = doc.get("NewImage"), doc.get("OldImage")
        ddb: dict[str, Any] = {"ApproximateCreationDateTime": _metadata_micros(doc), "Keys": doc["Keys"]}
        if new is not None:
            ddb["NewImage"] = new
        if old is not None:
            ddb["OldImage"] = old
        name = "REMOVE" if new is None else "MODIFY" if old is not None else new_only
        return {"eventName": name, **base, "dynamodb": ddb}

    return change if incremental else full


def change_bytes(
    table: str,
    region: str,
    export_micros: int,
    *,
    incremental: bool = False,
    view: str = "NEW_AND_OLD_IMAGES",
    keys: Collection[str] = (),
) -> Callable[[bytes], bytes]:
    """One export line -> the JSON bytes of its change record, for the parse stage.

    A full export's ``{"Item":...}`` line is wrapped as it is (its item is not decoded here: the parser
    decodes what the columns read); lines of another shape, incremental exports and ``keys`` go through
    :func:`change_loads`. A line that is not JSON is passed on as it is, for the parser to refuse.

    >>> wrap = change_bytes("orders", "eu-west-1", 1767225600000000)
    >>> json.loads(wrap(b'{"Item":{"id":{"S":"a"}}}'))["dynamodb"]["NewImage"]
    {'id': {'S': 'a'}}
    >>> wrap(b'{oops')
    b'{oops'
    """
    head = (
        b'{"eventName":"INSERT","tableName":'
        + json.dumps(table).encode()
        + b',"awsRegion":'
        + json.dumps(region).encode()
        + b',"eventSource":"aws:dynamodb","recordFormat":"application/json","dynamodb":'
        + b'{"ApproximateCreationDateTime":'
        + str(export_micros).encode()
        + b',"Keys":{},"NewImage":'
    )
    loads = change_loads(table, region, export_micros, incremental=incremental, view=view, keys=keys)
    fast = not incremental and not keys

    def convert(line: bytes) -> bytes:
        line = line.strip()
        if fast and line.startswith(b'{"Item":') and line.endswith(b"}"):
            return head + line[8:-1] + b"}}"
        try:
            return json.dumps(loads(line), ensure_ascii=False, separators=(",", ":")).encode()
        except RecordError:
            raise
        except Exception:  # not JSON: the parse stage says so, as for a stream record
            return line

    return convert
