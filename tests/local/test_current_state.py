"""The current-state view, proved on the whole path: moto's DynamoDB -> Kinesis -> run-local + handler -> S3.

Writes, updates (some several times in a row), deletes and re-inserts; then older change records are put into
the stream again after newer ones (replayed out of order, as the Kinesis source may deliver them); the handler
re-ingests over a small budget and two re-ingestion responses are lost on the wire (the fault, injected at the
edge by a proxy), so copies are real. The view printed by athena-ddl, parsed as Athena's dialect and transpiled
by sqlglot to DuckDB, runs over the delivered objects (a csv table, then a jsonl one) and must equal a final Scan
of the table, row by row.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections import Counter

import pytest
from duck import current_rows, downloaded
from fault_proxy import lost_responses

from pipeline import Config
from pipeline.local.forward import forward
from pipeline.local.runner import Settings, local_handler, run_local
from pipeline.local.sandbox import create_path
from pipeline.local.sources import KinesisSource
from pipeline.sinks.delivery import Destination
from pipeline.sinks.storage import S3Prefix

pytestmark = pytest.mark.moto

TABLE, STREAM, BUCKET = "orders", "orders-changes", "lake"
ITEMS = 600
COLUMNS = "event=@eventName,id,name,amount,flag,note,version=@version,eventID=@eventID"
DATA = ("id", "name", "amount", "flag", "note")  # the item's attributes, as the view and the Scan give them
BUDGET = 65_536
SETTINGS = Settings(buffer_bytes=200_000, buffer_seconds=900)
NAMES = ("Zürich", "São Paulo — „quoted“, 東京, 🦊", 'say "hi", then, bye', "", "Kraków")  # no line breaks:
# Athena's OpenCSVSerde splits a row at one (the README says so), so a csv table should not hold them.
LINES = "two\nlines\r\nthree"  # for jsonl, which keeps them
BIG = "12345678901234567890123456789012345678"


def item(i: int, version: int, names: tuple[str, ...] = NAMES) -> dict:
    doc = {
        "id": {"S": f"item-{i:05d}"},
        "name": {"S": names[(i + version) % len(names)]},
        "amount": {"N": BIG if i % 13 == 0 else f"-{i * version}.5" if i % 7 == 0 else str(i * version)},
        "flag": {"BOOL": (i + version) % 2 == 0},
    }
    if i % 3:
        doc["note"] = {"S": f"note {i}, v{version}"}
    return doc


def cells(doc: dict, fmt: str) -> tuple[str | None, ...]:
    """An item as the table's cells (numbers as DynamoDB sent them: compared as text; a missing note '' in csv)."""
    flag = "true" if doc["flag"]["BOOL"] else "false"
    note = doc.get("note", {}).get("S", "" if fmt == "csv" else None)
    return (doc["id"]["S"], doc["name"]["S"], doc["amount"]["N"], flag, note)


def delivered_rows(body: bytes, fmt: str, columns: list[str]) -> list[list[str]]:
    """The rows of one data object, as lists of cells in column order (jsonl: eventID and version are text)."""
    if fmt == "csv":
        return list(csv.reader(io.StringIO(body.decode(), newline="")))
    return [[json.loads(line)[c] for c in columns] for line in body.decode().splitlines()]


def write_changes(ddb, names: tuple[str, ...]) -> None:
    def batch(requests: list[dict]) -> None:
        for start in range(0, len(requests), 25):
            assert not ddb.batch_write_item(RequestItems={TABLE: requests[start : start + 25]}).get("UnprocessedItems")

    batch([{"PutRequest": {"Item": item(i, 1, names)}} for i in range(ITEMS)])
    batch([{"PutRequest": {"Item": item(i, 2, names)}} for i in range(0, ITEMS, 3)])
    batch([{"DeleteRequest": {"Key": {"id": {"S": f"item-{i:05d}"}}}} for i in range(0, ITEMS, 5)])
    batch([{"PutRequest": {"Item": item(i, 3, names)}} for i in range(0, ITEMS, 10)])  # back after a REMOVE
    for i in range(1, ITEMS, 50):  # several changes of one item in quick succession
        for n in range(4):
            ddb.update_item(
                TableName=TABLE,
                Key={"id": {"S": f"item-{i:05d}"}},
                UpdateExpression="SET amount = :a",
                ExpressionAttributeValues={":a": {"N": str(1000 * i + n)}},
            )
    ddb.delete_item(TableName=TABLE, Key={"id": {"S": f"item-{51:05d}"}})  # updated, then deleted


def replay_older_changes(kinesis, stream_arn: str) -> int:
    """Put every superseded change record of the stream into it again, after the newer ones; how many."""
    by_item: dict[str, list[dict]] = {}
    for rec in KinesisSource(stream_arn, client=kinesis).poll():
        change = json.loads(base64.b64decode(rec["data"]))
        by_item.setdefault(change["dynamodb"]["Keys"]["id"]["S"], []).append(change)
    older = [
        change
        for changes in by_item.values()
        for change in sorted(changes, key=lambda c: c["dynamodb"]["ApproximateCreationDateTime"])[:-1]
    ]
    for start in range(0, len(older), 500):
        entries = [
            {"Data": json.dumps(c, ensure_ascii=False).encode(), "PartitionKey": c["dynamodb"]["Keys"]["id"]["S"]}
            for c in older[start : start + 500]
        ]
        assert not kinesis.put_records(StreamARN=stream_arn, Records=entries).get("FailedRecordCount")
    return len(older)


def scan(ddb, fmt: str) -> list[tuple[str | None, ...]]:
    pages = ddb.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True)
    return sorted((cells(doc, fmt) for page in pages for doc in page["Items"]), key=repr)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_current_state_view_equals_the_table_after_reordering_and_lost_reingest_responses_at_the_edge(
    aws, monkeypatch, tmp_path, fmt
):
    ddb, kinesis, s3 = aws.client("dynamodb"), aws.client("kinesis"), aws.client("s3")
    table_stream, stream_arn = create_path(
        ddb, kinesis, s3, table=TABLE, stream=STREAM, bucket=BUCKET, region=aws.region
    )
    write_changes(ddb, NAMES if fmt == "csv" else (*NAMES, LINES))
    forwarded = forward(aws.client("dynamodbstreams"), kinesis, table_stream, stream_arn)
    replayed = replay_older_changes(kinesis, stream_arn)
    assert replayed > ITEMS // 3

    env = {"PIPELINE_COLUMNS": COLUMNS, "PIPELINE_FORMAT": fmt, "PIPELINE_MAX_RESPONSE_BYTES": str(BUDGET)}
    config = Config.from_env(env)
    columns = [c.name for c in config.columns]
    source = KinesisSource(stream_arn, client=kinesis)
    handler, reingested = local_handler(config, source)
    lake = S3Prefix(BUCKET, client=s3)
    faults = {2: (500, "InternalFailure"), 4: (400, "AccessDeniedException")}
    with lost_responses(aws.url, faults) as (proxy, proxied):
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy)  # the handler re-ingests through the proxy
        tally = run_local(source, handler, Destination(lake), SETTINGS, reingested=reingested, progress=io.StringIO())
    assert sorted(proxied.lost) == [2, 4] and tally.reingested > 0 and tally.failed == 0

    assert not [key for key in lake.listing() if key.startswith("processing-failed/")]
    rows = [row for key in lake.listing() for row in delivered_rows(lake.get(key), fmt, columns)]
    copies = sum(records for _status, records in proxied.lost.values())
    by_event = Counter(r[-1] for r in rows)
    assert len(by_event) == forwarded  # every change arrived ...
    assert len(rows) == forwarded + replayed + copies  # ... with the replayed and the re-ingested copies
    versions: dict[tuple[str, str], set[str]] = {}  # (item, version) -> the changes (eventIDs) with it
    for r in rows:
        versions.setdefault((r[1], r[-2]), set()).add(r[-1])
    assert all(len(v) == 20 and v.isdigit() for _item, v in versions)
    assert all(len(events) == 1 for events in versions.values())  # copies share a version; one item's changes never

    view = current_rows(config, TABLE, ["id"], downloaded(lake, tmp_path))
    current = sorted((tuple(row[columns.index(name)] for name in DATA) for row in view), key=repr)
    assert current == scan(ddb, fmt)  # equal, row by row, with nothing extra
    assert len(current) == len({c[0] for c in current}) > ITEMS // 2
