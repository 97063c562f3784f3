"""The size accounting is exact: it matches what json.dumps writes, entry by entry and for the response."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import BudgetError, Record, respond, within_budget
from pipeline.budget import decoded_size, entry_size, response_floor
from pipeline.local.contract import runtime_size

ids = st.text(min_size=1, max_size=70)
keys = st.none() | st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3)


@given(ids, st.sampled_from(["Ok", "Dropped", "ProcessingFailed"]), st.binary(max_size=50), keys)
def test_entry_size_is_what_json_dumps_writes(record_id, result, data, partition_keys):
    rec = Record(
        record_id, {}, data if result == "Ok" else None, result, None, partition_keys if result == "Ok" else None
    )
    [entry] = respond([rec])["records"]
    assert entry_size(record_id, result, len(data), rec.partition_keys) == len(json.dumps(entry))


@given(
    st.lists(st.tuples(ids, st.binary(max_size=400)), min_size=1, max_size=30, unique_by=lambda t: t[0]),
    st.integers(0, 20_000),
)
def test_the_response_never_exceeds_the_budget(batch, budget):
    records = [Record(i, {}, data) for i, data in batch]
    floor, _ = response_floor(i for i, _ in batch)
    if floor > budget:
        with pytest.raises((BudgetError, ValueError)):
            within_budget(budget, [i for i, _ in batch])
        return
    response = respond(within_budget(budget, [i for i, _ in batch])(records))
    assert runtime_size(response) <= budget  # as the Lambda runtime serialises it
    assert [e["recordId"] for e in response["records"]] == [i for i, _ in batch]


def net(rec):
    """What an Ok entry adds over the room kept for every entry."""
    return entry_size(rec.id, "Ok", len(rec.value)) - entry_size(rec.id, "ProcessingFailed")


def test_fills_greedily_in_input_order_keeping_room_for_later_entries():
    records = [Record(f"r{i}", {}, b"x" * size) for i, size in enumerate([600, 500, 60, 60, 5000])]
    ids = [r.id for r in records]
    floor, _ = response_floor(ids)
    budget = floor + net(records[0]) + net(records[2]) + net(records[3])
    assert net(records[0]) + net(records[1]) > budget - floor >= net(records[1])
    out = list(within_budget(budget, ids)(records))
    assert [(r.result, r.reason) for r in out] == [
        ("Ok", None),
        ("Dropped", "over response budget"),  # fits alone: a later invocation will take it
        ("Ok", None),
        ("Ok", None),
        ("ProcessingFailed", "larger than the response budget"),  # never fits: re-ingesting would loop
    ]
    assert runtime_size(respond(out)) <= budget


def test_non_ok_records_take_room_too_and_dropped_ones_give_back_the_difference():
    failed = [Record(f"f{i}", {}, None, "ProcessingFailed", "bad") for i in range(3)]
    dropped = [Record(f"d{i}", {}, None, "Dropped", "event type not selected") for i in range(3)]
    batch = [*failed, *dropped, Record("ok1", {}, b"y" * 30), Record("ok2", {}, b"z" * 30)]
    exact = len(json.dumps(respond(batch)))
    out = list(within_budget(exact, [r.id for r in batch])(batch))
    assert [r.result for r in out[-2:]] == ["Ok", "Ok"]  # exactly enough room
    out = list(within_budget(exact - 1, [r.id for r in batch])(batch))
    assert [r.result for r in out[-2:]] == ["Ok", "Dropped"]


def test_a_budget_below_the_smallest_response_is_an_error_naming_the_numbers():
    with pytest.raises(
        BudgetError, match=r"the response for 200 records needs at least 12013 bytes, more than the budget of 10000"
    ):
        within_budget(10_000, [f"record-{i:05d}" for i in range(200)])
    with pytest.raises(ValueError, match="positive whole number"):
        within_budget(0, [])


def test_more_records_than_ids_is_a_usage_error():
    with pytest.raises(ValueError, match="saw more records"):
        list(within_budget(1000, ["a"])([Record("a", {}, b""), Record("b", {}, b"")]))


@given(st.lists(st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()), max_size=80))
def test_decoded_size_is_what_the_texts_decode_to(texts):
    assert decoded_size(texts) == sum(len(base64.b64decode(t)) for t in texts)


@given(st.lists(st.none() | st.integers() | st.binary(max_size=3) | st.text(alphabet="ab=", max_size=4), max_size=20))
def test_decoded_size_of_any_data_counts_the_texts_by_length_and_padding(datas):
    """Junk data (not text, short, "=" inside) takes the one-by-one way, to the same count as the usual way."""
    texts = [d for d in datas if type(d) is str]
    expected = sum(map(len, texts)) * 3 // 4 - sum(t.endswith("=") + t.endswith("==") for t in texts)
    assert decoded_size(datas) == expected
