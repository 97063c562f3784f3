"""What the local runner reads: Firehose-shaped records from a Kinesis stream, or from a file (as Direct PUT).

Each source answers ``poll()`` with the records that are there now, shaped exactly as Firehose hands them
to the transformation (``recordId``, ``approximateArrivalTimestamp``, ``data``, and for a Kinesis source
``kinesisRecordMetadata``), and says whether that poll reached the end of what there is (``caught_up``).

* :class:`KinesisSource` reads every shard from ``TRIM_HORIZON`` (or ``LATEST``) with ``GetRecords``; shards
  created by resharding after the start are not followed.
* :class:`DirectPutSource` is a Direct PUT delivery stream: what producers (the local EventBridge Pipe,
  :mod:`pipeline.local.pipe`) and re-ingestion put into it with ``PutRecordBatch`` comes out of ``poll()``.
* :class:`FileSource` is a Direct PUT delivery stream holding the records of a file: re-ingestion puts records
  back into it, so they come round again.
"""

from __future__ import annotations

import binascii
import itertools
import json
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from ..sinks.streams import kinesis_stream

__all__ = ["DirectPutSource", "FileSource", "KinesisSource", "Source", "file_payloads"]


class Source(Protocol):
    """Where Firehose reads from."""

    stream_arn: str | None  # the Kinesis stream, or None for Direct PUT
    caught_up: bool

    def poll(self) -> list[dict[str, Any]]:
        """The records there are now, as Firehose records."""


PUT_RECORD_BATCH_RECORDS, PUT_RECORD_BATCH_BYTES, PUT_RECORD_BYTES = 500, 4 * 1024 * 1024, 1000 * 1024


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _millis(moment: Any) -> int:
    return int(moment.timestamp() * 1000) if hasattr(moment, "timestamp") else int(moment)


class KinesisSource:
    """Every shard of one Kinesis stream (by name or ARN), read with ``GetRecords``."""

    def __init__(self, stream: str, *, client: Any = None, start: str = "TRIM_HORIZON", limit: int = 10_000) -> None:
        if start not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError(f"start must be TRIM_HORIZON or LATEST, not {start!r}")
        self.client, arn = kinesis_stream(stream, client)
        self.stream_arn: str | None = arn
        self.limit, self.caught_up = limit, False
        self._iterators: dict[str, str] = {}
        self._index: dict[str, int] = {}
        pages = self.client.get_paginator("list_shards").paginate(StreamARN=self.stream_arn)
        for shard in (s for page in pages for s in page["Shards"]):
            shard_id = shard["ShardId"]
            self._index[shard_id] = len(self._index)
            self._iterators[shard_id] = self.client.get_shard_iterator(
                StreamARN=self.stream_arn, ShardId=shard_id, ShardIteratorType=start
            )["ShardIterator"]

    def __repr__(self) -> str:
        return f"KinesisSource({self.stream_arn})"

    def poll(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        behind = False
        for shard_id, iterator in list(self._iterators.items()):
            reply = self.client.get_records(ShardIterator=iterator, Limit=self.limit, StreamARN=self.stream_arn)
            if reply.get("NextShardIterator"):
                self._iterators[shard_id] = reply["NextShardIterator"]
            else:  # a closed shard, read to its end
                del self._iterators[shard_id]
            behind = behind or reply.get("MillisBehindLatest", 0) > 0
            records += [self._firehose_record(shard_id, r) for r in reply["Records"]]
        self.caught_up = not records and not behind
        return records

    def _firehose_record(self, shard_id: str, rec: Mapping[str, Any]) -> dict[str, Any]:
        arrival = _millis(rec["ApproximateArrivalTimestamp"])
        sequence = rec["SequenceNumber"]
        return {
            "recordId": f"{sequence}{self._index[shard_id]:06d}",  # unique across shards, as Firehose's are
            "approximateArrivalTimestamp": arrival,
            "data": _b64(rec["Data"]),
            "kinesisRecordMetadata": {
                "shardId": shard_id,
                "partitionKey": rec["PartitionKey"],
                "approximateArrivalTimestamp": arrival,
                "sequenceNumber": sequence,
                "subsequenceNumber": 0,
            },
        }


def file_payloads(path: str | Path) -> Iterator[bytes]:
    """The record payloads in a file (``-``: standard input): a Firehose event's records, a ``{"Records": [...]}``
    document's elements (e.g. a DynamoDB Streams event), or else each non-blank line (JSON Lines) as it is.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "changes.jsonl")
    >>> _ = Path(path).write_text('{"eventName": "INSERT"}\\n\\nnot json\\n')
    >>> list(file_payloads(path))
    [b'{"eventName": "INSERT"}', b'not json']
    """
    stdin = str(path) == "-"
    raw = sys.stdin.buffer.read() if stdin else Path(path).read_bytes()
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # lines, then: each fails on its own
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("records"), list):
        return iter(_event_payloads(doc["records"], "standard input" if stdin else str(path)))
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        return (json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() for r in doc["Records"])
    return (line.rstrip(b"\r") for line in raw.split(b"\n") if line.strip())


def _event_payloads(records: list[Any], where: str) -> list[bytes]:
    """The payloads of a Firehose event's *records*; ValueError naming the first record that has none (no
    ``data``, or not base64 text), as the file is then not the event it looks like.

    >>> _event_payloads([{"data": "eyJhIjogMX0="}], "e.json")
    [b'{"a": 1}']
    >>> _event_payloads([{"data": "eA=="}, {"recordId": "b"}], "e.json")
    Traceback (most recent call last):
    ValueError: e.json: records[1] has no base64 'data' text, so the file is not a Firehose event
    """
    payloads = []
    for i, rec in enumerate(records):
        data = rec.get("data") if isinstance(rec, dict) else None
        try:
            if type(data) is not str:
                raise TypeError
            payloads.append(binascii.a2b_base64(data))
        except (TypeError, ValueError):  # binascii.Error, or text that is not ASCII
            raise ValueError(
                f"{where}: records[{i}] has no base64 'data' text, so the file is not a Firehose event"
            ) from None
    return payloads


class DirectPutSource:
    """A Direct PUT delivery stream: records put with ``PutRecordBatch`` come out of ``poll()``, in order.

    ``put_record_batch`` checks Firehose's limits for one call (500 records, 4 MiB, 1,000 KiB per record) and,
    when the stream has a *name*, the name it is called with, answering as Firehose does.

    >>> stream = DirectPutSource("orders")
    >>> stream.put_record_batch(DeliveryStreamName="orders", Records=[{"Data": b"a"}, {"Data": b"b"}])["FailedPutCount"]
    0
    >>> [r["data"] for r in stream.poll()], stream.poll(), stream.caught_up
    (['YQ==', 'Yg=='], [], True)
    """

    stream_arn = None

    def __init__(self, name: str | None = None, *, limit: int = 10_000) -> None:
        self.name, self.limit, self.caught_up = name, limit, False
        self._ids = itertools.count(1)
        self._queue: deque[dict[str, Any]] = deque()

    def __repr__(self) -> str:
        return f"DirectPutSource({self.name or ''})"

    def _add(self, payloads: Iterable[bytes]) -> list[str]:
        arrival = int(time.time() * 1000)
        added = [
            {"recordId": f"{next(self._ids):056d}", "approximateArrivalTimestamp": arrival, "data": _b64(p)}
            for p in payloads
        ]
        self._queue.extend(added)
        return [r["recordId"] for r in added]

    @property
    def waiting(self) -> int:
        """Records put and not yet polled."""
        return len(self._queue)

    def poll(self) -> list[dict[str, Any]]:
        taken = [self._queue.popleft() for _ in range(min(self.limit, len(self._queue)))]
        self.caught_up = not taken
        return taken

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        """Firehose ``PutRecordBatch`` into this delivery stream."""
        if self.name is not None and DeliveryStreamName != self.name:
            raise ValueError(f"ResourceNotFoundException: no delivery stream {DeliveryStreamName!r}")
        data = [bytes(r["Data"]) for r in Records]
        if not 1 <= len(data) <= PUT_RECORD_BATCH_RECORDS:
            raise ValueError(f"InvalidArgumentException: {len(data)} records in one PutRecordBatch (1 to 500)")
        if sum(map(len, data)) > PUT_RECORD_BATCH_BYTES or max(map(len, data)) > PUT_RECORD_BYTES:
            raise ValueError("InvalidArgumentException: over 4 MiB in one PutRecordBatch or 1,000 KiB in a record")
        ids = self._add(data)
        return {"FailedPutCount": 0, "Encrypted": False, "RequestResponses": [{"RecordId": i} for i in ids]}


class FileSource(DirectPutSource):
    """The records of a file, put into a Direct PUT delivery stream (which re-ingestion puts back into)."""

    def __init__(self, path: str | Path, *, limit: int = 10_000) -> None:
        super().__init__(limit=limit)
        self._add(file_payloads(path))
