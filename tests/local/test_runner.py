"""The local Firehose runner on files and folders: buffering, re-ingestion, the contract, the error output.

Faults in the function's answers are injected at the edge: a wrapper around the real handler changes its
response (or raises) the way a broken function would, and the test's name says so.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from runs import COLUMNS, changes_file, read_folder, run_file

from pipeline.cli import main
from pipeline.local.runner import Settings
from pipeline.local.sources import FileSource
from pipeline.sinks.storage import Folder
from pipeline.tools.generate import change_record

pytestmark = pytest.mark.usefixtures("parser")  # every test here runs on both parser paths


def test_file_source_reingests_into_itself_until_every_change_is_delivered_once(tmp_path):
    path = changes_file(tmp_path, junk=(b"not json",))
    tally, rows, failed = run_file(path, tmp_path / "out", PIPELINE_MAX_RESPONSE_BYTES="40000")
    changes = [json.loads(line) for line in path.read_bytes().splitlines()[:-1]]
    assert Counter(r[-1] for r in rows) == Counter(c["eventID"] for c in changes)  # each exactly once
    assert [f.raw for f in failed] == [b"not json"]
    assert tally.reingested > len(changes) // 3
    assert tally.records_in == len(changes) + 1 + tally.reingested
    assert tally.records_in == tally.delivered + tally.failed + tally.reingested + tally.dropped


def test_dynamic_partitions_one_object_per_day(tmp_path):
    lines = []
    for i, day in enumerate(("2026-03-01", "2026-03-02", "2026-03-01")):
        change = change_record(random.Random(i), i)
        change["dynamodb"]["NewImage"] = change["dynamodb"].get("NewImage") or change["dynamodb"]["OldImage"]
        change["dynamodb"]["NewImage"]["created"] = {"S": f"{day}T10:00:00Z"}
        lines.append(json.dumps(change))
    path = tmp_path / "days.jsonl"
    path.write_text("\n".join(lines))
    out = tmp_path / "out"
    run_file(path, out, PIPELINE_PARTITION_KEYS="day=created|%Y-%m-%d", prefix="day=!{partitionKeyFromLambda:day}/")
    store = Folder(out)
    by_day = {key.split("/")[0]: store.get(key).count(b"\n") for key in store.listing()}
    assert by_day == {"day=2026-03-01": 2, "day=2026-03-02": 1}


def test_prefix_with_a_partition_key_the_handler_does_not_return_fails_at_start(tmp_path):
    with pytest.raises(ValueError, match="partition key 'day'"):
        run_file(changes_file(tmp_path, 1), tmp_path / "out", prefix="day=!{partitionKeyFromLambda:day}/")


@pytest.mark.parametrize("size", [199_999, 3_000_001])
def test_buffer_size_is_firehoses_range(size):
    with pytest.raises(ValueError, match=r"Firehose allows 0\.2MB to 3MB"):
        Settings(buffer_bytes=size)


def tampered(change):
    """A handler whose responses *change* (injected at the edge, between the function and Firehose)."""
    return lambda handler: lambda event, context: change(handler(event, context))


@pytest.mark.parametrize(
    ("name", "tamper", "code"),
    [
        ("missing_id", lambda r: {"records": r["records"][1:]}, "Lambda.MissingRecordId"),
        ("duplicated_id", lambda r: {"records": [r["records"][0], *r["records"][:-1]]}, "Lambda.DuplicatedRecordId"),
        ("unknown_id", lambda r: {"records": [{**r["records"][0], "recordId": "x"}, *r["records"][1:]]}, None),
        ("invalid_result", lambda r: {"records": [{**e, "result": "OK"} for e in r["records"]]}, None),
        ("bytes_data", lambda r: {"records": [{**e, "data": b"x"} for e in r["records"]]}, "Lambda.FunctionError"),
    ],
)
def test_response_rejected_by_the_contract_sends_the_whole_batch_to_the_error_output_injected_at_the_edge(
    tmp_path, name, tamper, code
):
    tally, rows, failed = run_file(changes_file(tmp_path, 5), tmp_path / "out", handler=tampered(tamper))
    expected = code or ("Lambda.MissingRecordId" if name == "unknown_id" else "Lambda.JsonProcessingException")
    assert rows == []
    assert len(failed) == tally.failed == 5
    assert {f.error_code for f in failed} == {expected}
    # An answer that does not even serialise is a function error, retried like Firehose does; the others are not.
    assert {f.attempts for f in failed} == ({4} if expected == "Lambda.FunctionError" else {1})


def test_oversize_response_is_a_function_error_retried_then_the_batch_fails_injected_at_the_edge(tmp_path):
    pad = tampered(lambda r: {**r, "padding": "x" * (6 * 1024 * 1024)})
    tally, rows, failed = run_file(changes_file(tmp_path, 3), tmp_path / "out", handler=pad)
    assert rows == [] and tally.invocations == 4 and tally.retried == 3
    assert {(f.error_code, f.attempts) for f in failed} == {("Lambda.FunctionError", 4)}
    assert "over 6,291,456" in failed[0].error_message


def test_function_failing_once_is_retried_and_delivers_injected_at_the_edge(tmp_path):
    calls = []

    def flaky(handler):
        def call(event, context):
            calls.append(event["invocationId"])
            if len(calls) == 1:
                raise TimeoutError("injected")
            return handler(event, context)

        return call

    tally, rows, failed = run_file(changes_file(tmp_path, 4), tmp_path / "out", handler=flaky)
    assert len(rows) == 4 and failed == [] and tally.retried == 1
    assert len(set(calls)) == 2  # each attempt is a new invocation, as with Firehose


def test_run_local_command_writes_ok_data_and_error_output(tmp_path, monkeypatch, capsys):
    path = changes_file(tmp_path, 20, junk=(b'{"Hello": "World"}',))
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    out = tmp_path / "out"
    assert main(["run-local", "--file", str(path), "--to", str(out), "--buffer-size", "0.2MB"]) == 0
    rows, failed = read_folder(out)
    assert len(rows) == 20 and [f.raw for f in failed] == [b'{"Hello": "World"}']
    assert failed[0].lambda_arn == "arn:aws:lambda:eu-west-1:000000000000:function:local-firehose-transform"
    assert "records in 21 | delivered 20 | failed 1 | re-ingested 0" in capsys.readouterr().err


def test_file_source_reads_a_firehose_event(tmp_path):
    """generate-event's output can feed run-local directly: the event's records are the source records."""
    event = tmp_path / "event.json"
    assert main(["generate-event", "--size", "20KB", "-o", str(event)]) == 0
    source = FileSource(event)
    records = source.poll()
    expected = [r["data"] for r in json.loads(event.read_text())["records"]]
    assert [r["data"] for r in records] == expected


def test_a_partition_key_value_of_dot_dot_is_refused_by_a_folder_not_written_outside_it(tmp_path):
    """S3 keeps a key such as ``../x`` as it is; a folder would resolve it outside itself, so it refuses it."""
    changes = [
        {"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "1"}}, "NewImage": {"status": {"S": status}}}}
        for status in ("ok", "..")
    ]
    path = tmp_path / "changes.jsonl"
    path.write_text("\n".join(map(json.dumps, changes)))
    out = tmp_path / "lake" / "out"
    with pytest.raises(ValueError, match=r"object key '\.\./local-firehose-.*' would lead outside the folder"):
        run_file(path, out, PIPELINE_PARTITION_KEYS="st=status", prefix="!{partitionKeyFromLambda:st}/")
    assert sorted(p.relative_to(tmp_path).parts[:3] for p in tmp_path.rglob("*") if p.is_file()) == [
        ("changes.jsonl",),
        ("lake", "out", "ok"),
    ]
    for key in ("/etc/passwd", "a/../../b", "./a"):
        with pytest.raises(ValueError, match="would lead outside the folder"):
            Folder(out).put(key, b"x")


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--to", "{out}", "--follow"], "--follow: for --stream (a --file is read once, to its end): drop it"),
        (["--to", "{out}", "--start", "latest"], "--start: for --stream (a --file is read once, to its end): drop it"),
        (["--to", "{out}", "--start", "trim_horizon", "--follow"], "--start and --follow: for --stream"),
        (
            ["--to", "iceberg:{out}", "--prefix", "x/"],
            "--prefix: for a folder or s3:// destination (--to iceberg: puts",
        ),
        (["--to", "iceberg:{out}", "--error-prefix", "e/"], "--error-prefix: for a folder or s3:// destination"),
    ],
)
def test_a_flag_that_would_be_ignored_is_refused_in_one_line(flags, says, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    argv = ["run-local", "--file", str(changes_file(tmp_path, 1)), *flags]
    assert main([arg.format(out=tmp_path / "out") for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {says}")
    assert not (tmp_path / "out").exists()  # refused before anything is written
