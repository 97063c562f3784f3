"""A local EventBridge Pipe: a DynamoDB stream as the source, a Firehose delivery stream (Direct PUT) as the target.

What the managed pipe does, for AWS-compatible servers that have no Pipes (moto), so that the
*DynamoDB Streams -> EventBridge Pipes -> Firehose* path runs locally:

* reads every shard of the table's stream with its shard iterators (``DescribeStream``, ``GetShardIterator``
  from ``TRIM_HORIZON`` or ``LATEST``, ``GetRecords``), a parent shard to its end before its children, which
  are read from their start;
* takes each shard's records in batches of at most ``batch_size`` (a Firehose target allows 500), never
  mixing shards, and delivers a batch before reading further in that shard: each shard's order is kept;
* writes a batch with ``PutRecordBatch`` (500 records and 4 MiB per call), **one stream record per Firehose
  record**: Pipes maps a batch "to the batch API of a supported enrichment or target" (EventBridge user guide,
  *Amazon EventBridge Pipes batching and concurrency*); only targets without one (Lambda, Step Functions) get
  the batch as a JSON array. Each record's data is the DynamoDB Streams record as JSON, as a pipe sees it
  (*Amazon DynamoDB stream as a source*, example event): ``eventSourceARN`` added, ``ApproximateCreationDateTime``
  in epoch seconds, binary values base64, nothing appended;
* retries the entries Firehose reports as failed (a call that fails is retried whole) up to
  ``maximum_retry_attempts`` times; what still fails is handed to the dead-letter queue, a description of it
  (:func:`batch_info`), and the shard moves on, as a pipe does.

Not like the managed pipe: the batching window does not wait (a batch is what a shard has when it is read, up to
``batch_size``); one batch per shard at a time (``ParallelizationFactor`` 1); no filter, enrichment or input
transformer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .forward import json_default, stream_shards

__all__ = ["FIREHOSE_BATCH", "Pipe", "PipeStats", "batch_info", "pipe_record"]

FIREHOSE_BATCH = 500  # records: the largest batch a pipe with a Firehose target may take (and PutRecordBatch)
_CALL_BYTES = 4 * 1024 * 1024  # PutRecordBatch: at most 4 MiB a call
_POSITIONS = ("TRIM_HORIZON", "LATEST")

DeadLetter = Callable[[dict[str, Any]], None]


def _seconds(moment: Any) -> Any:
    return moment.timestamp() if hasattr(moment, "timestamp") else moment


def pipe_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams record as boto3's ``GetRecords`` returns it, shaped as a pipe passes it to its target.

    >>> from datetime import UTC, datetime
    >>> when = datetime(2026, 1, 1, tzinfo=UTC)
    >>> record = {"eventID": "e1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
    ...           "awsRegion": "eu-west-1", "dynamodb": {"ApproximateCreationDateTime": when,
    ...           "Keys": {"id": {"S": "1"}}, "NewImage": {"id": {"S": "1"}}, "SequenceNumber": "100",
    ...           "SizeBytes": 9, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    >>> pipe_record(record, "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2026")  # doctest: +ELLIPSIS
    {'eventID': 'e1', 'eventVersion': '1.1', 'dynamodb': {'ApproximateCreationDateTime': 1767225600.0, ...},
     'awsRegion': 'eu-west-1', 'eventName': 'INSERT', 'eventSourceARN': 'arn:...:table/t/stream/2026',
     'eventSource': 'aws:dynamodb'}
    """
    ddb = dict(record["dynamodb"])
    if "ApproximateCreationDateTime" in ddb:
        ddb["ApproximateCreationDateTime"] = _seconds(ddb["ApproximateCreationDateTime"])
    out = {
        "eventID": record["eventID"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "dynamodb": ddb,
        "awsRegion": record.get("awsRegion"),
        "eventName": record["eventName"],
        "eventSourceARN": stream_arn,
        "eventSource": record.get("eventSource", "aws:dynamodb"),
    }
    if record.get("userIdentity"):  # a TTL delete
        out["userIdentity"] = record["userIdentity"]
    return out


def batch_info(stream_arn: str, shard_id: str, failed: Sequence[Mapping[str, Any]], code: str) -> dict[str, Any]:
    """What the dead-letter queue gets for records the pipe could not deliver (modelled on the batch description
    Lambda sends for a DynamoDB stream): where they are in the stream, so they can be read again while it keeps
    them (24 hours), not the records themselves.

    >>> batch_info("arn:s", "shard-1", [{"dynamodb": {"SequenceNumber": "7"}}], "ServiceUnavailableException")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'condition': 'ServiceUnavailableException',
     'DDBStreamBatchInfo': {'shardId': 'shard-1', 'startSequenceNumber': '7', 'endSequenceNumber': '7',
                            'batchSize': 1, 'streamArn': 'arn:s'}}
    """
    sequence = [r["dynamodb"]["SequenceNumber"] for r in failed]
    return {
        "condition": code,
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": sequence[0],
            "endSequenceNumber": sequence[-1],
            "batchSize": len(failed),
            "streamArn": stream_arn,
        },
    }


@dataclass
class PipeStats:
    """What the pipe did: records read = delivered + dead-lettered."""

    records: int = 0
    delivered: int = 0
    batches: int = 0
    calls: int = 0
    retried: int = 0
    dead_lettered: int = 0


def _call_failed(exc: Exception) -> bool:
    """Whether *exc* is a failed call (an AWS error or a connection problem) rather than a bug."""
    if isinstance(exc, ValueError) or isinstance(getattr(exc, "response", None), Mapping):
        return True
    try:
        from botocore.exceptions import BotoCoreError  # noqa: PLC0415 - the CLI imports this module without boto3
    except ImportError:  # pragma: no cover - botocore is there whenever a real client is
        return False
    return isinstance(exc, BotoCoreError)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


class Pipe:
    """A pipe from the DynamoDB stream *stream_arn* to the Direct PUT delivery stream *delivery_stream*.

    *streams* is a ``dynamodbstreams`` client, *firehose* anything with Firehose's ``put_record_batch`` (a
    boto3 client, or :class:`pipeline.local.sources.DirectPutSource`). Settings are checked here, with the
    ranges the managed pipe allows.
    """

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        firehose: Any,
        delivery_stream: str,
        *,
        starting_position: str = "TRIM_HORIZON",
        batch_size: int = 100,
        maximum_retry_attempts: int = 3,
        dead_letter: DeadLetter | None = None,
        backoff_seconds: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if starting_position not in _POSITIONS:
            raise ValueError(f"starting position {starting_position!r}: must be TRIM_HORIZON or LATEST")
        if not 1 <= batch_size <= FIREHOSE_BATCH:
            raise ValueError(f"batch size {batch_size}: a pipe with a Firehose target takes 1 to {FIREHOSE_BATCH}")
        if not 0 <= maximum_retry_attempts <= 10_000:
            raise ValueError(f"maximum retry attempts {maximum_retry_attempts}: must be 0 to 10000")
        self.streams, self.stream_arn = streams, stream_arn
        self.firehose, self.delivery_stream = firehose, delivery_stream
        self.batch_size, self.maximum_retry_attempts = batch_size, maximum_retry_attempts
        self.backoff_seconds, self.sleep = backoff_seconds, sleep
        self.dead_letters: list[dict[str, Any]] = []
        self.dead_letter: DeadLetter = dead_letter or self.dead_letters.append
        self.stats, self.caught_up = PipeStats(), False
        self._iterators: dict[str, str] = {}  # shards being read -> their next iterator
        self._waiting: dict[str, str | None] = {}  # shards not started yet -> their parent
        self._ended: set[str] = set()
        self._discover(starting_position)

    def __repr__(self) -> str:
        return f"Pipe({self.stream_arn} -> {self.delivery_stream})"

    def _discover(self, position: str = "TRIM_HORIZON") -> None:
        """Find the stream's shards; start each whose parent has been read to its end (or is gone)."""
        for shard in stream_shards(self.streams, self.stream_arn):
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators and shard_id not in self._ended:
                self._waiting[shard_id] = shard.get("ParentShardId")
        for shard_id, parent in list(self._waiting.items()):
            if parent is None or parent in self._ended or parent not in {*self._iterators, *self._waiting}:
                del self._waiting[shard_id]
                self._iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=position
                )["ShardIterator"]

    def poll(self) -> int:
        """Read one batch from each shard and deliver it; the records read (0 when every shard is caught up)."""
        read, ended = 0, False
        for shard_id, iterator in list(self._iterators.items()):
            reply = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            if reply["Records"]:
                self._deliver(shard_id, reply["Records"])
                read += len(reply["Records"])
            if reply.get("NextShardIterator"):
                self._iterators[shard_id] = reply["NextShardIterator"]
            else:  # a closed shard, read to its end: its children may start
                del self._iterators[shard_id]
                self._ended.add(shard_id)
                ended = True
        if ended:
            self._discover()
        self.caught_up = read == 0 and not ended
        return read

    def drain(self) -> PipeStats:
        """Poll until every shard has been read up to where it ends now."""
        while self.poll() or not self.caught_up:
            pass
        return self.stats

    def _deliver(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        self.stats.records += len(records)
        self.stats.batches += 1
        call: list[tuple[dict[str, Any], bytes]] = []
        size = 0
        for record in records:
            data = json.dumps(
                pipe_record(record, self.stream_arn), default=json_default, ensure_ascii=False, separators=(",", ":")
            ).encode()
            if call and (len(call) == FIREHOSE_BATCH or size + len(data) > _CALL_BYTES):
                self._put(shard_id, call)
                call, size = [], 0
            call.append((record, data))
            size += len(data)
        if call:
            self._put(shard_id, call)

    def _put(self, shard_id: str, todo: list[tuple[dict[str, Any], bytes]]) -> None:
        """``PutRecordBatch`` *todo* in order; retry what fails; dead-letter what still fails."""
        code = ""
        for attempt in range(self.maximum_retry_attempts + 1):
            if attempt:
                self.stats.retried += len(todo)
                self.sleep(self.backoff_seconds * 2 ** min(attempt - 1, 6))
            self.stats.calls += 1
            try:
                reply = self.firehose.put_record_batch(
                    DeliveryStreamName=self.delivery_stream, Records=[{"Data": data} for _record, data in todo]
                )
                codes = [entry.get("ErrorCode") for entry in reply["RequestResponses"]]
            except Exception as exc:
                if not _call_failed(exc):
                    raise
                codes = [_error_code(exc)] * len(todo)  # the whole call failed
            failed = [(entry, c) for entry, c in zip(todo, codes, strict=True) if c]
            self.stats.delivered += len(todo) - len(failed)
            if not failed:
                return
            todo, code = [entry for entry, _c in failed], failed[0][1]
        self.stats.dead_lettered += len(todo)
        self.dead_letter(batch_info(self.stream_arn, shard_id, [record for record, _data in todo], code))
