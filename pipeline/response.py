"""The sink: the one eager step, which builds the Firehose response and counts what happened."""

from __future__ import annotations

from binascii import b2a_base64
from collections import Counter
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii
from typing import Any

from .budget import ENTRY_OVERHEAD, metadata_size, response_size
from .records import FAILED, OK, Record, as_record

__all__ = ["Summary", "respond"]


class Summary:
    """Counts for the invocation's summary log line; failures keep ids and reasons, never contents."""

    __slots__ = ("bytes_out", "failures", "max_failures_kept", "reasons", "response_bytes", "results")

    def __init__(self, max_failures_kept: int = 50) -> None:
        self.results: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.bytes_out = 0
        self.response_bytes = 0  # the response as json.dumps writes it (what counts against Lambda's limit)
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


def respond(records: Iterable[Any], summary: Summary | None = None) -> dict[str, list[dict[str, Any]]]:
    """Build ``{"records": [...]}``: ``data`` (a base64 str) only on ``Ok``, metadata when there are keys.

    >>> from pipeline import Record
    >>> respond([Record("a", {}, b"x,1\\n"), Record("b", {}, None, "Dropped", "event type not selected")])
    {'records': [{'recordId': 'a', 'result': 'Ok', 'data': 'eCwxCg=='}, {'recordId': 'b', 'result': 'Dropped'}]}
    """
    summary = summary if summary is not None else Summary()
    entries = []
    chars = 0  # the entries' sizes as json.dumps writes them (budget.entry_size, inlined)
    for rec in records:
        if type(rec) is not Record:
            rec = as_record(rec)
        if rec.result == OK:
            data = rec.value
            if type(data) is not bytes:
                raise TypeError(f"record {rec.id} reached the response as {type(data).__name__}, not bytes")
            text = b2a_base64(data, newline=False).decode()
            entry = {"recordId": rec.id, "result": OK, "data": text}
            chars += len(text)
            if rec.partition_keys is not None:
                entry["metadata"] = {"partitionKeys": rec.partition_keys}
                chars += metadata_size(rec.partition_keys)
            summary.bytes_out += len(data)
        else:
            entry = {"recordId": rec.id, "result": rec.result}
        chars += ENTRY_OVERHEAD.get(rec.result, 0) + len(encode_basestring_ascii(rec.id))
        summary.count(rec)
        entries.append(entry)
    summary.response_bytes = response_size(len(entries), chars)
    return {"records": entries}
