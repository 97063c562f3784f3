"""One data file of an export -> its rows under the delivery stream's prefixes, and its failures beside them.

:func:`transform_file` is the whole per-file job, and a pure top-level function of plain data: what a process
pool sends to a worker and what Spark pickles to an executor (no clients, no open files: each call opens its
own store and imports what it needs). Every engine calls it, so their output is the same, byte for byte.

The records go through :func:`pipeline.app.stages`, the Lambda's own stages for the same ``PIPELINE_*``
configuration, after :func:`~pipeline.backfill.changes.change_bytes`: an export line becomes the JSON of the change
record a stream would carry, then parse, filter, partition keys, project and encode do what
they do in the Lambda (decode, Firehose's base64, has nothing to unwrap). There is no response budget:
nothing has to fit into a Lambda response.
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from itertools import tee
from pathlib import Path
from typing import Any, NamedTuple

from ..app import stages
from ..config import Config
from ..parse import decode
from ..records import FAILED, OK, Record, RecordError, Stage
from ..sinks.errors_output import FailedRecord, error_line
from ..sinks.prefixes import render_prefix
from ..sinks.storage import open_store
from .changes import change_bytes, change_loads, write_micros
from .manifest import store_reason
from .source import ItemStream
from .spool import Spool

__all__ = ["ERROR_CODE", "FileResult", "Task", "object_name", "transform_file", "transform_partition"]

#: The errorCode of items that could not be transformed: what Firehose writes for a ProcessingFailed record.
ERROR_CODE = "Lambda.ProcessingFailedStatus"
_FAILURES_KEPT = 20  # per file, with their reasons, for the summary (all of them are in the error objects)


class Task(NamedTuple):
    """Everything one worker needs for one data file, as plain picklable data."""

    root: str  # location of the folder holding AWSDynamoDB/
    key: str  # the data file, relative to root
    item_count: int
    md5: str | None
    export_id: str
    table: str
    region: str
    export_micros: int
    incremental: bool
    view: str
    keys: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # the PIPELINE_* variables: the worker builds its own Config
    out: str  # location of the output: a folder or s3://bucket[/base/]
    prefix: str
    error_prefix: str
    name: str  # first part of the object names
    gzip: bool


class FileResult(NamedTuple):
    """What one data file gave: counts, objects written, and the first failures (or why it was refused)."""

    key: str
    items: int = 0
    rows: int = 0
    dropped: int = 0
    failed: int = 0
    bytes_in: int = 0  # the data file as stored (compressed)
    bytes_read: int = 0  # its uncompressed JSON
    bytes_out: int = 0
    written: tuple[tuple[str, int], ...] = ()  # (object key, records)
    failures: tuple[tuple[str, str], ...] = ()  # (file:line, reason), the first few
    problem: str | None = None  # the file was not transformed: missing, truncated, checksum or count mismatch
    unwritable: str | None = None  # the problem is the destination's: why its objects could not be written
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the worker's CPU time on it: its rate, whatever else the machine runs


def object_name(task: Task) -> str:
    """The objects' name for this file: the same on every run, so a re-run overwrites instead of duplicating.

    >>> object_name(Task("", "AWSDynamoDB/0123-ab/data/xyz.json.gz", 0, None, "0123-ab", "t", "r", 0, False,
    ...                  "NEW_AND_OLD_IMAGES", (), (), "", "", "", "backfill", True))
    'backfill-0123-ab-xyz.gz'
    """
    stem = task.key.rsplit("/", 1)[-1].split(".", 1)[0]
    return f"{task.name}-{task.export_id}-{stem}" + (".gz" if task.gzip else "")


def _failed_record(line: bytes, reason: str, loads: Any, moment_ms: int) -> FailedRecord:
    """The error-output record of an item: its change record (what redrive parses), else the raw line."""
    try:
        raw = json.dumps(loads(line), ensure_ascii=False, separators=(",", ":")).encode()
    except Exception:  # not even an export line: keep it as it was
        raw = line
    return FailedRecord(base64.b64encode(raw).decode(), ERROR_CODE, reason, 1, moment_ms, moment_ms, None)


def _records(lines: Iterable[bytes], convert: Any, encoded: bool) -> Iterator[Record]:
    """Each line as a record carrying its change record's JSON (base64 text if the chain starts by decoding)."""
    source: dict[str, Any] = {}  # no Firehose record around it: @recordId, @partitionKey ... are empty
    b2a = binascii.b2a_base64
    for line in lines:
        try:
            data = convert(line)
        except RecordError as exc:  # the line is JSON but not an export item: failed here, with its reason
            yield Record("", source, None).failed(f"parse: {exc}")
            continue
        yield Record("", source, b2a(data, newline=False).decode("ascii") if encoded else data)


def _chain(config: Config) -> tuple[list[Stage], bool]:
    """The handler's stages for *config*; the first, base64 decoding, is left out when it is ``decode``.

    Firehose wraps each record in base64 and the decode stage unwraps it; a change made here is already bytes,
    so there is nothing to unwrap. Should the handler's chain ever start otherwise, the changes are wrapped.
    """
    chain = stages(config)
    if chain and chain[0] is decode:
        return chain[1:], False
    return chain, True


def transform_file(task: Task) -> FileResult:
    """Read, check and transform one data file; write its rows and failures; say what it did.

    The file is read as a stream (:class:`~pipeline.backfill.source.ItemStream`) and its rows wait on disk
    (:class:`~pipeline.backfill.spool.Spool`): memory holds neither. A file that is missing, damaged or holds
    another number of items than the manifest says is not transformed at all (``problem``): that is known once
    it is read, and nothing of it is written. Otherwise every object is written whole (a folder: write then
    rename; S3: one upload, multipart when large, which S3 shows only once complete).
    """
    started, cpu = time.perf_counter(), time.process_time()
    try:
        store = open_store(task.root)
        stream = store.open(task.key)
    except Exception as exc:
        return FileResult(task.key, problem=f"cannot read it ({store_reason(exc)})")
    with closing(stream), tempfile.TemporaryDirectory(prefix="backfill-") as folder:
        data = ItemStream(stream)
        rows, errors = Spool(Path(folder, "rows")), Spool(Path(folder, "errors"))
        done = _transform(task, data, rows, errors)
        problem = data.problem(task.md5, reopen=lambda: store.open(task.key))
        if problem is None and data.items != task.item_count:
            problem = f"holds {data.items:,} items, manifest-files.json says {task.item_count:,}: truncated?"
        if problem is not None or done is None:
            return FileResult(task.key, bytes_in=data.bytes_in, problem=problem)
        (rows_n, dropped, failed), failures = done
        try:
            written, bytes_out = _write(task, rows, errors)
        except Exception as exc:  # a bucket that is not there, no permission, a full disk: say so, go on
            why = store_reason(exc)
            return FileResult(
                task.key, bytes_in=data.bytes_in, problem=f"cannot write its objects ({why})", unwritable=why
            )
    return FileResult(
        key=task.key,
        items=data.items,
        rows=rows_n,
        dropped=dropped,
        failed=failed,
        bytes_in=data.bytes_in,
        bytes_read=data.bytes_read,
        bytes_out=bytes_out,
        written=written,
        failures=tuple(failures),
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu,
    )


def _transform(
    task: Task, data: ItemStream, rows: Spool, errors: Spool
) -> tuple[tuple[int, int, int], list[tuple[str, str]]] | None:
    """Each item of *data* through the stages, a line at a time, its row or error line into *rows* or *errors*;
    the counts (rows, dropped, failed) and the first failures with their reasons. None if reading the file
    stopped early (its ``problem`` says why)."""
    config = Config.from_env(dict(task.env))
    where = (task.table, task.region, task.export_micros)
    loads = change_loads(*where, incremental=task.incremental, view=task.view, keys=task.keys)
    convert = change_bytes(*where, incremental=task.incremental, view=task.view, keys=task.keys)
    chain, encoded = _chain(config)
    feed, lines = tee(data.lines())  # the stages give a record per line, in order: tee holds a line or two
    records: Iterable[Any] = _records(feed, convert, encoded)
    for stage in chain:
        records = stage(records)
    export_ms = task.export_micros // 1000
    rendered: dict[tuple[str, int, Any], str] = {}

    def prefix(template: str, millis: int, keys: Any) -> str:  # evaluated once per second and partition
        key = (template, millis // 1000, tuple(keys.items()) if keys else None)
        found = rendered.get(key)
        if found is None:
            found = rendered[key] = render_prefix(template, millis, keys)
        return found

    rows_n = dropped = failed = 0
    failures: list[tuple[str, str]] = []
    try:
        for number, (line, rec) in enumerate(zip(lines, records, strict=True), 1):
            moment = write_micros(line, task.export_micros) // 1000 if task.incremental else export_ms
            if rec.result == OK:
                rows_n += 1
                rows.add(prefix(task.prefix, moment, rec.partition_keys), rec.value)
            elif rec.result == FAILED:
                failed += 1
                reason = rec.reason or "failed"
                if len(failures) < _FAILURES_KEPT:
                    failures.append((f"{task.key}:{number}", reason))
                failure = _failed_record(line, reason, loads, moment)
                errors.add(prefix(task.error_prefix, moment, None), error_line(failure).encode())
            else:
                dropped += 1
    except Exception:
        if data.error is None:  # not the file's doing: a bug, to be seen, not a damaged file
            raise
    if data.error is not None:
        return None
    return (rows_n, dropped, failed), failures


def _write(task: Task, *spools: Spool) -> tuple[tuple[tuple[str, int], ...], int]:
    if not any(spools):
        return (), 0
    store = open_store(task.out)
    name = object_name(task)
    written, total = [], 0
    for spool in spools:
        for prefix, path, lines in spool.files(gzip=task.gzip):
            store.put_file(prefix + name, path)
            written.append((prefix + name, lines))
            total += path.stat().st_size
    return tuple(written), total


def transform_partition(tasks: Iterable[Task]) -> Iterator[FileResult]:
    """``mapPartitions``' function: each task of a partition through :func:`transform_file`."""
    for task in tasks:
        yield transform_file(task)
