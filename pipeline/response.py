"""The sink: the one eager step, which builds the Firehose response and counts what happened."""

from __future__ import annotations

from binascii import b2a_base64
from collections import Counter
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from .budget import ENTRY_OVERHEAD, metadata, metadata_size, quoted_size, response_size
from .records import FAILED, OK, Record, as_record

__all__ = ["Response", "Summary", "metadata", "respond"]


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
    """Build ``{"records": [...]}``: ``data`` (a base64 str) only on ``Ok``, ``metadata`` when it has some.

    >>> from pipeline import Record
    >>> respond([Record("a", {}, b"x,1\\n"), Record("b", {}, None, "Dropped", "event type not selected")])
    {'records': [{'recordId': 'a', 'result': 'Ok', 'data': 'eCwxCg=='}, {'recordId': 'b', 'result': 'Dropped'}]}
    """
    response = Response(summary if summary is not None else Summary())
    add = response.add
    for rec in records:
        add(rec if type(rec) is Record else as_record(rec))
    return response.done()


class Response:
    """The response as it is built: the entries in order, counted in the summary as they come.

    :meth:`add` answers one record; a loop that builds ``Ok`` entries itself appends them to :attr:`entries`
    and reports them with :meth:`add_ok_counts`. :meth:`done` sets the summary's ``response_bytes``.
    """

    __slots__ = ("_before", "data_chars", "entries", "summary")

    def __init__(self, summary: Summary) -> None:
        self.summary = summary
        self.entries: list[dict[str, Any]] = []
        self.data_chars = 0  # base64 data and metadata; the rest of the size is counted once, by done()
        self._before = summary.results.copy()

    def add(self, rec: Record) -> None:
        """Answer *rec*."""
        summary = self.summary
        if rec.result == OK:
            data = rec.value
            if type(data) is not bytes:
                raise TypeError(f"record {rec.id} reached the response as {type(data).__name__}, not bytes")
            text = b2a_base64(data, newline=False).decode()
            entry = {"recordId": rec.id, "result": OK, "data": text}
            self.data_chars += len(text)
            if rec.partition_keys is not None or rec.otf is not None:
                entry["metadata"] = metadata(rec.partition_keys, rec.otf)
                self.data_chars += metadata_size(rec.partition_keys, rec.otf)
            summary.bytes_out += len(data)
        else:
            entry = {"recordId": rec.id, "result": rec.result}
        summary.count(rec)
        self.entries.append(entry)

    def add_ok_counts(self, records: int, data_bytes: int, data_chars: int) -> None:
        """Count *records* ``Ok`` entries (no metadata) appended to :attr:`entries` directly."""
        if records:
            self.summary.results[OK] += records
        self.summary.bytes_out += data_bytes
        self.data_chars += data_chars

    def done(self, ids_size: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """The response; its size (as ``json.dumps`` writes it) goes to the summary.

        *ids_size* is the entries' ids' :func:`~pipeline.budget.quoted_size` if known (the budget's, when every
        record of the batch is answered); else they are measured.
        """
        summary = self.summary
        if ids_size is None:
            ids_size = quoted_size(list(map(_record_id, self.entries)))
        summary.response_bytes = _size(len(self.entries), self.data_chars + ids_size, summary.results - self._before)
        return {"records": self.entries}


def _size(entries: int, encoded: int, results: Counter[str]) -> int:
    """The response's size as ``json.dumps`` writes it (what Lambda's limit counts), as ``budget.entry_size`` adds:
    *encoded* counts the data, metadata and ids."""
    fixed = sum(ENTRY_OVERHEAD.get(result, 0) * n for result, n in results.items())
    return response_size(entries, encoded + fixed)


_record_id = itemgetter("recordId")
