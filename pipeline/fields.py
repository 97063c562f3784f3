"""The ``@``-columns: fields of the change record and of the Firehose record around it, as typed values.

Each getter takes ``(change, record)`` and returns a typed DynamoDB value (``{"S": ...}``, ``{"N": ...}``,
``{"BOOL": ...}``) or ``None`` when the field is absent, so the encoders treat them like attributes.

``@version`` (:func:`change_version`) is text that sorts, as text, in the order one item's changes happened:

* a change with a ``SequenceNumber`` (the *DynamoDB Streams* format): that number, 1 to 40 digits (the API
  allows 21 to 40), zero-padded to :data:`SEQUENCE_VERSION_WIDTH` (40) digits. DynamoDB Streams gives an
  item's changes increasing sequence numbers.
* else (the *Kinesis Data Streams for DynamoDB* format): ``ApproximateCreationDateTime`` in microseconds
  (milliseconds, its default precision, are multiplied by 1000), zero-padded to :data:`TIME_VERSION_WIDTH`
  (20) digits. DynamoDB makes that time unique per item: two changes of one item in the same millisecond
  get times 1 ms apart ("Using Kinesis Data Streams to capture changes to DynamoDB", Amazon DynamoDB
  Developer Guide).

The version is read from the change itself, so every copy of one change (a re-ingested record, a
retried batch, a duplicate from Kinesis) gets the same version. The two kinds are not comparable with
each other: a table should be fed from one source. A change with neither a sequence number nor a time in
milliseconds or microseconds (seconds cannot order changes) cannot be versioned: with ``@version`` among the
columns it is ``ProcessingFailed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import repeat
from math import isfinite
from operator import add, floordiv, mod
from typing import Any

from .records import Record, RecordError

__all__ = [
    "FIELDS",
    "FIELD_READS",
    "FIELD_VALUES",
    "RECORD_FIELDS",
    "SEQUENCE_VERSION_WIDTH",
    "TEXT_FIELDS",
    "TIMES",
    "TIME_VERSION_WIDTH",
    "change_version",
    "epoch_micros",
    "epoch_millis",
    "iso_millis",
    "iso_millis_texts",
    "table_name",
]

Typed = dict[str, Any]
FieldGetter = Callable[[Mapping[str, Any], Record], Typed | None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_FROM = 100_000_000_000  # 1e11 seconds is the year 5138: larger values are milliseconds ...
_US_FROM = 100_000_000_000_000  # ... and from 1e14 microseconds (1e14 ms would be the year 5138 too)
#: Digits of a ``@version`` from a DynamoDB Streams ``SequenceNumber`` (the API's maximum length).
SEQUENCE_VERSION_WIDTH = 40
#: Digits of a ``@version`` from ``ApproximateCreationDateTime`` in microseconds (any 64-bit count fits).
TIME_VERSION_WIDTH = 20


def epoch_millis(value: Any, name: str = "timestamp") -> int:
    """Milliseconds since the epoch from seconds (int or float), milliseconds or microseconds.

    The unit is told by magnitude, so each record may use its own.

    >>> epoch_millis(1480642020), epoch_millis(1693997155.5), epoch_millis(1480642020000)
    (1480642020000, 1693997155500, 1480642020000)
    >>> epoch_millis(1731924555370123)
    1731924555370
    """
    if type(value) is int and _MS_FROM <= value < _US_FROM:  # milliseconds, as DynamoDB's Kinesis records have
        return value
    if type(value) is bool or not isinstance(value, (int, float)):  # a tuple: cheaper to check than int | float
        raise RecordError(f"{name} is not a number")
    if not isfinite(value):
        raise RecordError(f"{name} is not a finite number")
    magnitude = abs(value)
    if magnitude >= _US_FROM:
        return int(value) // 1000
    if magnitude >= _MS_FROM:
        return int(value)
    return round(value * 1000)


def epoch_micros(value: Any, name: str = "timestamp") -> int:
    """Microseconds since the epoch from milliseconds or microseconds (told by magnitude, like epoch_millis).

    Seconds are refused: they are too coarse to order one item's changes.

    >>> epoch_micros(1731924555370), epoch_micros(1731924555370123), epoch_micros(1480642020000.5)
    (1731924555370000, 1731924555370123, 1480642020000500)
    >>> epoch_micros(1594936234)
    Traceback (most recent call last):
    pipeline.records.RecordError: timestamp is in seconds, too coarse to order changes
    """
    if type(value) is bool or not isinstance(value, (int, float)):
        raise RecordError(f"{name} is not a number")
    if not isfinite(value):
        raise RecordError(f"{name} is not a finite number")
    if value < 0:
        raise RecordError(f"{name} is before 1970")
    if value >= _US_FROM:
        return value if type(value) is int else round(value)
    if value >= _MS_FROM:
        return value * 1000 if type(value) is int else round(value * 1000)
    raise RecordError(f"{name} is in seconds, too coarse to order changes")


def change_version(change: Mapping[str, Any]) -> str:
    """The ``@version`` of a change: fixed-width digits that sort in the order an item's changes happened.

    DynamoDB Streams format: the ``SequenceNumber``, 40 digits. Kinesis Data Streams for DynamoDB format:
    ``ApproximateCreationDateTime`` in microseconds, 20 digits.

    >>> change_version({"dynamodb": {"SequenceNumber": "100000000027074219927", "ApproximateCreationDateTime": 1}})
    '0000000000000000000100000000027074219927'
    >>> change_version({"dynamodb": {"ApproximateCreationDateTime": 1731924555370}})  # milliseconds
    '00001731924555370000'
    >>> change_version({"dynamodb": {"ApproximateCreationDateTime": 1731924555370123}})  # microseconds
    '00001731924555370123'
    >>> change_version({"dynamodb": {"Keys": {}}})
    Traceback (most recent call last):
    pipeline.records.RecordError: @version: no SequenceNumber or ApproximateCreationDateTime
    """
    ddb = change["dynamodb"]
    sequence = ddb.get("SequenceNumber")
    if sequence is not None:
        if not (
            type(sequence) is str
            and 0 < len(sequence) <= SEQUENCE_VERSION_WIDTH
            and sequence.isascii()
            and sequence.isdigit()
        ):
            raise RecordError(f"@version: SequenceNumber is not 1 to {SEQUENCE_VERSION_WIDTH} digits")
        return sequence.zfill(SEQUENCE_VERSION_WIDTH)
    when = ddb.get("ApproximateCreationDateTime")
    if when is None:
        raise RecordError("@version: no SequenceNumber or ApproximateCreationDateTime")
    digits = str(epoch_micros(when, "@version: ApproximateCreationDateTime"))
    if len(digits) > TIME_VERSION_WIDTH:
        raise RecordError("@version: ApproximateCreationDateTime is out of range")
    return digits.zfill(TIME_VERSION_WIDTH)


#: iso_millis' tails, ".000Z" to ".999Z", made once instead of per value: on the first call, not at import (where
#: they would cost the cold start of every configuration, @-times or not)
_MILLIS: list[str] = []


@lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def iso_millis(millis: int) -> str:
    """ISO 8601 UTC text with millisecond precision.

    >>> iso_millis(1480642020000), iso_millis(-1)
    ('2016-12-02T01:27:00.000Z', '1969-12-31T23:59:59.999Z')
    """
    seconds, ms = divmod(millis, 1000)
    try:
        return _iso_seconds(seconds) + _MILLIS[ms]
    except OverflowError:
        raise RecordError("timestamp is out of range") from None
    except IndexError:  # the first call: the tails are not made yet
        if _MILLIS:
            raise
        _MILLIS.extend(map(".{:03d}Z".format, range(1000)))
        return iso_millis(millis)


def iso_millis_texts(values: list[Any]) -> list[str] | None:
    """``[iso_millis(epoch_millis(v)) for v in values]`` at C speed, if every value is an int of milliseconds (as
    DynamoDB's Kinesis records have) or every one an int of whole seconds (as DynamoDB Streams records have);
    else None.

    >>> iso_millis_texts([1480642020000, 1480642020999]), iso_millis_texts([1480642020])
    (['2016-12-02T01:27:00.000Z', '2016-12-02T01:27:00.999Z'], ['2016-12-02T01:27:00.000Z'])
    >>> iso_millis_texts([1480642020, 1480642020000]), iso_millis_texts([1480642020.5])
    (None, None)
    """
    if not values or set(map(type, values)) != _INT:
        return None
    low, high = min(values), max(values)
    if low >= 0 and high < _MS_FROM:  # seconds
        return list(map(add, map(_iso_seconds, values), repeat(".000Z")))
    if low < _MS_FROM or high >= _US_FROM:
        return None
    if not _MILLIS:
        iso_millis(_MS_FROM)
    return list(
        map(
            add,
            map(_iso_seconds, map(floordiv, values, repeat(1000))),
            map(_MILLIS.__getitem__, map(mod, values, repeat(1000))),
        )
    )


_INT = frozenset({int})


def table_name(change: Mapping[str, Any]) -> str | None:
    """The table's name: ``tableName`` (Kinesis format) or the one in ``eventSourceARN`` (Streams format).

    >>> table_name({"eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/cities/stream/2020-07-16T21:40"})
    'cities'
    """
    name = change.get("tableName")
    if type(name) is str:
        return name
    arn = change.get("eventSourceARN")
    if type(arn) is str and ":table/" in arn:
        return arn.split(":table/", 1)[1].split("/", 1)[0]
    return None


def _text(value: Any) -> Typed | None:
    return {"S": value} if type(value) is str else None


def _creation_millis(change: Mapping[str, Any], _rec: Record) -> int | None:
    value = change["dynamodb"].get("ApproximateCreationDateTime")
    return None if value is None else epoch_millis(value, "ApproximateCreationDateTime")


def _arrival_millis(_change: Mapping[str, Any], rec: Record) -> int | None:
    value = rec.source.get("approximateArrivalTimestamp")
    return None if value is None else epoch_millis(value, "approximateArrivalTimestamp")


#: The ``@``-fields that are times, as epoch milliseconds (or None): what partition keys format directly.
TIMES: dict[str, Callable[[Mapping[str, Any], Record], int | None]] = {
    "approximateCreationDateTime": _creation_millis,
    "arrivalTimestamp": _arrival_millis,
}


def _iso(millis: Callable[[Mapping[str, Any], Record], int | None]) -> FieldGetter:
    def get(change: Mapping[str, Any], rec: Record) -> Typed | None:
        value = millis(change, rec)
        return None if value is None else {"S": iso_millis(value)}

    return get


def _creation_iso(value: Any) -> Typed | None:  # _iso(_creation_millis), from the value itself
    return None if value is None else {"S": iso_millis(epoch_millis(value, "ApproximateCreationDateTime"))}


def _size_bytes(value: Any) -> Typed | None:
    if value is None:
        return None
    if type(value) is not int:
        raise RecordError("SizeBytes is not an integer")
    return {"N": str(value)}


#: The ``@``-fields that are one value of the change, converted: ``name -> (path, convert)``, the path a key at
#: the top of the change or ``dynamodb.Key``. :data:`FIELDS` reads the path from a change dict; the handler's
#: plan reads it from its decoded structs (:func:`operator.attrgetter`) and converts with the same function.
FIELD_VALUES: dict[str, tuple[str, Callable[[Any], Typed | None]]] = {
    "eventName": ("eventName", _text),
    "eventID": ("eventID", _text),
    "awsRegion": ("awsRegion", _text),
    "approximateCreationDateTime": ("dynamodb.ApproximateCreationDateTime", _creation_iso),
    "sizeBytes": ("dynamodb.SizeBytes", _size_bytes),
}
#: The fields of :data:`FIELD_VALUES` whose value, when it is text, is written as it is (``{"S": value}``).
TEXT_FIELDS = frozenset(name for name, (_, convert) in FIELD_VALUES.items() if convert is _text)


def _value_of(name: str) -> FieldGetter:
    path, convert = FIELD_VALUES[name]
    top, _, inner = path.partition(".")
    if not inner:
        return lambda change, _rec: convert(change.get(top))
    return lambda change, _rec: convert(change[top].get(inner))


def _is_ttl_delete(change: Mapping[str, Any], _rec: Record) -> Typed:
    who = change.get("userIdentity")
    ttl = (
        change.get("eventName") == "REMOVE"
        and type(who) is dict
        and who.get("type") == "Service"
        and who.get("principalId") == "dynamodb.amazonaws.com"
    )
    return {"BOOL": ttl}


def _kinesis(rec: Record, key: str) -> Any:
    meta = rec.source.get("kinesisRecordMetadata")
    return meta.get(key) if type(meta) is dict else None


def _sequence_number(change: Mapping[str, Any], rec: Record) -> Typed | None:
    value = change["dynamodb"].get("SequenceNumber")
    if value is None:
        value = _kinesis(rec, "sequenceNumber")
    return _text(value)


#: ``@name`` -> getter. ``@sequenceNumber`` is the DynamoDB Streams sequence number when the change has one
#: (Streams format), else the Kinesis sequence number of the record that carried it. ``@version``: see
#: :func:`change_version`.
FIELDS: dict[str, FieldGetter] = {
    "eventName": _value_of("eventName"),
    "eventID": _value_of("eventID"),
    "tableName": lambda change, _rec: _text(table_name(change)),
    "awsRegion": _value_of("awsRegion"),
    "approximateCreationDateTime": _value_of("approximateCreationDateTime"),
    "sizeBytes": _value_of("sizeBytes"),
    "isTtlDelete": _is_ttl_delete,
    "recordId": lambda _change, rec: {"S": rec.id},
    "partitionKey": lambda _change, rec: _text(_kinesis(rec, "partitionKey")),
    "sequenceNumber": _sequence_number,
    "arrivalTimestamp": _iso(_arrival_millis),
    "version": lambda change, _rec: {"S": change_version(change)},
}

#: What each ``@``-field reads from a change: ``(top-level fields, dynamodb fields)`` besides ``eventName``, the
#: images and ``Keys`` (which every change has). The parser decodes only these (see :func:`pipeline.parse.reads_for`).
FIELD_READS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "eventName": (frozenset(), frozenset()),
    "eventID": (frozenset({"eventID"}), frozenset()),
    "tableName": (frozenset({"tableName", "eventSourceARN"}), frozenset()),
    "awsRegion": (frozenset({"awsRegion"}), frozenset()),
    "approximateCreationDateTime": (frozenset(), frozenset({"ApproximateCreationDateTime"})),
    "sizeBytes": (frozenset(), frozenset({"SizeBytes"})),
    "isTtlDelete": (frozenset({"userIdentity"}), frozenset()),
    "recordId": (frozenset(), frozenset()),
    "partitionKey": (frozenset(), frozenset()),
    "sequenceNumber": (frozenset(), frozenset({"SequenceNumber"})),
    "arrivalTimestamp": (frozenset(), frozenset()),
    "version": (frozenset(), frozenset({"SequenceNumber", "ApproximateCreationDateTime"})),
}
assert FIELD_READS.keys() == FIELDS.keys()
#: The ``@``-fields whose getters read the Firehose record (its id or source), not only the change.
RECORD_FIELDS = frozenset({"recordId", "partitionKey", "sequenceNumber", "arrivalTimestamp"})
