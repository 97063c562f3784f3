"""An in-memory stand-in for the Kinesis and Firehose clients, for notebooks, benchmarks and unit tests.

It answers ``put_records`` and ``put_record_batch`` the way the services do, including per-entry failures
when asked to (``fail``), and keeps what was put. Tests of the real wire use moto's server instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["MemoryStreams"]


class MemoryStreams:
    """Records put into streams by name; ``fail(call, index)`` returns an error code to fail that entry.

    >>> throttle_first = lambda call, i: "ProvisionedThroughputExceededException" if (call, i) == (1, 0) else None
    >>> streams = MemoryStreams(fail=throttle_first)
    >>> reply = streams.put_records(StreamName="s", Records=[{"Data": b"a", "PartitionKey": "k"},
    ...                                                       {"Data": b"b", "PartitionKey": "k"}])
    >>> reply["FailedRecordCount"], [r.get("ErrorCode") for r in reply["Records"]]
    (1, ['ProvisionedThroughputExceededException', None])
    >>> streams.put["s"]
    [(b'b', 'k')]
    """

    def __init__(self, fail: Callable[[int, int], str | None] | None = None) -> None:
        self.fail = fail or (lambda _call, _index: None)
        self.put: dict[str, list[tuple[bytes, str | None]]] = {}
        self.calls = 0

    def _put(self, stream: str, entries: list[dict[str, Any]]) -> tuple[int, list[dict[str, str]]]:
        self.calls += 1
        replies, failed = [], 0
        kept = self.put.setdefault(stream, [])
        for i, entry in enumerate(entries):
            code = self.fail(self.calls, i)
            if code:
                failed += 1
                replies.append({"ErrorCode": code, "ErrorMessage": "injected"})
            else:
                kept.append((bytes(entry["Data"]), entry.get("PartitionKey")))
                replies.append({"SequenceNumber": str(len(kept)), "ShardId": "shardId-000000000000"})
        return failed, replies

    def put_records(
        self,
        *,
        Records: list[dict[str, Any]],
        StreamName: str | None = None,
        StreamARN: str | None = None,
    ) -> dict[str, Any]:
        """Kinesis PutRecords (the stream by name or ARN; kept under its name)."""
        failed, replies = self._put(StreamName or str(StreamARN).rsplit("/", 1)[-1], Records)
        return {"FailedRecordCount": failed, "Records": replies}

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        """Firehose PutRecordBatch."""
        failed, replies = self._put(DeliveryStreamName, Records)
        return {
            "FailedPutCount": failed,
            "Encrypted": False,
            "RequestResponses": [r if "ErrorCode" in r else {"RecordId": r["SequenceNumber"]} for r in replies],
        }
