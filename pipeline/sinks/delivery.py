"""Firehose's S3 delivery: ``Ok`` data concatenated into objects under the prefix, failures under the error prefix.

One object per evaluated prefix and delivery: with ``!{partitionKeyFromLambda:...}`` in the prefix, each
partition gets its own object, as with Firehose's dynamic partitioning. Timestamps in a prefix come from
each record's arrival time, so a record lands in the hour it arrived in (redriven records too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple, Protocol

from .errors_output import FailedRecord, error_line
from .prefixes import DEFAULT_ERROR_PREFIX, DEFAULT_PREFIX, check_prefix, object_name, render_prefix
from .storage import Store

__all__ = ["Delivered", "Destination", "TableSink", "deliver", "deliver_failed"]


class Destination(NamedTuple):
    """Where a delivery stream writes: a store, its prefixes, and the stream's name (in each object's name)."""

    store: Store
    prefix: str = DEFAULT_PREFIX
    error_prefix: str = DEFAULT_ERROR_PREFIX
    stream: str = "local-firehose"

    def checked(self, partition_keys: Iterable[str] = ()) -> Destination:
        """This destination, once its prefixes are known to be evaluable (ValueError otherwise)."""
        check_prefix(self.prefix, frozenset(partition_keys))
        check_prefix(self.error_prefix, error=True)
        return self


class Delivered(NamedTuple):
    """One record's output: its bytes, its partition keys (or None), when it arrived (epoch ms) and, for the
    Iceberg destination, its ``otfMetadata`` (or None)."""

    data: bytes
    keys: Mapping[str, str] | None
    arrival_ms: int
    otf: Mapping[str, str] | None = None


class TableSink(Protocol):
    """A destination of tables rather than objects (Firehose's Iceberg destination: :mod:`pipeline.sinks.iceberg`)."""

    stream: str
    prefix: str
    errors: Destination  # where records the tables cannot take go, in Firehose's error-output format

    def checked(self, partition_keys: Iterable[str] = ()) -> TableSink:
        """This sink, once known to be usable."""

    def deliver_records(self, records: list[Delivered]) -> tuple[int, list[tuple[int, str]]]:
        """Apply *records* in order: ``(commits made, [(index, reason) for each record not applied])``."""


def _write(store: Store, stream: str, groups: dict[str, list[bytes]], *, dry_run: bool) -> dict[str, int]:
    written = {}
    for prefix, parts in groups.items():
        key = prefix + object_name(stream)
        if not dry_run:
            store.put(key, b"".join(parts))
        written[key] = len(parts)
    return written


def deliver(dest: Destination, records: Iterable[Delivered], *, dry_run: bool = False) -> dict[str, int]:
    """Write the records' data, in order, one object per evaluated prefix; ``{key: records}`` written.

    >>> import tempfile
    >>> from pipeline.sinks.storage import Folder
    >>> dest = Destination(Folder(tempfile.mkdtemp()), "t=!{partitionKeyFromLambda:t}/", stream="s")
    >>> written = deliver(dest, [Delivered(b"a\\n", {"t": "x"}, 0), Delivered(b"b\\n", {"t": "y"}, 0),
    ...                          Delivered(b"c\\n", {"t": "x"}, 0)])
    >>> sorted((key[:4], count) for key, count in written.items())
    [('t=x/', 2), ('t=y/', 1)]
    >>> [dest.store.get(key) for key in sorted(written)]
    [b'a\\nc\\n', b'b\\n']
    """
    groups: dict[str, list[bytes]] = {}
    for rec in records:
        groups.setdefault(render_prefix(dest.prefix, rec.arrival_ms, rec.keys), []).append(rec.data)
    return _write(dest.store, dest.stream, groups, dry_run=dry_run)


def deliver_failed(dest: Destination, records: Iterable[FailedRecord], *, dry_run: bool = False) -> dict[str, int]:
    """Write failed records in Firehose's error-output format under the error prefix; ``{key: records}``."""
    groups: dict[str, list[bytes]] = {}
    for rec in records:
        moment = rec.arrival_ms if rec.arrival_ms is not None else rec.ending_ms or 0
        groups.setdefault(render_prefix(dest.error_prefix, moment), []).append(error_line(rec).encode())
    return _write(dest.store, dest.stream, groups, dry_run=dry_run)
