"""What an EventBridge Pipe (DynamoDB stream source, Firehose target) writes, through the handler.

The documented example event (tests/fixtures/pipes, provenance in SOURCES.md) is the batch a pipe reads: a JSON
array of DynamoDB Streams records. Into a Firehose target the pipe writes each element as its own record
(``PutRecordBatch``, a Direct PUT delivery stream); the handler also takes the whole array as one record.
"""

from __future__ import annotations

import json

from conftest import csv_rows, firehose_event, load_fixture, results, run

EXAMPLE = "pipes/eventbridge-pipes__dynamodb-stream-source-event.json"
COLUMNS = "event=@eventName,Id,Message,table=@tableName,seq=@sequenceNumber,size=@sizeBytes,eventID=@eventID"
ROWS = [
    ["INSERT", "101", "New item!", "EventSourceTable", "111", "26", "1"],
    ["MODIFY", "101", "This item has changed", "EventSourceTable", "222", "59", "2"],
]


def test_documented_example_one_stream_record_per_firehose_record_as_the_pipe_writes_them():
    batch = load_fixture(EXAMPLE)
    event = firehose_event([json.dumps(change).encode() for change in batch], kinesis=False)
    response = run(event, PIPELINE_COLUMNS=COLUMNS)
    assert results(response) == ["Ok", "Ok"]
    assert csv_rows(response) == ROWS


def test_documented_example_whole_array_in_one_record_gives_every_change_in_order():
    raw = json.dumps(load_fixture(EXAMPLE)).encode()
    response = run(firehose_event([raw], kinesis=False), PIPELINE_COLUMNS=COLUMNS)
    assert results(response) == ["Ok"]
    assert csv_rows(response) == ROWS


def test_documented_example_old_image():
    batch = load_fixture(EXAMPLE)
    event = firehose_event([json.dumps(change).encode() for change in batch], kinesis=False)
    old = run(event, PIPELINE_COLUMNS="Id,Message", PIPELINE_IMAGE="old")
    assert results(old) == ["Ok", "Ok"]
    assert csv_rows(old) == [["", ""], ["101", "New item!"]]  # an INSERT has no OldImage: its cells are empty


def test_an_array_with_a_bad_element_fails_that_record_only():
    good = load_fixture(EXAMPLE)
    event = firehose_event([json.dumps([good[0], {"eventName": "INSERT"}]).encode(), json.dumps(good[1]).encode()])
    response = run(event, PIPELINE_COLUMNS=COLUMNS)
    assert results(response) == ["ProcessingFailed", "Ok"]
    assert csv_rows(response) == ROWS[1:]


def test_documented_example_version_sorts_as_the_changes_happened():
    batch = load_fixture(EXAMPLE)
    event = firehose_event([json.dumps(change).encode() for change in reversed(batch)], kinesis=False)
    response = run(event, PIPELINE_COLUMNS="event=@eventName,v=@version")
    rows = csv_rows(response)  # arrived out of order, as re-ingested records do
    assert [r[0] for r in rows] == ["MODIFY", "INSERT"]
    assert [r[0] for r in sorted(rows, key=lambda r: r[1])] == ["INSERT", "MODIFY"]
    assert rows[1][1] == "111".zfill(40)
