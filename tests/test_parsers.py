"""One parser, one answer: every shipped parser path gives every record the same result, reason and output.

The paths are msgspec (with projection pushdown) and the standard library; the handler runs the same event on
each, and the responses and the log lines (but durations) must be identical, for random, garbage and hostile
payloads.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import firehose_event
from hypothesis import example, given
from hypothesis import strategies as st
from runs import pipeline_log
from test_properties import configs, messy_events, payload, typed

from pipeline import Config, RecordError, make_handler, parse, stages
from pipeline.encode import _json_lines, _stdlib_json_lines
from pipeline.local.context import LocalContext
from pipeline.parse import PARSERS, b64decode, strict_b64decode
from pipeline.records import chain, describe

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"eventName": "INSERT", "tableName": "t", "dynamodb": {"ApproximateCreationDateTime": 1_700_000_000_123}}


def good(new=None, **extra):
    ddb = {**GOOD["dynamodb"], "Keys": {"a": {"S": "k"}}, "NewImage": new or {"a": {"S": "x"}, "b": {"N": "1"}}}
    return {**GOOD, "dynamodb": ddb, **extra}


def _hostile() -> list[bytes]:
    text = json.dumps(good())
    found = [
        text.encode("utf-16"),  # UTF-16 and UTF-32 payloads are not change records
        text.encode("utf-16-le"),
        text.encode("utf-32"),
        text.encode("utf-32-be"),
        b"\xef\xbb\xbf" + text.encode(),  # a UTF-8 byte-order mark is fine
        b"\xef\xbb\xbf\xef\xbb\xbf" + text.encode(),  # two are not
        text.replace('"Keys"', '"x": NaN, "Keys"').encode(),  # NaN and Infinity anywhere are refused at parse
        text.replace('"Keys"', '"x": [Infinity, -Infinity], "Keys"').encode(),
        text.replace("1700000000123", "NaN").encode(),
        text.replace("1700000000123", "1e400").encode(),  # out of range: a field that reads it refuses it
        text.replace("1700000000123", "-1e400").encode(),
        text.replace("1700000000123", "1" + "0" * 40).encode(),
        text.replace("1700000000123", "1" + "0" * 5000).encode(),
        text.replace('"Keys"', '"x": 1e400, "y": ' + "9" * 5000 + ', "Keys"').encode(),  # skipped, still judged
        text.replace('"Keys"', '"SizeBytes": ' + "1" + "0" * 40 + ', "Keys"').encode(),
        text.replace('"Keys"', '"SizeBytes": 1e400, "Keys"').encode(),
        text.replace('"x"', '"\\ud800"').encode(),  # a lone surrogate escape, read and unread
        text.replace('"t"', '"t\\ud800"').encode(),
        text.replace('"t"', '"\\udc00\\ud800"').encode(),
        text.replace('"t"', '"\\ud83e\\udd8a"').encode(),  # a surrogate pair is one character
        text.replace('"t"', '"\xff"').encode("latin-1"),  # not UTF-8, in a field nobody reads
        text.replace('"x"', '"\xff"').encode("latin-1"),
        text.replace('"t"', '"\\u00e9 é"').encode() + b" ",
        text.encode()[:-1],  # truncated
        text.encode() + b" x",
        text.encode() + b"\x00",
        text.replace('"t"', '"a\x01b"').encode(),  # a raw control character
        text.replace('"Keys"', '"eventName": "REMOVE", "Keys"').encode(),
        json.dumps({**good(), "eventName": "REMOVE", "dynamodb": {"Keys": {}}, "Records": 3}).encode(),
        json.dumps({**good(), "eventName": "X"}).encode(),
        json.dumps({**good(), "eventName": ["INSERT"]}).encode(),
        json.dumps({"Records": [good(), good(), None]}).encode(),
        json.dumps({"Records": [good(), {**good(), "dynamodb": {"Keys": [], "NewImage": {}}}]}).encode(),
        json.dumps({"Records": []}).encode(),
        json.dumps([good(), good()]).encode(),  # a batch as a JSON array (EventBridge Pipes)
        json.dumps([good(), 3]).encode(),
        b"[]",
        json.dumps({"Records": {}}).encode(),
        json.dumps({"eventName": "INSERT"}).encode(),
        json.dumps({"dynamodb": {"Keys": {}}}).encode(),
        json.dumps(good(new={"a": None, "b": {"N": 5}})).encode(),
        json.dumps({**good(), "dynamodb": {**good()["dynamodb"], "OldImage": None}}).encode(),
        json.dumps({**good(), "dynamodb": {"Keys": {"a": {"S": "k"}}, "NewImage": []}}).encode(),
        json.dumps({**good(), "dynamodb": {"Keys": {"a": {"S": "k"}}}}).encode(),  # no image: Keys
        json.dumps({**good(), "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"}}).encode(),
        b'{"eventName": "INSERT", "eventName": "MODIFY", "dynamodb": {"Keys": {}, "Keys": {"a": {"S": "2"}}}}',
        b"[" * 5000 + b"]" * 5000,
        b'{"eventName": "INSERT", "dynamodb": {"Keys": {}, "NewImage": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}}",
        b"",
        b"null",
        b'"INSERT"',
    ]
    return found


HOSTILE = _hostile()
ENVS = [
    {"PIPELINE_COLUMNS": "a,b,@eventName,@approximateCreationDateTime,@sizeBytes,@isTtlDelete,@tableName"},
    {"PIPELINE_COLUMNS": "a,b", "PIPELINE_FORMAT": "tsv", "PIPELINE_IMAGE": "keys", "PIPELINE_EVENTS": "INSERT"},
    {
        "PIPELINE_COLUMNS": "x=a.b[0],@eventID,@version",
        "PIPELINE_IMAGE": "old",
        "PIPELINE_PARTITION_KEYS": "t=@tableName",
    },
    {"PIPELINE_FORMAT": "jsonl"},
    {
        "PIPELINE_FORMAT": "jsonl",
        "PIPELINE_IMAGE": "new",
        "PIPELINE_PARTITION_KEYS": "d=@approximateCreationDateTime|%Y",
    },
    {
        "PIPELINE_FORMAT": "iceberg",
        "PIPELINE_ICEBERG_TABLE": "lake.{tableName}",
        "PIPELINE_ICEBERG_MODE": "upsert",
        "PIPELINE_ICEBERG_KEYS": "a",
        "PIPELINE_COLUMNS": "a,b,when=@approximateCreationDateTime",
    },
]


def answers(event, env):
    """The response and the log lines of the handler on each parser path (durations and timestamps left out)."""
    found = {}
    context = LocalContext()  # one request id for both
    for parser in PARSERS:
        with pipeline_log() as logged:
            response = make_handler(Config.from_env({"PIPELINE_REINGEST": "off", **env}), parser=parser)(event, context)
        found[parser] = response, logged
    return found


def assert_one_answer(event, env):
    found = answers(event, env)
    assert found["msgspec"] == found["stdlib"]


@pytest.mark.parametrize("env", ENVS, ids=lambda env: ",".join(f"{k[9:]}={v}" for k, v in env.items()))
def test_hostile_payloads_get_one_answer_on_every_path(env):
    assert_one_answer(firehose_event(HOSTILE), env)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (json.dumps(good()).encode("utf-16"), "parse: not valid UTF-8 text (UnicodeDecodeError)"),
        (json.dumps(good()).encode("utf-32"), "parse: not valid UTF-8 text (UnicodeDecodeError)"),
        (HOSTILE[6], "parse: not valid JSON (NaN is not a JSON number)"),
        (HOSTILE[7], "parse: not valid JSON (Infinity is not a JSON number)"),
        (HOSTILE[9], "project: ApproximateCreationDateTime is not a finite number"),
        (HOSTILE[15], "project: SizeBytes is not an integer"),
        (HOSTILE[20], "parse: not valid UTF-8 text (UnicodeDecodeError)"),
    ],
)
@pytest.mark.parametrize("parser", PARSERS)
def test_the_rules_every_parser_follows(payload, reason, parser):
    transform = chain(stages(Config.from_env(ENVS[0]), parser=parser))
    [record] = transform(firehose_event([payload])["records"])
    assert (record.result, record.reason) == ("ProcessingFailed", reason)
    if reason.startswith("parse: "):  # the parse stage alone, without pushdown, says the same
        [alone] = parse(parser=parser)([{"recordId": "r", "data": payload}])
        assert alone.reason == reason


def test_numbers_in_range_are_read_the_same_everywhere():
    change = good()
    change["dynamodb"]["SizeBytes"] = 10**40  # beyond 64 bits, still an integer; 1e400 unread beside it
    payload = json.dumps(change).encode().replace(b'"SizeBytes"', b'"x": 1e400, "SizeBytes"')
    found = answers(firehose_event([payload]), {"PIPELINE_COLUMNS": "@sizeBytes"})
    assert found["msgspec"] == found["stdlib"]
    assert base64.b64decode(found["msgspec"][0]["records"][0]["data"]) == b"1" + b"0" * 40 + b"\n"


@given(messy_events(), configs)
@example(firehose_event(HOSTILE), {"PIPELINE_COLUMNS": "a", "PIPELINE_FORMAT": "csv"})
def test_every_parser_gives_the_same_response_and_logs_on_any_input(event, env):
    assert_one_answer(event, env)


junk_value = st.one_of(
    st.just(None),
    st.sampled_from(
        [{"N": "NaN"}, {"N": "+1.50"}, {"N": ".5"}, {"N": 5}, {"S": "\ud800"}, {"S": 1}, {"B": "!!"}, {"X": 1}, {}]
    ),
    st.sampled_from([{"S": "a", "N": "1"}, {"L": {}}, {"M": []}, {"SS": [1]}, {"NS": ["1", "x"]}, "S", 3]),
)
typed_or_junk = st.one_of(typed, junk_value, st.lists(junk_value, max_size=2).map(lambda v: {"L": v}))
hostile_bytes = st.one_of(
    payload,
    st.sampled_from(HOSTILE),
    st.tuples(payload, st.sampled_from(["utf-16", "utf-32", "utf-8-sig", "latin-1"])).map(
        lambda pe: pe[0].decode("utf-8", "replace").encode(pe[1], "replace")
    ),
    st.tuples(st.sampled_from(HOSTILE), st.integers(0, 400), st.binary(max_size=3)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]  # a few bytes spliced in anywhere
    ),
)


@given(st.lists(hostile_bytes, min_size=1, max_size=6), st.sampled_from(ENVS))
def test_spliced_and_re_encoded_payloads_get_one_answer(payloads, env):
    assert_one_answer(firehose_event(payloads), env)


def test_without_msgspec_the_handler_parses_with_the_standard_library_and_says_so_once():
    probe = """
import json, sys
sys.modules["msgspec"] = None  # as in a zip whose msgspec cannot load
import handler
event = json.load(sys.stdin)
print(json.dumps(handler.lambda_handler(event, None)))
handler.make_handler(handler.CONFIG)
"""
    event = firehose_event([json.dumps(good()).encode(), b"junk"])
    run = subprocess.run(
        [sys.executable, "-c", probe],
        input=json.dumps(event),
        cwd=ROOT,
        env={"PATH": "", "PYTHONPATH": str(ROOT), "PIPELINE_COLUMNS": "a,b", "PIPELINE_REINGEST": "off"},
        capture_output=True,
        text=True,
        check=True,
    )
    *logged, last = run.stdout.splitlines()
    messages = [json.loads(line)["message"] for line in logged]
    assert messages.count("msgspec could not be loaded: records are parsed with the standard library") == 1
    assert messages[0].startswith("msgspec could not be loaded")
    expected = make_handler(Config.from_env({"PIPELINE_COLUMNS": "a,b", "PIPELINE_REINGEST": "off"}))(event, None)
    assert json.loads(last) == expected


@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "c"]), typed_or_junk), min_size=1, max_size=3))
def test_json_lines_are_the_same_bytes_and_reasons_with_either_encoder(rows):
    """msgspec's encoder (the default) and json_line (without msgspec) write and refuse the same rows."""
    found = []
    for lines in (_json_lines(), _stdlib_json_lines):
        try:
            found.append(lines(tuple(rows)))
        except Exception as exc:  # the reason is what the log would say
            found.append(describe(exc))
    assert found[0] == found[1]


def base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _decoded(decode, text):
    try:
        return "ok", decode(text)
    except RecordError as exc:
        return "failed", str(exc)


@given(st.text(alphabet="ABCDabcz0189+/=\n -_é\x00", max_size=24) | st.binary(max_size=18).map(base64_text))
@example("AAAA=")  # binascii's strict mode takes it, msgspec does not: binascii's answer is given
@example("QUJD====")
def test_base64_has_one_answer_on_both_paths(text):
    """msgspec decodes the base64 it accepts to the bytes binascii would; what it refuses, binascii judges."""
    assert _decoded(b64decode, text) == _decoded(strict_b64decode, text)
