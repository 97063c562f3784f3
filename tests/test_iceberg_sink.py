"""The local Iceberg destination applies insert, update and delete by the unique keys, in record order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main
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


@pytest.mark.parametrize(
    "location",
    ["iceberg:", "iceberg:/tmp/x?tabel=db.t", "iceberg:/tmp/x?table=DB.T", "iceberg:/tmp/x?table=db.a&table=db.b"],
)
def test_a_bad_location_is_refused_with_what_to_write(location):
    with pytest.raises(ValueError, match=r"iceberg:DIR|database\.table|the only option|table=database\.table once"):
        parse_iceberg_location(location)


def test_an_existing_table_takes_rows_of_the_same_or_narrower_types_and_names_the_columns_that_differ(tmp_path):
    IcebergSink(tmp_path, TYPES).deliver_records([record("insert", "a")])  # db.t: id string, sk long, v string
    narrower = IcebergSink(tmp_path, (("id", "string"), ("sk", "int"), ("v", "string")))
    assert narrower.deliver_records([record("insert", "b")]) == (1, [])  # an int fits a long column
    other = IcebergSink(tmp_path, (("id", "bigint"), ("sk", "bigint"), ("v", "string"), ("w", "string")))
    with pytest.raises(ValueError) as refused:
        other.deliver_records(
            [Delivered(b'{"id": 1, "sk": 1, "v": null, "w": null}', None, 0, record("insert", "c").otf)]
        )
    assert str(refused.value) == (
        "table db.t exists with other columns (id: string in the table, long configured; w: missing in the table, "
        f"string configured): use another table name, or drop the table (or remove {tmp_path}) to make it anew"
    )
    assert rows(tmp_path) == [("a", 0, None), ("b", 0, None)]


CITIES = str(Path(__file__).resolve().parent.parent / "pipeline" / "samples" / "cities.json")


def run_local_to_iceberg(folder: Path, monkeypatch, capsys, **env: str) -> tuple[int, str]:
    """``run-local`` of the bundled cities into ``iceberg:FOLDER?table=lake.cities``: (status, stderr)."""
    monkeypatch.setenv("PIPELINE_FORMAT", "iceberg")
    monkeypatch.setenv("PIPELINE_ICEBERG_TABLE", "lake.cities")
    monkeypatch.setenv("PIPELINE_COLUMNS", "key,name,population,event=@eventName")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status = main(["run-local", "--file", CITIES, "--to", f"iceberg:{folder}?table=lake.cities"])
    return status, capsys.readouterr().err


def _one_line(err: str) -> str:
    """The error line, once the run's own log lines are left out (a mistake is said in exactly one line)."""
    said = [line for line in err.splitlines() if not line.startswith("{")]
    assert len(said) == 1, err
    return said[0]


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: (d / "catalog.db").write_text("garbage"), "catalog.db is not a SQLite catalog (file is not a"),
        (lambda d: (d / "catalog.db").mkdir(), "catalog.db is a folder, not a SQLite catalog: give a folder the"),
        (lambda d: (d / "warehouse").touch(), "warehouse is a file where the warehouse folder should be: give a"),
    ],
)
def test_a_folder_holding_something_else_where_the_catalog_or_warehouse_goes_is_one_line(
    make, says, tmp_path, monkeypatch, capsys
):
    make(tmp_path)
    status, err = run_local_to_iceberg(tmp_path, monkeypatch, capsys)
    assert status == 2
    assert _one_line(err).startswith(f"error: {tmp_path}/{says}")


def test_a_table_that_exists_with_other_column_types_is_one_line_naming_them(tmp_path, monkeypatch, capsys):
    assert run_local_to_iceberg(tmp_path, monkeypatch, capsys)[0] == 0
    status, err = run_local_to_iceberg(
        tmp_path, monkeypatch, capsys, PIPELINE_ICEBERG_TYPES="key=bigint,population=bigint"
    )
    assert status == 2
    assert _one_line(err).startswith(
        "error: table lake.cities exists with other columns (key: string in the table, long configured; population: "
        "string in the table, long configured): use another table name, or drop the table"
    )


def test_table_given_twice_in_the_iceberg_location_is_one_line(tmp_path, capsys):
    argv = ["run-local", "--file", CITIES, "--to", f"iceberg:{tmp_path}?table=lake.a&table=lake.b"]
    assert main(argv) == 2
    assert "give table=database.table once" in _one_line(capsys.readouterr().err)
