"""The local Iceberg destination applies insert, update and delete by the unique keys, in record order."""

from __future__ import annotations

import json

import pytest

from pipeline.sinks.delivery import Delivered
from pipeline.sinks.iceberg import IcebergSink, open_catalog, parse_iceberg_location

TYPES = (("id", "string"), ("sk", "bigint"), ("v", "string"))


def record(operation: str, key: str, v: str | None = None, sk: int = 0, table: str = "t") -> Delivered:
    otf = {"destinationDatabaseName": "db", "destinationTableName": table, "operation": operation}
    return Delivered(json.dumps({"id": key, "sk": sk, "v": v}).encode(), None, 0, otf)


def rows(folder, table: str = "t") -> list[tuple]:
    found = open_catalog(folder).load_table(("db", table)).scan().to_arrow().to_pylist()
    return sorted((r["id"], r["sk"], r["v"]) for r in found)


def test_operations_in_one_delivery_leave_what_applying_them_in_order_would(tmp_path):
    sink = IcebergSink(tmp_path, TYPES, keys=["id", "sk"])
    sink.deliver_records([record("insert", "a", "1"), record("insert", "b", "1"), record("insert", "c", "1")])
    commits, rejected = sink.deliver_records(
        [
            record("update", "a", "2"),
            record("update", "a", "3"),  # the later update of a key wins
            record("delete", "b"),
            record("update", "b", "back"),  # deleted, then back
            record("insert", "d", "1"),
            record("delete", "d"),  # an insert deleted later in the same delivery is gone
            record("delete", "c", sk=9),  # another key (id, sk): c stays
            record("update", "e", "new"),  # an update of a key no row has is an insert
        ]
    )
    assert (commits, rejected) == (1, [])
    assert rows(tmp_path) == [("a", 0, "3"), ("b", 0, "back"), ("c", 0, "1"), ("e", 0, "new")]


def test_records_it_cannot_apply_are_answered_with_the_reason_and_the_rest_committed(tmp_path):
    sink = IcebergSink(tmp_path, TYPES)  # no unique keys
    bad_type = Delivered(b'{"id": "x", "sk": "one", "v": null}', None, 0, record("insert", "x").otf)
    extra = Delivered(b'{"id": "y", "sk": 1, "v": null, "w": 2}', None, 0, record("insert", "y").otf)
    commits, rejected = sink.deliver_records([record("update", "a"), bad_type, extra, record("insert", "ok")])
    assert commits == 1
    assert rejected == [
        (0, "Iceberg: an update needs unique keys (PIPELINE_ICEBERG_KEYS)"),
        (1, "Iceberg: long takes whole numbers that fit it"),
        (2, "Iceberg: the record has columns the table does not: ['w']"),
    ]
    assert rows(tmp_path) == [("ok", 0, None)]


def test_each_record_goes_to_the_table_its_otf_metadata_names_created_if_absent(tmp_path):
    sink = IcebergSink(tmp_path, TYPES, table="db.default")
    plain = Delivered(b'{"id": "p", "sk": 1, "v": "x"}', None, 0)
    assert sink.deliver_records([record("insert", "a", table="one"), record("insert", "b", table="two"), plain])[0] == 3
    assert [rows(tmp_path, t) for t in ("one", "two", "default")] == [
        [("a", 0, None)],
        [("b", 0, None)],
        [("p", 1, "x")],
    ]


@pytest.mark.parametrize("location", ["iceberg:", "iceberg:/tmp/x?tabel=db.t", "iceberg:/tmp/x?table=DB.T"])
def test_a_bad_location_is_refused_with_what_to_write(location):
    with pytest.raises(ValueError, match=r"iceberg:DIR|database\.table|the only option"):
        parse_iceberg_location(location)
