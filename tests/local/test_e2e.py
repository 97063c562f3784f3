"""The whole path on moto's server: DynamoDB -> DynamoDB Streams -> Kinesis -> local Firehose + handler -> S3.

Everything talks HTTP to a real AWS-compatible endpoint. The only fault is injected on the wire, by a proxy
in front of the server that loses the responses of two re-ingestion calls after the records went in.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from fault_proxy import lost_responses
from runs import assert_delivered_exactly, read_store

from pipeline import Config
from pipeline.local.forward import forward
from pipeline.local.runner import Settings, local_handler, run_local
from pipeline.local.sandbox import create_path
from pipeline.local.sources import KinesisSource
from pipeline.sinks.delivery import Destination
from pipeline.sinks.storage import S3Prefix

pytestmark = pytest.mark.moto

TABLE, STREAM, BUCKET = "orders", "orders-changes", "lake"
ITEMS = 2_000
COLUMNS = "event=@eventName,id,datetime,version,name,amount,flag,note,blob,eventID=@eventID"
BUDGET = 65_536  # bytes of response: a few hundred records per 0.2 MB buffer do not fit, so they are re-ingested
NAMES = ("Zürich", "São Paulo — „quoted“, 東京, 🦊", 'say "hi", then, bye', "two\nlines\r\nthree", "", "Kraków")
BIG = "12345678901234567890123456789012345678"
JUNK = [b"not json", b'{"Hello": "World"}', b"\xff\xfe not UTF-8"]
SETTINGS = Settings(buffer_bytes=200_000, buffer_seconds=900)  # batches cut by size only, never by time
HUGE = "item-huge"  # its row alone is larger than the response budget: ProcessingFailed, to the error output


def item(i: int, version: int) -> dict:
    """Item *i* at *version*, as typed DynamoDB attributes, with the awkward values spread around."""
    doc = {
        "id": {"S": f"item-{i:05d}"},
        "datetime": {"S": f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"},
        "version": {"N": str(version)},
        "name": {"S": NAMES[(i + version) % len(NAMES)]},
        "amount": {"N": BIG if i % 13 == 0 else f"-{i * version}.5" if i % 7 == 0 else str(i * version)},
        "flag": {"BOOL": i % 2 == 0},
    }
    if i % 3 == 0:
        doc["note"] = {"NULL": True}
    elif i % 3 == 1:
        doc["note"] = {"S": f"note {i}, v{version}"}
    if i % 17 == 0:
        doc["blob"] = {"B": bytes([i % 256, 0, 255, version])}
    return doc


def row(event: str, doc: dict) -> tuple[str, ...]:
    """The CSV row the handler must write for a change whose image is *doc* (without the eventID)."""
    note = doc.get("note", {}).get("S", "")
    blob = base64.b64encode(doc["blob"]["B"]).decode() if "blob" in doc else ""
    flag = "true" if doc["flag"]["BOOL"] else "false"
    cells = (doc["id"]["S"], doc["datetime"]["S"], doc["version"]["N"], doc["name"]["S"], doc["amount"]["N"])
    return (event, *cells, flag, note, blob)


def write_changes(ddb) -> list[tuple[str, ...]]:
    """Insert, modify and delete items; the rows these changes must give, one per change."""

    def batch(requests: list[dict]) -> None:
        for start in range(0, len(requests), 25):
            reply = ddb.batch_write_item(RequestItems={TABLE: requests[start : start + 25]})
            assert not reply.get("UnprocessedItems")

    expected = []
    batch([{"PutRequest": {"Item": item(i, 1)}} for i in range(ITEMS)])
    expected += [row("INSERT", item(i, 1)) for i in range(ITEMS)]
    modified = range(0, ITEMS, 5)
    batch([{"PutRequest": {"Item": item(i, 2)}} for i in modified])
    expected += [row("MODIFY", item(i, 2)) for i in modified]
    deleted = range(0, ITEMS, 9)
    batch([{"DeleteRequest": {"Key": {"id": {"S": f"item-{i:05d}"}}}} for i in deleted])
    expected += [row("REMOVE", item(i, 2 if i % 5 == 0 else 1)) for i in deleted]
    ddb.put_item(TableName=TABLE, Item={**item(1, 1), "id": {"S": HUGE}, "note": {"S": "x" * 60_000}})
    return expected


def test_whole_path_dynamodb_to_s3_with_two_reingest_responses_lost_at_the_edge(aws, monkeypatch):
    ddb, kinesis, s3 = aws.client("dynamodb"), aws.client("kinesis"), aws.client("s3")
    table_stream, stream_arn = create_path(
        ddb, kinesis, s3, table=TABLE, stream=STREAM, bucket=BUCKET, region=aws.region
    )

    expected = write_changes(ddb)
    forwarded = forward(aws.client("dynamodbstreams"), kinesis, table_stream, stream_arn)
    assert forwarded == len(expected) + 1  # and the huge item's INSERT
    for n, junk in enumerate(JUNK):
        kinesis.put_record(StreamARN=stream_arn, Data=junk, PartitionKey=f"junk-{n}")
    for rec in KinesisSource(stream_arn, client=kinesis).poll()[:50]:  # as DynamoDB's Kinesis destination puts them
        change = json.loads(base64.b64decode(rec["data"]))
        assert change["tableName"] == TABLE and change["recordFormat"] == "application/json"
        assert "SequenceNumber" not in change["dynamodb"] and change["dynamodb"]["ApproximateCreationDateTime"] > 1e12
        assert rec["kinesisRecordMetadata"]["partitionKey"] == change["dynamodb"]["Keys"]["id"]["S"]

    config = Config.from_env({"PIPELINE_COLUMNS": COLUMNS, "PIPELINE_MAX_RESPONSE_BYTES": str(BUDGET)})
    source = KinesisSource(stream_arn, client=kinesis)  # the runner reads moto directly ...
    handler, reingested = local_handler(config, source)
    dest = Destination(S3Prefix(BUCKET, client=s3), stream="orders-to-lake")
    faults = {2: (500, "InternalFailure"), 4: (400, "AccessDeniedException")}
    with lost_responses(aws.url, faults) as (proxy, proxied):
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy)  # ... the handler re-ingests through the proxy
        progress = io.StringIO()
        tally = run_local(source, handler, dest, SETTINGS, reingested=reingested, progress=progress)

    rows, failed = read_store(S3Prefix(BUCKET, client=s3))
    # Two PutRecords responses were lost after the records went in. The first (HTTP 500) was retried by the
    # SDK, the second (HTTP 400) failed the invocation, which the runner retried like Firehose: either way the
    # records of those calls went into the stream twice, so each is delivered twice. Nothing else repeats.
    assert sorted(proxied.lost) == [2, 4]
    duplicates = sum(records for _status, records in proxied.lost.values())
    assert tally.retried == 1
    assert "invocation failed (Lambda.FunctionError, attempt 1 of 4): ReingestError" in progress.getvalue()

    assert_delivered_exactly(rows, expected, duplicates)
    assert len(rows) == tally.delivered

    # The junk records and the huge item failed: under processing-failed/, in Firehose's error format.
    assert sorted(f.raw for f in failed if f.raw in JUNK) == sorted(JUNK)
    (huge,) = [f for f in failed if f.raw not in JUNK]
    assert json.loads(huge.raw)["dynamodb"]["Keys"] == {"id": {"S": HUGE}}
    assert {(f.error_code, f.attempts) for f in failed} == {("Lambda.ProcessingFailedStatus", 1)}
    assert all(f.lambda_arn and f.arrival_ms <= f.ending_ms for f in failed)

    # Re-ingestion really happened, and every record read is accounted for.
    assert tally.failed == len(failed) == len(JUNK) + 1
    assert tally.reingested > len(expected) // 5
    assert tally.records_in == tally.delivered + tally.failed + tally.reingested + tally.dropped
    assert tally.records_in == forwarded + len(JUNK) + tally.reingested + duplicates
    assert tally.dropped == 0
    print(f"\n{len(expected):,} expected rows; {tally.line()}; {duplicates} duplicates")
