"""A chunk worked out column by column gives, for each record, what the fast row gives it, or nothing at all.

:func:`pipeline.chunks.fast_chunks` answers a chunk of records with C-level maps over its columns; the fast row
(:func:`pipeline.plan.fast_rows`) answers one record at a time, and the tests in ``test_plan.py`` hold it to the
stages' answers. So the chunk is held to the fast row: on batches of one-change records (what the chunk takes)
with any values in them, bad ones included, the chunk either declines (None) or gives every record the fast
row's own value and that value's base64 text, and notes the same columns as seen, with either parser. The
handler built with the chunks is then compared with the stages on such batches, and on batches of several
chunks with a budget that runs out in one of them, as ``test_plan.py`` does on every other kind.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import msgspec
import pytest
from conftest import firehose_event
from hypothesis import given, settings
from hypothesis import strategies as st
from test_plan import all_both_ways, changes, value, with_budget

from pipeline import Config
from pipeline.budget import decoded_size, response_floor
from pipeline.chunks import CHUNK_RECORDS, fast_chunks, strict_base64
from pipeline.fields import epoch_millis, iso_millis, iso_millis_texts
from pipeline.parse import PARSERS
from pipeline.plan import fast_rows
from pipeline.project import ColumnPresence
from pipeline.tools.generate import generate_event
from pipeline.values import all_numbers, is_number

COLUMNS = [
    "a",
    "a,b,amount",
    "amount,a",  # not in the image's order
    "x=a,y=a,b",  # one attribute twice
    "a,amountt",  # a misspelt column: never seen
    "e=@eventName,a,when=@approximateCreationDateTime",
    "@eventID,@awsRegion,@sizeBytes,a",
    "é,a b,@eventName",  # names that are not identifiers
]
chunk_configs = st.fixed_dictionaries(
    {
        "PIPELINE_COLUMNS": st.sampled_from(COLUMNS),
        "PIPELINE_FORMAT": st.sampled_from(["csv", "tsv"]),
        "PIPELINE_IMAGE": st.sampled_from(["auto", "new", "old", "keys"]),
        "PIPELINE_EVENTS": st.sampled_from(["INSERT,MODIFY,REMOVE", "INSERT", "MODIFY,REMOVE"]),
        "PIPELINE_NULL": st.sampled_from(["", "NULL"]),
    }
)
# a column of one kind, as real tables have, so that a whole column is often all S or all N; now and then a value
# the fast row refuses (a lone surrogate, a bad number), so that the chunk must decline
texts = st.sampled_from(["x", "", "a,b", 'say "hi"', "two\nlines", "tab\there", "back\\slash", "Zürich"])
numbers = st.sampled_from(["0", "-1", "1.50", "1.5E+30", ".5", "5.", "007", "12345678901234567890123456789012345678"])
refused = st.sampled_from([{"S": "\ud800"}, {"N": "1\n2"}, {"N": "NaN"}, {"N": ""}, {"S": "a", "N": "1"}])
kinds = st.sampled_from([texts.map(lambda s: {"S": s}), numbers.map(lambda n: {"N": n})])


@st.composite
def clean_changes(draw: st.DrawFn, kinds: dict[str, Any]) -> dict[str, Any]:
    """A change whose images' attributes are of their column's kind, now and then of any other, or absent."""
    change = draw(changes())
    for which in ("NewImage", "OldImage", "Keys"):
        image = change["dynamodb"].get(which)
        if image is None:
            continue
        for name, kind in kinds.items():
            roll = draw(st.integers(0, 99))
            if roll < 85:
                image[name] = draw(kind)
            elif roll < 90:
                image[name] = draw(value)
            elif roll < 92:
                image[name] = draw(refused)
    return change


@st.composite
def clean_events(draw: st.DrawFn) -> dict[str, Any]:
    """Batches of one change per record, all good base64: what a chunk takes, with any values in the images."""
    of_kind = {name: draw(kinds) for name in ("a", "b", "amount", "é", "a b")}
    found = draw(st.lists(clean_changes(of_kind), min_size=1, max_size=12))
    return firehose_event([json.dumps(c).encode() for c in found], kinesis=draw(st.booleans()))


@settings(max_examples=200)
@given(clean_events(), chunk_configs, st.sampled_from(PARSERS))
def test_a_chunk_gives_each_record_the_fast_rows_value_or_declines(event, env, parser):
    config = Config.from_env(env)
    chunk_presence, row_presence = (
        ColumnPresence.for_columns(config.columns),
        ColumnPresence.for_columns(config.columns),
    )
    chunk = fast_chunks(config, parser=parser, presence=chunk_presence)
    row = fast_rows(config, [], parser=parser, presence=row_presence)
    assert chunk is not None and row is not None
    records = event["records"]
    datas = [rec.get("data") for rec in records]
    done = chunk(datas)
    if done is None:  # nothing noted: the fast row notes each row it makes, the stages each they fail
        assert chunk_presence.changes == 0
        return
    values, texts, size = done
    assert len(values) == len(texts) == len(records)
    assert size == decoded_size(datas)
    for rec, got, text in zip(records, values, texts, strict=True):
        assert row(rec) == got
        if type(got) is bytes:
            assert text == base64.b64encode(got).decode()
    assert chunk_presence.unseen == row_presence.unseen


@pytest.mark.parametrize("parser", PARSERS)
def test_a_chunk_takes_a_batch_of_plain_records(parser):
    """The chunk does not decline the common batch: the property above would pass with a chunk that always did."""
    changes = [
        {
            "eventName": "INSERT",
            "dynamodb": {"Keys": {"a": {"S": "k"}}, "NewImage": {"a": {"S": f"v{i}"}, "amount": {"N": str(i)}}},
        }
        for i in range(3)
    ]
    event = firehose_event([json.dumps(c).encode() for c in changes])
    chunk = fast_chunks(Config.from_env({"PIPELINE_COLUMNS": "a,amount,e=@eventName"}), parser=parser)
    assert chunk is not None
    assert chunk([rec["data"] for rec in event["records"]]) == (
        [b"v0,0,INSERT\n", b"v1,1,INSERT\n", b"v2,2,INSERT\n"],
        ["djAsMCxJTlNFUlQK", "djEsMSxJTlNFUlQK", "djIsMixJTlNFUlQK"],
        sum(len(json.dumps(c)) for c in changes),
    )


@pytest.mark.parametrize(
    "env",
    [
        {"PIPELINE_COLUMNS": "a.b"},  # a path
        {"PIPELINE_COLUMNS": "a,@recordId"},  # a field that reads the Firehose record
        {"PIPELINE_COLUMNS": "a", "PIPELINE_FORMAT": "jsonl"},
        {"PIPELINE_COLUMNS": "a", "PIPELINE_PARTITION_KEYS": "t=@tableName"},
        {"PIPELINE_COLUMNS": "a", "PIPELINE_FORMAT": "tsv", "PIPELINE_NULL": "\\N"},
    ],
)
@pytest.mark.parametrize("parser", PARSERS)
def test_what_the_chunks_leave_to_the_fast_row(parser, env):
    assert fast_chunks(Config.from_env(env), parser=parser) is None


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=40)
@given(st.lists(clean_events(), min_size=1, max_size=2), chunk_configs, st.none() | st.floats(0, 1))
def test_the_handler_with_chunks_answers_as_the_stages_do(parser, events, env, share):
    all_both_ways(events, with_budget(events[0], env, share), parser=parser)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("source", ["kinesis", "direct"])
@pytest.mark.parametrize("budget", [None, 0.5], ids=["room", "budget-runs-out"])
def test_batches_of_several_chunks_get_the_stages_answers(parser, source, budget):
    """Chunks taken whole, one declined (a garbage record in it), one that the budget cuts in the middle."""
    event = generate_event(600_000, source, seed=5)
    records = event["records"]
    assert len(records) > 2 * CHUNK_RECORDS
    records[CHUNK_RECORDS + 3]["data"] = "not base64!"
    env = {
        "PIPELINE_COLUMNS": "id,customer,amount,quantity,status,note,event=@eventName,at=@approximateCreationDateTime"
    }
    if budget is not None:  # room for about half the records' lines
        env["PIPELINE_MAX_RESPONSE_BYTES"] = str(
            int(response_floor(r["recordId"] for r in records)[0] + budget * 60_000)
        )
    found = all_both_ways([event], env, parser=parser)
    results = [r["result"] for r in found[0]["response"]["records"]]
    assert results.count("Ok") > CHUNK_RECORDS
    assert (budget is None) == ("Dropped" not in results)


number_like = st.text(alphabet="0123456789.-+eE\n ١", max_size=6) | numbers


@settings(max_examples=500)
@given(st.lists(number_like, max_size=8))
def test_a_column_is_all_numbers_when_each_of_its_texts_is_one(texts):
    assert all_numbers(texts) == all(map(is_number, texts))


@pytest.mark.parametrize("parser", PARSERS)
def test_a_record_whose_data_is_bytes_not_text_gets_the_stages_answer(parser):
    """A Python caller may pass bytes: ``a2b_base64`` would take them, the stages refuse them."""
    change = {"eventName": "INSERT", "dynamodb": {"Keys": {"a": {"S": "k"}}, "NewImage": {"a": {"S": "v"}}}}
    event = firehose_event([json.dumps(change).encode()] * 3)
    event["records"][1]["data"] = event["records"][1]["data"].encode()
    found = all_both_ways([event], {"PIPELINE_COLUMNS": "a"}, parser=parser)
    assert [r["result"] for r in found[0]["response"]["records"]] == ["Ok", "ProcessingFailed", "Ok"]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("where", ["OldImage", "Keys"])
@pytest.mark.parametrize("number", [b"1e999", b"1" + b"0" * 5000, b"-1e-999"], ids=["huge", "long", "tiny"])
def test_an_image_the_chunk_only_skips_gets_the_stages_answer(parser, where, number):
    """With ``auto``, msgspec skips OldImage and Keys unless a change has no NewImage; skipping takes numbers
    that decoding them refuses (the standard library then reads them as infinity or zero): same answers."""
    bodies = []
    for i in range(6):
        image = b'{"a": {"S": "v%d"}, "b": %s}' % (i, number)
        new = b', "NewImage": {"a": {"S": "n%d"}}' % i if i % 3 else b""  # every third a REMOVE
        keys = image if where == "Keys" else b'{"a": {"S": "k"}}'
        old = b', "OldImage": ' + image if where == "OldImage" else b""
        bodies.append(b'{"eventName": "MODIFY", "dynamodb": {"Keys": %s%s%s}}' % (keys, new, old))
    found = all_both_ways([firehose_event(bodies)], {"PIPELINE_COLUMNS": "a,b"}, parser=parser)
    results = [r["result"] for r in found[0]["response"]["records"]]
    assert [r for i, r in enumerate(results) if i % 3] == ["Ok"] * 4  # the REMOVEs write an image whose b is untyped


@given(st.text(alphabet="QA=/+ \n!", max_size=16) | st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode()))
def test_what_msgspec_decodes_as_base64_is_the_size_decoded_size_counts(text):
    """A msgspec chunk counts bytesIn by its payloads' lengths; the other records are counted by the formula."""
    try:
        payload = msgspec.convert(text, bytes)
    except msgspec.ValidationError:
        return
    assert len(payload) == decoded_size([text])


base64_texts = st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())
near_base64 = st.text(alphabet="QUJD=+/a!\n é", max_size=12) | base64_texts.flatmap(
    lambda text: st.integers(0, len(text)).flatmap(
        lambda at: st.sampled_from("=!\n Aé").map(lambda char: text[:at] + char + text[at:])
    )
)


@settings(max_examples=500)
@given(st.lists(base64_texts | near_base64, min_size=1, max_size=6))
def test_the_stdlib_chunks_base64_takes_nothing_strict_mode_refuses(datas):
    """binascii's loose mode checked by what comes out reads what it takes as strict mode does. (It may decline
    what strict mode takes, such as padding after a whole quad: the fast row then reads it.)"""
    try:
        strict = [binascii.a2b_base64(data, strict_mode=True) for data in datas]
    except ValueError:  # binascii.Error, or not ASCII
        strict = None
    got = strict_base64(datas, decoded_size(datas))
    assert got is None or got == strict


@given(st.lists(base64_texts, min_size=1, max_size=6))
def test_the_stdlib_chunks_base64_takes_what_b64encode_writes(datas):
    assert strict_base64(datas, decoded_size(datas)) == [base64.b64decode(data) for data in datas]


@given(
    st.lists(st.integers(0, 10**11 - 1), min_size=1)
    | st.lists(st.integers(10**11, 10**14 - 1), min_size=1)
    | st.lists(st.integers(-(10**12), 10**15) | st.floats(0, 2e9), min_size=1)
)
def test_a_time_column_at_once_is_each_time_formatted(values):
    """A chunk formats a column of @approximateCreationDateTime at once: whole seconds (DynamoDB Streams) or
    milliseconds (Kinesis), as the stages format each; any other column (floats, mixed units) is None."""
    texts = iso_millis_texts(values)
    low, high = min(values), max(values)
    one_unit = (low >= 0 and high < 10**11) or (low >= 10**11 and high < 10**14)  # seconds, or milliseconds
    if all(type(v) is int for v in values) and one_unit:
        assert texts is not None
    if texts is not None:
        assert texts == [iso_millis(epoch_millis(v)) for v in values]
