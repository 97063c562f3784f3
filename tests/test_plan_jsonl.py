"""The plan's fast row for JSON Lines of the whole image gives every record the stages' answer.

The handler runs each event twice, with the fast row and without it (``make_handler(config, fast=False)``:
every record through the stages), on both parser paths; the responses and the log lines (but durations) must
be identical, for ordinary, random, garbage and hostile payloads and images.
"""

from __future__ import annotations

import base64
import json

import msgspec
import pytest
from conftest import firehose_event
from hypothesis import given
from hypothesis import strategies as st
from runs import pipeline_log
from test_parsers import HOSTILE, good, hostile_bytes, typed_or_junk
from test_properties import change, hostile_events, image, messy_events

from pipeline import Config, make_handler
from pipeline.attributes import plain_image, plain_map
from pipeline.local.context import LocalContext
from pipeline.parse import PARSERS
from pipeline.plan import fast_rows

IMAGES = ("auto", "new", "old", "keys")
EVENTS = ("INSERT,MODIFY,REMOVE", "INSERT", "MODIFY,REMOVE")
jsonl_configs = st.fixed_dictionaries(
    {
        "PIPELINE_FORMAT": st.just("jsonl"),
        "PIPELINE_EVENTS": st.sampled_from(EVENTS),
        "PIPELINE_IMAGE": st.sampled_from(IMAGES),
    }
)


def responses(event, env, parser):
    """``{fast: (response, log lines)}`` of the handler with and without the fast row (durations left out)."""
    found = {}
    context = LocalContext()  # one request id for both
    for fast in (True, False):
        config = Config.from_env({"PIPELINE_REINGEST": "off", **env})
        with pipeline_log() as logged:
            response = make_handler(config, parser=parser, fast=fast)(event, context)
        found[fast] = response, logged
    return found


def assert_same(event, env, parser):
    found = responses(event, env, parser)
    assert found[True] == found[False]
    return found[True][0]


def lines_of(response):
    return [base64.b64decode(e["data"]) for e in response["records"] if e["result"] == "Ok"]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("image_choice", IMAGES)
@pytest.mark.parametrize("events", EVENTS)
def test_hostile_payloads_get_the_stages_answer(parser, image_choice, events):
    env = {"PIPELINE_FORMAT": "jsonl", "PIPELINE_IMAGE": image_choice, "PIPELINE_EVENTS": events}
    assert_same(firehose_event(HOSTILE), env, parser)


@pytest.mark.parametrize("parser", PARSERS)
@given(messy_events(), jsonl_configs)
def test_messy_events_get_the_stages_answer(parser, event, env):
    assert_same(event, env, parser)


@pytest.mark.parametrize("parser", PARSERS)
@given(st.lists(hostile_bytes, min_size=1, max_size=6), jsonl_configs)
def test_spliced_and_re_encoded_payloads_get_the_stages_answer(parser, payloads, env):
    assert_same(firehose_event(payloads), env, parser)


@pytest.mark.parametrize("parser", PARSERS)
@given(hostile_events(), jsonl_configs)
def test_hostile_strings_get_the_stages_answer(parser, event, env):
    assert_same(event, env, parser)


@st.composite
def junk_changes(draw):
    """Changes of each event type whose images hold junk as well as typed values, at the top and inside maps."""
    images = st.dictionaries(
        st.sampled_from(["a", "b", "c", "é"]),
        typed_or_junk | st.dictionaries(st.sampled_from(["x", "y"]), typed_or_junk, max_size=2).map(lambda m: {"M": m}),
        max_size=4,
    )
    new, old = draw(images), draw(images)
    event_name = draw(st.sampled_from(["INSERT", "MODIFY", "REMOVE"]))
    c = change(event_name, new)
    if event_name == "MODIFY":
        c["dynamodb"]["OldImage"] = old
    return json.dumps(c).encode()


@pytest.mark.parametrize("parser", PARSERS)
@given(st.lists(junk_changes(), min_size=1, max_size=6), jsonl_configs, st.sampled_from([None, 1500, 3000]))
def test_junk_values_in_images_get_the_stages_answer(parser, payloads, env, budget):
    if budget is not None:  # lines over the budget go the general way (here, without re-ingestion)
        env = {**env, "PIPELINE_MAX_RESPONSE_BYTES": str(budget)}
    assert_same(firehose_event(payloads), env, parser)


@pytest.mark.parametrize("parser", PARSERS)
@given(st.lists(image, min_size=1, max_size=5), st.sampled_from(["INSERT", "MODIFY", "REMOVE"]))
def test_images_are_written_the_same_way(parser, images, event_name):
    event = firehose_event([json.dumps(change(event_name, img)).encode() for img in images])
    response = assert_same(event, {"PIPELINE_FORMAT": "jsonl"}, parser)
    assert len(lines_of(response)) == len(images)


#: Typed values written as JSON text (duplicate keys and escapes cannot come from json.dumps), each with whether
#: the fast row writes it itself (True) or leaves it to the stages (False: they fail it, or it is rare).
ODD_VALUES = [
    (b'{"N": "007"}', True),
    (b'{"N": "+1.50"}', True),
    (b'{"N": "5."}', True),
    (b'{"N": "-0"}', True),
    (b'{"N": "1E+3"}', True),
    (b'{"N": "1e400"}', True),
    (b'{"N": "' + b"9" * 38 + b"." + b"1" * 30 + b'"}', True),
    (b'{"N": "NaN"}', False),
    (b'{"N": "1 "}', False),
    (b'{"N": "\\u0661"}', False),  # an Arabic-Indic digit: not a DynamoDB number
    (b'{"N": 1}', False),
    (b'{"NULL": true}', True),
    (b'{"NULL": false}', True),
    (b'{"NULL": "x"}', True),
    (b'{"NULL": null}', True),
    (b'{"NULL": {"a": [1, null, {"S": 2}]}}', True),
    (b'{"S": "a\\"b\\\\c\\n\\t\\u0000\\u001f\\u007f\\u00e9\\u2028\\/\xc3\xbc\xe2\x82\xac"}', True),
    (b'{"S": "\\ud83d\\ude00 \xf0\x9f\x98\x80"}', True),
    (b'{"S": ""}', True),
    (b'{"S": "a", "S": "b"}', True),  # a duplicate type key: the last one, as the stages read it
    (b'{"S": 1, "S": "b"}', True),
    (b'{"S": "a", "N": "1"}', False),  # two types
    (b'{"N": "1", "S": "a"}', False),
    (b'{"NULL": true, "S": "a"}', False),
    (b"{}", False),
    (b'{"X": "1"}', False),
    (b'{"s": "a"}', False),
    (b'{"NUL": true}', False),
    (b'{"S": null}', False),
    (b'{"S": ["a"]}', False),
    (b'{"BOOL": 1}', False),
    (b'{"BOOL": "true"}', False),
    (b'{"BOOL": null}', False),
    (b'{"BOOL": false}', True),
    (b'{"SS": []}', True),
    (b'{"SS": "a"}', False),
    (b'{"SS": ["a", 1]}', False),
    (b'{"NS": ["1", "+2", "3.0"]}', True),
    (b'{"NS": ["1", "x"]}', False),
    (b'{"B": "YQ=="}', True),
    (b'{"B": "!!"}', False),
    (b'{"BS": ["YQ==", "Yg=="]}', True),
    (b'{"M": {}}', True),
    (b'{"M": []}', False),
    (b'{"M": {"x": null}}', False),  # None is a missing attribute at the top of an image only
    (b'{"M": {"x": {}}}', False),
    (b'{"M": {"x": {"S": "1"}, "x": {"N": "2"}}}', True),  # a duplicate name inside a map
    (b'{"M": {"x": {"M": {"y": {"L": [{"N": "1"}, {"S": "z"}, {"M": {}}]}}}}}', True),
    (b'{"L": []}', True),
    (b'{"L": [{"NULL": true}, {"M": {"k": {"BOOL": false}}}, {"SS": ["a"]}]}', True),
    (b'{"L": [null]}', False),
    (b'{"L": {}}', False),
    (b"null", True),  # a missing attribute: written as null
    (b"[]", False),
    (b'"S"', False),
    (b"1", False),
]


def odd_payload(value: bytes, event_name: str = "MODIFY", duplicate: bool = False) -> bytes:
    """A change whose images hold *value* beside ordinary attributes (if *duplicate*, under a name used twice)."""
    images = b'{"a": {"S": "first"}, "b": @, "c": {"N": "1"}' + (b', "b": @}' if duplicate else b"}")
    text = json.dumps(change(event_name, {"x": "@"})).encode().replace(b'{"x": "@"}', images)
    return text.replace(b"@", value)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("image_choice", IMAGES)
def test_odd_typed_values_get_the_stages_answer(parser, image_choice):
    env = {"PIPELINE_FORMAT": "jsonl", "PIPELINE_IMAGE": image_choice}
    payloads = [
        odd_payload(value, event_name, duplicate)
        for value, _ in ODD_VALUES
        for event_name in ("INSERT", "MODIFY", "REMOVE")
        for duplicate in (False, True)
    ]
    assert_same(firehose_event(payloads), env, parser)


@pytest.mark.parametrize(("value", "taken"), ODD_VALUES)
def test_the_fast_row_writes_the_odd_values_it_can_and_leaves_the_others(value, taken):
    """The comparisons above test the fast row only where it answers: it does for every value it can write."""
    row = fast_rows(Config.from_env({"PIPELINE_FORMAT": "jsonl"}), [], parser="msgspec")
    for duplicate in (False, True):
        rec = {"recordId": "1", "data": base64.b64encode(odd_payload(value, duplicate=duplicate)).decode()}
        try:
            found = row(rec)
        except Exception:  # the plan sends the record the general way
            found = None
        assert (type(found) is bytes) is taken


def test_the_fast_row_takes_the_usual_record_and_leaves_the_rest():
    """The fast row answers an ordinary change itself (so the comparisons above test it) and nothing odd."""
    config = Config.from_env({"PIPELINE_FORMAT": "jsonl"})
    row = fast_rows(config, [], parser="msgspec")
    assert row is not None

    def rec(payload: bytes) -> dict[str, str]:
        return {"recordId": "1", "data": base64.b64encode(payload).decode()}

    new = {"a": {"S": "x"}, "n": {"N": "1.50"}, "m": {"M": {"t": {"BOOL": True}, "z": {"NULL": True}}}}
    assert row(rec(json.dumps(good(new=new)).encode())) == b'{"a":"x","n":1.50,"m":{"t":true,"z":null}}\n'
    removed = {**good(), "eventName": "REMOVE", "dynamodb": {"Keys": {"a": {"S": "k"}}, "OldImage": {"a": {"N": "7"}}}}
    assert row(rec(json.dumps(removed).encode())) == b'{"a":7}\n'
    for odd in (
        json.dumps({"Records": [good()]}).encode(),  # several changes, or a list of them
        json.dumps([good()]).encode(),
        json.dumps({**good(), "dynamodb": {**good()["dynamodb"], "OldImage": []}}).encode(),  # not an object
        json.dumps({**good(), "dynamodb": {**good()["dynamodb"], "Keys": "k"}}).encode(),
        json.dumps({**removed, "dynamodb": {**removed["dynamodb"], "Keys": "k"}}).encode(),  # decoded again
        json.dumps({**removed, "dynamodb": {**removed["dynamodb"], "OldImage": []}}).encode(),
        json.dumps({**removed, "dynamodb": {"Keys": []}}).encode(),
        b"\xef\xbb\xbf" + json.dumps(good(new={"s": {"S": "\ud800"}})).encode(),  # a lone surrogate
    ):
        try:
            found = row(rec(odd))
        except Exception:  # the plan sends the record the general way too
            continue
        assert found is None
    assert row({"recordId": "1", "data": 42}) is None
    assert fast_rows(Config.from_env({"PIPELINE_FORMAT": "jsonl"}), [], parser="stdlib") is not None  # the steps


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), typed_or_junk | st.none()))
def test_plain_image_is_plain_map_in_place(row):
    copy = json.loads(json.dumps(row))
    try:
        expected = msgspec.json.encode(plain_map(row, msgspec.Raw))
    except Exception as exc:
        with pytest.raises(type(exc)):
            msgspec.json.encode(plain_image(copy, msgspec.Raw))
        return
    assert row == json.loads(json.dumps(copy))  # plain_map left its row alone
    converted = plain_image(copy, msgspec.Raw)
    assert converted is copy
    assert msgspec.json.encode(converted) == expected
