"""Helpers for tests that run the local Firehose: change files, a run from a file, reading a store back."""

from __future__ import annotations

import csv
import io
import json
import logging
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline import Config
from pipeline.local.runner import Settings, local_handler, run_local
from pipeline.local.sources import FileSource
from pipeline.sinks.delivery import Destination
from pipeline.sinks.errors_output import FailedRecord, read_error_object
from pipeline.sinks.storage import Folder, Store
from pipeline.tools.generate import change_record

COLUMNS = "event=@eventName,id,amount,customer,note,eventID=@eventID"


@contextmanager
def pipeline_log() -> Iterator[list[dict[str, Any]]]:
    """The pipeline logger's lines while the block runs, as JSON, the times (which differ run to run) left out.

    The list is filled when the block ends, however it ends.
    """
    lines: list[str] = []
    capture = logging.Handler()
    capture.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger("pipeline")
    log.addHandler(capture)
    logged: list[dict[str, Any]] = []
    try:
        yield logged
    finally:
        log.removeHandler(capture)
        for text in lines:
            line = json.loads(text)
            line.pop("durationMs", None)
            line.pop("DurationMs", None)
            line.get("_aws", {}).pop("Timestamp", None)
            logged.append(line)


def changes_file(tmp_path: Path, count: int = 600, junk: tuple[bytes, ...] = ()) -> Path:
    """A JSON Lines file of *count* realistic change records (Kinesis format), then the *junk* lines."""
    rng = random.Random(7)
    lines = [json.dumps(change_record(rng, i, "kinesis", awkward=0.3), ensure_ascii=False) for i in range(count)]
    path = tmp_path / "changes.jsonl"
    path.write_bytes("\n".join(lines).encode() + b"\n" + b"\n".join(junk))
    return path


def read_store(store: Store) -> tuple[list[list[str]], list[FailedRecord]]:
    """Every CSV row in the store's data objects, and every record in its error objects (processing-failed/)."""
    rows, failed = [], []
    for key in store.listing():
        body = store.get(key)
        if key.startswith("processing-failed/"):
            failed += list(read_error_object(body, key))
        else:
            rows += list(csv.reader(io.StringIO(body.decode(), newline="")))
    return rows, failed


def read_folder(root: Path) -> tuple[list[list[str]], list[FailedRecord]]:
    return read_store(Folder(root))


def run_file(path: Path, out: Path, handler=None, prefix: str | None = None, **env: str):
    """Run the local Firehose from the file *path* to the folder *out*; the tally, the rows and the failures."""
    config = Config.from_env({"PIPELINE_COLUMNS": COLUMNS, **env})
    source = FileSource(path)
    real, reingested = local_handler(config, source)
    keys = frozenset(k.name for k in config.partition_keys)
    dest = Destination(Folder(out), prefix) if prefix else Destination(Folder(out))
    tally = run_local(
        source,
        handler(real) if handler else real,
        dest,
        Settings(buffer_bytes=200_000, buffer_seconds=900),
        reingested=reingested,
        partition_keys=keys,
    )
    return tally, *read_folder(out)


def assert_delivered_exactly(rows: list[list[str]], expected: set[tuple[str, ...]] | list, duplicates: int) -> None:
    """Every expected row (the rows' last cell is the change's eventID) arrived with exact values and no other
    row did; the only repeats are *duplicates* whole-row copies (at-least-once), and there are some."""
    by_event = Counter(r[-1] for r in rows)
    assert sum(n - 1 for n in by_event.values()) == duplicates > 0
    assert len({tuple(r) for r in rows}) == len(by_event)  # a duplicate is the same row, eventID and all
    delivered = Counter(tuple(r[:-1]) for r in rows)
    assert set(delivered) == set(expected)  # every expected row, with exact values, and no other row
    assert len(expected) == len(set(expected)) == len(by_event)
    assert len(rows) == len(expected) + duplicates
