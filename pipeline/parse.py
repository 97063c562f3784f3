"""Stage 2: a record's bytes -> the DynamoDB change record(s) it holds.

Accepted, detected per record by shape:

* a *Kinesis Data Streams for DynamoDB* record (``eventName``, ``tableName``, ``dynamodb.Keys`` ...,
  ``ApproximateCreationDateTime`` in milliseconds or microseconds);
* a *DynamoDB Streams* record (``eventVersion``, ``eventSourceARN``, ``dynamodb.SequenceNumber`` ...,
  ``ApproximateCreationDateTime`` in seconds);
* a payload ``{"Records": [...]}`` of either (several changes in one Firehose record).

A UTF-8 byte-order mark is tolerated. Anything else is ``ProcessingFailed`` with the reason.
"""

from __future__ import annotations

import json
from typing import Any

from .pushdown import msgspec_changes, msgspec_whole
from .records import Drop, RecordError, Stage, per_record

__all__ = [
    "DEFAULT_PARSER",
    "EVENT_NAMES",
    "MSGSPEC_LOADED",
    "PARSERS",
    "Change",
    "changes_in",
    "check_change",
    "parse",
    "resolve_parser",
    "stdlib_changes",
    "strict_loads",
]

EVENT_NAMES = frozenset({"INSERT", "MODIFY", "REMOVE"})
PARSERS = ("msgspec", "stdlib")
Change = dict[str, Any]
_BOM = b"\xef\xbb\xbf"
_NO_CHANGES = Drop("no change records in payload")

try:  # a runtime dependency; without it (an environment that cannot load it) the standard library path runs
    import msgspec  # noqa: F401

    MSGSPEC_LOADED = True
except ImportError:  # exercised by the fallback test, in a subprocess
    MSGSPEC_LOADED = False
#: The parser when none is named: msgspec when it loads. (Tests switch it to run everything on both paths.)
DEFAULT_PARSER = "msgspec" if MSGSPEC_LOADED else "stdlib"


def _refuse_constant(name: str) -> Any:
    raise RecordError(f"not valid JSON ({name} is not a JSON number)")


def _int(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:  # longer than int's digit limit: out of range, read as infinity like 1e400
        return float(text)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_int)


def strict_loads(data: bytes) -> Any:
    """JSON from UTF-8 bytes, by the rules every parser here follows.

    UTF-8 only (``json.loads`` would also take UTF-16 and UTF-32); ``NaN`` and ``Infinity`` are refused; a number
    beyond a float's range, or an integer too long for ``int``, is read as infinity (the fields that use numbers
    then refuse it), never an error of the parse.

    >>> strict_loads('{"n": 1e400, "s": "Zürich"}'.encode())
    {'n': inf, 's': 'Zürich'}
    >>> strict_loads("{}".encode("utf-16"))
    Traceback (most recent call last):
    UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte
    >>> strict_loads(b"[NaN]")
    Traceback (most recent call last):
    pipeline.records.RecordError: not valid JSON (NaN is not a JSON number)
    """
    return _DECODER.decode(data.decode("utf-8"))


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


def changes_in(doc: Any) -> tuple[Change, ...] | Drop:
    """The change records in a parsed payload: one change, or ``{"Records": [...]}`` of them.

    >>> changes_in({"Records": []})
    Drop(reason='no change records in payload')
    """
    if type(doc) is dict:
        if "dynamodb" in doc or "eventName" in doc:
            return (check_change(doc),)
        inner = doc.get("Records")
        if type(inner) is list:
            if not inner:
                return _NO_CHANGES
            return tuple([check_change(c, f"Records[{i}] ") for i, c in enumerate(inner)])
        raise RecordError("not a DynamoDB change record: has neither 'dynamodb' nor a 'Records' list")
    raise RecordError(f"not a DynamoDB change record: JSON {type(doc).__name__}, not an object")


def stdlib_changes(payload: Any) -> tuple[Change, ...] | Drop:
    """The standard library path: a record's bytes -> its change records (whole), or a Drop; RecordError if none.

    >>> stdlib_changes(b'{"eventName": "REMOVE", "dynamodb": {"Keys": {}}}')
    ({'eventName': 'REMOVE', 'dynamodb': {'Keys': {}}},)
    """
    if type(payload) is not bytes:
        raise RecordError("expects bytes (run decode first)")
    if payload.startswith(_BOM):
        payload = payload[3:]
    return changes_in(strict_loads(payload))


def resolve_parser(parser: str | None) -> str:
    """*parser*, or the default (msgspec when it loads, else stdlib) for None; an unknown name is refused.

    >>> resolve_parser("stdlib")
    'stdlib'
    """
    chosen = DEFAULT_PARSER if parser is None else parser
    if chosen not in PARSERS:
        raise ValueError(f"unknown parser {chosen!r} (known: {', '.join(PARSERS)})")
    return chosen


def parse(*, parser: str | None = None, reads: Any = None) -> Stage:
    """Parse each record's bytes into a tuple of change records.

    *parser* is ``msgspec`` (the default when it loads) or ``stdlib``; both give the same result and reason
    for every record. *reads* (a :class:`pipeline.pushdown.Reads`) narrows what msgspec decodes to what the
    pipeline's other stages read: the changes then hold only that (see :mod:`pipeline.pushdown`).

    >>> change = b'{"eventName": "REMOVE", "dynamodb": {"Keys": {"id": {"N": "7"}}}}'
    >>> [(r.result, r.value or r.reason) for r in parse()([
    ...     {"recordId": "1", "data": change},
    ...     {"recordId": "2", "data": b'{"Records": [' + change + b',' + change + b']}'},
    ...     {"recordId": "3", "data": b'Hello World'},
    ... ])]  # doctest: +ELLIPSIS
    [('Ok', ({'eventName': 'REMOVE', ...},)), ('Ok', ({...}, {...})), ('ProcessingFailed', 'parse: not valid JSON ...')]
    """
    if resolve_parser(parser) == "stdlib":
        return per_record(stdlib_changes, "parse")
    return per_record(
        msgspec_whole(stdlib_changes, changes_in) if reads is None else msgspec_changes(reads, stdlib_changes), "parse"
    )
