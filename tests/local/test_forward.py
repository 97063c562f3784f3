"""forward: one item's changes in one millisecond get times 1 ms apart, as DynamoDB's Kinesis destination does."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pipeline import change_version
from pipeline.local.forward import forward
from pipeline.local.memory import MemoryStreams

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"
SAME_MS = datetime(2026, 1, 1, 0, 0, 0, 123_456, tzinfo=UTC)


class StreamOfOneShard:
    """DynamoDB Streams' read calls over fixed records, as boto3 returns them (times as datetimes)."""

    def __init__(self, records: list[dict]) -> None:
        self.records = records

    def describe_stream(self, StreamArn: str, **_: str) -> dict:
        return {"StreamDescription": {"Shards": [{"ShardId": "shardId-1"}]}}

    def get_shard_iterator(self, **_: str) -> dict:
        return {"ShardIterator": "0"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict:
        start = int(ShardIterator)
        return {"Records": self.records[start : start + Limit], "NextShardIterator": str(start + Limit)}


def record(n: int, key: str, when: datetime) -> dict:
    keys = {"id": {"S": key}}
    return {
        "eventID": f"e{n}",
        "eventName": "INSERT" if n == 0 else "MODIFY",
        "awsRegion": "eu-west-1",
        "dynamodb": {"ApproximateCreationDateTime": when, "Keys": keys, "NewImage": {**keys, "n": {"N": str(n)}},
                     "SequenceNumber": str(100 + n), "SizeBytes": 20},
    }  # fmt: skip


def test_changes_of_one_item_in_one_millisecond_are_1_ms_apart_and_other_items_untouched():
    records = [record(0, "a", SAME_MS), record(1, "a", SAME_MS), record(2, "b", SAME_MS), record(3, "a", SAME_MS)]
    kinesis = MemoryStreams()
    assert forward(StreamOfOneShard(records), kinesis, ARN, "arn:aws:kinesis:eu-west-1:1:stream/changes") == 4
    changes = [json.loads(data) for data, _key in kinesis.put["changes"]]
    times = [(c["dynamodb"]["Keys"]["id"]["S"], c["dynamodb"]["ApproximateCreationDateTime"]) for c in changes]
    ms = 1_767_225_600_123
    assert times == [("a", ms), ("a", ms + 1), ("b", ms), ("a", ms + 2)]
    versions = [change_version(c) for c in changes if c["dynamodb"]["Keys"]["id"]["S"] == "a"]
    assert versions == sorted(versions) and len(set(versions)) == 3
