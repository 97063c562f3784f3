"""PIPELINE_FORMAT=iceberg: typed JSON per change and metadata.otfMetadata, through the real handler."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import firehose_event, outputs, results, run
from hypothesis import given
from hypothesis import strategies as st

from pipeline import Config, ConfigError, Record, respond, within_budget
from pipeline.budget import entry_size, response_floor
from pipeline.cli import main

pytestmark = pytest.mark.usefixtures("parser")  # every test here runs on both parser paths

BASE = {
    "PIPELINE_FORMAT": "iceberg",
    "PIPELINE_ICEBERG_TABLE": "lake.orders",
    "PIPELINE_COLUMNS": "id,amount,name,event=@eventName,at=@approximateCreationDateTime",
}


def change(event: str, key: str, *, table: str = "orders", **attributes: dict) -> bytes:
    """A change in the Kinesis Data Streams for DynamoDB format, as bytes."""
    image = {"id": {"S": key}, **attributes}
    ddb: dict = {"Keys": {"id": {"S": key}}, "ApproximateCreationDateTime": 1_767_225_600_123}
    ddb["OldImage" if event == "REMOVE" else "NewImage"] = image
    return json.dumps({"eventName": event, "tableName": table, "dynamodb": ddb}).encode()


def otf(response: dict) -> list[dict | None]:
    return [(e.get("metadata") or {}).get("otfMetadata") for e in response["records"]]


def objects(response: dict) -> list[dict | None]:
    return [json.loads(o) if o else None for o in outputs(response)]


def test_append_mode_inserts_every_change_as_one_typed_object():
    event = firehose_event(
        [
            change("INSERT", "a", amount={"N": "12345678901234567890123456789012345678"}, name={"S": "Zürich"}),
            change("MODIFY", "a", amount={"N": "1.50"}),
            change("REMOVE", "a", amount={"N": "-2"}, name={"NULL": True}),
        ]
    )
    response = run(event, **BASE)
    assert results(response) == ["Ok", "Ok", "Ok"]
    assert (
        otf(response)
        == [{"destinationDatabaseName": "lake", "destinationTableName": "orders", "operation": "insert"}] * 3
    )
    data = outputs(response)
    assert data[0] == (
        b'{"id":"a","amount":"12345678901234567890123456789012345678","name":"Z\xc3\xbcrich","event":"INSERT",'
        b'"at":1767225600123000}\n'
    )  # a string column keeps every digit; the time is epoch microseconds; every column is written
    assert objects(response)[1]["name"] is None and objects(response)[2]["event"] == "REMOVE"


def test_upsert_mode_updates_on_insert_and_modify_and_deletes_on_remove():
    event = firehose_event([change("INSERT", "a"), change("MODIFY", "a"), change("REMOVE", "a")])
    response = run(event, **BASE, PIPELINE_ICEBERG_MODE="upsert", PIPELINE_ICEBERG_KEYS="id")
    assert [m["operation"] for m in otf(response)] == ["update", "update", "delete"]


def test_upsert_mode_fails_a_change_without_its_key_value(caplog):
    keyless = json.dumps({"eventName": "MODIFY", "dynamodb": {"Keys": {}, "NewImage": {"n": {"N": "1"}}}}).encode()
    response = run(firehose_event([keyless]), **BASE, PIPELINE_ICEBERG_MODE="upsert", PIPELINE_ICEBERG_KEYS="id")
    assert results(response) == ["ProcessingFailed"]
    assert "iceberg: key column 'id' has no value for the update" in caplog.text


def test_table_name_placeholder_routes_each_dynamodb_table_to_its_own_table():
    streams_format = json.dumps(
        {
            "eventName": "INSERT",
            "eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/Customers-EU/stream/2026-01-01T00:00:00.000",
            "dynamodb": {"Keys": {"id": {"S": "c"}}, "NewImage": {"id": {"S": "c"}}, "SequenceNumber": "1"},
        }
    ).encode()
    event = firehose_event([change("INSERT", "a", table="orders"), streams_format])
    response = run(event, **{**BASE, "PIPELINE_ICEBERG_TABLE": "lake.{tableName}"})
    assert [m["destinationTableName"] for m in otf(response)] == ["orders", "customers_eu"]


def test_a_record_of_several_changes_is_failed_whole_with_the_reason_never_split_silently(caplog):
    several = b'{"Records": [' + change("INSERT", "a") + b"," + change("INSERT", "b") + b"]}"
    response = run(firehose_event([change("INSERT", "x"), several]), **BASE)
    assert results(response) == ["Ok", "ProcessingFailed"]
    assert "the record holds 2 changes; Firehose's Iceberg destination takes one JSON object" in caplog.text


def test_values_are_typed_as_the_columns_iceberg_types_need():
    env = {
        **BASE,
        "PIPELINE_COLUMNS": "id,amount,n,ok,blob,tags,doc,at=@approximateCreationDateTime,when,size=@sizeBytes",
        "PIPELINE_ICEBERG_TYPES": "amount=decimal(38,2),n=bigint,ok=boolean,blob=binary,tags=array<decimal(5,1)>,"
        "doc=struct<k:string>,when=timestamp",
    }
    attributes = {
        "amount": {"N": "1.5E+30"},
        "n": {"N": "-9223372036854775808"},
        "ok": {"BOOL": False},
        "blob": {"B": base64.b64encode(b"\x00\xff").decode()},
        "tags": {"NS": ["1.5", "2"]},
        "doc": {"M": {"k": {"S": "v"}}},
        "when": {"N": "1767225600"},
    }
    (obj,) = objects(run(firehose_event([change("INSERT", "a", **attributes)]), **env))
    assert obj == {
        "id": "a",
        "amount": 1500000000000000000000000000000,
        "n": -9223372036854775808,
        "ok": False,
        "blob": "AP8=",
        "tags": [1.5, 2],
        "doc": {"k": "v"},
        "at": 1767225600123000,
        "when": 1767225600000000,
        "size": None,
    }


@pytest.mark.parametrize(
    ("types", "value", "reason"),
    [
        ("amount=decimal(5,2)", {"N": "1.005"}, "does not fit decimal(5,2) without losing digits"),
        ("amount=int", {"N": "2147483648"}, "does not fit a int column"),
        ("amount=boolean", {"S": "true"}, "a boolean column takes BOOL attributes, not S"),
        ("amount=timestamp", {"S": "yesterday"}, "a timestamp column takes ISO 8601 text or epoch numbers"),
    ],
)
def test_a_value_its_column_cannot_hold_fails_its_record_with_the_reason(types, value, reason, caplog):
    env = {**BASE, "PIPELINE_ICEBERG_TYPES": types}
    response = run(firehose_event([change("INSERT", "a", amount=value), change("INSERT", "b")]), **env)
    assert results(response) == ["ProcessingFailed", "Ok"]
    assert reason in caplog.text


@pytest.mark.parametrize(
    ("types", "value", "reason"),
    [
        ("", {"N": "NaN"}, "column 'amount': N value is not a number"),
        ("amount=decimal(38,2)", {"N": "1,2"}, "column 'amount': N value is not a number"),
        ("amount=binary", {"B": "!!not base64"}, "column 'amount': B value is not base64"),
        ("", {"S": "lone \ud800 surrogate"}, "column 'amount' is not UTF-8 text"),
    ],
)
def test_a_value_that_is_not_what_its_type_says_fails_naming_the_column_never_the_value(types, value, reason, caplog):
    env = {**BASE, "PIPELINE_ICEBERG_TYPES": types} if types else BASE
    response = run(firehose_event([change("INSERT", "a", amount=value), change("INSERT", "b")]), **env)
    assert results(response) == ["ProcessingFailed", "Ok"]
    assert reason in caplog.text
    assert "NaN" not in caplog.text and "not base64" not in caplog.text.replace("is not base64", "")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PIPELINE_ICEBERG_TABLE": ""}, "PIPELINE_ICEBERG_TABLE is required when PIPELINE_FORMAT is iceberg"),
        ({"PIPELINE_ICEBERG_TABLE": "Lake.Orders"}, "PIPELINE_ICEBERG_TABLE='Lake.Orders': 'Lake.Orders' is not"),
        ({"PIPELINE_ICEBERG_TABLE": "orders"}, "PIPELINE_ICEBERG_TABLE='orders'"),
        ({"PIPELINE_ICEBERG_MODE": "merge"}, "PIPELINE_ICEBERG_MODE='merge': not one of append, upsert"),
        ({"PIPELINE_ICEBERG_MODE": "upsert"}, "PIPELINE_ICEBERG_KEYS is required when PIPELINE_ICEBERG_MODE is upsert"),
        ({"PIPELINE_ICEBERG_KEYS": "id,sk"}, "PIPELINE_ICEBERG_KEYS='id,sk': ['sk'] are not among the column names"),
        ({"PIPELINE_ICEBERG_TYPES": "amount=money"}, "PIPELINE_ICEBERG_TYPES='amount=money': 'money' is not an"),
        ({"PIPELINE_ICEBERG_TYPES": "nope=int"}, "PIPELINE_ICEBERG_TYPES='nope=int': types for unknown columns"),
        ({"PIPELINE_PARTITION_KEYS": "t=@tableName"}, "PIPELINE_PARTITION_KEYS='t=@tableName': partition keys are"),
        ({"PIPELINE_FORMAT": "csv"}, "PIPELINE_ICEBERG_TABLE='lake.orders': only used with PIPELINE_FORMAT=iceberg"),
        (  # the default, append, may be set (the template does); upsert would be ignored
            {"PIPELINE_FORMAT": "csv", "PIPELINE_ICEBERG_TABLE": "", "PIPELINE_ICEBERG_MODE": "upsert"},
            "PIPELINE_ICEBERG_MODE=upsert: only used with PIPELINE_FORMAT=iceberg (it is csv)",
        ),
        ({"PIPELINE_COLUMNS": ""}, "PIPELINE_COLUMNS is required when PIPELINE_FORMAT is iceberg"),
        (
            {"PIPELINE_ICEBERG_MODE": "upsert", "PIPELINE_ICEBERG_KEYS": "id", "PIPELINE_IMAGE": "new"},
            "PIPELINE_IMAGE=new: upsert matches rows on the key columns",
        ),
    ],
)
def test_bad_iceberg_configuration_fails_at_start_naming_the_variable(env, message):
    with pytest.raises(ConfigError) as failure:
        Config.from_env({**BASE, **env})
    assert message in str(failure.value)


metadata = st.fixed_dictionaries(
    {
        "destinationDatabaseName": st.text(max_size=20),
        "destinationTableName": st.text(max_size=20),
        "operation": st.sampled_from(["insert", "update", "delete"]),
    }
)


@given(st.text(min_size=1, max_size=40), st.binary(max_size=60), metadata)
def test_the_budget_counts_the_otf_metadata_exactly(record_id, data, otf_metadata):
    [entry] = respond([Record(record_id, {}, data, otf=otf_metadata)])["records"]
    assert entry["metadata"] == {"otfMetadata": otf_metadata}
    assert entry_size(record_id, "Ok", len(data), None, otf_metadata) == len(json.dumps(entry))


def test_a_response_of_exactly_the_budget_fits_and_one_byte_less_does_not():
    records = [
        Record(
            f"r{i}",
            {},
            b"x" * 40,
            otf={"destinationDatabaseName": "d", "destinationTableName": "t", "operation": "insert"},
        )
        for i in range(5)
    ]
    ids = [r.id for r in records]
    exact = len(json.dumps(respond(records)))
    assert response_floor(ids)[0] < exact
    assert results(respond(within_budget(exact, ids)(records))) == ["Ok"] * 5
    assert results(respond(within_budget(exact - 1, ids)(records))) == ["Ok"] * 4 + ["Dropped"]


def test_athena_ddl_iceberg_prints_the_table_and_refuses_a_type_the_function_does_not_write(monkeypatch, capsys):
    for name, value in {**BASE, "PIPELINE_ICEBERG_TYPES": "amount=decimal(38,2)"}.items():
        monkeypatch.setenv(name, value)
    args = ["athena-ddl", "--iceberg", "--table", "lake.orders", "--location", "s3://my-bucket/warehouse/orders/"]
    assert main([*args, "--type", "amount=decimal(38,2)"]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE `lake`.`orders` (\n  `id` string,\n  `amount` decimal(38,2)," in out
    assert "'table_type' = 'ICEBERG'" in out and "`at` timestamp" in out
    assert main([*args, "--type", "amount=double"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the function writes 'amount' as decimal(38,2)" in err


def test_the_local_contract_checks_the_otf_metadata_as_firehose_would():
    from pipeline.local.contract import contract_problems

    event = firehose_event([change("INSERT", "a")])
    response = run(event, **BASE)
    response["records"][0]["metadata"]["otfMetadata"]["operation"] = "upsert"
    assert contract_problems(event, response) == [
        "records[0] otfMetadata is not a database, a table and insert, update or delete"
    ]


def test_athena_ddl_without_iceberg_says_to_add_it_for_the_iceberg_format(monkeypatch, capsys):
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    assert main(["athena-ddl", "--table", "lake.orders", "--location", "s3://my-bucket/warehouse/orders/"]) == 2
    assert (
        capsys.readouterr().err == "error: PIPELINE_FORMAT=iceberg fills an Iceberg table, not files: add --iceberg\n"
    )


# --- the invariants on random input (hypothesis), as tests/test_properties.py states them for the other formats ---

from test_properties import change as typed_change  # noqa: E402 - the property tests' generators, reused
from test_properties import image, messy_events  # noqa: E402

from pipeline import make_handler  # noqa: E402
from pipeline.attributes import to_text  # noqa: E402
from pipeline.local.context import LocalContext  # noqa: E402
from pipeline.local.contract import contract_problems  # noqa: E402
from pipeline.local.memory import MemoryStreams  # noqa: E402
from pipeline.reingest import to_source  # noqa: E402

ICEBERG_CONFIGS = st.fixed_dictionaries(
    {
        "PIPELINE_FORMAT": st.just("iceberg"),
        "PIPELINE_REINGEST": st.just("off"),
        "PIPELINE_COLUMNS": st.sampled_from(["a", "a,b,c,id", "a=a.b[0],@eventName,@approximateCreationDateTime"]),
        "PIPELINE_ICEBERG_TABLE": st.sampled_from(["db.t", "db.{tableName}", "{tableName}.t"]),
        "PIPELINE_ICEBERG_TYPES": st.sampled_from(["", "a=bigint", "a=decimal(38,10)", "a=boolean", "a=array<string>"]),
        "PIPELINE_IMAGE": st.sampled_from(["auto", "new", "old", "keys"]),
    }
)


@given(messy_events(), ICEBERG_CONFIGS)
def test_the_contract_holds_on_any_input_in_the_iceberg_format(event, env):
    response = make_handler(Config.from_env(env))(event, LocalContext())  # never raises for bad records
    assert contract_problems(event, response) == []
    for entry in response["records"]:
        assert ("metadata" in entry) == (entry["result"] == "Ok")  # every Ok record is routed


@given(st.lists(image, min_size=1, max_size=6))
def test_string_columns_hold_every_value_as_its_text(images):
    event = firehose_event([json.dumps(typed_change("INSERT", img)).encode() for img in images])
    env = {"PIPELINE_FORMAT": "iceberg", "PIPELINE_ICEBERG_TABLE": "db.t", "PIPELINE_COLUMNS": "a,b,c,d"}
    response = run(event, **env)
    assert results(response) == ["Ok"] * len(images)
    for obj, img in zip(objects(response), images, strict=True):
        expected = {n: None if img.get(n) is None or "NULL" in img[n] else to_text(img[n]) for n in "abcd"}
        assert obj == expected


@given(st.lists(st.tuples(image, st.integers(0, 3)), min_size=1, max_size=20), st.floats(-0.1, 1.1))
def test_the_budget_holds_with_otf_metadata_and_every_dropped_record_is_reingested(items, share):
    payloads = [
        json.dumps({**typed_change("INSERT", img, key=f"k{i}"), "tableName": "T" * (1 + pad * 30)}).encode()
        for i, (img, pad) in enumerate(items)
    ]
    event = firehose_event(payloads)
    env = {"PIPELINE_FORMAT": "iceberg", "PIPELINE_ICEBERG_TABLE": "db.{tableName}", "PIPELINE_COLUMNS": "a,b,c,d"}
    unlimited = len(json.dumps(make_handler(Config.from_env({**env, "PIPELINE_REINGEST": "off"}))(event, None)))
    floor, _ = response_floor(r["recordId"] for r in event["records"])
    budget = max(1024, floor + int(share * (unlimited - floor)))
    if floor > budget:
        return
    streams = MemoryStreams()
    config = Config.from_env({**env, "PIPELINE_MAX_RESPONSE_BYTES": str(budget)})
    response = make_handler(config, reingester=lambda e, c: to_source(e, c, client=streams))(event, LocalContext())
    assert len(json.dumps(response)) <= budget
    assert contract_problems(event, response, budget) == []
    dropped = [i for i, e in enumerate(response["records"]) if e["result"] == "Dropped"]
    assert [data for stream in streams.put.values() for data, _ in stream] == [payloads[i] for i in dropped]


def test_athena_ddl_iceberg_current_prints_the_table_and_the_view_the_readme_shows(monkeypatch, capsys):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    shown = readme.split("### Iceberg", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    columns = "id,amount,event=@eventName,version=@version,at=@approximateCreationDateTime"
    env = {**BASE, "PIPELINE_ICEBERG_TABLE": "analytics.orders", "PIPELINE_COLUMNS": columns}
    for name, value in {**env, "PIPELINE_ICEBERG_TYPES": "amount=decimal(38,2)"}.items():
        monkeypatch.setenv(name, value)
    args = ["athena-ddl", "--iceberg", "--table", "analytics.orders", "--location", "s3://my-bucket/warehouse/orders/"]
    assert main([*args, "--current", "--key", "id"]) == 0
    out = capsys.readouterr().out
    assert out == shown
    assert (
        "TBLPROPERTIES (\n  'table_type' = 'ICEBERG'\n);\n\nCREATE OR REPLACE VIEW \"analytics\".\"orders_current\""
        in out
    )


@pytest.mark.parametrize(
    "case",
    [
        (
            {"PIPELINE_COLUMNS": "id"},
            "iceberg:{tmp}",
            "the Iceberg destination takes PIPELINE_FORMAT=iceberg (it is csv)",
        ),
        (BASE, "iceberg:", "give the folder, iceberg:DIR?table=database.table"),
        (BASE, "iceberg:{tmp}?table=Lake.T", "is not database.table in lower case"),
    ],
)
def test_run_local_to_iceberg_mistakes_get_one_line_and_status_2(case, monkeypatch, capsys, tmp_path):
    env, to, message = case
    for name in BASE:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = ["run-local", "--file", "pipeline/samples/cities.json", "--to", to.format(tmp=tmp_path / "lake")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
