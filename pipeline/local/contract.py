"""The Firehose contract, checked the way Firehose checks a transformation's response.

Firehose rejects the whole batch when any of these fails (the records go to the error output), so the
tests and the local runner check every response with :func:`contract_problems`.

The response is serialised the way the Lambda Python runtime does it (``awslambdaric``'s
``lambda_runtime_marshaller``): on python3.12 with ``ensure_ascii=False``, then encoded as UTF-8 (a lone
surrogate makes that fail, and with it the whole invocation); on the other runtimes with non-ASCII escaped
(``\\u00e9``: 6 bytes where UTF-8 takes 2). The size that counts is the larger of the two.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from typing import Any

from ..budget import LAMBDA_RESPONSE_LIMIT
from ..records import OK, RESULTS

__all__ = ["contract_problems", "runtime_size"]


def runtime_size(response: Any) -> int:
    """Bytes of *response* as the Lambda runtime sends it: the larger of its escaped and its UTF-8 form.

    Raises ``UnicodeEncodeError`` when the UTF-8 form cannot be made (the python3.12 runtime would fail).

    >>> runtime_size({"records": [{"recordId": "é"}]}), len(json.dumps({"records": [{"recordId": "é"}]}))
    (37, 37)
    """
    escaped = len(json.dumps(response))
    utf8 = len(json.dumps(response, ensure_ascii=False).encode("utf-8"))
    return max(escaped, utf8)


def _valid_otf(otf: Any) -> bool:
    """Firehose's Iceberg routing: ``destinationDatabaseName``, ``destinationTableName``, ``operation``."""
    return (
        isinstance(otf, Mapping)
        and all(isinstance(otf.get(k), str) and otf[k] for k in ("destinationDatabaseName", "destinationTableName"))
        and otf.get("operation") in ("insert", "update", "delete")
    )


def contract_problems(event: Mapping[str, Any], response: Any, max_bytes: int = LAMBDA_RESPONSE_LIMIT) -> list[str]:
    """What is wrong with *response* as the answer to *event*; empty when Firehose would accept it.

    >>> event = {"records": [{"recordId": "a", "data": "eA=="}, {"recordId": "b", "data": "eA=="}]}
    >>> contract_problems(event, {"records": [{"recordId": "a", "result": "Ok", "data": "eQ=="},
    ...                                       {"recordId": "b", "result": "Dropped"}]})
    []
    >>> for problem in contract_problems(event, {"records": [{"recordId": "b", "result": "TRANSFORMED_STATE_OK"}]}):
    ...     print(problem)
    records[0] is b, expected a
    records[0] result 'TRANSFORMED_STATE_OK' is not Ok, Dropped or ProcessingFailed
    answers 1 records for 2 in the event
    """
    try:
        size = runtime_size(response)
    except UnicodeEncodeError:
        return ["response cannot be sent: the Lambda runtime's UTF-8 encoding fails (a lone surrogate in a string)"]
    except (TypeError, ValueError) as exc:
        return [f"response does not serialise to JSON: {exc}"]
    problems = []
    if size > max_bytes:
        problems.append(f"response is {size} bytes, over the limit of {max_bytes}")
    entries = response.get("records") if isinstance(response, Mapping) else None
    if not isinstance(entries, list):
        return [*problems, "response has no 'records' list"]
    expected = [r.get("recordId") for r in event.get("records", [])]
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problems.append(f"records[{i}] is not an object")
            continue
        if i < len(expected) and entry.get("recordId") != expected[i]:
            problems.append(f"records[{i}] is {entry.get('recordId')}, expected {expected[i]}")
        result = entry.get("result")
        if result not in RESULTS:
            problems.append(f"records[{i}] result {result!r} is not Ok, Dropped or ProcessingFailed")
        data = entry.get("data")
        if result == OK or data is not None:
            if result != OK:
                problems.append(f"records[{i}] is {result} but carries data")
            elif not isinstance(data, str):
                problems.append(f"records[{i}] data is not a base64 str")
            else:
                try:
                    binascii.a2b_base64(data, strict_mode=True)
                except (binascii.Error, ValueError):
                    problems.append(f"records[{i}] data is not valid base64")
        keys = entry.get("metadata", {}).get("partitionKeys") if isinstance(entry.get("metadata"), Mapping) else None
        if keys is not None and not (isinstance(keys, Mapping) and all(isinstance(v, str) for v in keys.values())):
            problems.append(f"records[{i}] partitionKeys are not a map of strings")
        otf = entry.get("metadata", {}).get("otfMetadata") if isinstance(entry.get("metadata"), Mapping) else None
        if otf is not None and not _valid_otf(otf):
            problems.append(f"records[{i}] otfMetadata is not a database, a table and insert, update or delete")
    if len(entries) != len(expected):
        problems.append(f"answers {len(entries)} records for {len(expected)} in the event")
    return problems
