"""Re-ingestion of records over the budget: against moto's server over HTTP, and with faults injected at
the client edge (named so in each test). Nothing here can reach AWS: the endpoint is 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import firehose_event, handler_for, results

from pipeline import Config, ReingestError, make_handler
from pipeline.local.context import LocalContext
from pipeline.local.contract import contract_problems, runtime_size
from pipeline.local.memory import MemoryStreams
from pipeline.reingest import FIREHOSE, KINESIS, Reingester, client_for, to_source

pytestmark = pytest.mark.usefixtures("parser")  # every test here runs on both parser paths

REGION = "eu-west-1"
STREAM_ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/source"
# Output far larger than input: every change becomes a JSON line of its whole image plus long partition keys.
GROWING = {"PIPELINE_FORMAT": "jsonl", "PIPELINE_PARTITION_KEYS": "id=@eventID,at=@approximateCreationDateTime"}


def changes(n, size=300):
    return [
        json.dumps(
            {
                "eventName": "INSERT",
                "eventID": f"event-{i:05d}",
                "tableName": "t",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_700_000_000_000 + i,
                    "Keys": {"id": {"N": str(i)}},
                    "NewImage": {"id": {"N": str(i)}, "text": {"S": "é" * size}},
                },
            }
        ).encode()
        for i in range(n)
    ]


def budget_for(event, share):
    """A budget that holds about *share* of the unlimited response."""
    unlimited = len(json.dumps(handler_for(**GROWING)(event, LocalContext())))
    return str(max(1024, int(unlimited * share)))


def overflowing(n=40, share=0.5, kinesis=True):
    payloads = changes(n)
    event = firehose_event(payloads, kinesis=kinesis)
    return payloads, event, {**GROWING, "PIPELINE_MAX_RESPONSE_BYTES": budget_for(event, share)}


def dropped(response):
    return [i for i, r in enumerate(results(response)) if r == "Dropped"]


def read_stream(kinesis, arn):
    """Every record in the stream, shard by shard: (data, partition key)."""
    found = []
    for shard in kinesis.list_shards(StreamARN=arn)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamARN=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(StreamARN=arn, ShardIterator=iterator, Limit=1000)
            found += [(r["Data"], r["PartitionKey"]) for r in page["Records"]]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return found


@pytest.fixture
def source_stream(aws):
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="source", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="source")
    return kinesis


def test_kinesis_source_reingests_original_bytes_with_their_partition_keys(source_stream, caplog):
    payloads, event, env = overflowing()
    env["PIPELINE_REINGEST"] = "on"
    response = make_handler(Config.from_env(env))(event, LocalContext())
    budget = int(env["PIPELINE_MAX_RESPONSE_BYTES"])
    assert contract_problems(event, response, budget) == []
    assert runtime_size(response) <= budget  # as the Lambda runtime serialises it
    gone = dropped(response)
    assert 0 < len(gone) < len(payloads)
    back = read_stream(source_stream, STREAM_ARN)
    assert sorted(back) == sorted((payloads[i], f"pk-{i}") for i in gone)
    summary = [json.loads(r.message) for r in caplog.records if '"summary"' in r.message][-1]
    assert summary["reingested"]["records"] == len(gone)
    assert summary["reingested"]["bytes"] == sum(len(payloads[i]) for i in gone)
    assert summary["results"]["Dropped"] == len(gone)


def test_direct_put_reingests_into_the_delivery_stream(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="reingested", CreateBucketConfiguration={"LocationConstraint": REGION})
    aws.client("firehose").create_delivery_stream(
        DeliveryStreamName="delivery",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::reingested",
            "Prefix": "raw/",
        },
    )
    payloads, event, env = overflowing(kinesis=False)
    response = make_handler(Config.from_env({**env, "PIPELINE_REINGEST": "on"}))(event, LocalContext())
    gone = dropped(response)
    assert gone
    objects = s3.list_objects_v2(Bucket="reingested")["Contents"]
    delivered = b"".join(s3.get_object(Bucket="reingested", Key=o["Key"])["Body"].read() for o in objects)
    assert delivered == b"".join(payloads[i] for i in gone)  # moto writes one object per PutRecordBatch


class FlakyClient:
    """Fault injection at the client edge: the real (moto) client, but the first *bad_calls* calls fail
    every other entry with *code* (those entries are not sent), as Kinesis does under throttling."""

    def __init__(self, real, bad_calls, code="ProvisionedThroughputExceededException"):
        self.real, self.bad_calls, self.code, self.calls = real, bad_calls, code, 0

    def put_records(self, *, StreamARN, Records):
        self.calls += 1
        if self.calls > self.bad_calls:
            return self.real.put_records(StreamARN=StreamARN, Records=Records)
        sent = Records[::2]
        replies = iter(self.real.put_records(StreamARN=StreamARN, Records=sent)["Records"]) if sent else iter(())
        out = [
            next(replies) if i % 2 == 0 else {"ErrorCode": self.code, "ErrorMessage": "injected"}
            for i in range(len(Records))
        ]
        return {"FailedRecordCount": sum("ErrorCode" in r for r in out), "Records": out}


def test_partial_failures_injected_at_client_edge_are_resent_until_delivered(source_stream):
    payloads, event, env = overflowing(n=60)
    flaky = FlakyClient(client_for("kinesis", REGION), bad_calls=3)
    sleeps = []
    targets = []

    def reingester(e, c):
        targets.append(to_source(e, c, client=flaky, sleep=sleeps.append, jitter=lambda: 1.0))
        return targets[-1]

    response = make_handler(Config.from_env(env), reingester=reingester)(event, LocalContext())
    gone = dropped(response)
    back = read_stream(source_stream, STREAM_ARN)
    assert sorted(back) == sorted((payloads[i], f"pk-{i}") for i in gone)  # each exactly once
    stats = targets[0].stats
    assert stats.attempts == 4 and stats.calls == 4
    failed = [len(gone) // 2]  # each bad call fails every other entry of what it was given
    failed += [failed[-1] // 2, failed[-1] // 4]
    assert stats.error_codes == {"ProvisionedThroughputExceededException": sum(failed)}
    assert sleeps == [0.1, 0.2, 0.4]  # exponential backoff (jitter pinned to its maximum here)


def test_entries_failing_every_attempt_injected_at_client_edge_fail_the_invocation(source_stream, caplog):
    _payloads, event, env = overflowing()
    flaky = FlakyClient(client_for("kinesis", REGION), bad_calls=100)
    run = make_handler(
        Config.from_env({**env, "PIPELINE_REINGEST_MAX_ATTEMPTS": "3"}),
        reingester=lambda e, c: to_source(e, c, client=flaky, max_attempts=3, sleep=lambda _s: None),
    )
    with pytest.raises(
        ReingestError, match=r"records could not be re-ingested .* after 3 attempts .*ProvisionedThroughput"
    ):
        run(event, LocalContext())
    assert any('"invocation failed"' in r.message for r in caplog.records)  # and no response was returned


def test_throttling_injected_at_http_edge_is_retried_by_botocore_and_then_by_us(source_stream, monkeypatch):
    """The real client (standard retries) gets HTTP 400 ThrottlingException for its first 4 requests."""
    from botocore.awsrequest import AWSResponse

    client = client_for("kinesis", REGION)
    refused = []

    def throttle(request, **_kwargs):
        if len(refused) < 4:
            refused.append(request.url)
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            return AWSResponse(request.url, 400, {"content-type": "application/x-amz-json-1.1"}, _Raw(body))
        return None

    client.meta.events.register_first("before-send.kinesis.PutRecords", throttle)
    monkeypatch.setattr("time.sleep", lambda _s: None)  # botocore's backoff and ours, not the test's time
    try:
        payloads, event, env = overflowing(n=20)
        targets = []
        response = make_handler(
            Config.from_env(env), reingester=lambda e, c: targets.append(to_source(e, c)) or targets[-1]
        )(event, LocalContext())
    finally:
        client.meta.events.unregister("before-send.kinesis.PutRecords", throttle)
    gone = dropped(response)
    assert len(refused) == 4
    assert targets[0].stats.attempts == 2  # botocore gave up after 3 tries; our second attempt got through
    assert targets[0].stats.error_codes == {"ThrottlingException": len(gone)}
    assert sorted(read_stream(source_stream, STREAM_ARN)) == sorted((payloads[i], f"pk-{i}") for i in gone)


class _Raw:
    def __init__(self, body):
        self.body = body

    def stream(self, **_kwargs):
        yield self.body

    def read(self, *_args, **_kwargs):
        body, self.body = self.body, b""
        return body


def test_missing_stream_fails_at_once_with_the_service_code(aws):
    _payloads, event, env = overflowing()
    targets = []
    run = make_handler(Config.from_env(env), reingester=lambda e, c: targets.append(to_source(e, c)) or targets[-1])
    with pytest.raises(ReingestError, match="ResourceNotFoundException"):
        run(event, LocalContext())
    assert targets[0].stats.attempts == 1


def test_retries_stop_when_the_lambda_is_out_of_time():
    sleeps = []
    streams = MemoryStreams(fail=lambda _call, _i: "InternalFailure")
    # 0.55 s beyond the 3 s margin: room for one call (at least 0.5 s), not for a 0.1 s sleep and another
    target = Reingester(
        KINESIS, "s", REGION, client=streams, remaining_ms=lambda: 3550, sleep=sleeps.append, jitter=lambda: 1.0
    )
    _payloads, event, env = overflowing()
    run = make_handler(Config.from_env(env), reingester=lambda e, c: target)
    with pytest.raises(ReingestError, match="after 1 attempts"):
        run(event, LocalContext())
    assert sleeps == [] and streams.calls == 1  # a 0.1 s sleep would leave too little for a call: no retry


def test_batches_stay_within_the_service_limits():
    streams = MemoryStreams()
    target = Reingester(FIREHOSE, "d", REGION, client=streams)
    payloads = [b"x" * 700_000] * 13 + [b"y"] * 1200
    event = firehose_event(payloads, kinesis=False)
    from pipeline import Record

    for rec in event["records"]:
        assert target.add(Record(rec["recordId"], rec, None)) is None
    target.flush()
    assert target.stats.records == len(payloads)
    assert [data for data, _ in streams.put["d"]] == payloads
    # 700 kB records: 5 per 4 MiB call, so 5 + 5 + (3 + 497 small), then 500 and 203 small records: 5 calls
    assert target.stats.calls == 5


def test_records_that_cannot_be_reingested_fail_instead():
    from pipeline import Record

    kinesis = Reingester(KINESIS, "s", REGION, client=MemoryStreams())
    event = firehose_event([b"z" * (1024 * 1024), b"ok"])
    too_big, fine = (Record(r["recordId"], r, None) for r in event["records"])
    assert kinesis.add(too_big) == "1048580 bytes is over the kinesis limit of 1048576 per record"
    no_key = Record("r", {"recordId": "r", "data": base64.b64encode(b"a").decode()}, None)
    assert kinesis.add(no_key) == "record has no Kinesis partition key to re-ingest with"
    assert kinesis.add(Record("n", {}, None)) == "record has no original data to re-ingest"
    assert kinesis.add(fine) is None


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            {"sourceKinesisStreamArn": "arn:aws:kinesis:EXAMPLE"},
            "the event's sourceKinesisStreamArn is not a Kinesis stream ARN",
        ),
        (
            {"deliveryStreamArn": "aws:lambda:events"},
            "the event's deliveryStreamArn is not a Firehose delivery stream ARN",
        ),
        ({}, "the event has no deliveryStreamArn"),
    ],
)
def test_no_usable_source_fails_the_overflow_with_the_reason(source, reason, caplog):
    _payloads, event, env = overflowing(kinesis=False)
    event = {k: v for k, v in event.items() if k != "deliveryStreamArn"} | source
    response = make_handler(Config.from_env({**env, "PIPELINE_REINGEST": "on"}))(event, LocalContext())
    assert "Dropped" not in results(response) and "ProcessingFailed" in results(response)
    reasons = {json.loads(r.message)["reason"] for r in caplog.records if "record failed" in r.message}
    assert reasons == {f"over response budget; cannot re-ingest: {reason}"}


def test_reingest_off_answers_overflow_processing_failed():
    _payloads, event, env = overflowing()
    response = handler_for(**env)(event, LocalContext())  # handler_for turns re-ingestion off
    assert "Dropped" not in results(response)
    assert results(response).count("ProcessingFailed") > 0
    assert runtime_size(response) <= int(env["PIPELINE_MAX_RESPONSE_BYTES"])


def test_a_record_larger_than_the_budget_alone_is_failed_not_reingested():
    payloads = [*changes(1, size=5000), *changes(3, size=10)]
    event = firehose_event(payloads)
    streams = MemoryStreams()
    run = make_handler(
        Config.from_env({**GROWING, "PIPELINE_MAX_RESPONSE_BYTES": "4096"}),
        reingester=lambda e, c: to_source(e, c, client=streams),
    )
    response = run(event, LocalContext())
    assert results(response) == ["ProcessingFailed", "Ok", "Ok", "Ok"]
    assert streams.put == {}


def test_boto3_is_imported_only_when_a_record_is_reingested(tmp_path: Path):
    script = """
import json, sys
sys.path.insert(0, "tests")
from conftest import firehose_event
import handler
event = firehose_event([json.dumps({"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "1"}}}}).encode()])
handler.lambda_handler(event, None)
print("boto3" in sys.modules)
"""
    env = {"PATH": "/usr/bin:/bin", "PIPELINE_COLUMNS": "id", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
