"""Re-ingestion: records over the response budget go back to the stream they came from, so nothing is lost.

* Source with a Kinesis stream (``sourceKinesisStreamArn``): Kinesis ``PutRecords`` into that stream, each
  record with its original partition key. Direct PUT: Firehose ``PutRecordBatch`` into the delivery stream.
* Calls stay within the services' limits; a record that cannot be re-ingested becomes ``ProcessingFailed``.
* Entries that fail are resent alone, with exponential backoff and full jitter, bounded by an attempt count
  and by the time the Lambda has left. If some still fail, :class:`ReingestError` is raised: the invocation
  fails, Firehose retries the whole batch, and nothing is lost. The price is at-least-once delivery: a
  retried batch may re-ingest a record that an earlier attempt already sent back.
* Re-ingestion never runs past the Lambda's remaining time minus a margin: before every call the time left
  is read, and the call's connect and read timeouts and botocore's own attempts are cut to fit in it
  (:func:`call_limits`); when too little is left, :class:`ReingestError` says what was and was not
  re-ingested, so that the invocation ends with its summary logged instead of being killed by a timeout.

boto3 is imported only when a record is actually re-ingested; its clients are made once per container and
per call limits (one client while time is plentiful, a tighter one near the end).
"""

from __future__ import annotations

import re
import time
from collections import Counter, namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .records import DROPPED, OVER_BUDGET, Record, Stage, as_record
from .values import is_utf8

__all__ = [
    "FIREHOSE",
    "KINESIS",
    "CallLimits",
    "Limits",
    "ReingestError",
    "ReingestStats",
    "Reingester",
    "call_limits",
    "client_for",
    "fail_one",
    "fail_overflow",
    "reingest",
    "to_source",
    "to_target",
]

KiB, MiB = 1024, 1024 * 1024
# compiled on first use (``re`` caches it), not at import: the cold start of a handler that never re-ingests
_ARN = r"arn:[\w-]+:(kinesis|firehose):([\w-]+):(\d{12}):(stream|deliverystream)/([\w.-]+)"
_RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalFailureException",
        "InternalServerError",
        "KMSThrottlingException",
        "SlowDown",
    }
)


# a namedtuple subclass, not a typing.NamedTuple: see pipeline.records
class Limits(namedtuple("Limits", "service records call_bytes record_bytes key_counts")):
    """A service's limits for one batch call."""

    __slots__ = ()
    service: str
    records: int
    call_bytes: int
    record_bytes: int
    key_counts: bool  # whether the partition key counts towards the byte limits


KINESIS = Limits("kinesis", 500, 5 * MiB, 1 * MiB, key_counts=True)
FIREHOSE = Limits("firehose", 500, 4 * MiB, 1000 * KiB, key_counts=False)


class ReingestError(RuntimeError):
    """Some records could not be re-ingested: the invocation must fail so that Firehose retries it.

    *codes*: the error codes of the last attempt ("connection" where no answer came).
    """

    def __init__(self, message: str, codes: Mapping[str, int] | None = None) -> None:
        super().__init__(message)
        self.codes: dict[str, int] = dict(codes or {})


class ReingestStats:
    """What re-ingestion did in one invocation (for the summary log line)."""

    __slots__ = ("attempts", "bytes", "calls", "error_codes", "not_reingested", "records", "retried_entries")

    def __init__(self) -> None:
        self.records = self.bytes = self.calls = self.attempts = self.retried_entries = 0
        self.not_reingested = 0  # records given up on when the invocation fails
        self.error_codes: Counter[str] = Counter()

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"ReingestStats({counts})"


# a namedtuple subclass, not a typing.NamedTuple: see pipeline.records
class CallLimits(namedtuple("CallLimits", "attempts connect read")):
    """What one call may take: botocore's attempts and each attempt's connect and read timeouts (seconds)."""

    __slots__ = ()
    attempts: int
    connect: float
    read: float


DEFAULT_LIMITS = CallLimits(attempts=3, connect=3.0, read=10.0)
#: The most botocore's standard retry mode sleeps before attempts 2 and 3: ``rand * min(2**(i-1), 20)`` s
#: for throttling (``botocore.retries.standard.ExponentialBackoff``), raised by up to 5 s more when the
#: reply carries ``x-amz-retry-after``. Indexed by the number of attempts.
_WORST_BACKOFF = (0.0, 0.0, 6.0, 13.0)
#: Less time than this left for a call (after the margin): no call is started.
MIN_CALL_SECONDS = 0.5
_STEP = 0.25  # timeouts are rounded down to quarter seconds, so that few distinct clients are ever made


def call_limits(left: float) -> CallLimits:
    """Limits for a call that must be over within *left* seconds, however the endpoint behaves.

    All three of botocore's attempts while there is room for them at the full timeouts; then two; then one
    attempt sharing what is left (a quarter to connect, the rest to read), and our own loop retries if time
    remains. ``attempts * (connect + read)`` plus botocore's worst backoff is at most *left*.

    >>> call_limits(300), call_limits(2)
    (CallLimits(attempts=3, connect=3.0, read=10.0), CallLimits(attempts=1, connect=0.5, read=1.5))
    """
    full = DEFAULT_LIMITS.connect + DEFAULT_LIMITS.read
    for attempts in (3, 2):
        if attempts * full + _WORST_BACKOFF[attempts] <= left:
            return DEFAULT_LIMITS._replace(attempts=attempts)
    connect = max(_STEP, min(DEFAULT_LIMITS.connect, _down(left / 4)))
    return CallLimits(1, connect, max(_STEP, min(DEFAULT_LIMITS.read, _down(left - connect))))


def _down(seconds: float) -> float:
    return int(seconds / _STEP) * _STEP


_CLIENTS: dict[tuple[str, str, str | None, CallLimits], Any] = {}
_MAX_CLIENTS = 8


def client_for(service: str, region: str, limits: CallLimits = DEFAULT_LIMITS) -> Any:
    """A boto3 client made once per container and *limits* (standard retries, AWS_ENDPOINT_URL honoured)."""
    import os

    key = (service, region, os.environ.get("AWS_ENDPOINT_URL"), limits)
    client = _CLIENTS.get(key)
    if client is None:
        import boto3
        from botocore.config import Config

        config = Config(
            retries={"mode": "standard", "total_max_attempts": limits.attempts},
            connect_timeout=limits.connect,
            read_timeout=limits.read,
            tcp_keepalive=True,
        )
        if len(_CLIENTS) >= _MAX_CLIENTS:  # near-deadline clients come and go; keep the cache small
            del _CLIENTS[next(iter(_CLIENTS))]
        # a session of its own, as before: credentials are read when the client is made, not once per process
        client = _CLIENTS[key] = boto3.session.Session().client(service, region_name=region, config=config)
    return client


def _uniform() -> float:
    """``random.random()``; random is imported when a retry first needs it, not at cold start."""
    from random import random

    return random()


class Reingester:
    """Sends overflow records back to one stream, in batches within its limits, retrying failed entries."""

    def __init__(
        self,
        limits: Limits,
        stream: str,
        region: str,
        *,
        arn: str = "",
        client: Any = None,
        max_attempts: int = 8,
        remaining_ms: Callable[[], int] | None = None,
        margin_ms: int = 3000,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = _uniform,
        problem: str | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.limits, self.stream, self.region, self.arn = limits, stream, region, arn
        self.problem = problem
        self.max_attempts, self.remaining_ms, self.margin_ms = max_attempts, remaining_ms, margin_ms
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.sleep, self.jitter = sleep, jitter
        self.stats = ReingestStats()
        self._client = client
        self._pending: list[dict[str, Any]] = []
        self._pending_bytes = 0

    def __repr__(self) -> str:
        where = self.problem or f"{self.limits.service} {self.stream} in {self.region}"
        return f"Reingester({where})"

    def add(self, rec: Record) -> str | None:
        """Queue *rec* for re-ingestion (sending a full batch first); the reason it cannot be, or None."""
        if self.problem:
            return self.problem
        limits = self.limits
        try:
            data = rec.original
        except (KeyError, TypeError, ValueError):  # a record built in a notebook may have no Firehose data
            return "record has no original data to re-ingest"
        entry: dict[str, Any] = {"Data": data}
        size = len(data)
        if limits.service == "kinesis":
            key = _partition_key(rec)
            if key is None:
                return "record has no Kinesis partition key to re-ingest with"
            if not is_utf8(key):
                return "the record's Kinesis partition key is not UTF-8 text"
            entry["PartitionKey"] = key
            size += len(key.encode())
        if size > limits.record_bytes:
            return f"{size} bytes is over the {limits.service} limit of {limits.record_bytes} per record"
        if len(self._pending) == limits.records or self._pending_bytes + size > limits.call_bytes:
            self.flush()
        self._pending.append(entry)
        self._pending_bytes += size
        return None

    def flush(self) -> None:
        """Send what is queued; raise ReingestError if entries still fail after every attempt or time runs out."""
        entries, self._pending, self._pending_bytes = self._pending, [], 0
        if entries:
            self._put(entries)

    def _seconds_left(self) -> float | None:
        """Seconds the next call may take (the Lambda's remaining time minus the margin); None: no clock."""
        if self.remaining_ms is None:
            return None
        return (self.remaining_ms() - self.margin_ms) / 1000

    def _call(self, entries: list[dict[str, Any]], limits: CallLimits) -> list[str | None]:
        client = self._client or client_for(self.limits.service, self.region, limits)
        self.stats.calls += 1
        if self.limits.service == "kinesis":
            reply = client.put_records(StreamARN=self.arn, Records=entries)
            return [r.get("ErrorCode") for r in reply["Records"]]
        reply = client.put_record_batch(DeliveryStreamName=self.stream, Records=entries)
        return [r.get("ErrorCode") for r in reply["RequestResponses"]]

    def _delivered(self, entries: list[dict[str, Any]]) -> None:
        self.stats.records += len(entries)
        self.stats.bytes += sum(len(e["Data"]) for e in entries)

    def _give_up(self, todo: list[dict[str, Any]], why: str, codes: Mapping[str, int] | None = None) -> ReingestError:
        """The error ending the invocation: why, what was re-ingested and what was not."""
        missing = len(todo) + len(self._pending)
        self.stats.not_reingested += missing
        return ReingestError(
            f"{why}; {self.stats.records} records re-ingested into {self._where()} in {self.stats.calls} calls, "
            f"{missing} records not re-ingested (nor any overflow after them in this invocation); the invocation "
            "fails so that Firehose retries the batch",
            codes,
        )

    def _where(self) -> str:
        return f"{self.limits.service} {self.stream}"

    def _put(self, entries: list[dict[str, Any]]) -> None:
        todo, codes = entries, Counter[str]()
        for attempt in range(1, self.max_attempts + 1):
            left = self._seconds_left()  # checked before every call, the first one too
            if left is not None and left < MIN_CALL_SECONDS:
                raise self._give_up(
                    todo,
                    f"out of time for re-ingestion ({max(left, 0):.1f} s left beyond the {self.margin_ms} ms margin)",
                )
            self.stats.attempts += 1
            try:
                results = self._call(todo, DEFAULT_LIMITS if left is None else call_limits(left))
            except Exception as exc:
                code = _error_code(exc)
                if code not in _RETRYABLE and code != "connection":
                    raise self._give_up(
                        todo, f"re-ingesting {len(todo)} records into {self._where()} failed with {code}"
                    ) from exc
                results = [code] * len(todo)
            codes = Counter(code for code in results if code)
            self.stats.error_codes.update(codes)
            self._delivered([entry for entry, code in zip(todo, results, strict=True) if not code])
            todo = [entry for entry, code in zip(todo, results, strict=True) if code]
            if not todo:
                return
            self.stats.retried_entries += len(todo)
            if attempt == self.max_attempts:
                break
            delay = self.jitter() * min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
            left = self._seconds_left()
            if left is not None and left - delay < MIN_CALL_SECONDS:
                why = f"out of time for re-ingestion after {attempt} attempts (error codes: {dict(codes)})"
                raise self._give_up(todo, why, codes)
            self.sleep(delay)
        raise self._give_up(
            todo,
            f"{len(todo)} of {len(entries)} records could not be re-ingested into {self._where()} after {attempt} "
            f"attempts (error codes: {dict(codes)})",
            codes,
        )


def _partition_key(rec: Record) -> str | None:
    meta = rec.source.get("kinesisRecordMetadata")
    key = meta.get("partitionKey") if isinstance(meta, Mapping) else None
    return key if type(key) is str and 1 <= len(key) <= 256 else None


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code") or type(exc).__name__)
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:  # pragma: no cover - botocore is there whenever a real client is
        return type(exc).__name__
    return "connection" if isinstance(exc, BotoCoreError) else type(exc).__name__


def to_source(event: Mapping[str, Any], context: Any = None, **options: Any) -> Reingester:
    """The Reingester for the stream *event* came from (a Reingester that refuses, with the reason, if none).

    >>> to_source({"sourceKinesisStreamArn": "arn:aws:kinesis:eu-west-1:123456789012:stream/cities"})
    Reingester(kinesis cities in eu-west-1)
    >>> to_source({"deliveryStreamArn": "arn:aws:kinesis:EXAMPLE"})
    Reingester(the event's deliveryStreamArn is not a Firehose delivery stream ARN)
    """
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    options.setdefault("remaining_ms", remaining if callable(remaining) else None)
    key, limits, kind = (
        ("sourceKinesisStreamArn", KINESIS, "stream")
        if "sourceKinesisStreamArn" in event
        else ("deliveryStreamArn", FIREHOSE, "deliverystream")
    )
    arn = event.get(key)
    match = re.fullmatch(_ARN, arn) if type(arn) is str else None
    if not match or match[1] != limits.service or match[4] != kind:
        what = "Kinesis stream" if limits is KINESIS else "Firehose delivery stream"
        problem = f"the event's {key} is not a {what} ARN" if arn else f"the event has no {key}"
        return Reingester(limits, "", "", problem=problem, **options)
    return Reingester(limits, match[5], match[2], arn=arn, **options)


def reingest(target: Reingester) -> Stage:
    """Send records the budget marked over-budget back to the source; each that cannot go fails instead.

    The last batch is sent when the stream ends: consuming the stage to the end is what re-ingests.
    """
    send = to_target(target)

    def run(records: Iterable[Any]) -> Iterator[Record]:
        for rec in records:
            yield send(rec if type(rec) is Record else as_record(rec))
        target.flush()

    return run


def to_target(target: Reingester) -> Callable[[Record], Record]:
    """:func:`reingest`'s work on one record: queue it if it is over the budget (call ``target.flush()`` at the end).

    >>> send = to_target(Reingester(KINESIS, "", "", problem="no stream"))
    >>> send(Record("a", {}, None, DROPPED, OVER_BUDGET)).reason
    'over response budget; cannot re-ingest: no stream'
    """

    def send(rec: Record) -> Record:
        if rec.result == DROPPED and rec.reason == OVER_BUDGET:
            problem = target.add(rec)
            if problem:
                return rec.failed(f"{OVER_BUDGET}; cannot re-ingest: {problem}")
        return rec

    return send


def fail_overflow(records: Iterable[Any]) -> Iterator[Record]:
    """Without re-ingestion: records over the budget become ``ProcessingFailed`` (Firehose's error output).

    >>> [r.result for r in fail_overflow([Record("a", {}, None, DROPPED, OVER_BUDGET)])]
    ['ProcessingFailed']
    """
    for rec in records:
        yield fail_one(rec if type(rec) is Record else as_record(rec))


def fail_one(rec: Record) -> Record:
    """:func:`fail_overflow`'s work on one record."""
    return rec.failed(OVER_BUDGET) if rec.result == DROPPED and rec.reason == OVER_BUDGET else rec
