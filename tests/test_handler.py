"""The Lambda handler as Firehose calls it: the contract, the logs, and events it must refuse."""

from __future__ import annotations

import copy
import importlib
import json
from importlib import resources

import pytest
from conftest import csv_rows, firehose_event, handler_for, results, run

from pipeline import InvalidEvent
from pipeline.local.context import LocalContext

pytestmark = pytest.mark.usefixtures("parser")  # every test here runs on both parser paths

SECRET = "SECRET-4111-1111-1111-1111"


def insert(i, **attrs):
    image = {"id": {"N": str(i)}, **attrs}
    return json.dumps({"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"N": str(i)}}, "NewImage": image}}).encode()


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (None, "not a Firehose transformation event"),
        ({"Records": []}, "not a Firehose transformation event"),
        ({"records": {}}, "not a Firehose transformation event"),
        ({"records": [{"data": "eA=="}]}, "records[0] has no recordId text"),
        ({"records": ["x"]}, "records[0] has no recordId text"),
        ({"records": [{"recordId": "a"}, {"recordId": "a"}]}, "records[1] repeats recordId 'a'"),
    ],
)
def test_events_that_cannot_be_answered_record_by_record_raise_clearly(event, message):
    with pytest.raises(InvalidEvent, match=message.replace("[", r"\[")):
        handler_for(PIPELINE_COLUMNS="id")(event, LocalContext())


def test_an_empty_batch_gets_an_empty_answer():
    assert run({"records": []}, PIPELINE_COLUMNS="id") == {"records": []}


def test_data_is_a_base64_str_and_the_event_is_not_modified():
    event = firehose_event([insert(1, name={"S": "Zürich"}), insert(2)])
    before = copy.deepcopy(event)
    response = run(event, PIPELINE_COLUMNS="id,name")
    assert event == before
    assert all(type(e["data"]) is str for e in response["records"])
    assert csv_rows(response) == [["1", "Zürich"], ["2", ""]]


def test_logs_hold_ids_counts_and_reasons_never_contents(caplog):
    payloads = [insert(1, card={"S": SECRET}), SECRET.encode(), b'{"eventName": "' + SECRET.encode() + b'"}']
    event = firehose_event(payloads)
    response = run(event, PIPELINE_COLUMNS="id,card")
    assert results(response) == ["Ok", "ProcessingFailed", "ProcessingFailed"]
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    lines = [json.loads(record.getMessage()) for record in caplog.records]
    failed = [line for line in lines if line["message"] == "record failed"]
    assert [f["recordId"] for f in failed] == [e["recordId"] for e in event["records"][1:]]
    assert failed[1]["reason"] == "parse: not a DynamoDB change record: eventName is not INSERT, MODIFY or REMOVE"
    [summary] = [line for line in lines if line["message"] == "summary"]
    assert summary["invocationId"] == "test-invocation"
    assert summary["records"] == 3
    assert summary["results"] == {"Ok": 1, "Dropped": 0, "ProcessingFailed": 2}
    assert summary["bytesIn"] == sum(len(p) for p in payloads)
    assert summary["bytesOut"] == len(f"1,{SECRET}\n")
    assert summary["durationMs"] >= 0
    assert set(summary["reasons"]) == {failed[0]["reason"], failed[1]["reason"]}


def test_failure_lines_are_capped_and_the_summary_counts_the_rest(caplog):
    event = firehose_event([b"junk"] * 120)
    run(event, PIPELINE_COLUMNS="id")
    lines = [json.loads(record.getMessage()) for record in caplog.records]
    assert sum(line["message"] == "record failed" for line in lines) == 50
    [summary] = [line for line in lines if line["message"] == "summary"]
    assert summary["failuresNotLogged"] == 70


def test_the_lambda_entry_point_reads_its_configuration_from_the_environment(monkeypatch):
    monkeypatch.setenv("PIPELINE_COLUMNS", "name,population")
    monkeypatch.setenv("PIPELINE_EVENTS", "INSERT")
    monkeypatch.setenv("PIPELINE_REINGEST", "off")
    import handler

    handler = importlib.reload(handler)
    event = json.loads(resources.files("pipeline").joinpath("samples/cities.json").read_text("utf-8"))
    response = handler.lambda_handler(event, LocalContext())
    assert csv_rows(response)[:2] == [["Zürich", "421878"], ["São Paulo", "11451245"]]
    assert results(response).count("Dropped") == 3  # the MODIFY and the two REMOVEs


def _logged(caplog):
    return [json.loads(record.getMessage()) for record in caplog.records]


@pytest.mark.parametrize(
    ("changes", "columns", "never_seen"),
    [
        (100, "id,idd,amountt,@eventName", ["idd", "amountt"]),  # typos: named, in configured order
        (99, "id,idd", []),  # too few changes to tell a typo from a sparse attribute
        (100, "id,note", []),  # seen once (as NULL) is seen
        (250, "event=@eventName,when=@approximateCreationDateTime", []),  # @-fields always have values
    ],
)
def test_columns_no_change_had_are_named_once_and_counted_in_the_summary(caplog, changes, columns, never_seen):
    payloads = [insert(i, **({"note": {"NULL": True}} if i == 57 else {})) for i in range(changes)]
    run(firehose_event(payloads), PIPELINE_COLUMNS=columns)
    lines = _logged(caplog)
    warnings = [line for line in lines if line["message"] == "columns never seen"]
    [summary] = [line for line in lines if line["message"] == "summary"]
    if never_seen:
        assert warnings == [{"level": "WARNING", "message": "columns never seen", "columns": never_seen}]
        assert summary["columnsNeverSeen"] == len(never_seen)
    else:
        assert warnings == []
        assert "columnsNeverSeen" not in summary


def test_column_presence_starts_again_with_each_invocation(caplog):
    handler = handler_for(PIPELINE_COLUMNS="id,extra")
    handler(firehose_event([insert(i, extra={"S": "x"}) for i in range(100)]), LocalContext())
    handler(firehose_event([insert(i) for i in range(100)]), LocalContext())
    summaries = [line for line in _logged(caplog) if line["message"] == "summary"]
    assert [s.get("columnsNeverSeen") for s in summaries] == [None, 1]
