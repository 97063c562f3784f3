"""What the local runner reads: Firehose-shaped records from a Kinesis stream, or from a file (as Direct PUT).

Each source answers ``poll()`` with the records that are there now, shaped exactly as Firehose hands them
to the transformation (``recordId``, ``approximateArrivalTimestamp``, ``data``, and for a Kinesis source
``kinesisRecordMetadata``), and says whether that poll reached the end of what there is (``caught_up``).

* :class:`KinesisSource` reads every shard from ``TRIM_HORIZON`` (or ``LATEST``) with ``GetRecords``; shards
  created by resharding after the start are not followed.
* :class:`FileSource` holds the records of a file and is also the Direct PUT delivery stream they were put
  into: re-ingestion (``PutRecordBatch``) puts records back into it, so they come round again.
"""

from __future__ import annotations

import binascii
import itertools
import json
import time
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from ..sinks.streams import kinesis_stream

__all__ = ["FileSource", "KinesisSource", "Source", "file_payloads"]


class Source(Protocol):
    """Where Firehose reads from."""

    stream_arn: str | None  # the Kinesis stream, or None for Direct PUT
    caught_up: bool

    def poll(self) -> list[dict[str, Any]]:
        """The records there are now, as Firehose records."""


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
    """The record payloads in a file: a Firehose event's records, a ``{"Records": [...]}`` document's
    elements (e.g. a DynamoDB Streams event), or else each non-blank line (JSON Lines) as it is.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "changes.jsonl")
    >>> _ = Path(path).write_text('{"eventName": "INSERT"}\\n\\nnot json\\n')
    >>> list(file_payloads(path))
    [b'{"eventName": "INSERT"}', b'not json']
    """
    raw = Path(path).read_bytes()
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("records"), list):
        return (binascii.a2b_base64(r["data"]) for r in doc["records"])
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        return (json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() for r in doc["Records"])
    return (line.rstrip(b"\r") for line in raw.split(b"\n") if line.strip())


class FileSource:
    """The records of a file, put into a Direct PUT delivery stream (which re-ingestion puts back into)."""

    stream_arn = None

    def __init__(self, path: str | Path, *, limit: int = 10_000) -> None:
        self.limit, self.caught_up = limit, False
        self._ids = itertools.count(1)
        self._queue: deque[dict[str, Any]] = deque()
        self._add(file_payloads(path))

    def _add(self, payloads: Iterator[bytes] | list[bytes]) -> list[str]:
        arrival = int(time.time() * 1000)
        added = [
            {"recordId": f"{next(self._ids):056d}", "approximateArrivalTimestamp": arrival, "data": _b64(p)}
            for p in payloads
        ]
        self._queue.extend(added)
        return [r["recordId"] for r in added]

    def poll(self) -> list[dict[str, Any]]:
        taken = [self._queue.popleft() for _ in range(min(self.limit, len(self._queue)))]
        self.caught_up = not taken
        return taken

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        """Firehose ``PutRecordBatch`` into this delivery stream: the records come round again."""
        ids = self._add([bytes(r["Data"]) for r in Records])
        return {"FailedPutCount": 0, "Encrypted": False, "RequestResponses": [{"RecordId": i} for i in ids]}
