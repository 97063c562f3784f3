"""The current-state view: its checks, the command line, and its rows in DuckDB against the changes' final state."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import firehose_event, outputs, results, run
from duck import current_rows, statements
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from pipeline import Config
from pipeline.cli import main
from pipeline.tools.athena import athena_ddl
from pipeline.tools.views import current_query, current_view

COLUMNS = "event=@eventName,id,sk,name,amount,flag,note,v=@version"
START = 1_767_225_600_000  # 2026-01-01, in milliseconds as DynamoDB's Kinesis destination sends it


def change(event: str, when: int, key: tuple[str, str], image: dict | None) -> dict:
    """A change in the Kinesis Data Streams for DynamoDB format (REMOVE with the old image, as DynamoDB sends)."""
    keys = {"id": {"S": key[0]}, "sk": {"N": key[1]}}
    ddb: dict = {"ApproximateCreationDateTime": when, "Keys": keys}
    ddb["OldImage" if event == "REMOVE" else "NewImage"] = {**keys, **(image or {})}
    return {"eventName": event, "tableName": "orders", "recordFormat": "application/json", "dynamodb": ddb}


def image(n: int) -> dict:
    doc = {
        "name": {"S": ["Zürich", 'say "hi", then, bye', "", "São Paulo — 東京 🦊", "back\\slash"][n % 5]},
        "amount": {"N": "12345678901234567890123456789012345678" if n % 4 == 0 else f"-{n}.5"},
        "flag": {"BOOL": n % 2 == 0},
    }
    if n % 3:
        doc["note"] = {"S": f"note {n}"}
    return doc


def history(seed: int, items: int = 12, steps: int = 60) -> tuple[list[dict], dict[tuple[str, str], dict]]:
    """Changes of a few items in the order they happened, and each live item's final image."""
    rng = random.Random(seed)
    state: dict[tuple[str, str], dict] = {}
    changes, when = [], START
    for n in range(steps):
        key = (f"item-{rng.randrange(items)}", str(rng.randrange(2)))
        when += rng.choice([1, 1, 2, 1000])  # one item's changes are at least 1 ms apart, as DynamoDB makes them
        if key in state and rng.random() < 0.3:
            changes.append(change("REMOVE", when, key, state.pop(key)))
        else:
            changes.append(change("MODIFY" if key in state else "INSERT", when, key, image(n)))
            state[key] = image(n)
    return changes, state


def expected_cells(fmt: str, key: tuple[str, str], doc: dict) -> tuple:
    missing = "" if fmt == "csv" else None
    flag = "true" if doc["flag"]["BOOL"] else "false"
    note = doc["note"]["S"] if "note" in doc else missing
    return (*key, doc["name"]["S"], doc["amount"]["N"], flag, note)


def env_for(fmt: str) -> dict[str, str]:
    return {"PIPELINE_COLUMNS": COLUMNS, "PIPELINE_FORMAT": fmt, "PIPELINE_NULL": "\\N" if fmt == "tsv" else ""}


def delivered(tmp_path, changes: list[dict], fmt: str, seed: int) -> list:
    """The changes replayed out of order and with copies, through the handler; the objects written."""
    rng = random.Random(seed)
    replay = changes + rng.sample(changes, len(changes) // 3)  # copies: lost responses, Kinesis duplicates
    rng.shuffle(replay)  # out of order, as the Kinesis source may deliver them
    files = []
    for start in range(0, len(replay), 25):  # several Firehose batches, several objects
        response = run(firehose_event([json.dumps(c).encode() for c in replay[start : start + 25]]), **env_for(fmt))
        assert set(results(response)) == {"Ok"}
        path = tmp_path / f"{fmt}-{start:05d}"
        path.write_bytes(b"".join(outputs(response)))
        files.append(path)
    return files


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_view_in_duckdb_equals_the_final_state(tmp_path, fmt):
    changes, state = history(seed=11)
    files = delivered(tmp_path, changes, fmt, seed=12)
    config = Config.from_env(env_for(fmt))
    rows = current_rows(config, "orders", ["id", "sk"], files)
    assert {r[0] for r in rows} <= {"INSERT", "MODIFY"}
    cells = sorted(r[1:-1] for r in rows)
    assert cells == sorted(expected_cells(fmt, k, doc) for k, doc in state.items())
    assert len(state) > 3 and len(changes) > len(state)  # the history really removed and changed items


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 10**6))
def test_any_order_and_copies_give_the_final_state(tmp_path_factory, seed):
    changes, state = history(seed, items=5, steps=25)
    files = delivered(tmp_path_factory.mktemp("views"), changes, "csv", seed)
    config = Config.from_env(env_for("csv"))
    rows = current_rows(config, "orders", ["id", "sk"], files)
    assert sorted(r[1:-1] for r in rows) == sorted(expected_cells("csv", k, d) for k, d in state.items())


def test_the_statement_parses_as_athena_with_partitions_and_renamed_columns():
    env = {
        "PIPELINE_COLUMNS": "Event=@eventName,address.city,ID=id,tbl=@tableName,@version",
        "PIPELINE_FORMAT": "jsonl",
        "PIPELINE_PARTITION_KEYS": "day=@approximateCreationDateTime|%Y-%m-%d,table=@tableName",
    }
    _table, view = statements(Config.from_env(env), "analytics.orders", ["table", "ID"])
    assert view.this.sql("athena") == '"analytics"."orders_current"'
    assert [c.alias_or_name for c in view.expression.expressions] == [
        "event",
        "address_city",
        "id",
        "tbl",
        "version",
        "day",
        "table",
    ]
    window = view.find(exp.Window)
    assert [p.name for p in window.args["partition_by"]] == ["table", "id"]
    assert window.args["order"].sql("athena") == 'ORDER BY "version" DESC'


@pytest.mark.parametrize(
    ("env", "keys", "message"),
    [
        ({"PIPELINE_COLUMNS": "id,name"}, ["id"], "add @eventName, @version to PIPELINE_COLUMNS"),
        ({"PIPELINE_COLUMNS": "id,@eventName,@version"}, ["pk", "sk"], "add pk, sk to PIPELINE_COLUMNS"),
        ({"PIPELINE_COLUMNS": "id,@eventName,@version"}, [], "needs the item's key"),
        ({"PIPELINE_COLUMNS": "id,@eventName,@version"}, ["id", "ID"], "names a column twice"),
        ({"PIPELINE_FORMAT": "jsonl"}, ["id"], "set PIPELINE_COLUMNS"),
        (
            {"PIPELINE_COLUMNS": "id,@eventName,@version", "PIPELINE_EVENTS": "INSERT,MODIFY"},
            ["id"],
            "PIPELINE_EVENTS=INSERT,MODIFY,REMOVE",
        ),
        ({"PIPELINE_COLUMNS": "id,@eventName,@version", "PIPELINE_IMAGE": "new"}, ["id"], "no new image"),
        (
            {"PIPELINE_COLUMNS": "id,@eventName,@version", "PIPELINE_PARTITION_KEYS": "t=@tableName"},
            ["id"],
            "add it to --key",
        ),
    ],
)
def test_what_the_view_needs_is_named(env, keys, message):
    with pytest.raises(ValueError, match=message):
        current_view(Config.from_env(env), "orders", keys)


def test_a_date_key_athena_cannot_project_is_injected_and_must_be_among_the_keys():
    """One rule for athena_ddl and the view: %j has no Java letter, so the table injects the key."""
    env = {
        "PIPELINE_COLUMNS": "id,@eventName,@version",
        "PIPELINE_PARTITION_KEYS": "d=@approximateCreationDateTime|%Y-%j",
    }
    with pytest.raises(ValueError, match="partition key 'd' is injected"):
        current_view(Config.from_env(env), "orders", ["id"])


def test_the_version_stays_text():
    config = Config.from_env({"PIPELINE_COLUMNS": "id,@eventName,v=@version", "PIPELINE_FORMAT": "jsonl"})
    with pytest.raises(ValueError, match="@version\\) is text that sorts as text"):
        athena_ddl(config, "orders", "s3://my-bucket/data/", types={"v": "decimal(38,0)"})


def test_date_and_hour_partitions_need_not_be_keys():
    env = {
        "PIPELINE_COLUMNS": "id,@eventName,@version",
        "PIPELINE_PARTITION_KEYS": "day=@approximateCreationDateTime|%Y-%m-%d,hour=@arrivalTimestamp|%H",
    }
    assert '"day", "hour"' in current_query(Config.from_env(env), "orders", ["id"])


def test_cli_prints_the_table_then_the_view(capsys, monkeypatch):
    monkeypatch.setenv("PIPELINE_COLUMNS", "id,sk,@eventName,@version,name")
    assert main(["athena-ddl", "--table", "db.orders", "--location", "s3://my-bucket/data/", "--current",
                 "--key", "id,sk"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    table, view = out.split(";\n\n")
    assert table.startswith("CREATE EXTERNAL TABLE `db`.`orders` (")
    assert view.startswith('CREATE OR REPLACE VIEW "db"."orders_current" AS\n') and view.endswith(";\n")
    assert 'PARTITION BY "id", "sk" ORDER BY "version" DESC' in view


@pytest.mark.parametrize(
    ("columns", "args", "message"),
    [
        ("id,name", ["--current", "--key", "id"], "add @eventName, @version to PIPELINE_COLUMNS"),
        ("id,@eventName,@version", ["--current"], "--current needs the item's key"),
        ("id,@eventName,@version", ["--key", "id"], "add --current"),
    ],
)
def test_cli_mistakes_are_one_line_and_exit_2(capsys, monkeypatch, columns, args, message):
    monkeypatch.setenv("PIPELINE_COLUMNS", columns)
    assert main(["athena-ddl", "--table", "orders", "--location", "s3://my-bucket/data/", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err


def test_the_readme_shows_what_the_command_prints(capsys, monkeypatch):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Current state", 1)[1]
    shown = section.split("```sql\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("PIPELINE_COLUMNS", "event=@eventName,id,name,amount,@version")
    main(["athena-ddl", "--table", "orders", "--location", "s3://my-bucket/data/", "--current", "--key", "id"])
    assert capsys.readouterr().out.split(";\n\n")[1] == shown.rstrip("\n") + ";\n"
