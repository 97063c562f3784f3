"""Each stage on its own: what it makes of good input, and the reason it gives for bad input."""

from __future__ import annotations

import base64
import json

import pytest

from pipeline import (
    Record,
    RecordError,
    decode,
    encode,
    keep_events,
    parse,
    parse_column,
    parse_columns,
    project,
    to_json,
    to_text,
    with_partition_keys,
)
from pipeline.fields import epoch_millis, iso_millis

pytestmark = pytest.mark.usefixtures("parser")  # every test here runs on both parser paths


def change(name="INSERT", new=None, old=None, keys=None, **extra):
    ddb = {"Keys": keys or {"id": {"S": "1"}}, "ApproximateCreationDateTime": 1_700_000_000_000}
    if new is not None:
        ddb["NewImage"] = new
    if old is not None:
        ddb["OldImage"] = old
    return {"eventName": name, "dynamodb": ddb, **extra}


def firehose(data, record_id="r1"):
    return {"recordId": record_id, "data": data}


def one(stage, item):
    [rec] = list(stage([item]))
    return rec


# decode


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "decode: record has no base64 'data' text"),
        (123, "decode: record has no base64 'data' text"),
        ("abc", "decode: data is not valid base64 (Incorrect padding)"),
        ("ab=c", "decode: data is not valid base64 (Discontinuous padding not allowed)"),
        ("Zm9v\n", "decode: data is not valid base64 (Only base64 data is allowed)"),
        ("Zm9vé", "decode: data is not valid base64 (string argument should contain only ASCII characters)"),
    ],
)
def test_decode_invalid_base64_fails_the_record(data, reason):
    rec = one(decode, firehose(data))
    assert (rec.result, rec.reason, rec.value) == ("ProcessingFailed", reason, None)


def test_decode_keeps_ids_and_the_source_untouched():
    source = firehose(base64.b64encode(b"payload").decode())
    frozen = json.dumps(source)
    rec = one(decode, source)
    assert (rec.id, rec.value, rec.source is source) == ("r1", b"payload", True)
    assert json.dumps(source) == frozen


# parse


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe{", "not valid"),
        (b"[1, 2]", "not a DynamoDB change record: [0] is not a JSON object"),
        (b'[{"eventName": "INSERT", "dynamodb": {"Keys": {}}}, {}]', "[1] eventName is not INSERT, MODIFY or REMOVE"),
        (b'"text"', "not a DynamoDB change record: JSON str, not an object"),
        (b"{}", "not a DynamoDB change record: has neither 'dynamodb' nor a 'Records' list"),
        (b'{"eventName": "INSERT"}', "not a DynamoDB change record: has no dynamodb.Keys object"),
        (b'{"eventName": "INSERT", "dynamodb": {"Keys": []}}', "has no dynamodb.Keys object"),
        (b'{"eventName": "PUT", "dynamodb": {"Keys": {}}}', "eventName is not INSERT, MODIFY or REMOVE"),
        (b'{"eventName": "INSERT", "dynamodb": {"Keys": {}, "NewImage": 3}}', "dynamodb.NewImage is not an object"),
        (b'{"Records": [{"eventName": "INSERT", "dynamodb": {"Keys": {}}}, 7]}', "Records[1] is not a JSON object"),
        (b"[" * 100_000, "parse: "),
    ],
)
def test_parse_rejects_what_is_not_a_change_record(payload, reason):
    rec = one(parse(), firehose(payload))
    assert rec.result == "ProcessingFailed"
    assert reason in rec.reason


def test_parse_with_either_parser_gives_the_same_changes():
    raw = json.dumps({"Records": [change(new={"n": {"N": "1"}}), change("REMOVE")]}).encode()
    assert one(parse(parser="stdlib"), firehose(raw)).value == one(parse(parser="msgspec"), firehose(raw)).value


def test_parse_tolerates_a_byte_order_mark_and_drops_an_empty_records_list():
    raw = json.dumps(change()).encode()
    assert one(parse(), firehose(b"\xef\xbb\xbf" + raw)).value == (change(),)
    for payload in (b'{"Records": []}', b"[]"):
        empty = one(parse(), firehose(payload))
        assert (empty.result, empty.reason) == ("Dropped", "no change records in payload")


# keep_events


def test_keep_events_on_several_changes_in_one_record():
    rec = Record("r", {}, (change("INSERT"), change("REMOVE"), change("MODIFY")))
    kept = one(keep_events({"INSERT", "MODIFY"}), rec)
    assert [c["eventName"] for c in kept.value] == ["INSERT", "MODIFY"]
    assert one(keep_events({"REMOVE"}), Record("r", {}, (change("INSERT"),))).result == "Dropped"


@pytest.mark.parametrize("names", [set(), {"insert"}, "INSERT"])
def test_keep_events_checks_its_argument_eagerly(names):
    with pytest.raises((ValueError, TypeError)):
        keep_events(names)


# columns


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("a..b", "empty name"),
        ("[0]", "index without a name"),
        ("a[x]", "unexpected '['"),
        ("a.", "does not end in a name"),
        ('"a"b', "missing '.'"),
        ("@nope", "unknown field '@nope'"),
        ("=a", "empty column name"),
        ("a=b=c", "more than one '='"),
        ('"open', "unbalanced double quote"),
    ],
)
def test_bad_column_specs_are_refused_with_the_reason(spec, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        parse_columns(spec)


def test_duplicate_column_names_are_refused():
    with pytest.raises(ValueError, match="duplicate column names: id"):
        parse_columns("id, id=@eventID")


def test_column_paths_into_maps_lists_and_quoted_names():
    image = {
        "a.b": {"S": "dotted"},
        "m": {"M": {"x,y": {"N": "1"}, "l": {"L": [{"S": "zero"}, {"M": {"deep": {"BOOL": True}}}]}}},
        "s": {"S": "not a map"},
    }
    get = {
        spec: parse_column(spec).get for spec in ('"a.b"', 'm."x,y"', "m.l[0]", "m.l[1].deep", "m.l[2]", "s.x", "m.l.x")
    }
    assert [g({}, image, None) for g in get.values()] == [
        {"S": "dotted"},
        {"N": "1"},
        {"S": "zero"},
        {"BOOL": True},
        None,  # out of range
        None,  # not a map
        None,  # a list is not a map
    ]


# values


def test_every_type_to_text_and_json():
    every = {
        "S": ({"S": 'a,"b"\n'}, 'a,"b"\n', '"a,\\"b\\"\\n"'),
        "N": (
            {"N": "-0.000000000000000000000000000000000000012"},
            "-0.000000000000000000000000000000000000012",
            "-0.000000000000000000000000000000000000012",
        ),
        "B": ({"B": "AAEqQQ=="}, "AAEqQQ==", '"AAEqQQ=="'),
        "BOOL": ({"BOOL": True}, "true", "true"),
        "NULL": ({"NULL": True}, "", "null"),
        "SS": ({"SS": ["é", '"']}, '["é","\\""]', '["é","\\""]'),
        "NS": ({"NS": ["1E+3", "2"]}, "[1E+3,2]", "[1E+3,2]"),
        "BS": ({"BS": ["AA=="]}, '["AA=="]', '["AA=="]'),
        "L": ({"L": [{"NULL": True}, {"L": []}]}, "[null,[]]", "[null,[]]"),
        "M": ({"M": {"k": {"M": {}}}}, '{"k":{}}', '{"k":{}}'),
    }
    for typed, text, as_json in every.values():
        assert to_text(typed) == text
        assert to_json(typed) == as_json


@pytest.mark.parametrize(
    "bad",
    [
        {"S": 1},
        {"N": "abc"},
        {"N": 5},
        {"BOOL": "true"},
        {"SS": "a"},
        {"SS": [1]},
        {"L": {}},
        {"M": []},
        {"X": 1},
        {},
        {"S": "a", "N": "1"},
        "S",
        None,
    ],
)
def test_malformed_typed_values_raise_record_errors(bad):
    with pytest.raises(RecordError):
        to_json(bad)


def test_epoch_units_and_iso_text():
    assert {epoch_millis(v) for v in (1_480_642_020, 1_480_642_020.0, 1_480_642_020_000, 1_480_642_020_000_000)} == {
        1_480_642_020_000
    }
    assert iso_millis(epoch_millis(1_693_997_155.1234)) == "2023-09-06T10:45:55.123Z"
    for bad in ("1", True, float("nan"), None):
        with pytest.raises(RecordError):
            epoch_millis(bad)
    with pytest.raises(RecordError, match="out of range"):
        iso_millis(10**15)


# project


def test_project_image_choice():
    modify = change("MODIFY", new={"v": {"S": "new"}}, old={"v": {"S": "old"}})
    remove = change("REMOVE", old={"v": {"S": "gone"}})
    for image, expected in {
        "auto": ["new", "gone"],
        "new": ["new", None],
        "old": ["old", "gone"],
        "keys": [None, None],
    }.items():
        recs = list(project("v", image)([modify, remove]))
        assert [r.value[0]["v"] and r.value[0]["v"]["S"] for r in recs] == expected
    with pytest.raises(ValueError, match="unknown image"):
        project("v", "newest")


def test_project_does_not_mutate_the_change():
    c = change(new={"id": {"S": "1"}})
    frozen = json.dumps(c)
    list(project(None)([c]))
    list(project("id,@eventName")([c]))
    assert json.dumps(c) == frozen


# partition keys


def test_partition_keys_must_agree_across_changes_in_one_record():
    a = change(new={"t": {"S": "x"}})
    b = change(new={"t": {"S": "y"}})
    rec = one(with_partition_keys("t=t"), Record("r", {}, (a, b)))
    assert (rec.result, rec.reason) == (
        "ProcessingFailed",
        "partition_keys: changes in one record have different partition keys",
    )
    assert one(with_partition_keys("t=t"), Record("r", {}, (a, a))).partition_keys == {"t": "x"}


@pytest.mark.parametrize(
    ("spec", "new", "expected"),
    [
        ("d=at|%Y/%m/%d", {"at": {"N": "1700000000"}}, "2023/11/14"),
        ("d=at|%Y/%m/%d", {"at": {"N": "1700000000000"}}, "2023/11/14"),
        ("d=at|%Y-%m-%dT%H", {"at": {"S": "2024-03-01T01:30:00+02:00"}}, "2024-02-29T23"),  # in UTC
        ("d=at|%Y-%m-%dT%H", {"at": {"S": "2024-02-29T23:30:00"}}, "2024-02-29T23"),
        ("d=@approximateCreationDateTime|%Y", {}, "2023"),
        ("k=flag", {"flag": {"BOOL": False}}, "false"),
    ],
)
def test_partition_key_values(spec, new, expected):
    rec = one(with_partition_keys(spec), Record("r", {}, (change(new=new),)))
    assert list(rec.partition_keys.values()) == [expected]


@pytest.mark.parametrize(
    ("new", "reason"),
    [
        ({}, "partition key 'k' has no value"),
        ({"v": {"NULL": True}}, "partition key 'k' has no value"),
        ({"v": {"S": ""}}, "partition key 'k' is empty"),
    ],
)
def test_partition_key_without_value_fails_the_record(new, reason):
    rec = one(with_partition_keys("k=v"), Record("r", {}, (change(new=new),)))
    assert rec.reason == f"partition_keys: {reason}"


@pytest.mark.parametrize("spec", ["k", "=v", "k=v|%Y|%m", "k=v|plain", "a=v,a=w"])
def test_bad_partition_key_specs_are_refused(spec):
    with pytest.raises(ValueError):
        with_partition_keys(spec)


# encode


def test_encode_refuses_unknown_formats_and_tsv_null_with_tabs():
    with pytest.raises(ValueError, match="unknown format"):
        encode("parquet")
    with pytest.raises(ValueError, match="tab or line break"):
        encode("tsv", null="\t")


def test_encode_fails_text_that_is_not_valid_unicode():
    rec = one(encode("csv"), Record("r", {}, ({"s": {"S": "\ud800"}},)))
    assert (rec.result, rec.reason) == ("ProcessingFailed", "encode: column 's' is not UTF-8 text")


def test_time_partition_keys_from_fields_out_of_range_or_missing_fail_the_record():
    far = change(new={})
    far["dynamodb"]["ApproximateCreationDateTime"] = 10**17 * 9  # microseconds, year 30,000
    rec = one(with_partition_keys("d=@approximateCreationDateTime|%Y"), Record("r", {}, (far,)))
    assert rec.reason == "partition_keys: partition key 'd': time out of range"
    rec = one(with_partition_keys("d=@arrivalTimestamp|%Y"), Record("r", {}, (change(new={}),)))
    assert rec.reason == "partition_keys: partition key 'd' has no value"
    rec = one(
        with_partition_keys("d=@arrivalTimestamp|%Y-%m-%dT%H:%M:%S.%f"),
        Record("r", {"approximateArrivalTimestamp": 1_700_000_000_123}, (change(new={}),)),
    )
    assert rec.partition_keys == {"d": "2023-11-14T22:13:20.123000"}


# fusion


def test_the_handlers_stages_fuse_into_one_loop_and_a_stage_of_ones_own_stops_it():
    from pipeline import Config, stages
    from pipeline.records import chain

    config = Config.from_env(
        {"PIPELINE_COLUMNS": "a", "PIPELINE_EVENTS": "INSERT", "PIPELINE_PARTITION_KEYS": "t=@tableName"}
    )
    built = stages(config)
    [whole] = chain(built).parts
    assert [step.name for step in whole.steps] == [
        "decode",
        "parse",
        "keep_events",
        "partition_keys",
        "project",
        "encode",
    ]
    seen = []

    def mine(records):  # a stage of one's own between parse and the rest
        for rec in records:
            seen.append(rec.id)
            yield rec

    run = chain([*built[:2], mine, *built[2:]])
    assert [len(getattr(part, "steps", ())) for part in run.parts] == [2, 0, 4]
    payload = json.dumps({**change(new={"a": {"S": "x"}}), "tableName": "t"}).encode()
    fused = list(chain(built)([firehose(base64.b64encode(payload).decode())]))
    split = list(run([firehose(base64.b64encode(payload).decode())]))
    assert fused == split and seen == ["r1"]
    assert (fused[0].value, fused[0].partition_keys) == (b"x\n", {"t": "t"})
