"""Planning a backfill (one task per data file), the local engine (a process pool), and the run's summary.

The driver reads the manifests and plans; the engines only decide where :func:`transform_file` runs:
:func:`run_local` on this machine's cores, :func:`pipeline.backfill.spark.run_spark` on a Spark cluster.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import TextIO

from ..config import VARIABLES, Config
from ..sinks.delivery import Destination
from ..sinks.storage import open_store
from ..tools.athena import firehose_prefix
from .manifest import Export, ExportError
from .transform import FileResult, Task, transform_file

__all__ = [
    "DEFAULT_ERROR_PREFIX",
    "DEFAULT_PREFIX",
    "Summary",
    "default_prefix",
    "plan",
    "run_local",
]

#: The deploy template's delivery stream writes ``DataPrefix`` (``data/``), then Firehose's hour folders.
DEFAULT_PREFIX = "data/!{timestamp:yyyy/MM/dd/HH}/"
#: ... and its failed records under the template's ``ErrorOutputPrefix``.
DEFAULT_ERROR_PREFIX = "processing-failed/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"


def default_prefix(config: Config) -> str:
    """The template's prefix for *config*: ``data/`` then a folder per partition key, else the hour.

    >>> default_prefix(Config.from_env({"PIPELINE_COLUMNS": "id", "PIPELINE_PARTITION_KEYS": "t=@tableName"}))
    'data/t=!{partitionKeyFromLambda:t}/'
    """
    if not config.partition_keys:
        return DEFAULT_PREFIX
    return "data/" + firehose_prefix(config.partition_keys)


def plan(
    export: Export,
    out: str,
    env: Mapping[str, str],
    *,
    prefix: str | None = None,
    error_prefix: str = DEFAULT_ERROR_PREFIX,
    name: str = "backfill",
    gzip: bool = False,
    keys: Iterable[str] = (),
) -> list[Task]:
    """One task per data file, largest first; the configuration and prefixes are checked now, not per file."""
    chosen = {k: v for k, v in env.items() if k in VARIABLES}
    config = Config.from_env(chosen)
    if config.format not in ("csv", "tsv", "jsonl"):
        raise ValueError(
            f"PIPELINE_FORMAT={config.format} is for Firehose's {config.format} destination; backfill writes "
            "objects in the S3 destination's layout: use csv, tsv or jsonl"
        )
    if isinstance(keys, str):
        raise TypeError("keys is a collection of attribute names, not one string")
    key_names = tuple(keys)
    if export.incremental and key_names:
        raise ValueError("--keys is for full exports: an incremental export's changes carry their own Keys")
    if not export.incremental and config.image == "keys" and not key_names:
        raise ValueError(
            "PIPELINE_IMAGE=keys on a full export, whose items say nothing of the table's key: give its key "
            "attributes with --keys, e.g. --keys pk,sk"
        )
    prefix = default_prefix(config) if prefix is None else prefix
    Destination(open_store(out), prefix, error_prefix).checked(k.name for k in config.partition_keys)
    return [
        Task(
            root=export.root,
            key=f.key,
            item_count=f.item_count,
            md5=f.md5,
            export_id=export.export_id,
            table=export.table,
            region=export.region,
            export_micros=export.export_micros,
            incremental=export.incremental,
            view=export.view,
            keys=key_names,
            env=tuple(sorted(chosen.items())),
            out=out,
            prefix=prefix,
            error_prefix=error_prefix,
            name=name,
            gzip=gzip,
        )
        for f in sorted(export.files, key=lambda f: -f.item_count)  # big files first: the pool ends together
    ]


@dataclass
class Summary:
    """A run's tally, built as file results come in."""

    files: int = 0
    items: int = 0
    rows: int = 0
    dropped: int = 0
    failed: int = 0
    bytes_in: int = 0
    bytes_read: int = 0
    bytes_out: int = 0
    objects: int = 0
    cpu_seconds: float = 0.0  # the workers' CPU time, summed
    problems: list[tuple[str, str]] = field(default_factory=list)  # (data file, why it was not transformed)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file:line, reason), the first few
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def add(self, result: FileResult) -> None:
        """Count one file's result."""
        self.files += 1
        self.items += result.items
        self.rows += result.rows
        self.dropped += result.dropped
        self.failed += result.failed
        self.bytes_in += result.bytes_in
        self.bytes_read += result.bytes_read
        self.bytes_out += result.bytes_out
        self.objects += len(result.written)
        self.cpu_seconds += result.cpu_seconds
        if result.problem:
            self.problems.append((result.key, result.problem))
        self.failures += result.failures[: max(0, 20 - len(self.failures))]
        self.seconds = time.perf_counter() - self.started

    @property
    def ok(self) -> bool:
        """True when every file was transformed and no item failed."""
        return not self.problems and not self.failed

    def progress(self, total_files: int) -> str:
        """One progress line."""
        rate = self.items / self.seconds if self.seconds else 0.0
        return f"{self.files:,}/{total_files:,} files, {self.items:,} items, {rate:,.0f} items/s"

    def lines(self) -> list[str]:
        """The summary, as printed at the end."""
        rate = self.items / self.seconds if self.seconds else 0.0
        mbs = self.bytes_read / 1e6 / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.files:,} files, {self.items:,} items: {self.rows:,} rows, {self.dropped:,} dropped "
            f"(filtered out), {self.failed:,} failed; {self.objects:,} objects written",
            f"{self.seconds:,.1f} s, {rate:,.0f} items/s, {mbs:,.1f} MB/s of export JSON",
        ]
        if self.problems:
            lines.append("data files not transformed (nothing of them written):")
            lines += [f"  {key}: {why}" for key, why in self.problems]
        if self.failed:
            lines.append("items that failed (in the error objects, for redrive):")
            lines += [f"  {where}: {reason}" for where, reason in self.failures]
            if self.failed > len(self.failures):
                lines.append(f"  ... and {self.failed - len(self.failures):,} more")
        return lines


def run_local(
    tasks: list[Task],
    workers: int | None = None,
    *,
    progress: TextIO | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> Summary:
    """Run the tasks on a pool of *workers* processes (default: the CPU count); 1 runs them in this process.

    If a file cannot write its objects before any file has written one, the run stops there with ExportError:
    a destination that is not there, not reachable or not writable would refuse every file, after each had
    been read for nothing. Files already running finish; the others are not started.
    """
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise ValueError("workers must be at least 1")
    summary = Summary()

    def done(result: FileResult) -> None:
        if result.unwritable and summary.objects == 0:
            raise ExportError(
                f"cannot write to {tasks[0].out} ({result.unwritable}): nothing was written, so the run stops rather "
                f"than read the {len(tasks) - summary.files - 1:,} data files left for nothing"
            )
        summary.add(result)
        if on_result:
            on_result(result)
        if progress:
            progress.write(f"\rbackfill: {summary.progress(len(tasks))}")
            progress.flush()

    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            done(transform_file(task))
    else:
        # spawn, not fork: the parent may hold boto3 clients and their connections, which must not be shared
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=get_context("spawn")) as pool:
            try:
                for future in as_completed([pool.submit(transform_file, task) for task in tasks]):
                    done(future.result())
            except ExportError:
                pool.shutdown(cancel_futures=True)  # the files not started are not read for nothing
                raise
    if progress:
        progress.write("\n")
    return summary
