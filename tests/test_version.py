"""@version: fixed-width text that sorts in the order an item's changes happened, the same for every copy."""

from __future__ import annotations

import json

import pytest
from conftest import csv_rows, firehose_event, outputs, results, run
from hypothesis import given
from hypothesis import strategies as st

from pipeline import RecordError, change_version
from pipeline.fields import SEQUENCE_VERSION_WIDTH, TIME_VERSION_WIDTH


def kds(when: int | float, event: str = "MODIFY") -> dict:
    """A change in the Kinesis Data Streams for DynamoDB format."""
    return {
        "eventName": event,
        "tableName": "t",
        "recordFormat": "application/json",
        "dynamodb": {"ApproximateCreationDateTime": when, "Keys": {"id": {"S": "a"}}},
    }


def streams(sequence: str, seconds: int = 1594936234, event: str = "MODIFY") -> dict:
    """A change in the DynamoDB Streams format."""
    return {
        "eventName": event,
        "eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/t/stream/x",
        "dynamodb": {"ApproximateCreationDateTime": seconds, "SequenceNumber": sequence, "Keys": {"id": {"S": "a"}}},
    }


def test_widths_are_fixed_per_kind():
    assert len(change_version(kds(1731924555370))) == TIME_VERSION_WIDTH == 20
    assert len(change_version(kds(1731924555370123))) == 20
    assert len(change_version(streams("111"))) == SEQUENCE_VERSION_WIDTH == 40
    assert len(change_version(streams("9" * 40))) == 40


def test_milliseconds_are_scaled_to_microseconds():
    """The Kinesis destination's default (MILLISECOND) and MICROSECOND precision give comparable versions."""
    ms, us = change_version(kds(1731924555370)), change_version(kds(1731924555370001))
    assert ms == "00001731924555370000" and us == "00001731924555370001" and ms < us


def test_sequence_number_wins_over_the_time():
    """A Streams record's time is rounded down to the second; its sequence number orders the item's changes."""
    assert change_version(streams("200", seconds=5)) > change_version(streams("100", seconds=9))
    assert change_version(streams("100000000027074219927")) == "0" * 19 + "100000000027074219927"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (kds(1594936234), "in seconds, too coarse"),
        (kds(-1), "before 1970"),
        (kds("1731924555370"), "not a number"),
        (kds(True), "not a number"),
        (kds(float("nan")), "not a finite number"),
        (kds(10**21), "out of range"),
        (streams("12a"), "not 1 to 40 digits"),
        (streams(""), "not 1 to 40 digits"),
        (streams("1" * 41), "not 1 to 40 digits"),
        (streams("١٢٣"), "not 1 to 40 digits"),  # Arabic-Indic digits are digits to str.isdigit, not to us
        ({"eventName": "INSERT", "dynamodb": {"Keys": {}}}, "no SequenceNumber or ApproximateCreationDateTime"),
    ],
)
def test_what_cannot_be_versioned_says_why(change, reason):
    with pytest.raises(RecordError, match=reason):
        change_version(change)


times = st.lists(st.integers(min_value=10**11, max_value=10**13), min_size=2, max_size=20, unique=True)


@given(times, st.booleans())
def test_versions_sort_as_text_like_the_times(values, micros):
    values = [v * 1000 if micros else v for v in values]  # all of one precision, as one stream sends
    versions = [change_version(kds(v)) for v in values]
    assert sorted(versions) == [change_version(kds(v)) for v in sorted(values)]


@given(st.lists(st.integers(min_value=0, max_value=10**40 - 1), min_size=2, max_size=20, unique=True))
def test_versions_sort_as_text_like_the_sequence_numbers(numbers):
    versions = [change_version(streams(str(n))) for n in numbers]
    assert sorted(versions) == [change_version(streams(str(n))) for n in sorted(numbers)]


def test_copies_of_one_change_get_one_version_through_the_handler():
    """A re-ingested or duplicated record carries the same bytes: the same version, whatever record carries it."""
    payload = json.dumps(kds(1731924555370)).encode()
    response = run(firehose_event([payload, payload, payload]), PIPELINE_COLUMNS="@version,@recordId")
    rows = csv_rows(response)
    assert {r[0] for r in rows} == {"00001731924555370000"} and len({r[1] for r in rows}) == 3


def test_a_change_that_cannot_be_versioned_fails_alone():
    good, bad = json.dumps(kds(1731924555370)).encode(), json.dumps(kds(1594936234)).encode()
    response = run(firehose_event([good, bad, good]), PIPELINE_COLUMNS="id,@version")
    assert results(response) == ["Ok", "ProcessingFailed", "Ok"]


def test_jsonl_writes_the_version_as_a_string():
    event = firehose_event([json.dumps(kds(1731924555370)).encode()])
    response = run(event, PIPELINE_COLUMNS="id,@version", PIPELINE_FORMAT="jsonl")
    assert json.loads(outputs(response)[0]) == {
        "id": "a",
        "version": "00001731924555370000",
    }
