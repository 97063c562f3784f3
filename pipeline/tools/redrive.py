"""``python -m pipeline redrive SOURCE``: run the records Firehose could not transform through the pipeline again.

SOURCE holds Firehose error objects (``processing-failed/...``): a local folder or file, or
``s3://bucket/prefix``. Each record's ``rawData`` goes through the configured stages (the handler's, from the
same ``PIPELINE_*`` variables) without the response budget, since nothing has to fit into a Lambda response:
a record that was too large for one is simply written. Then, with ``--to``:

* a folder or ``s3://bucket[/base/]``: the rows, as Firehose would have written them, under ``--prefix``
  (by default the hour each record arrived in), one object per source object and prefix;
* ``kinesis://STREAM`` (name or ARN): the original bytes, back into the stream for Firehose to transform
  again, with the item's key as partition key. Only records the pipeline now transforms are sent.

Records that fail again are listed with their reasons and stay where they are: redrive never deletes, moves or
rewrites an error object, so it can be run again after a fix (running it twice writes the rows twice).
``--dry-run`` reads and transforms everything, writes nothing, and shows what would be written where.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from toolz import compose_left

from ..app import stages
from ..config import Config
from ..records import FAILED, OK, Record
from ..reingest import KINESIS, Reingester
from ..sinks.delivery import Delivered, Destination, deliver
from ..sinks.errors_output import FailedRecord, Unreadable, read_error_object
from ..sinks.storage import Store
from ..sinks.streams import item_key, kinesis_stream

__all__ = ["Report", "Target", "redrive", "to_store", "to_stream"]

Target = Callable[[list[tuple[FailedRecord, Record]], bool], dict[str, int]]


@dataclass
class Report:
    """What a redrive did (or, in a dry run, would do)."""

    objects: int = 0
    records: int = 0
    redriven: int = 0
    dropped: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (where, reason now, errorCode before)
    unreadable: list[Unreadable] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)  # object key (or stream) -> records

    def lines(self, dry_run: bool = False) -> list[str]:
        """The report, as printed."""
        verb = "would write" if dry_run else "wrote"
        lines = [
            f"{self.objects:,} objects, {self.records:,} records: {self.redriven:,} redriven, "
            f"{self.dropped:,} dropped (filtered out), {len(self.failed):,} failed again, "
            f"{len(self.unreadable):,} unreadable"
        ]
        lines += [f"  {verb} {key}: {count:,} records" for key, count in self.written.items()]
        if self.failed or self.unreadable:
            lines.append("not redriven (kept where they are):")
            lines += [f"  {where}: {reason} (was {before or 'no error code'})" for where, reason, before in self.failed]
            lines += [f"  {u.where}: {u.reason}" for u in self.unreadable]
        return lines


def _firehose_record(rec: FailedRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"recordId": rec.where, "data": rec.raw_data}
    if rec.arrival_ms is not None:
        out["approximateArrivalTimestamp"] = rec.arrival_ms
    return out


def redrive(store: Store, keys: Iterable[str], config: Config, target: Target, *, dry_run: bool = False) -> Report:
    """Run the error records in the objects *keys* of *store* through *config*'s stages into *target*."""
    transform = compose_left(*stages(config))
    report = Report()
    for key in list(keys):  # listed before anything is written, so nothing written is read back
        report.objects += 1
        try:
            found = list(read_error_object(store.get(key), key))
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:  # a broken or truncated gzip, binary
            report.unreadable.append(Unreadable(key, f"not a readable error object ({type(exc).__name__})"))
            continue
        records = [r for r in found if isinstance(r, FailedRecord)]
        report.unreadable += [r for r in found if isinstance(r, Unreadable)]
        report.records += len(records)
        ok = []
        for before, after in zip(records, transform(map(_firehose_record, records)), strict=True):
            if after.result == OK:
                ok.append((before, after))
            elif after.result == FAILED:
                report.failed.append((before.where, after.reason or "", before.error_code))
            else:
                report.dropped += 1
        report.redriven += len(ok)
        for written, count in target(ok, dry_run).items():
            report.written[written] = report.written.get(written, 0) + count
    return report


def to_store(dest: Destination) -> Target:
    """Write the rows under *dest*'s prefix, each in the hour its record arrived (else the hour it failed)."""

    def write(ok: list[tuple[FailedRecord, Record]], dry_run: bool) -> dict[str, int]:
        rows = [
            Delivered(rec.value, rec.partition_keys, before.arrival_ms or before.ending_ms or 0) for before, rec in ok
        ]
        return deliver(dest, rows, dry_run=dry_run)

    return write


def _partition_key(raw: bytes) -> str:
    doc = json.loads(raw.decode("utf-8-sig"))
    change = doc if "dynamodb" in doc else doc["Records"][0]
    return item_key(change["dynamodb"]["Keys"])


def to_stream(stream: str, client: Any = None) -> Target:
    """Put the original bytes back into a Kinesis stream (name or ARN), keyed by the item's key.

    Sent in batches within Kinesis' limits, failed entries retried; if some still fail, ReingestError.
    """
    client, arn = kinesis_stream(stream, client)
    name = arn.rsplit("/", 1)[-1]

    def put(ok: list[tuple[FailedRecord, Record]], dry_run: bool) -> dict[str, int]:
        if ok and not dry_run:
            target = Reingester(KINESIS, name, arn.split(":")[3], arn=arn, client=client)
            for before, _after in ok:
                meta = {"partitionKey": _partition_key(before.raw)}
                problem = target.add(
                    Record(before.where, {"data": before.raw_data, "kinesisRecordMetadata": meta}, None)
                )
                if problem:
                    raise ValueError(f"{before.where} cannot go back into {name}: {problem}")
            target.flush()
        return {f"kinesis://{name}": len(ok)} if ok else {}

    return put
