"""athena-ddl: the statement parsed back (sqlglot, Hive dialect) against the configuration it was made for."""

from __future__ import annotations

from datetime import date
from typing import Any, NamedTuple

import pytest
import sqlglot
from athena_readers import lazy_simple_fields, open_csv_fields
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from pipeline import Config, ConfigError, csv_line
from pipeline.cli import main
from pipeline.tools.athena import athena_ddl, athena_name, athena_type, firehose_prefix

COLUMNS = (
    "event=@eventName,id,name,address.city,tags[0],Population,at=@approximateCreationDateTime,"
    "@arrivalTimestamp,size=@sizeBytes,ttl=@isTtlDelete"
)
NAMES = ["event", "id", "name", "address_city", "tags_0_", "population", "at", "arrivaltimestamp", "size", "ttl"]


class Table(NamedTuple):
    name: str
    columns: list[tuple[str, str]]
    partitions: list[tuple[str, str]]
    serde: str
    serde_properties: dict[str, str]
    location: str
    properties: dict[str, str]


def parse(ddl: str) -> Table:
    """The parts of a CREATE EXTERNAL TABLE statement, string literals unescaped as Hive does."""
    create = sqlglot.parse_one(ddl, read="hive")
    assert isinstance(create, exp.Create)
    assert create.args["kind"] == "TABLE" and create.find(exp.ExternalProperty)

    def columns(schema: Any) -> list[tuple[str, str]]:
        return [(c.name, c.args["kind"].sql("hive").lower()) for c in schema.expressions]

    partitioned = create.find(exp.PartitionedByProperty)
    serde = create.find(exp.RowFormatSerdeProperty)
    serde_properties = serde.args.get("serde_properties")
    return Table(
        name=create.this.this.sql("hive"),
        columns=columns(create.this),
        partitions=columns(partitioned.this) if partitioned else [],
        serde=serde.this.this,
        serde_properties={p.name: p.args["value"].this for p in serde_properties.expressions}
        if serde_properties
        else {},
        location=create.find(exp.LocationProperty).this.this,
        properties={
            p.name: p.args["value"].this for p in create.args["properties"].expressions if type(p) is exp.Property
        },
    )


def ddl_for(env: dict[str, str], **options: Any) -> Table:
    return parse(athena_ddl(Config.from_env(env), "analytics.cities", "s3://my-bucket/data", **options))


def test_csv_every_column_a_string_with_opencsv_and_escaping_off():
    table = ddl_for({"PIPELINE_COLUMNS": COLUMNS, "PIPELINE_NULL": "NULL"})
    assert table.name == "`analytics`.`cities`"
    assert table.columns == [(name, "string") for name in NAMES]
    assert table.serde == "org.apache.hadoop.hive.serde2.OpenCSVSerde"
    assert table.serde_properties == {"separatorChar": ",", "quoteChar": '"', "escapeChar": "\0"}
    assert table.location == "s3://my-bucket/data/"
    assert table.partitions == [] and table.properties == {}


@pytest.mark.parametrize("null", ["", "\\N", "NULL", "it's \\N"])
def test_tsv_types_escapes_and_null_text(null):
    table = ddl_for({"PIPELINE_COLUMNS": COLUMNS, "PIPELINE_FORMAT": "tsv", "PIPELINE_NULL": null})
    types = dict(table.columns)
    assert list(types) == NAMES
    assert (types["size"], types["ttl"], types["at"], types["id"]) == ("bigint", "boolean", "string", "string")
    assert table.serde == "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
    assert table.serde_properties == {"field.delim": "\t", "escape.delim": "\\", "serialization.null.format": null}


def test_jsonl_maps_renamed_keys_and_reads_times_as_timestamps():
    table = ddl_for({"PIPELINE_COLUMNS": COLUMNS, "PIPELINE_FORMAT": "jsonl"}, types={"Population": "BIGINT"})
    types = dict(table.columns)
    assert list(types) == NAMES
    assert (types["at"], types["arrivaltimestamp"], types["population"]) == ("timestamp", "timestamp", "bigint")
    assert table.serde == "org.openx.data.jsonserde.JsonSerDe"
    # keys that differ from their column other than by case; OpenX matches keys case-insensitively
    assert table.serde_properties == {"mapping.address_city": "address.city", "mapping.tags_0_": "tags[0]"}


def test_decimal_for_numbers_with_38_digits():
    table = ddl_for({"PIPELINE_COLUMNS": "id,amount", "PIPELINE_FORMAT": "jsonl"}, types={"amount": "decimal(38,9)"})
    assert table.columns == [("id", "string"), ("amount", "decimal(38, 9)")]


def test_partition_keys_are_projected_where_firehose_writes_them():
    env = {
        "PIPELINE_COLUMNS": "id",
        "PIPELINE_PARTITION_KEYS": "Day=@approximateCreationDateTime|%Y-%m-%d,hour=ts|%H,src.table=@tableName",
    }
    table = ddl_for(env, since=date(2024, 2, 29))
    assert table.partitions == [("day", "string"), ("hour", "string"), ("src_table", "string")]
    assert table.properties == {
        "projection.enabled": "true",
        "projection.day.type": "date",
        "projection.day.format": "yyyy-MM-dd",
        "projection.day.range": "2024-02-29,NOW",
        "projection.day.interval": "1",
        "projection.day.interval.unit": "DAYS",
        "projection.hour.type": "integer",  # an hour of the day, not a point in time: 00 to 23
        "projection.hour.range": "0,23",
        "projection.hour.digits": "2",
        "projection.src_table.type": "injected",
        "storage.location.template": "s3://my-bucket/data/Day=${day}/hour=${hour}/src.table=${src_table}/",
    }
    keys = Config.from_env(env).partition_keys
    firehose = table.properties["storage.location.template"]
    for name, column in (("Day", "day"), ("hour", "hour"), ("src.table", "src_table")):
        firehose = firehose.replace(f"${{{column}}}", f"!{{partitionKeyFromLambda:{name}}}")
    assert firehose == table.location + firehose_prefix(keys)


def test_a_date_without_a_year_cannot_be_a_range():
    env = {"PIPELINE_COLUMNS": "id", "PIPELINE_PARTITION_KEYS": "md=@approximateCreationDateTime|%m-%d"}
    assert ddl_for(env).properties["projection.md.type"] == "injected"


def test_date_formats_with_literals_and_units():
    env = {"PIPELINE_COLUMNS": "id", "PIPELINE_PARTITION_KEYS": "at=@approximateCreationDateTime|%Y/%m/%dT%H:%M"}
    properties = ddl_for(env).properties
    assert properties["projection.at.format"] == "yyyy/MM/dd'T'HH:mm"
    assert properties["projection.at.interval.unit"] == "MINUTES"
    assert properties["projection.at.range"] == "2020/01/01T00:00,NOW"


@pytest.mark.parametrize(
    ("env", "options", "message"),
    [
        ({"PIPELINE_FORMAT": "jsonl"}, {}, "set PIPELINE_COLUMNS"),
        ({"PIPELINE_COLUMNS": "EventName,@eventName"}, {}, "are both `eventname`"),
        ({"PIPELINE_COLUMNS": "day", "PIPELINE_PARTITION_KEYS": "Day=@tableName"}, {}, "are both `day`"),
        ({"PIPELINE_COLUMNS": "id"}, {"types": {"id": "bigint"}}, "CAST in queries"),
        ({"PIPELINE_COLUMNS": "id", "PIPELINE_FORMAT": "tsv"}, {"types": {"nope": "bigint"}}, "unknown columns"),
        ({"PIPELINE_COLUMNS": "id", "PIPELINE_FORMAT": "tsv"}, {"types": {"id": "int; drop"}}, "not an Athena type"),
        ({"PIPELINE_COLUMNS": "id", "PIPELINE_FORMAT": "tsv"}, {"types": {"id": "varchr"}}, "not an Athena type"),
        ({"PIPELINE_COLUMNS": "id", "PIPELINE_FORMAT": "tsv"}, {"types": {"id": "decimal(39,2)"}}, "precision"),
    ],
)
def test_what_athena_cannot_take_is_refused(env, options, message):
    with pytest.raises(ValueError, match=message):
        athena_ddl(Config.from_env(env), "t", "s3://bucket/data/", **options)


@pytest.mark.parametrize(
    ("table", "location"), [("a.b.c", "s3://bucket/"), ("t", "https://bucket/"), ("t;", "s3://b/")]
)
def test_table_and_location_are_checked(table, location):
    with pytest.raises(ValueError, match=r"^(table|location) "):
        athena_ddl(Config.from_env({"PIPELINE_COLUMNS": "id"}), table, location)


def test_command_line_reads_the_pipeline_variables(monkeypatch, capsys):
    env = {"PIPELINE_COLUMNS": "id,amount", "PIPELINE_FORMAT": "tsv", "PIPELINE_PARTITION_KEYS": "t=@tableName"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = ["athena-ddl", "--table", "cities", "--location", "s3://bucket/data/", "--type", "amount=decimal(38,2)"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert (
        out == athena_ddl(Config.from_env(env), "cities", "s3://bucket/data/", types={"amount": "decimal(38,2)"}) + "\n"
    )
    assert err == "-- Firehose must write under s3://bucket/data/t=!{partitionKeyFromLambda:t}/\n"
    assert main(["athena-ddl", "--table", "cities", "--location", "s3://bucket/", "--since", "May"]) == 2
    assert "argument --since: 'May' is not a date" in capsys.readouterr().err


def test_since_is_refused_where_it_would_change_nothing_or_leave_no_day(monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_COLUMNS", "id")
    monkeypatch.setenv("PIPELINE_PARTITION_KEYS", "t=@tableName")
    args = ["athena-ddl", "--table", "cities", "--location", "s3://bucket/"]
    assert main([*args, "--since", "2021-01-01"]) == 2
    assert "PIPELINE_PARTITION_KEYS has none with a year" in capsys.readouterr().err
    monkeypatch.setenv("PIPELINE_PARTITION_KEYS", "day=@approximateCreationDateTime|%Y-%m-%d")
    assert main([*args, "--since", "2999-01-01"]) == 2
    assert "--since 2999-01-01 is after today: the date partitions would hold no day" in capsys.readouterr().err
    assert main([*args, "--since", "2021-01-01", "--iceberg"]) == 2
    assert "an Iceberg table has none" in capsys.readouterr().err
    assert main([*args, "--since", "2021-01-01"]) == 0
    assert "'projection.day.range'='2021-01-01,NOW'" in capsys.readouterr().out.replace(" ", "")


# What Athena reads from the bytes the encoders write, with the SerDe properties chosen above.

CELL = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\0"), max_size=12)


@given(st.lists(CELL, min_size=1, max_size=6))
def test_opencsv_with_escaping_off_reads_our_csv_back_exactly(cells):
    line = csv_line(cells).removesuffix("\n")
    assert open_csv_fields(line, len(cells), escape="\0") == cells


def test_opencsv_default_escape_would_lose_backslashes():
    cells = ["C:\\temp", '{"q":"say \\"hi\\""}']
    line = csv_line(cells).removesuffix("\n")
    assert open_csv_fields(line, 2, escape="\0") == cells
    assert open_csv_fields(line, 2) != cells


def test_lazy_simple_reads_our_tsv_back_but_tab_and_line_breaks_as_letters():
    from pipeline import Record, encode

    rows = ({"a": {"S": "C:\\temp"}, "b": {"S": "\\N"}, "c": {"NULL": True}, "d": None, "e": {"S": "a\tb\nc"}},)
    line = next(encode("tsv", null="\\N")([Record("1", {}, rows)])).value.decode().removesuffix("\n")
    assert lazy_simple_fields(line, null="\\N") == ["C:\\temp", "\\N", None, None, "atbnc"]


def test_athena_names():
    assert [athena_name(n) for n in ("eventName", "a.b", "x[0].y", "_id")] == ["eventname", "a_b", "x_0_y", "_id"]


def test_a_format_athena_cannot_project_is_injected_as_the_handler_accepts_it():
    env = {"PIPELINE_COLUMNS": "id", "PIPELINE_PARTITION_KEYS": "d=@approximateCreationDateTime|%a"}
    assert ddl_for(env).properties["projection.d.type"] == "injected"


def test_a_format_the_configuration_refuses_never_reaches_athena():
    env = {"PIPELINE_COLUMNS": "id", "PIPELINE_PARTITION_KEYS": "day=@approximateCreationDateTime|%Q"}
    with pytest.raises(ConfigError, match="%Q in '%Q' is not a strftime code"):
        Config.from_env(env)


TYPES = [
    "boolean",
    "tinyint",
    "smallint",
    "int",
    "integer",
    "bigint",
    "float",
    "double",
    "string",
    "binary",
    "date",
    "timestamp",
    "decimal",
    "decimal(10)",
    "decimal(38,9)",
    "char(1)",
    "varchar(65535)",
    "array<string>",
    "map<string,bigint>",
    "struct<a:int,b:array<decimal(5,2)>>",
    "ARRAY < MAP < INT , STRING > >",
]
NOT_TYPES = [
    "varchr",
    "",
    "int; drop",
    "decimal(0)",
    "decimal(39,1)",
    "decimal(5,6)",
    "char",
    "char(256)",
    "varchar()",
    "array<>",
    "array<int",
    "map<array<int>,int>",
    "struct<>",
    "struct<a int>",
    "int int",
    "timestamp(3)",
    "real",
]


@pytest.mark.parametrize("kind", TYPES)
def test_athena_types_accepted_are_ones_sqlglot_reads_as_athena_types(kind):
    normal = athena_type(kind)
    parsed = sqlglot.parse_one(f"CREATE EXTERNAL TABLE t (c {normal})", read="athena")
    assert parsed.find(sqlglot.exp.DataType) is not None


@pytest.mark.parametrize("kind", NOT_TYPES)
def test_athena_types_refused_say_what_would_do(kind):
    with pytest.raises(ValueError, match=r"is not an Athena type.*use boolean"):
        athena_type(kind)
