"""DynamoDB Streams -> Kinesis Data Streams, in the *Kinesis Data Streams for DynamoDB* record format.

What DynamoDB's Kinesis streaming destination does, for AWS-compatible servers that do not do it (moto):
each change record read from the table's stream becomes the record DynamoDB would put into Kinesis
(``tableName``, ``recordFormat``, ``ApproximateCreationDateTime`` in milliseconds, no ``SequenceNumber``),
put with the item's key as the partition key, so that one item's changes stay in order on one shard.
Like DynamoDB, it never gives two changes of one item the same time: "If more than one modification
occurred to the same item within the same millisecond, the ApproximateCreationDateTime is increased by
1 millisecond" ("Using Kinesis Data Streams to capture changes to DynamoDB", DynamoDB Developer Guide), so
``@version`` orders them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any

from ..fields import table_name
from ..sinks.streams import item_key

__all__ = ["forward", "json_default", "kinesis_format", "stream_shards", "table_changes"]


def _millis(moment: Any) -> int:
    return int(moment.timestamp() * 1000) if hasattr(moment, "timestamp") else int(moment * 1000)


def kinesis_format(change: Mapping[str, Any], table: str) -> dict[str, Any]:
    """A DynamoDB Streams record (as boto3 returns it) in the Kinesis Data Streams for DynamoDB format.

    >>> from datetime import UTC, datetime
    >>> when = datetime(2026, 1, 1, tzinfo=UTC)
    >>> change = {"eventID": "e1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
    ...           "awsRegion": "eu-west-1", "dynamodb": {"ApproximateCreationDateTime": when,
    ...           "Keys": {"id": {"S": "1"}}, "NewImage": {"id": {"S": "1"}}, "SequenceNumber": "100",
    ...           "SizeBytes": 9, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    >>> kinesis_format(change, "cities")  # doctest: +NORMALIZE_WHITESPACE
    {'awsRegion': 'eu-west-1', 'eventID': 'e1', 'eventName': 'INSERT', 'userIdentity': None,
     'recordFormat': 'application/json', 'tableName': 'cities',
     'dynamodb': {'ApproximateCreationDateTime': 1767225600000, 'Keys': {'id': {'S': '1'}},
                  'NewImage': {'id': {'S': '1'}}, 'SizeBytes': 9}, 'eventSource': 'aws:dynamodb'}
    """
    ddb = change["dynamodb"]
    out: dict[str, Any] = {"ApproximateCreationDateTime": _millis(ddb["ApproximateCreationDateTime"])}
    out |= {k: ddb[k] for k in ("Keys", "NewImage", "OldImage", "SizeBytes") if k in ddb}
    return {
        "awsRegion": change["awsRegion"],
        "eventID": change["eventID"],
        "eventName": change["eventName"],
        "userIdentity": change.get("userIdentity"),
        "recordFormat": "application/json",
        "tableName": table,
        "dynamodb": out,
        "eventSource": "aws:dynamodb",
    }


def json_default(value: Any) -> Any:
    """``json.dumps``' *default* for boto3's values: B and BS values come as bytes, JSON carries them as base64.

    >>> json.dumps({"B": b"hi"}, default=json_default)
    '{"B": "aGk="}'
    """
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def stream_shards(streams: Any, stream_arn: str) -> Iterator[dict[str, Any]]:
    """Every shard ``DescribeStream`` lists for a DynamoDB stream, page by page."""
    start: dict[str, str] = {}
    while True:
        described = streams.describe_stream(StreamArn=stream_arn, **start)["StreamDescription"]
        yield from described["Shards"]
        if "LastEvaluatedShardId" not in described:
            return
        start = {"ExclusiveStartShardId": described["LastEvaluatedShardId"]}


def table_changes(streams: Any, stream_arn: str) -> Iterator[dict[str, Any]]:
    """Every change record in a table's stream, shard by shard from ``TRIM_HORIZON`` to where it ends now."""
    for shard in list(stream_shards(streams, stream_arn)):
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            reply = streams.get_records(ShardIterator=iterator, Limit=1000)
            yield from reply["Records"]
            iterator = reply.get("NextShardIterator") if reply["Records"] else None


def _put(kinesis: Any, stream_arn: str, entries: list[dict[str, Any]], attempts: int = 5) -> None:
    for _ in range(attempts):
        reply = kinesis.put_records(StreamARN=stream_arn, Records=entries)
        entries = [e for e, r in zip(entries, reply["Records"], strict=True) if r.get("ErrorCode")]
        if not entries:
            return
    raise RuntimeError(f"{len(entries)} records could not be put into {stream_arn}")


def forward(streams: Any, kinesis: Any, table_stream_arn: str, kinesis_stream_arn: str) -> int:
    """Put every change of a table's stream into a Kinesis stream, in the Kinesis format; the count put."""
    table = table_name({"eventSourceARN": table_stream_arn}) or ""
    batch: list[dict[str, Any]] = []
    size = count = 0
    last: dict[str, int] = {}  # item -> the time its last change was given, to keep one item's times apart
    for change in table_changes(streams, table_stream_arn):
        record = kinesis_format(change, table)
        item = json.dumps(change["dynamodb"]["Keys"], sort_keys=True, default=json_default)
        when = record["dynamodb"]["ApproximateCreationDateTime"]
        if item in last and when <= last[item]:
            when = record["dynamodb"]["ApproximateCreationDateTime"] = last[item] + 1
        last[item] = when
        data = json.dumps(record, default=json_default, ensure_ascii=False, separators=(",", ":"))
        entry = {"Data": data.encode(), "PartitionKey": item_key(change["dynamodb"]["Keys"])}
        if len(batch) == 500 or size + len(entry["Data"]) > 4 * 1024 * 1024:
            _put(kinesis, kinesis_stream_arn, batch)
            batch, size = [], 0
        batch.append(entry)
        size += len(entry["Data"]) + len(entry["PartitionKey"])
        count += 1
    if batch:
        _put(kinesis, kinesis_stream_arn, batch)
    return count
