"""DynamoDB -> DynamoDB Streams -> Kinesis -> local Firehose + handler -> local Iceberg tables (pyiceberg), on moto.

Append mode: every change is a row; the current-state view of ``athena-ddl --iceberg --current`` over the table
(each key's highest ``@version``, left out when that is a REMOVE), run in DuckDB, equals a final DynamoDB ``Scan``,
with re-ingestion and records replayed out of order. Upsert mode (no reordering): the table itself equals the
Scan. The last test shows why the README says upsert is only safe without reordering: one replayed old change
leaves a stale row.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from pipeline import Config
from pipeline.local.forward import forward
from pipeline.local.runner import Settings, local_handler, run_local
from pipeline.local.sandbox import create_path
from pipeline.local.sources import KinesisSource
from pipeline.sinks.delivery import Delivered
from pipeline.sinks.iceberg import open_catalog, open_iceberg
from pipeline.tools.athena import iceberg_ddl
from pipeline.tools.views import current_view

pytestmark = pytest.mark.moto

TABLE, STREAM, BUCKET = "Orders-EU", "orders-changes", "lake"
ITEMS = 150
BIG = "12345678901234567890123456789012345678"
COLUMNS = "id,version=@version,event=@eventName,name,amount,n,flag,note,blob,tags,at=@approximateCreationDateTime"
TYPES = "n=bigint,flag=boolean,blob=binary,tags=array<string>"
SETTINGS = Settings(buffer_bytes=200_000, buffer_seconds=900)
DATA = ["id", "name", "amount", "n", "flag", "note", "blob", "tags"]  # the columns that come from the item


def item(i: int, version: int) -> dict:
    doc = {
        "id": {"S": f"item-{i:04d}"},
        "name": {"S": ("Zürich", "São Paulo, „quoted“", 'say "hi"', "two\nlines", "")[(i + version) % 5]},
        "amount": {"N": BIG if i % 13 == 0 else f"-{i * version}.5" if i % 7 == 0 else str(i * version)},
        "n": {"N": str(i * 1_000_000_007 * version)},
        "flag": {"BOOL": (i + version) % 2 == 0},
        "tags": {"SS": [f"v{version}", "dynamo"]},
    }
    if i % 3 == 0:
        doc["note"] = {"NULL": True}
    elif i % 3 == 1:
        doc["note"] = {"S": f"note {i}, v{version}"}
    if i % 4 == 0:
        doc["blob"] = {"B": bytes([i % 256, 0, 255, version])}
    return doc


def write_changes(ddb) -> None:
    """Insert, modify (twice for some), delete, and re-insert some deleted items: every kind of history."""

    def batch(requests: list[dict]) -> None:
        for start in range(0, len(requests), 25):
            assert not ddb.batch_write_item(RequestItems={TABLE: requests[start : start + 25]}).get("UnprocessedItems")

    batch([{"PutRequest": {"Item": item(i, 1)}} for i in range(ITEMS)])
    batch([{"PutRequest": {"Item": item(i, 2)}} for i in range(0, ITEMS, 3)])
    batch([{"PutRequest": {"Item": item(i, 3)}} for i in range(0, ITEMS, 6)])
    batch([{"DeleteRequest": {"Key": {"id": {"S": f"item-{i:04d}"}}}} for i in range(0, ITEMS, 5)])
    batch([{"PutRequest": {"Item": item(i, 4)}} for i in range(0, ITEMS, 10)])  # deleted, then back


def scanned(ddb) -> dict[str, dict]:
    """The final table, by a DynamoDB Scan, as rows of the Iceberg table's values."""
    rows = {}
    for page in ddb.get_paginator("scan").paginate(TableName=TABLE):
        for found in page["Items"]:
            rows[found["id"]["S"]] = {
                "id": found["id"]["S"],
                "name": found["name"]["S"],
                "amount": found["amount"]["N"],
                "n": int(found["n"]["N"]),
                "flag": found["flag"]["BOOL"],
                "note": found["note"]["S"] if "S" in found.get("note", {}) else None,
                "blob": found["blob"]["B"] if "blob" in found else None,
                "tags": sorted(found["tags"]["SS"]),
            }
    return rows


def table_rows(folder: Path, name: str) -> list[dict]:
    """Every row of a local Iceberg table, read back with pyiceberg (a fresh catalog, as another reader would)."""
    rows = open_catalog(folder).load_table(("lake", name)).scan().to_arrow().to_pylist()
    for row in rows:
        if row.get("tags") is not None:
            row["tags"] = sorted(row["tags"])
    return rows


def current_state(config: Config, folder: Path, table: str) -> dict[str, dict]:
    """What ``athena-ddl --iceberg --current --key id`` prints, run for real: the Iceberg table as that DDL declares
    it (both statements parsed as Athena's dialect, transpiled by sqlglot to DuckDB's), filled with the rows read
    back from the local Iceberg table, and the current-state view over it."""
    database, name = table.split(".")
    create = sqlglot.parse_one(iceberg_ddl(config, table, f"s3://my-bucket/warehouse/{name}/"), read="athena")
    view = sqlglot.parse_one(current_view(config, table, ["id"]), read="athena")
    assert isinstance(create, exp.Create) and isinstance(view, exp.Create)
    create.set("properties", None)  # LOCATION and TBLPROPERTIES: where Athena keeps it, nothing DuckDB needs
    rows = open_catalog(folder).load_table((database, name)).scan().to_arrow()
    con = duckdb.connect()
    try:
        con.execute(f'CREATE SCHEMA "{database}"')
        con.execute(create.sql("duckdb"))
        con.register("iceberg_rows", rows)
        con.execute(f'INSERT INTO "{database}"."{name}" SELECT * FROM iceberg_rows')  # the DDL's types hold them
        con.execute(view.sql("duckdb"))
        cursor = con.execute(f'SELECT * FROM "{database}"."{name}_current"')
        names = [d[0] for d in cursor.description]
        found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    return {row["id"]: {c: sorted(row[c]) if c == "tags" else row[c] for c in DATA} for row in found}


def run_path(aws, tmp_path: Path, env: dict, *, replay: int = 0) -> tuple:
    ddb, kinesis, s3 = aws.client("dynamodb"), aws.client("kinesis"), aws.client("s3")
    table_stream, stream_arn = create_path(
        ddb, kinesis, s3, table=TABLE, stream=STREAM, bucket=BUCKET, region=aws.region
    )
    write_changes(ddb)
    forwarded = forward(aws.client("dynamodbstreams"), kinesis, table_stream, stream_arn)
    if replay:  # the first changes again, after all the others: out of order and repeated, as that source may
        for rec in KinesisSource(stream_arn, client=kinesis).poll()[:replay]:
            key = rec["kinesisRecordMetadata"]["partitionKey"]
            kinesis.put_record(StreamARN=stream_arn, Data=base64.b64decode(rec["data"]), PartitionKey=key)
    config = Config.from_env(env)
    source = KinesisSource(stream_arn, client=kinesis)
    handler, reingested = local_handler(config, source)
    sink = open_iceberg(f"iceberg:{tmp_path}?table=lake.unused", config.iceberg_types, config.iceberg_keys, "s")
    tally = run_local(source, handler, sink, SETTINGS, reingested=reingested)
    assert tally.failed == 0 and tally.dropped == 0
    assert tally.delivered == forwarded + replay  # every change once (and each replayed copy)
    return scanned(ddb), tally


BASE = {"PIPELINE_FORMAT": "iceberg", "PIPELINE_ICEBERG_TABLE": "lake.{tableName}", "PIPELINE_COLUMNS": COLUMNS}


def test_append_mode_current_state_over_the_iceberg_table_equals_the_final_scan(aws, tmp_path):
    env = {**BASE, "PIPELINE_ICEBERG_TYPES": TYPES, "PIPELINE_MAX_RESPONSE_BYTES": "65536"}
    expected, tally = run_path(aws, tmp_path, env, replay=40)
    assert tally.reingested > 0  # records went back into the stream and came round later
    rows = table_rows(tmp_path, "orders_eu")  # {tableName} routed Orders-EU here
    assert len(rows) == tally.delivered  # append: every change is a row, the replayed copies too
    assert {row["event"] for row in rows} == {"INSERT", "MODIFY", "REMOVE"}
    assert current_state(Config.from_env(env), tmp_path, "lake.orders_eu") == expected  # equal, nothing extra
    assert len(expected) == ITEMS - len(range(0, ITEMS, 5)) + len(range(0, ITEMS, 10))
    big = [row for row in rows if row["amount"] == BIG]
    assert big and all(type(row["at"]).__name__ == "datetime" for row in rows)


def test_upsert_mode_without_reordering_leaves_the_table_equal_to_the_final_scan(aws, tmp_path):
    env = {**BASE, "PIPELINE_ICEBERG_TYPES": TYPES, "PIPELINE_ICEBERG_MODE": "upsert", "PIPELINE_ICEBERG_KEYS": "id"}
    expected, tally = run_path(aws, tmp_path, env)
    assert tally.reingested == 0  # the default budget: nothing goes back, so nothing is reordered
    rows = {row["id"]: {c: row[c] for c in DATA} for row in table_rows(tmp_path, "orders_eu")}
    assert len(rows) == len(table_rows(tmp_path, "orders_eu"))  # one row per key
    assert rows == expected


def test_upsert_mode_with_a_replayed_old_change_is_left_stale_as_the_readme_warns(aws, tmp_path):
    env = {**BASE, "PIPELINE_ICEBERG_TYPES": TYPES, "PIPELINE_ICEBERG_MODE": "upsert", "PIPELINE_ICEBERG_KEYS": "id"}
    expected, _ = run_path(aws, tmp_path, env, replay=10)
    rows = {row["id"]: {c: row[c] for c in DATA} for row in table_rows(tmp_path, "orders_eu")}
    assert rows != expected  # an INSERT replayed after its MODIFY or REMOVE wins: upsert cannot tell


def test_decimal_and_timestamp_values_round_trip_through_the_table(tmp_path):
    config = Config.from_env(
        {
            **BASE,
            "PIPELINE_ICEBERG_TABLE": "lake.prices",
            "PIPELINE_COLUMNS": "id,price,at=@approximateCreationDateTime",
            "PIPELINE_ICEBERG_TYPES": "price=decimal(38,2)",
        }
    )
    sink = open_iceberg(f"iceberg:{tmp_path}", config.iceberg_types, (), "s")
    otf = {"destinationDatabaseName": "lake", "destinationTableName": "prices", "operation": "insert"}
    good = b'{"id": "a", "price": 123456789012345678901234567890123456.78, "at": 1767225600123456}'
    bad = b'{"id": "b", "price": 1.005, "at": 0}'
    rejected = sink.deliver_records([Delivered(good, None, 0, otf), Delivered(bad, None, 0, otf)])
    assert rejected == (1, [(1, "Iceberg: 1.005 does not fit decimal(38,2)")])
    (row,) = table_rows(tmp_path, "prices")
    assert row["price"] == Decimal("123456789012345678901234567890123456.78")
    assert row["at"].isoformat() == "2026-01-01T00:00:00.123456"
