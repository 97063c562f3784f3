"""The command line, as the README shows it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import firehose_event

from pipeline.cli import main
from pipeline.tools.generate import generate_event

pytestmark = pytest.mark.usefixtures("parser")  # every test here runs on both parser paths


def test_demo_prints_the_csv_and_the_summary(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "INSERT,1,Zürich,421878,2026-01-01T09:00:00Z,false\n" in out
    assert 'INSERT,7,"Truth or Consequences ""T or C""",6052,2026-01-01T09:00:00Z,false\n' in out
    assert 'REMOVE,7,"Truth or Consequences ""T or C""",6052,2026-01-01T09:00:00Z,true\n' in out
    assert "11 records: 10 Ok, 0 Dropped, 1 ProcessingFailed" in out
    assert (
        "ProcessingFailed 4966800000000000000000000000000000000000000000000000000100000: parse: not valid JSON" in out
    )
    assert '"message": "summary"' in out


def test_make_demo_command_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--format", "tsv"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "MODIFY\t1\tZürich\t423193\t2026-01-02T10:30:00Z\tfalse\n" in result.stdout


def test_transform_decodes_with_flags_overriding_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIPELINE_COLUMNS", "not-used")
    event = firehose_event([json.dumps({"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "a,b"}}}}).encode()])
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    assert main(["transform", str(path), "--decode", "--columns", "id,@eventName", "--image", "keys"]) == 0
    captured = capsys.readouterr()
    assert captured.out == '"a,b",INSERT\n'
    assert "1 records: 1 Ok" in captured.err


def test_transform_prints_the_response_and_never_reingests_unless_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PIPELINE_REINGEST", raising=False)
    event = generate_event(40_000, "kinesis")
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    assert main(["transform", str(path), "--format", "jsonl", "--max-response-bytes", "10000"]) == 0
    response = json.loads(capsys.readouterr().out)
    assert {e["result"] for e in response["records"]} == {"Ok", "ProcessingFailed"}  # overflow fails, no AWS call


def test_transform_reports_bad_configuration_and_bad_files(tmp_path, capsys):
    path = tmp_path / "event.json"
    path.write_text("{")
    assert main(["transform", str(path), "--columns", "id", "--format", "xml"]) == 2
    assert capsys.readouterr().err == "error: --format 'xml': not one of csv, tsv, jsonl, iceberg\n"  # the flag typed
    assert main(["transform", str(path), "--columns", "id"]) == 2
    assert "is not a JSON file" in capsys.readouterr().err


@pytest.mark.parametrize(("size", "source"), [("200KB", "kinesis"), ("100KiB", "direct")])
def test_generate_event_writes_an_event_of_the_size_asked(tmp_path, size, source):
    path = tmp_path / "event.json"
    assert main(["generate-event", "--size", size, "--source", source, "--seed", "3", "-o", str(path)]) == 0
    limit = {"200KB": 200_000, "100KiB": 102_400}[size]
    assert limit * 0.97 < path.stat().st_size <= limit
    event = json.loads(path.read_text())
    assert ("sourceKinesisStreamArn" in event) == (source == "kinesis")
    assert main(["generate-event", "--size", "lots"]) == 2
