"""Stage 2: a record's bytes -> the DynamoDB change record(s) it holds.

Accepted, detected per record by shape:

* a *Kinesis Data Streams for DynamoDB* record (``eventName``, ``tableName``, ``dynamodb.Keys`` ...,
  ``ApproximateCreationDateTime`` in milliseconds or microseconds);
* a *DynamoDB Streams* record (``eventVersion``, ``eventSourceARN``, ``dynamodb.SequenceNumber`` ...,
  ``ApproximateCreationDateTime`` in seconds);
* a payload ``{"Records": [...]}`` of either (several changes in one Firehose record);
* a top-level JSON array of either: how EventBridge Pipes passes a batch from a DynamoDB stream to a target
  without a batch API. Into Firehose a pipe writes one stream record per Firehose record (the batch goes
  through ``PutRecordBatch``), which is the plain DynamoDB Streams record above; the array is accepted too so
  that a pipe's documented example event, or a batch re-sent as one record, still parses.

A UTF-8 byte-order mark is tolerated. Anything else is ``ProcessingFailed`` with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .records import Drop, RecordError, Stage, per_record

__all__ = ["EVENT_NAMES", "Change", "check_change", "default_loads", "parse"]

EVENT_NAMES = frozenset({"INSERT", "MODIFY", "REMOVE"})
Change = dict[str, Any]
Loads = Callable[[bytes], Any]
_BOM = b"\xef\xbb\xbf"
_NO_CHANGES = Drop("no change records in payload")

try:  # the ``fast`` extra: orjson parses the same JSON about twice as fast
    from orjson import loads as default_loads
except ImportError:  # pragma: no cover - exercised when the extra is not installed
    default_loads = json.loads


def check_change(doc: Any, where: str = "") -> Change:
    """Return *doc* if it is a DynamoDB change record, else raise RecordError saying what is missing.

    >>> check_change({"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "1"}}}})["eventName"]
    'INSERT'
    >>> check_change({"eventName": "UPSERT", "dynamodb": {"Keys": {}}})
    Traceback (most recent call last):
    pipeline.records.RecordError: not a DynamoDB change record: eventName is not INSERT, MODIFY or REMOVE
    """
    if type(doc) is not dict:
        raise RecordError(f"not a DynamoDB change record: {where}is not a JSON object")
    if doc.get("eventName") not in EVENT_NAMES:
        raise RecordError(f"not a DynamoDB change record: {where}eventName is not INSERT, MODIFY or REMOVE")
    ddb = doc.get("dynamodb")
    if type(ddb) is not dict or type(ddb.get("Keys")) is not dict:
        raise RecordError(f"not a DynamoDB change record: {where}has no dynamodb.Keys object")
    for image in ("NewImage", "OldImage"):
        if image in ddb and type(ddb[image]) is not dict:
            raise RecordError(f"not a DynamoDB change record: {where}dynamodb.{image} is not an object")
    return doc


def parse(*, loads: Loads | None = None) -> Stage:
    """Parse each record's bytes into a tuple of change records.

    *loads* defaults to orjson's when the ``fast`` extra is installed, else ``json.loads``.

    >>> change = b'{"eventName": "REMOVE", "dynamodb": {"Keys": {"id": {"N": "7"}}}}'
    >>> parsed = list(parse()([
    ...     {"recordId": "1", "data": change},
    ...     {"recordId": "2", "data": b'{"Records": [' + change + b',' + change + b']}'},
    ...     {"recordId": "3", "data": b'[' + change + b']'},
    ...     {"recordId": "4", "data": b'Hello World'},
    ... ]))
    >>> [len(r.value) for r in parsed[:3]], parsed[0].value[0]["eventName"]
    ([1, 2, 1], 'REMOVE')
    >>> parsed[3].result, parsed[3].reason  # doctest: +ELLIPSIS
    ('ProcessingFailed', 'parse: not valid JSON ...')
    """
    load = loads or default_loads

    def changes(payload: Any) -> tuple[Change, ...] | Drop:
        if type(payload) is not bytes:
            raise RecordError("expects bytes (run decode first)")
        if payload.startswith(_BOM):
            payload = payload[3:]
        doc = load(payload)
        if type(doc) is dict:
            if "dynamodb" in doc or "eventName" in doc:
                return (check_change(doc),)
            inner = doc.get("Records")
            if type(inner) is list:
                if not inner:
                    return _NO_CHANGES
                return tuple([check_change(c, f"Records[{i}] ") for i, c in enumerate(inner)])
            raise RecordError("not a DynamoDB change record: has neither 'dynamodb' nor a 'Records' list")
        if type(doc) is list:  # a batch as a JSON array, as EventBridge Pipes hands one to a target
            if not doc:
                return _NO_CHANGES
            return tuple([check_change(c, f"[{i}] ") for i, c in enumerate(doc)])
        raise RecordError(f"not a DynamoDB change record: JSON {type(doc).__name__}, not an object")

    return per_record(changes, "parse")
