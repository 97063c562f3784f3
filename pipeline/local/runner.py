"""``python -m pipeline run-local``: a local Firehose around the handler, from a Kinesis stream or a file to S3.

It does what Firehose does with a transformation Lambda, in process:

1. reads the source and buffers records like Firehose's processor (size hint 0.2 to 3 MB, interval);
2. invokes the handler with a Firehose event (fresh ``invocationId`` per attempt, ``LocalContext``), retrying a
   failed invocation (an exception, or a response over Lambda's 6 MB) up to ``retries`` times;
3. judges each response as Firehose does (:mod:`pipeline.local.verdict`): a response it would reject
   (missing, duplicated or unknown recordIds, an invalid result or data) sends the whole batch to the error
   output, as do invocations that still fail after the retries;
4. writes ``Ok`` data under the prefix (dynamic partitions from ``metadata.partitionKeys``), or into Iceberg
   tables by ``metadata.otfMetadata`` (:mod:`pipeline.sinks.iceberg`), and ``ProcessingFailed`` records in
   Firehose's error-output format under the error prefix;
5. keeps reading until the source is drained, so records the handler re-ingested come round and are
   delivered too (``follow`` keeps reading after that).

A failed invocation may already have re-ingested some records: they come round again, so they are delivered
twice (Firehose's at-least-once delivery, which the handler's README documents).
"""

from __future__ import annotations

import binascii
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TextIO

from ..app import Handler, make_handler
from ..budget import LAMBDA_RESPONSE_LIMIT
from ..config import Config
from ..records import FAILED, OK
from ..reingest import Reingester, to_source
from ..sinks.delivery import Delivered, Destination, TableSink, deliver, deliver_failed
from ..sinks.errors_output import FailedRecord
from ..sinks.storage import region
from .context import LocalContext
from .sources import Source
from .verdict import FUNCTION_FAILED, verdict

__all__ = ["Settings", "Tally", "local_handler", "run_local"]


@dataclass(frozen=True)
class Settings:
    """How the local Firehose buffers, retries and names things; checked when made, like Firehose's API does."""

    buffer_bytes: int = 1_000_000
    buffer_seconds: float = 60.0
    retries: int = 3
    follow: bool = False
    poll_seconds: float = 1.0
    max_response_bytes: int = LAMBDA_RESPONSE_LIMIT

    def __post_init__(self) -> None:
        if not 200_000 <= self.buffer_bytes <= 3_000_000:
            raise ValueError(f"buffer size {self.buffer_bytes:,} bytes: Firehose allows 0.2MB to 3MB")
        if not 0 <= self.buffer_seconds <= 900:
            raise ValueError(f"buffer interval {self.buffer_seconds} s: Firehose allows at most 900")
        if self.poll_seconds < 0:
            raise ValueError(f"poll interval {self.poll_seconds} s: must not be negative")
        if not 0 <= self.retries <= 300:
            raise ValueError(f"retries {self.retries}: must be 0 to 300")


@dataclass
class Tally:
    """What the run did: records in = delivered + dropped + failed + re-ingested (once each run is over)."""

    records_in: int = 0
    delivered: int = 0
    dropped: int = 0
    failed: int = 0
    reingested: int = 0
    invocations: int = 0
    retried: int = 0
    objects: int = 0
    first_failure: str = ""  # the error code and cause of the first failed invocation, if any

    def line(self) -> str:
        """The progress line."""
        return (
            f"records in {self.records_in:,} | delivered {self.delivered:,} | failed {self.failed:,} | "
            f"re-ingested {self.reingested:,} | dropped {self.dropped:,} | "
            f"invocations {self.invocations:,} ({self.retried:,} retried) | objects {self.objects:,}"
        )


class _Targets:
    """Makes each invocation's re-ingestion target as the handler would, and keeps the last one's counts."""

    def __init__(self, config: Config, client: Any = None) -> None:
        self.max_attempts, self.client = config.reingest_max_attempts, client
        self.last: Reingester | None = None

    def __call__(self, event: Mapping[str, Any], context: Any) -> Reingester:
        self.last = to_source(event, context, max_attempts=self.max_attempts, client=self.client)
        return self.last


def local_handler(config: Config, source: Source) -> tuple[Handler, Callable[[], int]]:
    """The handler for *config* re-ingesting into *source*, and a function counting what its last call re-ingested.

    A Kinesis source is re-ingested into with the handler's own boto3 client; a file source is the Direct PUT
    delivery stream itself, so re-ingested records are put back into it.
    """
    targets = _Targets(config, None if source.stream_arn else source)
    handler = make_handler(config, reingester=targets)
    return handler, lambda: targets.last.stats.records if targets.last else 0


def _data_size(rec: Mapping[str, Any]) -> int:
    data = rec["data"]
    return len(data) * 3 // 4 - data[-2:].count("=")


class _Outcome(NamedTuple):
    """How a batch's invocation ended: the accepted response, or the error every record goes out with."""

    attempts: int
    response: dict[str, Any] | None = None
    code: str = ""
    message: str = ""


class _Run:
    def __init__(
        self,
        source: Source,
        handler: Handler,
        dest: Destination | TableSink,
        settings: Settings,
        *,
        reingested: Callable[[], int],
        progress: TextIO | None,
        prefix_keys: frozenset[str],
    ) -> None:
        self.source, self.handler, self.dest, self.settings = source, handler, dest, settings
        self.reingested, self.progress, self.prefix_keys = reingested, progress, prefix_keys
        self.context = LocalContext
        self.tally, self._dangling, self._last = Tally(), False, ""
        account = source.stream_arn.split(":")[4] if source.stream_arn else "000000000000"
        self.region = source.stream_arn.split(":")[3] if source.stream_arn else region()
        self.delivery_arn = f"arn:aws:firehose:{self.region}:{account}:deliverystream/{dest.stream}"
        self.function = f"{dest.stream}-transform"
        self.function_arn = f"arn:aws:lambda:{self.region}:{account}:function:{self.function}"

    def _say(self, text: str, *, progress: bool = False) -> None:
        if self.progress is None:
            return
        if self._dangling:  # a progress line is on screen without its newline
            self.progress.write("\n")
        self._dangling = progress and self.progress.isatty()
        self.progress.write(text + ("\r" if self._dangling else "\n"))
        self.progress.flush()
        self._last = text

    def _finish(self) -> None:
        """End with the tally on a line of its own, written once (it may be on screen already)."""
        line = self.tally.line()
        if line != self._last:
            self._say(line)
        elif self._dangling and self.progress is not None:
            self.progress.write("\n")
            self.progress.flush()
        self._dangling = False

    def invoke(self, records: list[dict[str, Any]]) -> _Outcome:
        """Invoke the handler for *records* as Firehose would, retrying a failed invocation."""
        attempt = 0
        while True:
            attempt += 1
            event: dict[str, Any] = {"invocationId": str(uuid.uuid4())}
            if self.source.stream_arn:
                event["sourceKinesisStreamArn"] = self.source.stream_arn
            event |= {"deliveryStreamArn": self.delivery_arn, "region": self.region, "records": records}
            self.tally.invocations += 1
            try:
                response = self.handler(event, self.context(function_name=self.function))
            except Exception as exc:  # the function failed: Firehose retries the whole batch
                failure, detail = FUNCTION_FAILED, f"{type(exc).__name__}: {exc}"
            else:
                failure = verdict(event, response, self.settings.max_response_bytes, self.prefix_keys)
                if failure is None:
                    return _Outcome(attempt, response)
                detail = failure.message
            self._say(f"invocation failed ({failure.code}, attempt {attempt} of {self.settings.retries + 1}): {detail}")
            if not self.tally.first_failure:
                self.tally.first_failure = f"{failure.code}: {detail}"
            if not failure.retried or attempt > self.settings.retries:
                return _Outcome(attempt, None, failure.code, failure.message)
            self.tally.retried += 1

    def flush(self, records: list[dict[str, Any]]) -> None:
        """Invoke the handler for one buffer of records and deliver what it answers."""
        outcome = self.invoke(records)
        ended = int(time.time() * 1000)

        def failed(rec: Mapping[str, Any], code: str, message: str) -> FailedRecord:
            arrival = rec["approximateArrivalTimestamp"]
            return FailedRecord(rec["data"], code, message, outcome.attempts, arrival, ended, self.function_arn)

        ok: list[Delivered] = []
        ok_sources: list[Mapping[str, Any]] = []
        if outcome.response is None:
            errors = [failed(rec, outcome.code, outcome.message) for rec in records]
        else:
            errors = []
            for entry, rec in zip(outcome.response["records"], records, strict=True):
                if entry["result"] == OK:
                    meta = entry.get("metadata") or {}
                    data = binascii.a2b_base64(entry["data"])
                    arrival = rec["approximateArrivalTimestamp"]
                    ok.append(Delivered(data, meta.get("partitionKeys"), arrival, meta.get("otfMetadata")))
                    ok_sources.append(rec)
                elif entry["result"] == FAILED:
                    errors.append(
                        failed(rec, "Lambda.ProcessingFailedStatus", "ProcessingFailed status set for record")
                    )
            reingested = self.reingested()
            self.tally.reingested += reingested
            self.tally.dropped += len(records) - len(ok) - len(errors) - reingested
        if isinstance(self.dest, Destination):
            self.tally.objects += len(deliver(self.dest, ok))
            error_dest = self.dest
        else:  # a table sink (Iceberg): records it cannot apply go to its error output, as Firehose's do
            commits, rejected = self.dest.deliver_records(ok)
            self.tally.objects += commits  # an Iceberg commit per table: what an object is to S3
            errors += [failed(ok_sources[i], "Iceberg.InvalidRecord", reason) for i, reason in rejected]
            applied = set(range(len(ok))) - {i for i, _ in rejected}
            ok = [rec for i, rec in enumerate(ok) if i in applied]
            error_dest = self.dest.errors
        self.tally.delivered += len(ok)
        self.tally.failed += len(errors)
        self.tally.objects += len(deliver_failed(error_dest, errors))
        self._say(self.tally.line(), progress=True)

    def run(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> Tally:
        try:
            return self._run(clock, sleep)
        except KeyboardInterrupt:  # Ctrl-C: say where it got to, then stop
            self._finish()
            raise

    def _run(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> Tally:
        settings, buffer, size, since = self.settings, [], 0, 0.0
        while True:
            polled = self.source.poll()
            self.tally.records_in += len(polled)
            for rec in polled:
                if buffer and size + _data_size(rec) > settings.buffer_bytes:
                    self.flush(buffer)
                    buffer, size = [], 0
                if not buffer:
                    since = clock()
                buffer.append(rec)
                size += _data_size(rec)
            drained = self.source.caught_up and not settings.follow
            if buffer and (drained or clock() - since >= settings.buffer_seconds):
                self.flush(buffer)
                buffer, size = [], 0
            elif drained:
                self._finish()
                return self.tally
            elif self.source.caught_up:
                sleep(settings.poll_seconds)


def run_local(
    source: Source,
    handler: Handler,
    dest: Destination | TableSink,
    settings: Settings | None = None,
    *,
    reingested: Callable[[], int] = lambda: 0,
    partition_keys: frozenset[str] = frozenset(),
    progress: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Tally:
    """Run a local Firehose from *source* through *handler* to *dest* until the source is drained.

    *reingested* tells how many records the handler's last call re-ingested (see :func:`local_handler`);
    *partition_keys* are the keys the handler is configured to return (the prefix may only use those).
    """
    dest.checked(partition_keys)
    prefix_keys = frozenset(k for k in partition_keys if f"!{{partitionKeyFromLambda:{k}}}" in dest.prefix)
    run = _Run(
        source, handler, dest, settings or Settings(), reingested=reingested, progress=progress, prefix_keys=prefix_keys
    )
    return run.run(clock, sleep)
