"""Stage 6: keep the serialised response within the budget (Lambda's 6 MB response limit by default).

Sizes are counted the way the Lambda Python runtime serialises the response (``awslambdaric``'s
``lambda_runtime_marshaller``, default separators): on python3.12 with ``ensure_ascii=False`` and encoded as
UTF-8, on the other runtimes with non-ASCII characters escaped. The escaped form is never the shorter one
(``\\u00e9`` is 6 bytes where UTF-8 takes 2, an escaped astral character 12 where UTF-8 takes 4), so its
length, which is what is counted, bounds both: every entry, the separators between them, the
``{"records": [...]}`` around them and any metadata (partition keys, Iceberg ``otfMetadata``). (Every string
in the response is UTF-8 text: the stages before this one see to that, see :mod:`pipeline.values`.) The stage
fills the response greedily in input order, but first keeps room for every record's entry: a ``Dropped`` or
``ProcessingFailed`` entry takes room too. An ``Ok`` record that does not fit becomes ``Dropped`` with reason
``OVER_BUDGET`` (the re-ingestion stage sends its original bytes back to the source); one whose output could
not fit even alone becomes ``ProcessingFailed`` (re-ingesting it would loop forever).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import compress
from json.encoder import encode_basestring_ascii
from operator import itemgetter
from typing import Any

from .records import DROPPED, FAILED, OK, OVER_BUDGET, Record, Stage, as_record

__all__ = [
    "ENTRY_OVERHEAD",
    "LAMBDA_RESPONSE_LIMIT",
    "Budget",
    "BudgetError",
    "base64_length",
    "decoded_size",
    "entry_size",
    "metadata",
    "metadata_size",
    "quoted_size",
    "response_floor",
    "response_size",
    "within_budget",
]

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024
TOO_LARGE = "larger than the response budget"


def _fixed(result: str, **extra: str) -> int:
    return len(json.dumps({"recordId": "", "result": result, **extra})) - 2  # minus the empty id's quotes


_ENTRY = {OK: _fixed(OK, data=""), DROPPED: _fixed(DROPPED), FAILED: _fixed(FAILED)}
# ', "metadata": ' added to an entry before the metadata object itself
_METADATA = len(json.dumps({"metadata": {}})) - 2 - 2 + len(", ")
_DROP_SAVING = _ENTRY[FAILED] - _ENTRY[DROPPED]
_WRAPPER = len(json.dumps({"records": []}))
_SEPARATOR = len(", ")


class BudgetError(RuntimeError):
    """The response cannot hold even one entry per record within the budget."""


def base64_length(size: int) -> int:
    """Length of the base64 text of *size* bytes.

    >>> [base64_length(n) for n in (0, 1, 2, 3, 4)]
    [0, 4, 4, 4, 8]
    """
    return (size + 2) // 3 * 4


def decoded_size(datas: Sequence[Any]) -> int:
    """Bytes the base64 texts among *datas* decode to, from their lengths and padding (exact for base64).

    The usual list (all of them text of two characters or more) is counted by ``map``, reading only each text's
    last characters: which end with "=", then which of those end "==".

    >>> decoded_size(["aGk=", "aA==", 7, None, ""])
    3
    """
    try:
        if set(map(type, datas)) != _STR:
            raise TypeError
        padded = list(compress(datas, map(_EQUALS, map(_last, datas))))
        padding = len(padded) + "".join(map(_second_last, padded)).count("=")
        texts = datas
    except (TypeError, IndexError):  # not all text, or a text shorter than two characters
        texts = [data for data in datas if type(data) is str]
        padding = sum(text.endswith("=") + text.endswith("==") for text in texts)
    return sum(map(len, texts)) * 3 // 4 - padding


_last, _second_last, _EQUALS, _STR = itemgetter(-1), itemgetter(-2), "=".__eq__, frozenset({str})


def entry_size(
    record_id: str,
    result: str,
    data_size: int = 0,
    keys: Mapping[str, str] | None = None,
    otf: Mapping[str, str] | None = None,
) -> int:
    """Bytes the Lambda runtime writes for one response entry, at most (``data_size``: bytes before base64).

    *keys* are the partition keys, *otf* the Iceberg ``otfMetadata``; either makes the entry's ``metadata``.

    >>> entry = {"recordId": "r-é", "result": "Ok", "data": "YWJj", "metadata": {"partitionKeys": {"d": "ü"}}}
    >>> entry_size("r-é", "Ok", 3, {"d": "ü"}) == len(json.dumps(entry))  # escaped (python3.11, 3.13 ...)
    True
    >>> entry_size("r-é", "Ok", 3, {"d": "ü"}) >= len(json.dumps(entry, ensure_ascii=False).encode())  # 3.12
    True
    >>> otf = {"destinationDatabaseName": "db", "destinationTableName": "t", "operation": "delete"}
    >>> entry_size("r-é", "Ok", 3, None, otf) == len(json.dumps({**entry, "metadata": {"otfMetadata": otf}}))
    True
    """
    size = _ENTRY[result] + len(encode_basestring_ascii(record_id))
    if result == OK:
        size += base64_length(data_size)
        if keys is not None or otf is not None:
            size += _metadata_size(keys, otf)
    return size


# ', "metadata": {...}' by its partition keys' or its otfMetadata's items: a batch has a few days, tables and
# operations, and json.dumps per record would cost more than the rest of its entry
_SIZES: dict[tuple[bool, tuple[tuple[str, str], ...]], int] = {}


def _metadata_size(keys: Mapping[str, str] | None, otf: Mapping[str, str] | None = None) -> int:
    if (keys is None) != (otf is None):  # one of the two, the usual case
        items = (keys is None, tuple((keys if otf is None else otf).items()))  # type: ignore[union-attr]
        size = _SIZES.get(items)
        if size is None:
            size = _METADATA + len(json.dumps(metadata(keys, otf)))
            if len(_SIZES) < 4096:
                _SIZES[items] = size
        return size
    return _METADATA + len(json.dumps(metadata(keys, otf)))


def metadata(keys: Mapping[str, str] | None, otf: Mapping[str, str] | None) -> dict[str, Mapping[str, str]]:
    """An entry's ``metadata``: ``partitionKeys`` (S3 dynamic partitioning), ``otfMetadata`` (Iceberg routing).

    >>> metadata({"day": "2026-01-01"}, None), metadata(None, {"operation": "insert"})
    ({'partitionKeys': {'day': '2026-01-01'}}, {'otfMetadata': {'operation': 'insert'}})
    """
    found: dict[str, Mapping[str, str]] = {}
    if keys is not None:
        found["partitionKeys"] = keys
    if otf is not None:
        found["otfMetadata"] = otf
    return found


def response_floor(record_ids: Iterable[str]) -> tuple[int, int]:
    """``(smallest response size, records)``: the response with every entry at its largest non-Ok size.

    >>> ids = ["r-1", "r-é"]
    >>> response_floor(ids) == (len(json.dumps({"records": [{"recordId": i, "result": FAILED} for i in ids]})), 2)
    True
    """
    ids = record_ids if type(record_ids) is list else list(record_ids)
    return _floor(len(ids), quoted_size(ids)), len(ids)


def _floor(count: int, ids_size: int) -> int:
    return _WRAPPER + ids_size + _ENTRY[FAILED] * count + _SEPARATOR * max(count - 1, 0)


def quoted_size(ids: Sequence[str]) -> int:
    """Characters *ids* take as JSON strings (escaped, in their quotes), all together.

    Escaping is per character, so ids joined escape to the sum of their escapes; Firehose's ids are letters and
    digits, which need no escaping and are told apart at C speed. The ids are joined a few hundred at a time:
    this also runs when the response is complete, at the invocation's memory peak.

    >>> quoted_size(["49546", "r-é"]) == len(json.dumps("49546")) + len(json.dumps("r-é"))
    True
    """
    size = 0
    for start in range(0, len(ids), 512):
        chunk = "".join(ids[start : start + 512])
        if chunk.isascii() and chunk.encode("ascii").isalnum():  # str.isascii is a flag; bytes.isalnum a lookup
            size += len(chunk)
        else:
            size += len(encode_basestring_ascii(chunk)) - 2
    return size + 2 * len(ids)


class Budget:
    """The response's size as it is filled, record by record: what :func:`within_budget` keeps for each stream.

    Made from the batch's ids (BudgetError if even one non-Ok entry each would not fit); :meth:`admit` decides
    one record, :meth:`take` is its common case (an ``Ok`` entry without metadata) for a loop that has the
    size at hand.

    >>> budget = Budget(200, ["a", "b"])
    >>> budget.take(8), budget.take(500)
    (True, False)
    """

    __slots__ = ("expected", "floor", "ids_size", "max_bytes", "seen", "used")

    def __init__(self, max_bytes: int, record_ids: Iterable[str]) -> None:
        if type(max_bytes) is not int or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive whole number, not {max_bytes!r}")
        ids = record_ids if type(record_ids) in (list, tuple) else list(record_ids)
        self.expected, self.ids_size = len(ids), quoted_size(ids)  # the ids' size, as the response will hold them
        self.floor = _floor(self.expected, self.ids_size)
        if self.floor > max_bytes:
            raise BudgetError(
                f"the response for {self.expected} records needs at least {self.floor} bytes, more than the budget "
                f"of {max_bytes}: raise the budget or lower the delivery stream's buffer size"
            )
        self.max_bytes = max_bytes
        self.used = self.floor  # the response if every record not yet seen took its largest non-Ok entry
        self.seen = 0

    def __repr__(self) -> str:
        return f"Budget(used={self.used}, max_bytes={self.max_bytes}, seen={self.seen}/{self.expected})"

    def take(self, data_chars: int) -> bool:
        """Room for the next record as ``Ok`` with *data_chars* of base64 and no metadata? If so, it is taken.

        The record's id counts the same in its reserved and its ``Ok`` entry, so only the difference is added.
        """
        if self.seen < self.expected and self.used + _OK_GROWTH + data_chars <= self.max_bytes:
            self.used += _OK_GROWTH + data_chars
            self.seen += 1
            return True
        return False

    def take_all(self, data_chars: list[int]) -> bool:
        """:meth:`take` for the next ``len(data_chars)`` records at once: all of them if all fit, else none.

        >>> budget = Budget(1000, ["a", "b"])
        >>> budget.take_all([100, 100]), budget.seen, budget.take_all([1])
        (True, 2, False)
        """
        n = len(data_chars)
        size = n * _OK_GROWTH + sum(data_chars)
        if self.seen + n <= self.expected and self.used + size <= self.max_bytes:
            self.used += size
            self.seen += n
            return True
        return False

    def admit(self, rec: Record) -> Record:
        """The next record as the response can take it: an ``Ok`` one that does not fit is Dropped or failed."""
        self.seen += 1
        if self.seen > self.expected:
            raise ValueError(f"within_budget was given {self.expected} record ids but saw more records")
        if rec.result == DROPPED and rec.reason != OVER_BUDGET:
            self.used -= _DROP_SAVING  # a final Dropped entry is shorter than the room kept for it
        elif rec.result == OK:  # entry_size(rec.id, FAILED) and (..., OK, ...), the id's length taken once
            id_size = len(encode_basestring_ascii(rec.id))
            reserved = _ENTRY[FAILED] + id_size
            size = _ENTRY[OK] + id_size + base64_length(len(rec.value))
            if rec.partition_keys is not None or rec.otf is not None:
                size += _metadata_size(rec.partition_keys, rec.otf)
            if self.used - reserved + size <= self.max_bytes:
                self.used += size - reserved
            elif self.floor - reserved + size > self.max_bytes:
                rec = rec.failed(TOO_LARGE)
            else:
                rec = rec.dropped(OVER_BUDGET)  # counted at its reserved (larger, failed) size
        return rec


_OK_GROWTH = _ENTRY[OK] - _ENTRY[FAILED]  # an Ok entry without its data, less the failed entry reserved for it


def within_budget(max_bytes: int, record_ids: Iterable[str]) -> Stage:
    """Mark ``Ok`` records that would push the response past *max_bytes* as ``Dropped`` (to re-ingest).

    *record_ids* are the ids of the whole batch, in order, so that room is kept for the records to come.

    >>> from pipeline import Record
    >>> batch = [Record(f"r{i}", {}, b"x" * 300) for i in range(3)]
    >>> [(r.result, r.reason) for r in within_budget(1000, [r.id for r in batch])(batch)]
    [('Ok', None), ('Ok', None), ('Dropped', 'over response budget')]
    >>> [(r.result, r.reason) for r in within_budget(500, [r.id for r in batch])(batch)]
    [('ProcessingFailed', 'larger than the response budget'), ...]
    """
    budget = Budget(max_bytes, record_ids)  # checked now, not when the stream is read

    def run(records: Iterable[Any]) -> Iterator[Record]:
        admit = budget.admit
        for rec in records:
            yield admit(rec if type(rec) is Record else as_record(rec))

    return run


#: Characters of a response entry besides its escaped record id, its base64 data and its metadata, by result.
ENTRY_OVERHEAD: Mapping[str, int] = _ENTRY


def metadata_size(keys: Mapping[str, str] | None, otf: Mapping[str, str] | None = None) -> int:
    """Characters an ``Ok`` entry's ``, "metadata": {...}`` takes: partition *keys*, Iceberg *otf*, or both."""
    return _metadata_size(keys, otf)


def response_size(entries: int, entry_chars: int) -> int:
    """Characters of ``{"records": [...]}`` around *entries* entries that take *entry_chars* together.

    >>> entries = [{"recordId": "a", "result": "Ok", "data": "eA=="}, {"recordId": "b", "result": "Dropped"}]
    >>> response_size(2, sum(len(json.dumps(e)) for e in entries)) == len(json.dumps({"records": entries}))
    True
    """
    return _WRAPPER + _SEPARATOR * max(entries - 1, 0) + entry_chars
