"""A chunk worked out column by column gives, for each record, what the fast row gives it, or nothing at all.

:func:`pipeline.plan.fast_chunks` answers a chunk of records with C-level maps over its columns; the fast row
(:func:`pipeline.plan.fast_rows`) answers one record at a time, and the tests in ``test_plan.py`` hold it to the
stages' answers. So the chunk is held to the fast row: on batches of one-change records (what the chunk takes)
with any values in them, bad ones included, the chunk either declines (None) or gives every record the fast
row's own value and that value's base64 text, and notes the same columns as seen. The handler built with the
chunks is then compared with the stages on such batches, as ``test_plan.py`` does on every other kind.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from conftest import firehose_event
from hypothesis import given, settings
from hypothesis import strategies as st
from test_plan import all_both_ways, changes, value, with_budget

from pipeline import Config
from pipeline.plan import PENDING, fast_chunks, fast_rows
from pipeline.project import ColumnPresence

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
@given(clean_events(), chunk_configs)
def test_a_chunk_gives_each_record_the_fast_rows_value_or_declines(event, env):
    config = Config.from_env(env)
    chunk_presence, row_presence = (
        ColumnPresence.for_columns(config.columns),
        ColumnPresence.for_columns(config.columns),
    )
    chunk = fast_chunks(config, parser="msgspec", presence=chunk_presence)
    row = fast_rows(config, [], parser="msgspec", presence=row_presence)
    assert chunk is not None and row is not None
    records = event["records"]
    done = chunk(records)
    if done is None:
        return
    values, texts = done
    assert len(values) == len(texts) == len(records)
    for rec, got, text in zip(records, values, texts, strict=True):
        assert got is not PENDING
        assert row(rec) == got
        if type(got) is bytes:
            assert text == base64.b64encode(got).decode()
    assert chunk_presence.unseen == row_presence.unseen


def test_a_chunk_takes_a_batch_of_plain_records():
    """The chunk does not decline the common batch: the property above would pass with a chunk that always did."""
    changes = [
        {
            "eventName": "INSERT",
            "dynamodb": {"Keys": {"a": {"S": "k"}}, "NewImage": {"a": {"S": f"v{i}"}, "amount": {"N": str(i)}}},
        }
        for i in range(3)
    ]
    event = firehose_event([json.dumps(c).encode() for c in changes])
    chunk = fast_chunks(Config.from_env({"PIPELINE_COLUMNS": "a,amount,e=@eventName"}), parser="msgspec")
    assert chunk is not None
    assert chunk(event["records"]) == (
        [b"v0,0,INSERT\n", b"v1,1,INSERT\n", b"v2,2,INSERT\n"],
        ["djAsMCxJTlNFUlQK", "djEsMSxJTlNFUlQK", "djIsMixJTlNFUlQK"],
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
def test_what_the_chunks_leave_to_the_fast_row(env):
    assert fast_chunks(Config.from_env(env), parser="msgspec") is None
    assert fast_chunks(Config.from_env({"PIPELINE_COLUMNS": "a"}), parser="stdlib") is None


@settings(max_examples=60)
@given(clean_events(), chunk_configs, st.none() | st.floats(0, 1))
def test_the_handler_with_chunks_answers_as_the_stages_do(event, env, share):
    all_both_ways([event], with_budget(event, env, share), parser="msgspec")
