"""The DynamoDB Streams path on moto's server: DynamoDB -> DynamoDB Streams -> local EventBridge Pipe -> Direct PUT
delivery stream -> local Firehose + handler -> S3, with records re-ingested through Firehose ``PutRecordBatch``.

The table, its stream, the dead-letter queue and the bucket are moto's, over HTTP. The delivery stream is the
local Firehose's (moto's Firehose does not invoke transformations). The only fault is injected at the edge of
that delivery stream: the answers of two re-ingestion calls are lost after the records went in.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from botocore.exceptions import ClientError
from runs import assert_delivered_exactly, read_store
from test_e2e import BUCKET, BUDGET, COLUMNS, HUGE, JUNK, SETTINGS, TABLE, write_changes

from pipeline import Config
from pipeline.local.pipe import Pipe
from pipeline.local.runner import local_handler, run_local
from pipeline.local.sandbox import create_pipe_path
from pipeline.local.sources import DirectPutSource
from pipeline.sinks.delivery import Destination
from pipeline.sinks.storage import S3Prefix

pytestmark = pytest.mark.moto

DELIVERY = "orders-to-lake"


class LostAnswers(DirectPutSource):
    """The Direct PUT delivery stream, whose answers to chosen ``PutRecordBatch`` calls (counted from 1 once
    armed) are lost after the records went in: the caller sees an error. The fault at the edge."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.faults: dict[int, str] = {}
        self.calls = 0
        self.lost: dict[int, int] = {}  # call number -> records that went in anyway

    def put_record_batch(self, *, DeliveryStreamName, Records):
        answer = super().put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=Records)
        if not self.faults:
            return answer
        self.calls += 1
        code = self.faults.get(self.calls)
        if code is None:
            return answer
        self.lost[self.calls] = len(Records)
        raise ClientError({"Error": {"Code": code, "Message": "answer lost by the test"}}, "PutRecordBatch")


def test_dynamodb_streams_through_a_pipe_to_s3_with_two_reingest_answers_lost_at_the_edge(aws):
    ddb, sqs, s3 = aws.client("dynamodb"), aws.client("sqs"), aws.client("s3")
    table_stream, queue = create_pipe_path(
        ddb, sqs, s3, table=TABLE, queue="pipe-dead-letters", bucket=BUCKET, region=aws.region
    )
    expected = write_changes(ddb)

    delivery = LostAnswers(DELIVERY)

    def dead_letter(info):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(info))

    pipe = Pipe(
        aws.client("dynamodbstreams"), table_stream, delivery, DELIVERY, batch_size=500, dead_letter=dead_letter
    )
    stats = pipe.drain()
    assert stats.records == stats.delivered == len(expected) + 1  # and the huge item's INSERT
    assert stats.dead_lettered == 0 and "Messages" not in sqs.receive_message(QueueUrl=queue)
    for rec in list(delivery._queue)[:50]:  # a peek at what the pipe put: one stream record per Firehose record
        change = json.loads(base64.b64decode(rec["data"]))
        assert change["eventSourceARN"] == table_stream and "SequenceNumber" in change["dynamodb"]
        assert 1e9 < change["dynamodb"]["ApproximateCreationDateTime"] < 1e11  # epoch seconds
        assert "kinesisRecordMetadata" not in rec
    delivery.put_record_batch(DeliveryStreamName=DELIVERY, Records=[{"Data": junk} for junk in JUNK])

    config = Config.from_env({"PIPELINE_COLUMNS": COLUMNS, "PIPELINE_MAX_RESPONSE_BYTES": str(BUDGET)})
    handler, reingested = local_handler(config, delivery)  # re-ingestion: PutRecordBatch into the delivery stream
    dest = Destination(S3Prefix(BUCKET, client=s3), stream=DELIVERY)
    delivery.faults = {2: "ServiceUnavailableException", 4: "AccessDeniedException"}  # from now on
    progress = io.StringIO()
    tally = run_local(delivery, handler, dest, SETTINGS, reingested=reingested, progress=progress)

    rows, failed = read_store(S3Prefix(BUCKET, client=s3))
    # Two answers were lost after the records went in. The first (retryable) made the handler send those records
    # again; the second failed the invocation, which the runner retried like Firehose, re-ingesting them again:
    # either way those records are delivered twice. Nothing else repeats.
    assert sorted(delivery.lost) == [2, 4]
    duplicates = sum(delivery.lost.values())
    assert tally.retried == 1
    assert "invocation failed (Lambda.FunctionError, attempt 1 of 4): ReingestError" in progress.getvalue()

    assert_delivered_exactly(rows, expected, duplicates)
    assert len(expected) >= 1_000
    assert len(rows) == tally.delivered

    # The junk records and the huge item failed: under processing-failed/, in Firehose's error format.
    assert sorted(f.raw for f in failed if f.raw in JUNK) == sorted(JUNK)
    (huge,) = [f for f in failed if f.raw not in JUNK]
    assert json.loads(huge.raw)["dynamodb"]["Keys"] == {"id": {"S": HUGE}}
    assert {(f.error_code, f.attempts) for f in failed} == {("Lambda.ProcessingFailedStatus", 1)}

    # Re-ingestion really happened (through PutRecordBatch), and every record is accounted for.
    assert tally.failed == len(failed) == len(JUNK) + 1
    assert tally.reingested > len(expected) // 5
    assert tally.records_in == tally.delivered + tally.failed + tally.reingested + tally.dropped
    assert tally.records_in == stats.delivered + len(JUNK) + tally.reingested + duplicates
    assert tally.dropped == 0
    print(f"\n{len(expected):,} expected rows; pipe {stats}; {tally.line()}; {duplicates} duplicates")
