"""The record envelope that flows through every stage, and the helpers that lift plain functions into stages.

A Firehose transformation must answer for every recordId it was given, so stages pass envelopes, not bare
values: a stage works only on records still ``Ok``, a filter marks a record ``Dropped`` instead of removing it,
and an exception inside one record's work marks that record ``ProcessingFailed`` while the stream goes on.
"""

from __future__ import annotations

import binascii
import json
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import count
from typing import Any, TypeAlias

__all__ = [
    "DROPPED",
    "FAILED",
    "OK",
    "OVER_BUDGET",
    "RESULTS",
    "Drop",
    "Record",
    "RecordError",
    "Stage",
    "Step",
    "as_record",
    "chain",
    "fused",
    "map_records",
    "per_record",
]

OK = "Ok"
DROPPED = "Dropped"
FAILED = "ProcessingFailed"
RESULTS = (OK, DROPPED, FAILED)

#: The reason a record is ``Dropped`` by the size-budget split: it goes back to the source to be re-ingested.
OVER_BUDGET = "over response budget"


class RecordError(ValueError):
    """A record cannot be transformed; the message is the reason logged (ids and causes, never contents)."""


# The package's small value types (Drop, Record, Step, Column, Config, Limits ...) subclass
# ``collections.namedtuple``, not ``typing.NamedTuple``: the same tuples, fields, defaults and methods, but
# typing checks each field's annotation as it makes the class (a ``compile()`` per field), about 1 ms of every
# cold start over these few types. A class's fields and defaults are its namedtuple's; its annotations, in the
# same order, are for the reader (no values there: a class attribute would hide the field).


class Drop(namedtuple("Drop", ["reason"], defaults=["filtered out"])):
    """Returned by a stage function to mark its record ``Dropped`` (it stays in the response, without data)."""

    __slots__ = ()
    reason: str


class Record(namedtuple("Record", "id source value result reason partition_keys otf", defaults=[OK, None, None, None])):
    """One Firehose record on its way through the pipeline.

    ``source`` is the Firehose record exactly as it arrived (never modified): it keeps the original bytes
    (base64 in ``source["data"]``) for re-ingestion and the Kinesis metadata for ``@``-columns, at no cost,
    since the event already holds it. ``value`` is what the last stage made of it.

    >>> r = Record("id-1", {"recordId": "id-1", "data": "eyJhIjoxfQ=="}, b'{"a":1}')
    >>> r.result, r.original
    ('Ok', b'{"a":1}')
    >>> r.failed("parse: not JSON")
    Record(id='id-1', source={...}, value=None, result='ProcessingFailed', reason='parse: not JSON',
           partition_keys=None)
    """

    __slots__ = ()
    id: str
    source: Mapping[str, Any]
    value: Any
    result: str  # OK
    reason: str | None  # None
    partition_keys: Mapping[str, str] | None  # None
    otf: Mapping[str, str] | None  # None: Firehose's metadata.otfMetadata, for the Iceberg destination

    def __repr__(self) -> str:
        source = "{...}" if self.source else "{}"
        return (
            f"Record(id={self.id!r}, source={source}, value={self.value!r}, result={self.result!r}, "
            f"reason={self.reason!r}, partition_keys={self.partition_keys!r}"
            + (f", otf={self.otf!r})" if self.otf is not None else ")")
        )

    @property
    def original(self) -> bytes:
        """The record's bytes as Firehose received them (what re-ingestion sends back)."""
        return binascii.a2b_base64(self.source["data"])

    def with_value(self, value: Any) -> Record:
        """The same record, still ``Ok``, carrying *value*."""
        return _new(Record, (self.id, self.source, value, OK, None, self.partition_keys, self.otf))

    def dropped(self, reason: str) -> Record:
        """The same record marked ``Dropped``: answered without data."""
        return _new(Record, (self.id, self.source, None, DROPPED, reason, None, None))

    def failed(self, reason: str) -> Record:
        """The same record marked ``ProcessingFailed``: Firehose sends its source to the error output."""
        return _new(Record, (self.id, self.source, None, FAILED, reason, None, None))


_new = tuple.__new__  # builds a Record without namedtuple's Python-level __new__: this is the hot path
Stage: TypeAlias = Callable[[Iterable[Any]], Iterator[Record]]
_synthetic_ids = count(1)


def as_record(item: Any) -> Record:
    """Wrap what a notebook may pass to a stage: a Record, a Firehose record, or change record(s).

    >>> as_record({"recordId": "r1", "data": "e30="}).value
    'e30='
    >>> change = {"eventName": "INSERT", "eventID": "e1", "dynamodb": {"Keys": {}}}
    >>> as_record(change).id, as_record(change).value == (change,)
    ('e1', True)
    >>> len(as_record({"Records": [change, change]}).value)
    2
    """
    if type(item) is Record:
        return item
    if type(item) is dict or isinstance(item, Mapping):  # dict first: an ABC's isinstance is a Python call
        if "recordId" in item:
            return _new(Record, (str(item["recordId"]), item, item.get("data"), OK, None, None, None))
        if "dynamodb" in item:
            return Record(str(item.get("eventID") or f"change-{next(_synthetic_ids)}"), {}, (item,))
        if isinstance(item.get("Records"), list):
            return Record(f"changes-{next(_synthetic_ids)}", {}, tuple(item["Records"]))
    raise TypeError(f"a stage takes Records, Firehose records or DynamoDB change records, not {type(item).__name__}")


def describe(exc: BaseException) -> str:
    """A reason for the log: our own messages in full, others by type (their text may quote the record)."""
    if isinstance(exc, RecordError):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError):
        where = len(exc.doc[: exc.pos].encode("utf-8", "surrogatepass")) if type(exc.doc) is str else exc.pos
        return f"not valid JSON ({exc.msg} at byte {where})"
    if isinstance(exc, UnicodeError):
        return f"not valid UTF-8 text ({type(exc).__name__})"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"unexpected {type(exc).__name__}"


def map_records(fn: Callable[[Record], Record], stage: str) -> Stage:
    """Lift a Record -> Record function into a stage: ``Ok`` records only; an exception fails that record.

    >>> stage = map_records(lambda r: r.with_value(1 / r.value), "invert")
    >>> [(r.result, r.value, r.reason) for r in stage([Record("a", {}, 4), Record("b", {}, 0)])]
    [('Ok', 0.25, None), ('ProcessingFailed', None, 'invert: unexpected ZeroDivisionError')]
    """

    def run(records: Iterable[Any]) -> Iterator[Record]:
        for rec in records:
            if type(rec) is not Record:
                rec = as_record(rec)
            if rec.result != OK:
                yield rec
                continue
            try:
                yield fn(rec)
            except Exception as exc:  # a bad record must never crash the batch
                yield rec.failed(f"{stage}: {describe(exc)}")

    return run


class Step(namedtuple("Step", "name fn kind", defaults=["value"])):
    """One built-in stage's work on one record, which :func:`fused` runs in a loop shared with other stages.

    ``kind`` says how ``fn`` is called: ``"value"``: ``fn(value)``; ``"record"``: ``fn(value, record)``, the
    record for its ``id`` and ``source`` (``@``-fields); ``"keys"``: ``fn(value, record)`` returns the record's
    partition keys, the value is kept. ``fn`` returns the new value, or a :class:`Drop`; an exception fails
    the record with ``name`` in front of the reason.
    """

    __slots__ = ()
    name: str
    fn: Callable[..., Any]
    kind: str  # "value"


def fused(steps: Sequence[Step]) -> Stage:
    """One stage running *steps* in turn on each record: one loop, one ``try`` and one envelope per record.

    Each step works on what the one before made; a ``Drop`` or an exception ends the record's run. The
    stage keeps its steps (``.steps``) so that :func:`chain` can fuse it with its neighbours.

    >>> inc = Step("inc", lambda v: v + 1)
    >>> halve = Step("halve", lambda v: Drop("odd") if v % 2 else v // 2)
    >>> [(r.result, r.value, r.reason) for r in fused([inc, halve])([Record("a", {}, 3), Record("b", {}, 4),
    ...                                                              Record("c", {}, "x")])]
    [('Ok', 2, None), ('Dropped', None, 'odd'), ('ProcessingFailed', None, 'inc: unexpected TypeError')]
    """
    steps = tuple(steps)
    for step in steps:
        if type(step) is not Step or step.kind not in _KINDS:
            raise TypeError(f"fused takes Steps of kind {', '.join(_KINDS)}, not {step!r}")

    def run(records: Iterable[Any]) -> Iterator[Record]:
        for rec in records:
            if type(rec) is not Record:
                rec = as_record(rec)
            if rec.result != OK:
                yield rec
                continue
            value, keys, name = rec.value, rec.partition_keys, ""
            try:
                for name, fn, kind in steps:  # noqa: B007 - name is the failing step's, for the reason
                    if kind == "value":
                        value = fn(value)
                    elif kind == "record":
                        value = fn(value, rec)
                    else:
                        keys = fn(value, rec)
                        continue
                    if type(value) is Drop:
                        break
            except Exception as exc:  # a bad record must never crash the batch
                yield rec.failed(f"{name}: {describe(exc)}")
                continue
            if type(value) is Drop:
                yield rec.dropped(value.reason)
            else:
                yield _new(Record, (rec.id, rec.source, value, OK, None, keys, rec.otf))

    run.steps = steps  # type: ignore[attr-defined]
    return run


_KINDS = ("value", "record", "keys")


def chain(stages: Iterable[Stage]) -> Stage:
    """Compose *stages* left to right, like ``toolz.compose_left``; neighbours with ``steps`` fuse into one loop.

    A stage without ``steps`` (one of your own, or ``map_records``) runs as it is, and fusion resumes after it.

    >>> double = per_record(lambda v: v * 2, "double")
    >>> def mine(records):  # a stage of your own: fusion stops at it
    ...     return (r._replace(value=-r.value) for r in records)
    >>> run = chain([double, double, mine, double])
    >>> [r.value for r in run([Record("a", {}, 1)])], [len(getattr(p, "steps", ())) for p in run.parts]
    ([-8], [2, 0, 1])
    """
    parts: list[Stage] = []
    pending: list[Step] = []
    for stage in stages:
        steps = getattr(stage, "steps", None)
        if steps is not None:
            pending.extend(steps)
            continue
        if pending:
            parts.append(fused(pending))
            pending = []
        parts.append(stage)
    if pending:
        parts.append(fused(pending))

    def run(records: Iterable[Any]) -> Iterator[Record]:
        for part in parts:
            records = part(records)
        return iter(records)

    run.parts = tuple(parts)  # type: ignore[attr-defined]
    return run


def per_record(fn: Callable[[Any], Any], stage: str) -> Stage:
    """Lift a value -> value function into a stage; returning a ``Drop`` marks the record ``Dropped``.

    >>> halve = per_record(lambda v: Drop("odd") if v % 2 else v // 2, "halve")
    >>> [(r.result, r.value) for r in halve([Record("a", {}, 4), Record("b", {}, 3)])]
    [('Ok', 2), ('Dropped', None)]
    >>> [(r.result, r.reason) for r in halve([Record("c", {}, None)])]
    [('ProcessingFailed', 'halve: unexpected TypeError')]
    """
    return fused([Step(stage, fn)])
