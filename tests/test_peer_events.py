"""The handler on every sample event other projects ship (tests/fixtures/peer-events, provenance in SOURCES.md)."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import PEER_EVENTS, csv_rows, firehose_event, load_fixture, outputs, results, run

from pipeline.local.contract import contract_problems

pytestmark = pytest.mark.usefixtures("parser")  # every test here runs on both parser paths

FIREHOSE_EVENTS = sorted(
    p.name for p in PEER_EVENTS.glob("*.json") if b'"records"' in p.read_bytes() and "response" not in p.name
)
STREAM_EVENTS = [  # DynamoDB Streams -> Lambda events: {"Records": [change, ...]}
    "ankcorn-ddb-streams-test__NEW_AND_OLD_IMAGES-INSERT.json",
    "ankcorn-ddb-streams-test__NEW_AND_OLD_IMAGES-MODIFY.json",
    "ankcorn-ddb-streams-test__NEW_AND_OLD_IMAGES-REMOVE.json",
    "lambda-dotnet__dynamodb-event.json",
    "lambda-dotnet__dynamodb-with-ms-event.json",
    "lambda-go__dynamodb-event.json",
    "lambda-go__dynamodb-time-window-event.json",
    "powertools-py__dynamoStreamEvent.json",
    "sam-cli__DynamoDBUpdate.template.json",
]
FIELDS = "event=@eventName,table=@tableName,region=@awsRegion,at=@approximateCreationDateTime,ttl=@isTtlDelete"


def test_every_peer_event_file_is_covered():
    covered = {*FIREHOSE_EVENTS, *STREAM_EVENTS}
    others = {
        "lambda-go__dynamodb-event-malformed.2.json",  # truncated on purpose: test_truncated_stream_event
        "powertools-ts__kinesis-dynamodb-stream.json",  # Kinesis -> Lambda: test_kinesis_stream_capture
        "rust-lambda-events__dynamodb-event-record-with-optional-fields.json",  # test_kds_record_without_time
        "lambda-dotnet__kinesis-firehose-response.json",  # responses: test_peer_responses_against_contract
        "lambda-go__kinesis-firehose-response.json",
        "olpa-streaming-json__all-types-dynamodb.json",  # DynamoDB export items: test_export_items
    }
    assert {p.name for p in PEER_EVENTS.glob("*.json")} == covered | others


@pytest.mark.parametrize("name", FIREHOSE_EVENTS)
def test_firehose_events_of_other_payloads_fail_each_record_cleanly(name, caplog):
    """Hello World, SQS messages and template placeholders are not DynamoDB changes: each fails, none crash."""
    event = load_fixture(name)
    response = run(event, PIPELINE_COLUMNS="id")
    assert results(response) == ["ProcessingFailed"] * len(event["records"])
    assert [e["recordId"] for e in response["records"]] == [r["recordId"] for r in event["records"]]
    logged = [json.loads(r.message) for r in caplog.records if "record failed" in r.message]
    assert {line["recordId"] for line in logged} == {r["recordId"] for r in event["records"]}
    assert all("Hello" not in r.message and "World" not in r.message for r in caplog.records)  # ids, not contents


@pytest.mark.parametrize("name", STREAM_EVENTS)
def test_stream_events_one_change_per_firehose_record(name):
    changes = load_fixture(name)["Records"]
    event = firehose_event([json.dumps(c).encode() for c in changes], kinesis=False)
    response = run(event, PIPELINE_COLUMNS=FIELDS)
    assert results(response) == ["Ok"] * len(changes)
    rows = csv_rows(response)
    assert [row[0] for row in rows] == [c["eventName"] for c in changes]
    assert [row[2] for row in rows] == [c["awsRegion"] for c in changes]


@pytest.mark.parametrize("name", STREAM_EVENTS)
def test_stream_events_whole_payload_in_one_firehose_record(name):
    """A payload holding {"Records": [...]} gives one line per change in that one record; BOMs tolerated."""
    raw = (PEER_EVENTS / name).read_bytes()
    response = run(firehose_event([raw]), PIPELINE_COLUMNS="event=@eventName")
    changes = json.loads(raw.decode("utf-8-sig"))["Records"]
    assert results(response) == ["Ok"]
    assert outputs(response)[0] == "".join(f"{c['eventName']}\n" for c in changes).encode()


def test_ankcorn_real_capture_values():
    names = STREAM_EVENTS[:3]
    changes = [c for n in names for c in load_fixture(n)["Records"]]
    event = firehose_event([json.dumps(c, ensure_ascii=False).encode() for c in changes], kinesis=False)
    response = run(event, PIPELINE_COLUMNS=f"pk,sk,data,{FIELDS},seq=@sequenceNumber,size=@sizeBytes")
    table = "dynamodb-streams-test-experiment-NewOldTable-7U1U2U9UKTB7"  # from an ARN with 🦊 for an account
    assert csv_rows(response) == [
        [
            "a",
            "b",
            "test",
            "INSERT",
            table,
            "eu-west-1",
            "2020-07-16T21:50:34.000Z",
            "false",
            "100000000027074219927",
            "20",
        ],
        [
            "a",
            "b",
            "hello",
            "MODIFY",
            table,
            "eu-west-1",
            "2020-07-16T21:50:38.000Z",
            "false",
            "200000000027074221525",
            "35",
        ],
        [
            "a",
            "b",
            "hello",
            "REMOVE",
            table,
            "eu-west-1",
            "2020-07-16T21:50:44.000Z",
            "false",
            "300000000027074223641",
            "21",
        ],
    ]


def test_dotnet_events_all_types_ttl_remove_and_milliseconds():
    """Seconds and milliseconds give the same time; the REMOVE by dynamodb.amazonaws.com is a TTL delete."""
    for name in ("lambda-dotnet__dynamodb-event.json", "lambda-dotnet__dynamodb-with-ms-event.json"):
        changes = load_fixture(name)["Records"]
        event = firehose_event([json.dumps(c).encode() for c in changes])
        columns = "key,val,asdf1,asdf2,misc1,misc2,at=@approximateCreationDateTime,ttl=@isTtlDelete"
        rows = csv_rows(run(event, PIPELINE_COLUMNS=columns, PIPELINE_NULL="NULL"))
        assert rows == [
            [
                "binary",
                "data",
                "AAEqQQ==",
                '["AAEqQQ==","QSoBAA=="]',
                "[]",
                '{"ItemsEmpty":[],"ItemsNonEmpty":["Cookies","Coffee",3.14159],"ItemBoolean":false,'
                '"ItemNumberSet":[0,50,150],"ItemNull":null,"ItemStringSet":["Hippo","Zebra"]}',
                "2016-12-02T01:27:00.000Z",
                "false",
            ],
            [
                "binary",
                "data",
                "AAEqQQ==",
                '["AAEqQQ==","QSoBAA==","AAEqQQ=="]',
                "NULL",
                "NULL",
                "2016-12-02T01:27:00.000Z",
                "true",
            ],
        ]


def test_go_event_every_type_in_json_lines():
    changes = load_fixture("lambda-go__dynamodb-event.json")["Records"]
    response = run(firehose_event([json.dumps(c).encode() for c in changes]), PIPELINE_FORMAT="jsonl")
    second = json.loads(outputs(response)[1])
    assert second == {
        "val": "data",
        "asdf1": "AAEqQQ==",
        "b2": "test",
        "asdf2": ["AAEqQQ==", "QSoBAA==", "AAEqQQ=="],
        "key": "binary",
        "Binary": "AAEqQQ==",
        "Boolean": True,
        "BinarySet": ["AAEqQQ==", "AAEqQQ=="],
        "List": ["Cookies", "Coffee", 3.14159],
        "Map": {"Name": "Joe", "Age": 35},
        "FloatNumber": 123.45,
        "IntegerNumber": 123,
        "NumberSet": [1234, 567.8],
        "Null": None,
        "String": "Hello",
        "StringSet": ["Giraffe", "Zebra"],
        "EmptyStringSet": [],
    }
    assert b'"FloatNumber":123.45,' in outputs(response)[1]  # the digits as sent, not a float's repr
    # An INSERT by the DynamoDB service is not a TTL delete: only a REMOVE is.
    rows = csv_rows(run(firehose_event([json.dumps(c).encode() for c in changes]), PIPELINE_COLUMNS="@isTtlDelete"))
    assert rows == [["false"], ["false"]]


def test_powertools_float_seconds_and_sam_template_placeholders():
    changes = load_fixture("powertools-py__dynamoStreamEvent.json")["Records"]
    rows = csv_rows(
        run(firehose_event([json.dumps(c).encode() for c in changes]), PIPELINE_COLUMNS=f"Id,Message,{FIELDS}")
    )
    assert rows[0] == ["101", "New item!", "INSERT", "", "us-west-2", "2023-09-06T10:45:55.000Z", "false"]
    assert rows[1] == ["101", "This item has changed", "MODIFY", "", "us-west-2", "", "false"]  # no time sent
    template = load_fixture("sam-cli__DynamoDBUpdate.template.json")["Records"]
    rows = csv_rows(
        run(firehose_event([json.dumps(c).encode() for c in template]), PIPELINE_COLUMNS="Id,Message,t=@tableName")
    )
    assert rows == [
        ["101", "New item!", "{{{table}}}"],
        ["101", "This item has changed", "{{{table}}}"],
        ["101", "This item has changed", "{{{table}}}"],
    ]


def test_events_filter_on_time_window_event():
    changes = load_fixture("lambda-go__dynamodb-time-window-event.json")["Records"]
    event = firehose_event([json.dumps(c).encode() for c in changes])
    response = run(event, PIPELINE_COLUMNS="Id,Message", PIPELINE_EVENTS="INSERT,REMOVE")
    assert results(response) == ["Ok", "Dropped", "Ok"]
    assert csv_rows(response) == [["101", "New item!"], ["101", "This item has changed"]]


def test_truncated_stream_event():
    raw = (PEER_EVENTS / "lambda-go__dynamodb-event-malformed.2.json").read_bytes()
    good = (PEER_EVENTS / "lambda-go__dynamodb-event.json").read_bytes()
    response = run(firehose_event([raw, good]), PIPELINE_COLUMNS="key")
    assert results(response) == ["ProcessingFailed", "Ok"]
    assert csv_rows(response) == [["binary"], ["binary"]]


def test_kinesis_stream_capture():
    """A real Kinesis Data Streams for DynamoDB capture, re-wrapped the way Firehose reads that stream."""
    capture = load_fixture("powertools-ts__kinesis-dynamodb-stream.json")["Records"]
    records = [
        {
            "recordId": k["kinesis"]["sequenceNumber"],
            "approximateArrivalTimestamp": int(k["kinesis"]["approximateArrivalTimestamp"] * 1000),
            "data": k["kinesis"]["data"],
            "kinesisRecordMetadata": {
                "shardId": "shardId-000000000000",
                "partitionKey": k["kinesis"]["partitionKey"],
                "approximateArrivalTimestamp": int(k["kinesis"]["approximateArrivalTimestamp"] * 1000),
                "sequenceNumber": k["kinesis"]["sequenceNumber"],
                "subsequenceNumber": 0,
            },
        }
        for k in capture
    ]
    event = {
        "invocationId": "capture",
        "sourceKinesisStreamArn": capture[0]["eventSourceARN"],
        "deliveryStreamArn": "arn:aws:firehose:eu-west-1:123456789012:deliverystream/d",
        "region": "eu-west-1",
        "records": records,
    }
    columns = "id,data,@tableName,@approximateCreationDateTime,@partitionKey,@sequenceNumber,@arrivalTimestamp"
    rows = csv_rows(run(event, PIPELINE_COLUMNS=columns))
    table = "PowertoolsEventsStack-DynamoDBTable59784FC0-8NKAMTERTAXY"
    assert rows == [
        [
            "record-1qit2y819gi",
            "data-x6aq7ckdpgk",
            table,
            "2024-11-18T10:09:15.370Z",
            "859F7C064A4818874FA67ABEC9BF2AF1",
            "49657828409187701520019995242508390119953358325192589314",
            "2024-11-18T10:09:15.932Z",
        ],
        [
            "record-fvxn3q4q5jw",
            "data-4eompjs89n5",
            table,
            "2024-11-18T10:09:15.370Z",
            "6037E47B707479B67E577C989D96E9F8",
            "49657828409187701520019995242509599045772972954367295490",
            "2024-11-18T10:09:15.935Z",
        ],
    ]


def test_kds_record_without_time():
    raw = (PEER_EVENTS / "rust-lambda-events__dynamodb-event-record-with-optional-fields.json").read_bytes()
    response = run(
        firehose_event([raw]), PIPELINE_COLUMNS="id,created,@tableName,@approximateCreationDateTime,@isTtlDelete"
    )
    assert csv_rows(response) == [
        ["00000000-0000-0000-0000-000000000000", "2022-02-16T15:12:00.14Z", "examples", "", "false"]
    ]
    keyed = run(
        firehose_event([raw]),
        PIPELINE_COLUMNS="id",
        PIPELINE_PARTITION_KEYS="day=@approximateCreationDateTime|%Y-%m-%d",
    )
    assert results(keyed) == ["ProcessingFailed"]  # the key cannot be computed: the reason is logged


def test_export_items_are_not_change_records():
    item = (PEER_EVENTS / "olpa-streaming-json__all-types-dynamodb.json").read_bytes()
    assert results(run(firehose_event([item]), PIPELINE_COLUMNS="id")) == ["ProcessingFailed"]


def test_peer_responses_against_contract():
    dotnet = load_fixture("lambda-dotnet__kinesis-firehose-response.json")
    event = load_fixture("lambda-dotnet__kinesis-firehose-event.json")
    assert contract_problems(event, dotnet) == []
    assert base64.b64decode(dotnet["records"][0]["data"]) == b"HELLO WORLD"
    go = load_fixture("lambda-go__kinesis-firehose-response.json")
    problems = contract_problems({"records": [{"recordId": f"record{i}"} for i in (1, 2, 3)]}, go)
    assert "records[0] result 'TRANSFORMED_STATE_OK' is not Ok, Dropped or ProcessingFailed" in problems
    assert "records[1] is TRANSFORMED_STATE_DROPPED but carries data" in problems


def test_versions_of_the_real_streams_capture_order_insert_modify_remove():
    """DynamoDB Streams format: the SequenceNumber, zero-padded to 40 digits; the capture's order kept."""
    changes = [c for n in STREAM_EVENTS[:3] for c in load_fixture(n)["Records"]]
    event = firehose_event([json.dumps(c).encode() for c in reversed(changes)], kinesis=False)  # arrived backwards
    rows = csv_rows(run(event, PIPELINE_COLUMNS="@eventName,@version"))
    assert rows == [
        ["REMOVE", "0000000000000000000300000000027074223641"],
        ["MODIFY", "0000000000000000000200000000027074221525"],
        ["INSERT", "0000000000000000000100000000027074219927"],
    ]
    assert [v for _, v in sorted(rows, key=lambda r: r[1])] == [v for _, v in reversed(rows)]


def test_versions_of_sample_streams_events_with_short_sequence_numbers():
    """Samples with sequence numbers shorter than the API's 21 digits still get 40, and sort as numbers would."""
    changes = load_fixture("lambda-go__dynamodb-time-window-event.json")["Records"]
    rows = csv_rows(run(firehose_event([json.dumps(c).encode() for c in changes]), PIPELINE_COLUMNS="@version"))
    assert rows == [["0" * 37 + "111"], ["0" * 37 + "222"], ["0" * 37 + "333"]]
    dotnet = load_fixture("lambda-dotnet__dynamodb-with-ms-event.json")["Records"]  # milliseconds and a sequence
    rows = csv_rows(run(firehose_event([json.dumps(c).encode() for c in dotnet]), PIPELINE_COLUMNS="@version"))
    assert rows == [["0000000000000001405400000000002063282832"]] * len(dotnet)


def test_versions_of_the_real_kinesis_capture_are_microseconds():
    """Kinesis Data Streams for DynamoDB format: ApproximateCreationDateTime (ms here) as 20 digits of µs."""
    capture = load_fixture("powertools-ts__kinesis-dynamodb-stream.json")["Records"]
    payloads = [base64.b64decode(k["kinesis"]["data"]) for k in capture]
    rows = csv_rows(run(firehose_event(payloads), PIPELINE_COLUMNS="id,@version"))
    assert rows == [
        ["record-1qit2y819gi", "00001731924555370000"],
        ["record-fvxn3q4q5jw", "00001731924555370000"],
    ]


def test_a_change_without_sequence_or_time_cannot_be_versioned():
    raw = (PEER_EVENTS / "rust-lambda-events__dynamodb-event-record-with-optional-fields.json").read_bytes()
    assert results(run(firehose_event([raw]), PIPELINE_COLUMNS="id,@version")) == ["ProcessingFailed"]
