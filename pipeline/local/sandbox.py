"""``python -m pipeline sandbox``: the whole path, locally, on a moto server this command starts and stops.

DynamoDB table (with a stream) -> DynamoDB Streams -> Kinesis (the Kinesis Data Streams for DynamoDB format),
or with ``--source dynamodb-streams`` -> a local EventBridge Pipe -> a Direct PUT delivery stream, then
``run-local`` with the handler (a small response budget, so records are re-ingested) -> S3. Then it reads
the bucket back, checks that every change arrived, shows what failed and what ``redrive`` would do with it, and
copies the bucket into a local folder to look at. Everything runs against ``127.0.0.1`` with fake credentials,
whatever the environment says: nothing can reach an AWS account. Needs ``moto[server]`` (``make local``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ..config import Config
from ..logs import configure_logging
from ..reingest import client_for
from ..sinks.delivery import Destination
from ..sinks.errors_output import FailedRecord, read_error_object
from ..sinks.storage import Folder, S3Prefix
from ..tools.redrive import redrive, to_store
from .forward import forward
from .pipe import Pipe
from .runner import Settings, local_handler, run_local
from .sources import DirectPutSource, KinesisSource, Source

__all__ = ["SANDBOX_ENV", "SOURCES", "create_path", "create_pipe_path", "create_table", "run_sandbox"]

TABLE, STREAM, BUCKET, REGION = "orders", "orders-changes", "local-lake", "eu-west-1"
DELIVERY, DEAD_LETTERS = "orders-to-lake", "orders-pipe-dead-letters"
SOURCES = ("kinesis", "dynamodb-streams")
SANDBOX_ENV = {
    "PIPELINE_COLUMNS": "event=@eventName,id,datetime,name,amount,note,eventID=@eventID",
    "LOG_LEVEL": "ERROR",
}
_NAMES = ("Zürich", 'say "hi", then, bye', "two\nlines", "東京 🦊", "Kraków")


def _item(i: int, version: int) -> dict[str, Any]:
    return {
        "id": {"S": f"order-{i:05d}"},
        "datetime": {"S": f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"},
        "name": {"S": _NAMES[(i + version) % len(_NAMES)]},
        "amount": {"N": "12345678901234567890123456789012345678" if i % 11 == 0 else f"{i * version}.5"},
        "note": {"NULL": True} if i % 3 else {"S": f'version {version}, "{i}"'},
    }


def _write_changes(ddb: Any, items: int) -> str:
    """Insert *items* items, modify every 4th and delete every 10th; what was done."""

    def batch(requests: list[dict[str, Any]]) -> int:
        for start in range(0, len(requests), 25):
            ddb.batch_write_item(RequestItems={TABLE: requests[start : start + 25]})
        return len(requests)

    inserted = batch([{"PutRequest": {"Item": _item(i, 1)}} for i in range(items)])
    modified = batch([{"PutRequest": {"Item": _item(i, 2)}} for i in range(0, items, 4)])
    deleted = batch([{"DeleteRequest": {"Key": {"id": {"S": f"order-{i:05d}"}}}} for i in range(0, items, 10)])
    return f"wrote {inserted:,} items, modified {modified:,}, deleted {deleted:,}"


def create_table(ddb: Any, *, table: str) -> str:
    """A table keyed by ``id`` (a string) with a NEW_AND_OLD_IMAGES stream; the stream's ARN."""
    created = ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    return created["LatestStreamArn"]


def create_path(
    ddb: Any, kinesis: Any, s3: Any, *, table: str, stream: str, bucket: str, region: str
) -> tuple[str, str]:
    """The resources of the Kinesis path: the table (:func:`create_table`), a Kinesis stream of two shards and a
    bucket. Returns the table's stream ARN and the Kinesis stream's ARN."""
    table_stream = create_table(ddb, table=table)
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    return table_stream, summary["StreamARN"]


def create_pipe_path(
    ddb: Any, sqs: Any, s3: Any, *, table: str, queue: str, bucket: str, region: str
) -> tuple[str, str]:
    """The resources of the DynamoDB Streams path around the local pipe: the table (:func:`create_table`), the
    pipe's dead-letter queue and a bucket. Returns the table's stream ARN and the queue's URL."""
    table_stream = create_table(ddb, table=table)
    queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    return table_stream, queue_url


def _environment(url: str) -> None:
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION)
    os.environ.update(AWS_ACCESS_KEY_ID="sandbox", AWS_SECRET_ACCESS_KEY="sandbox", AWS_SESSION_TOKEN="sandbox")
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(name, None)


_JUNK = [b"not json", b"Hello World"]


def _through_kinesis(ddb: Any, s3: Any, items: int) -> tuple[Source, int]:
    """Steps 1 and 2 of the Kinesis path: the source run-local reads, and the number of changes in it."""
    kinesis = client_for("kinesis", REGION)
    table_stream, stream_arn = create_path(ddb, kinesis, s3, table=TABLE, stream=STREAM, bucket=BUCKET, region=REGION)
    print(f"1. table {TABLE!r} with a NEW_AND_OLD_IMAGES stream, Kinesis stream {STREAM!r}, bucket {BUCKET!r}")
    done = _write_changes(ddb, items)
    forwarded = forward(client_for("dynamodbstreams", REGION), kinesis, table_stream, stream_arn)
    for n, data in enumerate(_JUNK):
        kinesis.put_record(StreamARN=stream_arn, Data=data, PartitionKey=f"junk-{n}")
    print(f"2. {done}; forwarded the {forwarded:,} change records from DynamoDB Streams")
    print(f"   into Kinesis, and put {len(_JUNK)} junk records there directly")
    print(f"3. run-local, Kinesis -> handler -> s3://{BUCKET}/", end="")
    return KinesisSource(stream_arn, client=kinesis), forwarded


def _through_pipe(ddb: Any, s3: Any, items: int) -> tuple[Source, int]:
    """Steps 1 and 2 of the DynamoDB Streams path: the local pipe writes into the Direct PUT delivery stream."""
    sqs = client_for("sqs", REGION)
    table_stream, queue_url = create_pipe_path(
        ddb, sqs, s3, table=TABLE, queue=DEAD_LETTERS, bucket=BUCKET, region=REGION
    )
    print(f"1. table {TABLE!r} with a NEW_AND_OLD_IMAGES stream, Direct PUT delivery stream {DELIVERY!r},")
    print(f"   a pipe from the table's stream into it (dead-letter queue {DEAD_LETTERS!r}), bucket {BUCKET!r}")
    done = _write_changes(ddb, items)
    delivery = DirectPutSource(DELIVERY)

    def dead_letter(info: dict[str, Any]) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(info))

    pipe = Pipe(client_for("dynamodbstreams", REGION), table_stream, delivery, DELIVERY, dead_letter=dead_letter)
    stats = pipe.drain()
    delivery.put_record_batch(DeliveryStreamName=DELIVERY, Records=[{"Data": data} for data in _JUNK])
    print(f"2. {done}; the pipe read the {stats.records:,} change records from DynamoDB Streams in")
    print(f"   {stats.batches:,} batches and put them into {DELIVERY!r} with {stats.calls:,} PutRecordBatch calls, one")
    print(f"   stream record per Firehose record ({stats.retried:,} retried, {stats.dead_lettered:,} dead-lettered);")
    print(f"   put {len(_JUNK)} junk records there directly")
    print(f"3. run-local, Direct PUT {DELIVERY!r} -> handler -> s3://{BUCKET}/", end="")
    return delivery, stats.records


def _read_back(lake: S3Prefix) -> Iterator[tuple[str, list[list[str]] | list[FailedRecord]]]:
    for key in lake.listing():
        body = lake.get(key)
        if key.startswith("processing-failed/"):
            yield key, [r for r in read_error_object(body, key) if isinstance(r, FailedRecord)]
        else:
            yield key, list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


def run_sandbox(url: str, *, items: int, budget: int, out: str | None = None, source: str = "kinesis") -> int:
    """Run the whole path on the moto server at *url*, printing each step; 0 if every change arrived.

    *source* is ``kinesis`` (Kinesis Data Streams for DynamoDB) or ``dynamodb-streams`` (through a local pipe).
    """
    if source not in SOURCES:
        raise ValueError(f"source {source!r}: must be one of {', '.join(SOURCES)}")
    print(f"moto server on {url} (started by this command, stopped when it ends)")
    _environment(url)
    ddb, s3 = client_for("dynamodb", REGION), client_for("s3", REGION)
    firehose, forwarded = (_through_kinesis if source == "kinesis" else _through_pipe)(ddb, s3, items)

    env = {**SANDBOX_ENV, "PIPELINE_MAX_RESPONSE_BYTES": str(budget)}
    config = Config.from_env(env)
    configure_logging(config.log_level, sys.stderr)
    print(f" with {' '.join(f'{k}={v}' for k, v in env.items())}")
    handler, reingested = local_handler(config, firehose)
    lake = S3Prefix(BUCKET, client=s3)
    settings = Settings(buffer_bytes=200_000, buffer_seconds=900)
    dest = Destination(lake, stream=DELIVERY)
    tally = run_local(firehose, handler, dest, settings, reingested=reingested, progress=None)
    print(f"   {tally.line()}")
    if tally.first_failure:
        print(f"   first failed invocation: {tally.first_failure}")

    found = dict(_read_back(lake))
    rows = [row for key, rows in found.items() if not key.startswith("processing-failed/") for row in rows]
    failed = [rec for key, recs in found.items() if key.startswith("processing-failed/") for rec in recs]
    per_change = Counter(row[-1] for row in rows)
    duplicates = sum(n - 1 for n in per_change.values())
    print(f"4. read back {len(found):,} objects: {len(rows):,} rows for {len(per_change):,} of {forwarded:,} changes")
    print(f"   ({duplicates:,} at-least-once duplicates), {len(failed)} failed records under processing-failed/")

    out = out or tempfile.mkdtemp(prefix="ddb-firehose-sandbox-")
    for key in lake.listing():
        Folder(out).put(key, lake.get(key))
    report = redrive(
        Folder(out), Folder(out).listing("processing-failed/"), config, to_store(Destination(lake)), dry_run=True
    )
    print("5. redrive --dry-run of processing-failed/:")
    print("\n".join(f"   {line}" for line in report.lines(dry_run=True)))
    first = next((key for key in found if not key.startswith("processing-failed/")), None)
    if first is None:
        print(f"\nThe bucket's objects are in {out}; none holds rows.")
    else:
        print(f"\nThe bucket's objects are in {out}. The first lines of {first}:")
        print("".join(lake.get(first).decode("utf-8").splitlines(keepends=True)[:6]), end="")
    return 0 if len(per_change) == forwarded else 1
