"""Redrive: Firehose's error output (the peer sample, and records the runner fails) through the pipeline again."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import shutil

import pytest
from conftest import PEER_EVENTS
from runs import COLUMNS, changes_file, read_folder, read_store, run_file

from pipeline import Config
from pipeline.cli import main
from pipeline.local.runner import Settings, local_handler, run_local
from pipeline.local.sources import KinesisSource
from pipeline.sinks.delivery import Destination, deliver_failed
from pipeline.sinks.errors_output import FailedRecord, Unreadable, error_line, read_error_object
from pipeline.sinks.storage import Folder, S3Prefix
from pipeline.tools.generate import change_record
from pipeline.tools.redrive import redrive, to_store, to_stream

PEER = PEER_EVENTS / "mbta-ocs-saver__processing-failed-records.jsonl"


def digest(root) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_peer_error_records_fail_again_are_listed_with_reasons_and_kept(tmp_path, monkeypatch, capsys):
    """The peer sample's records are not DynamoDB changes: they fail again, and their object is left as it was."""
    source = tmp_path / "processing-failed"
    source.mkdir()
    shutil.copy(PEER, source)
    before = digest(source)
    monkeypatch.setenv("PIPELINE_COLUMNS", "id")
    assert main(["redrive", str(source), "--to", str(tmp_path / "out")]) == 1
    printed = capsys.readouterr().out
    assert "1 objects, 2 records: 0 redriven, 0 dropped (filtered out), 2 failed again, 0 unreadable" in printed
    reason = "parse: not a DynamoDB change record: has neither 'dynamodb' nor a 'Records' list"
    assert f"{PEER.name}:1: {reason} (was Lambda.FunctionTimedOut)" in printed
    assert f"{PEER.name}:2: {reason} (was Lambda.FunctionError)" in printed
    assert digest(source) == before
    assert not (tmp_path / "out").exists()


def test_error_objects_are_read_as_firehose_really_writes_them():
    """lambdaArn or lambdaARN, timestamps as numbers, digit strings or ISO text, gzip, documents run together."""
    first, second = (json.loads(line) for line in PEER.read_bytes().splitlines())
    second = {k: v for k, v in second.items() if k != "lambdaArn"} | {"lambdaARN": "arn:aws:lambda:x"}
    second |= {"arrivalTimestamp": "1654705063218", "attemptEndingTimestamp": "2022-06-08T16:19:12.242Z"}
    second["attemptsMade"] = "4"
    body = (json.dumps(first) + json.dumps(second) + "\n{broken\n").encode()
    records = list(read_error_object(gzip.compress(body), "k.gz"))
    assert [type(r) for r in records] == [FailedRecord, FailedRecord, Unreadable]
    assert [(r.where, r.lambda_arn, r.attempts) for r in records[:2]] == [
        ("k.gz:1", "test", 4),
        ("k.gz:1", "arn:aws:lambda:x", 4),
    ]
    assert (records[1].arrival_ms, records[1].ending_ms) == (1654705063218, 1654705152242)
    assert records[0].raw.startswith(b'{"data":{"raw":"166744,RGPS')
    assert list(read_error_object(error_line(records[1]).encode(), "k")) == [records[1]._replace(where="k:1")]
    assert records[2] == Unreadable("k.gz:2", "not JSON (Expecting property name enclosed in double quotes)")


def test_objects_that_are_not_error_objects_are_listed_and_the_rest_redriven(tmp_path):
    store = Folder(tmp_path / "errors")
    store.put("a-truncated.gz", gzip.compress(PEER.read_bytes())[:-6])
    store.put("b-binary", b"\x00\xff\xfe")
    store.put("c-peer.jsonl", PEER.read_bytes())
    config = Config.from_env({"PIPELINE_COLUMNS": "id"})
    report = redrive(store, store.listing(), config, to_store(Destination(Folder(tmp_path / "out"))))
    assert [u.where for u in report.unreadable] == ["a-truncated.gz", "b-binary"]
    assert (report.objects, report.records, len(report.failed)) == (3, 2, 2)


def produce_failures(tmp_path):
    """Error output the runner produced: three rows too large for a small response budget, and one junk record."""
    path = changes_file(tmp_path, 30, junk=(b"not json",))
    lines = path.read_bytes().splitlines()
    for i in (3, 10, 17):  # make these changes' rows larger than the budget alone
        change = json.loads(lines[i])
        image = change["dynamodb"].get("NewImage") or change["dynamodb"]["OldImage"]
        image["note"] = {"S": "ü" * 3000}
        lines[i] = json.dumps(change, ensure_ascii=False).encode()
    path.write_bytes(b"\n".join(lines))
    _tally, rows, failed = run_file(path, tmp_path / "first", PIPELINE_MAX_RESPONSE_BYTES="8000")
    assert len(rows) == 27 and len(failed) == 4
    return path, tmp_path / "first" / "processing-failed"


def test_records_too_large_for_the_response_are_redriven_into_rows_junk_fails_again(tmp_path):
    path, errors = produce_failures(tmp_path)
    config = Config.from_env({"PIPELINE_COLUMNS": COLUMNS})
    store = Folder(errors)
    dest = Destination(Folder(tmp_path / "redriven"), stream="redrive")

    planned = redrive(store, store.listing(), config, to_store(dest), dry_run=True)
    assert not (tmp_path / "redriven").exists()
    report = redrive(store, store.listing(), config, to_store(dest))
    assert (report.records, report.redriven, report.dropped) == (planned.records, planned.redriven, 0) == (4, 3, 0)
    assert [(reason, before) for _where, reason, before in report.failed] == [
        ("parse: not valid JSON (Expecting value at byte 0)", "Lambda.ProcessingFailedStatus")
    ]
    assert sum(report.written.values()) == sum(planned.written.values()) == 3
    rows, failed = read_folder(tmp_path / "redriven")
    assert failed == []  # failures are listed, not copied
    originals = [json.loads(line) for line in path.read_bytes().splitlines()[:-1]]
    notes = {c["eventID"]: (c["dynamodb"].get("NewImage") or c["dynamodb"]["OldImage"])["note"] for c in originals}
    assert sorted(r[-1] for r in rows) == sorted(e for e, note in notes.items() if note.get("S") == "ü" * 3000)
    assert all(r[4] == "ü" * 3000 for r in rows)


def test_redrive_command_dry_run_writes_nothing(tmp_path, monkeypatch, capsys):
    _path, errors = produce_failures(tmp_path)
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["redrive", str(errors), "--to", str(tmp_path / "redriven"), "--dry-run"]) == 1
    printed = capsys.readouterr().out
    assert "(dry run: nothing is written)" in printed
    assert "4 records: 3 redriven, 0 dropped (filtered out), 1 failed again, 0 unreadable" in printed
    assert "  would write " in printed
    assert not (tmp_path / "redriven").exists()


def test_batch_failed_by_the_function_is_redriven_whole_with_dynamic_partitions(tmp_path):
    """A BudgetError fails the whole batch four times (Lambda.FunctionError); redrive delivers every record."""
    path = changes_file(tmp_path, 200)
    _tally, rows, failed = run_file(path, tmp_path / "first", PIPELINE_MAX_RESPONSE_BYTES="2000")
    assert rows == [] and {(f.error_code, f.attempts) for f in failed} == {("Lambda.FunctionError", 4)}
    config = Config.from_env({"PIPELINE_COLUMNS": COLUMNS, "PIPELINE_PARTITION_KEYS": "event=@eventName"})
    store = Folder(tmp_path / "first" / "processing-failed")
    dest = Destination(Folder(tmp_path / "redriven"), "event=!{partitionKeyFromLambda:event}/").checked({"event"})
    report = redrive(store, store.listing(), config, to_store(dest))
    assert report.redriven == 200 and report.failed == []
    rows, _ = read_folder(tmp_path / "redriven")
    assert len(rows) == 200
    folders = {key.split("/")[0] for key in Folder(tmp_path / "redriven").listing()}
    assert folders == {f"event={name}" for name in {r[0] for r in rows}}


@pytest.mark.moto
def test_redrive_from_s3_back_into_the_source_stream_then_delivered(aws, tmp_path):
    """Error objects in S3 -> redrive -> Kinesis (keyed by item) -> run-local -> the rows land in S3."""
    s3, kinesis = aws.client("s3"), aws.client("kinesis")
    s3.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": aws.region})
    kinesis.create_stream(StreamName="changes", ShardCount=1)
    rng = random.Random(3)
    changes = [change_record(rng, i) for i in range(5)]
    failed = [
        FailedRecord(base64.b64encode(json.dumps(c).encode()).decode(), "Lambda.FunctionTimedOut", "", 4, 1, 2, "arn")
        for c in changes
    ]
    junk = FailedRecord(base64.b64encode(b"junk").decode(), "Lambda.ProcessingFailedStatus", "", 1, 1, 2, "arn")
    lake = S3Prefix("lake", client=s3)
    errors = Destination(lake, error_prefix="processing-failed/", stream="orders")
    (key,) = deliver_failed(errors, [*failed[:2], junk, *failed[2:]])
    config = Config.from_env({"PIPELINE_COLUMNS": COLUMNS})
    failed_store = S3Prefix("lake", "processing-failed/", client=s3)
    report = redrive(failed_store, failed_store.listing(), config, to_stream("changes", client=kinesis))
    assert report.redriven == 5 and report.written == {"kinesis://changes": 5} and len(report.failed) == 1
    assert list(lake.listing()) == [key]  # the error object is still there, unchanged

    source = KinesisSource("changes", client=kinesis)
    records = source.poll()
    keys = [r["kinesisRecordMetadata"]["partitionKey"] for r in records]
    assert keys == [c["dynamodb"]["Keys"]["id"]["S"] for c in changes]  # the item's key, in order

    source = KinesisSource("changes", client=kinesis)
    handler, reingested = local_handler(config, source)
    dest = Destination(S3Prefix("lake", "data/", client=s3))
    tally = run_local(source, handler, dest, Settings(buffer_bytes=200_000), reingested=reingested)
    assert tally.delivered == 5
    rows, _ = read_store(dest.store)
    assert sorted(r[-1] for r in rows) == sorted(c["eventID"] for c in changes)


def test_an_error_object_nested_deeper_than_json_can_follow_is_unreadable_not_a_crash():
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    good = b'{"rawData":"eA==","arrivalTimestamp":1654710150135}'
    first, second = read_error_object(deep + b"\n" + good + b"\n", "k")
    assert first == Unreadable("k:1", "JSON nested too deep to read")
    assert isinstance(second, FailedRecord) and second.where == "k:2"  # the lines after it are read on
