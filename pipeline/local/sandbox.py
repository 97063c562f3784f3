"""``python -m pipeline sandbox``: the whole path, locally, on a moto server this command starts and stops.

DynamoDB table (with a stream) -> DynamoDB Streams -> Kinesis (the Kinesis Data Streams for DynamoDB format)
-> ``run-local`` with the handler (a small response budget, so records are re-ingested) -> S3. Then it reads
the bucket back, checks that every change arrived, shows what failed and what ``redrive`` would do with it, and
copies the bucket into a local folder to look at. Everything runs against ``127.0.0.1`` with fake credentials,
whatever the environment says: nothing can reach an AWS account. Needs ``moto[server]`` (``make local``).
"""

from __future__ import annotations

import csv
import io
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
from .runner import Settings, local_handler, run_local
from .sources import KinesisSource

__all__ = ["SANDBOX_ENV", "create_path", "run_sandbox"]

TABLE, STREAM, BUCKET, REGION = "orders", "orders-changes", "local-lake", "eu-west-1"
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


def create_path(
    ddb: Any, kinesis: Any, s3: Any, *, table: str, stream: str, bucket: str, region: str
) -> tuple[str, str]:
    """The resources of the whole path: a table keyed by ``id`` with a NEW_AND_OLD_IMAGES stream, a Kinesis
    stream of two shards and a bucket. Returns the table's stream ARN and the Kinesis stream's ARN."""
    created = ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    return created["LatestStreamArn"], summary["StreamARN"]


def _create(url: str) -> tuple[Any, Any, Any, str, str]:
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION)
    os.environ.update(AWS_ACCESS_KEY_ID="sandbox", AWS_SECRET_ACCESS_KEY="sandbox", AWS_SESSION_TOKEN="sandbox")
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(name, None)
    ddb, kinesis, s3 = (client_for(service, REGION) for service in ("dynamodb", "kinesis", "s3"))
    arns = create_path(ddb, kinesis, s3, table=TABLE, stream=STREAM, bucket=BUCKET, region=REGION)
    return ddb, kinesis, s3, *arns


def _read_back(lake: S3Prefix) -> Iterator[tuple[str, list[list[str]] | list[FailedRecord]]]:
    for key in lake.listing():
        body = lake.get(key)
        if key.startswith("processing-failed/"):
            yield key, [r for r in read_error_object(body, key) if isinstance(r, FailedRecord)]
        else:
            yield key, list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


def run_sandbox(url: str, *, items: int, budget: int, out: str | None = None) -> int:
    """Run the whole path on the moto server at *url*, printing each step; 0 if every change arrived."""
    print(f"moto server on {url} (started by this command, stopped when it ends)")
    ddb, kinesis, s3, table_stream, stream_arn = _create(url)
    print(f"1. table {TABLE!r} with a NEW_AND_OLD_IMAGES stream, Kinesis stream {STREAM!r}, bucket {BUCKET!r}")
    done = _write_changes(ddb, items)
    junk = [b"not json", b"Hello World"]
    forwarded = forward(client_for("dynamodbstreams", REGION), kinesis, table_stream, stream_arn)
    for n, data in enumerate(junk):
        kinesis.put_record(StreamARN=stream_arn, Data=data, PartitionKey=f"junk-{n}")
    print(f"2. {done}; forwarded the {forwarded:,} change records from DynamoDB Streams")
    print(f"   into Kinesis, and put {len(junk)} junk records there directly")

    env = {**SANDBOX_ENV, "PIPELINE_MAX_RESPONSE_BYTES": str(budget)}
    config = Config.from_env(env)
    configure_logging(config.log_level, sys.stderr)
    print(f"3. run-local, Kinesis -> handler -> s3://{BUCKET}/ with {' '.join(f'{k}={v}' for k, v in env.items())}")
    source = KinesisSource(stream_arn, client=kinesis)
    handler, reingested = local_handler(config, source)
    lake = S3Prefix(BUCKET, client=s3)
    settings = Settings(buffer_bytes=200_000, buffer_seconds=900)
    dest = Destination(lake, stream="orders-to-lake")
    tally = run_local(source, handler, dest, settings, reingested=reingested, progress=None)
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
