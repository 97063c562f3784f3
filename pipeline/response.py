"""The sink: the one eager step, which builds the Firehose response and counts what happened."""

from __future__ import annotations

from binascii import b2a_base64
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .records import FAILED, OK, Record, as_record

__all__ = ["Summary", "metadata", "respond"]


class Summary:
    """Counts for the invocation's summary log line; failures keep ids and reasons, never contents."""

    __slots__ = ("bytes_out", "failures", "max_failures_kept", "reasons", "results")

    def __init__(self, max_failures_kept: int = 50) -> None:
        self.results: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.bytes_out = 0
        self.failures: list[tuple[str, str]] = []
        self.max_failures_kept = max_failures_kept

    def __repr__(self) -> str:
        return f"Summary(results={dict(self.results)}, bytes_out={self.bytes_out}, reasons={dict(self.reasons)})"

    def count(self, rec: Record) -> None:
        """Count one answered record."""
        self.results[rec.result] += 1
        if rec.result != OK:
            self.reasons[rec.reason or ""] += 1
            if rec.result == FAILED and len(self.failures) < self.max_failures_kept:
                self.failures.append((rec.id, rec.reason or ""))


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


def respond(records: Iterable[Any], summary: Summary | None = None) -> dict[str, list[dict[str, Any]]]:
    """Build ``{"records": [...]}``: ``data`` (a base64 str) only on ``Ok``, ``metadata`` when it has some.

    >>> from pipeline import Record
    >>> respond([Record("a", {}, b"x,1\\n"), Record("b", {}, None, "Dropped", "event type not selected")])
    {'records': [{'recordId': 'a', 'result': 'Ok', 'data': 'eCwxCg=='}, {'recordId': 'b', 'result': 'Dropped'}]}
    """
    summary = summary if summary is not None else Summary()
    entries: list[dict[str, Any]] = []
    add = entries.append
    ok = bytes_out = 0  # Ok records are counted here and added once, at the end (or when the stream fails)
    try:
        for rec in records:
            if type(rec) is not Record:
                rec = as_record(rec)
            if rec.result == OK:
                data = rec.value
                if type(data) is not bytes:
                    raise TypeError(f"record {rec.id} reached the response as {type(data).__name__}, not bytes")
                entry = {"recordId": rec.id, "result": OK, "data": b2a_base64(data, newline=False).decode()}
                if rec.partition_keys is not None or rec.otf is not None:
                    entry["metadata"] = metadata(rec.partition_keys, rec.otf)
                bytes_out += len(data)
                ok += 1
            else:
                entry = {"recordId": rec.id, "result": rec.result}
                summary.count(rec)
            add(entry)
    finally:
        summary.results[OK] += ok
        summary.bytes_out += bytes_out
    return {"records": entries}
