"""The local EventBridge Pipe: a table's DynamoDB stream on moto's server -> a Direct PUT delivery stream.

The pipe reads the real stream over HTTP. Its target is the local Direct PUT delivery stream; where a test
makes the target fail, the fault is injected there, at the edge (``PutRecordBatch`` answers), and says so.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections import defaultdict

import pytest
from botocore.exceptions import ClientError
from conftest import load_fixture

from pipeline.local.pipe import Pipe
from pipeline.local.sandbox import create_table
from pipeline.local.sources import DirectPutSource

EXAMPLE = "pipes/eventbridge-pipes__dynamodb-stream-source-event.json"
TABLE, DELIVERY = "orders", "orders-to-lake"


def _put(ddb, first: int, count: int, version: int = 1) -> None:
    for i in range(first, first + count):
        item = {"id": {"S": f"item-{i:04d}"}, "version": {"N": str(version)}, "blob": {"B": bytes([i % 256, 0])}}
        ddb.put_item(TableName=TABLE, Item=item)


def _records(delivery: DirectPutSource) -> list[dict]:
    return [json.loads(base64.b64decode(r["data"])) for r in delivery.poll()]


@pytest.mark.moto
def test_pipe_writes_one_documented_stream_record_per_firehose_record_in_shard_order(aws):
    ddb = aws.client("dynamodb")
    stream_arn = create_table(ddb, table=TABLE)
    _put(ddb, 0, 120)
    _put(ddb, 0, 30, version=2)
    ddb.delete_item(TableName=TABLE, Key={"id": {"S": "item-0005"}})
    delivery = DirectPutSource(DELIVERY)
    pipe = Pipe(aws.client("dynamodbstreams"), stream_arn, delivery, DELIVERY, batch_size=50)
    stats = pipe.drain()

    records = _records(delivery)
    assert len(records) == stats.records == stats.delivered == 151 and stats.dead_lettered == 0
    assert stats.batches == stats.calls >= 151 // 50  # batches of at most 50, one PutRecordBatch call each
    example = load_fixture(EXAMPLE)
    fields = list(example[0])
    allowed = {"ApproximateCreationDateTime"}.union(*(set(e["dynamodb"]) for e in example))  # the dates: Lambda's
    for record in records:  # each the documented shape: the fields of the example event, in its order
        assert list(record) == fields
        assert {"Keys", "SequenceNumber", "SizeBytes", "StreamViewType"} <= set(record["dynamodb"]) <= allowed
        assert record["eventSourceARN"] == stream_arn and record["eventSource"] == "aws:dynamodb"
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)  # epoch seconds, as Lambda's
    assert records[0]["dynamodb"]["NewImage"]["blob"] == {"B": base64.b64encode(bytes([0, 0])).decode()}

    per_item = defaultdict(list)  # one item's changes are on one shard, in the order they were made
    for record in records:
        per_item[record["dynamodb"]["Keys"]["id"]["S"]].append(int(record["dynamodb"]["SequenceNumber"]))
    assert all(seq == sorted(seq) for seq in per_item.values())
    events = [(r["eventName"], r["dynamodb"]["Keys"]["id"]["S"]) for r in records]
    assert events[:2] == [("INSERT", "item-0000"), ("INSERT", "item-0001")]
    assert events.index(("MODIFY", "item-0005")) < events.index(("REMOVE", "item-0005"))

    _put(ddb, 200, 3)  # the pipe goes on from where it was
    assert pipe.poll() == 3 and [r["dynamodb"]["Keys"]["id"]["S"] for r in _records(delivery)] == [
        "item-0200",
        "item-0201",
        "item-0202",
    ]
    assert pipe.poll() == 0 and pipe.caught_up


@pytest.mark.moto
def test_pipe_from_latest_reads_only_what_comes_after_it_starts(aws):
    ddb = aws.client("dynamodb")
    stream_arn = create_table(ddb, table=TABLE)
    _put(ddb, 0, 10)
    delivery = DirectPutSource(DELIVERY)
    pipe = Pipe(aws.client("dynamodbstreams"), stream_arn, delivery, DELIVERY, starting_position="LATEST")
    _put(ddb, 10, 2)
    pipe.drain()
    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in _records(delivery)] == ["item-0010", "item-0011"]


class FailingEdge(DirectPutSource):
    """A Direct PUT delivery stream whose ``PutRecordBatch`` answers fail as scripted: the fault at the edge."""

    def __init__(self, entry_failures: int = 0, call_failures: int = 0) -> None:
        super().__init__(DELIVERY)
        self.entry_failures, self.call_failures = entry_failures, call_failures

    def put_record_batch(self, *, DeliveryStreamName, Records):
        if self.call_failures:
            self.call_failures -= 1
            raise ClientError({"Error": {"Code": "ServiceUnavailableException", "Message": "edge"}}, "PutRecordBatch")
        fail = [i % 2 == 1 and self.entry_failures > 0 for i in range(len(Records))]
        if any(fail):
            self.entry_failures -= 1
        taken = super().put_record_batch(
            DeliveryStreamName=DeliveryStreamName, Records=[r for r, f in zip(Records, fail, strict=True) if not f]
        )
        ids = iter(taken["RequestResponses"])
        answers = [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "edge"} if f else next(ids) for f in fail
        ]
        return {"FailedPutCount": sum(fail), "RequestResponses": answers}


@pytest.mark.moto
def test_pipe_retries_entries_and_calls_failed_at_the_edge_and_delivers_everything(aws):
    ddb = aws.client("dynamodb")
    stream_arn = create_table(ddb, table=TABLE)
    _put(ddb, 0, 40)
    edge = FailingEdge(entry_failures=2, call_failures=1)
    pipe = Pipe(aws.client("dynamodbstreams"), stream_arn, edge, DELIVERY, batch_size=20, sleep=lambda _s: None)
    stats = pipe.drain()
    keys = [r["dynamodb"]["Keys"]["id"]["S"] for r in _records(edge)]
    assert sorted(keys) == [f"item-{i:04d}" for i in range(40)] and stats.delivered == 40
    assert stats.retried == 20 + 10 + 5 and stats.dead_lettered == 0 and pipe.dead_letters == []
    assert keys != sorted(keys)  # a retried entry lands after the ones that went in (README: ordering)


@pytest.mark.moto
def test_pipe_dead_letters_what_the_edge_keeps_refusing_and_moves_on(aws):
    ddb, sqs = aws.client("dynamodb"), aws.client("sqs")
    stream_arn = create_table(ddb, table=TABLE)
    queue = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    _put(ddb, 0, 10)
    edge = FailingEdge(call_failures=3)

    def dead_letter(info):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(info))

    pipe = Pipe(
        aws.client("dynamodbstreams"), stream_arn, edge, DELIVERY, maximum_retry_attempts=2, dead_letter=dead_letter
    )
    pipe.sleep = lambda _s: None
    stats = pipe.drain()
    assert (stats.records, stats.delivered, stats.dead_lettered, stats.calls) == (10, 0, 10, 3)
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    info = json.loads(message["Body"])
    assert info["condition"] == "ServiceUnavailableException"
    assert info["DDBStreamBatchInfo"]["batchSize"] == 10 and info["DDBStreamBatchInfo"]["streamArn"] == stream_arn
    _put(ddb, 10, 1)  # the shard moved on: what comes next is delivered
    assert pipe.poll() == 1 and len(edge.poll()) == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"batch_size": 501}, "batch size 501: a pipe with a Firehose target takes 1 to 500"),
        ({"batch_size": 0}, "batch size 0"),
        ({"starting_position": "AT_TIMESTAMP"}, "must be TRIM_HORIZON or LATEST"),
        ({"maximum_retry_attempts": -1}, "maximum retry attempts -1: must be 0 to 10000"),
    ],
)
def test_pipe_settings_are_checked_when_it_is_made(settings, message):
    with pytest.raises(ValueError, match=message):
        Pipe(None, "arn", None, DELIVERY, **settings)


def test_direct_put_delivery_stream_answers_like_firehose_to_calls_over_its_limits():
    stream = DirectPutSource(DELIVERY)
    with pytest.raises(ValueError, match="ResourceNotFoundException"):
        stream.put_record_batch(DeliveryStreamName="other", Records=[{"Data": b"x"}])
    with pytest.raises(ValueError, match="501 records"):
        stream.put_record_batch(DeliveryStreamName=DELIVERY, Records=[{"Data": b"x"}] * 501)
    with pytest.raises(ValueError, match="1,000 KiB"):
        stream.put_record_batch(DeliveryStreamName=DELIVERY, Records=[{"Data": b"x" * (1000 * 1024 + 1)}])
    assert stream.poll() == [] and stream.caught_up


def test_the_command_line_with_the_pipe_imports_without_boto3():
    """``make demo`` installs the runtime alone (no boto3): the CLI, which imports the sandbox and the pipe, loads."""
    code = "import sys; sys.modules.update(boto3=None, botocore=None); import pipeline.cli, pipeline.local.pipe"
    subprocess.run([sys.executable, "-c", code], check=True)
