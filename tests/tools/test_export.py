"""from_export: DynamoDB export items (other projects' export files) through the stages as INSERT changes."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import PEER_EVENTS
from toolz import pipe

from pipeline import encode, from_export, keep_events, project, respond

PRODUCTS = PEER_EVENTS / "olpa-streaming-json__products-dynamodb.jsonl"
USERS = PEER_EVENTS / "olpa-streaming-json__users-dynamodb.jsonl"
ALL_TYPES = PEER_EVENTS / "olpa-streaming-json__all-types-dynamodb.json"


def csv_of(changes, columns: str) -> list[list[str]]:
    records = list(pipe(changes, keep_events({"INSERT"}), project(columns), encode("csv")))
    assert {r.result for r in records} == {"Ok"}
    return list(csv.reader(io.StringIO(b"".join(r.value for r in records).decode(), newline="")))


def test_export_lines_as_csv():
    with PRODUCTS.open(encoding="utf-8") as lines:
        changes = list(from_export(lines, keys=["productId"], table="products"))
    assert [c["dynamodb"]["Keys"] for c in changes] == [
        {"productId": {"S": "prod-001"}},
        {"productId": {"S": "prod-002"}},
    ]
    columns = "@tableName,@eventName,productId,price,specs.color,tags,ratings,reviews[1],reviews,inStock,missing"
    assert csv_of(changes, columns) == [
        [
            "products",
            "INSERT",
            "prod-001",
            "29.99",
            "Black",
            '["wireless","bluetooth","ergonomic"]',
            "[4.5,5.0,4.0,4.8]",
            "",
            "",
            "true",
            "",
        ],
        [
            "products",
            "INSERT",
            "prod-002",
            "12.99",
            "White",
            '["cable","usb-c","fast-charging"]',
            "[5.0,5.0,4.9]",
            "Fast charging works great",
            '["Excellent quality","Fast charging works great"]',
            "true",
            "",
        ],
    ]


def test_export_bytes_lines_and_nested_maps():
    with USERS.open("rb") as lines:
        rows = csv_of(from_export(lines), "userId,city=profile.location.city,bio=profile.bio,score,roles")
    assert rows == [
        ["user-001", "San Francisco", "Software engineer and tech enthusiast", "95.7", '["admin","editor"]'],
        ["user-002", "Austin", "", "78.3", '["user"]'],
    ]


def test_a_whole_pretty_printed_file_is_one_document():
    (change,) = from_export([ALL_TYPES.read_text(encoding="utf-8")], keys=["id"])
    records = list(pipe([change], project(None), encode("jsonl")))
    line = json.loads(records[0].value)
    assert line["nestedMap"] == {"level1": {"level2": {"level3": {"deepValue": "found it!"}}}}
    assert line["numberArray"] == [1, 2, 3, 5, 8, 13] and line["nullField"] is None
    assert respond(records)["records"][0]["result"] == "Ok"


def test_byte_order_mark_and_blank_lines():
    lines = ["\ufeff" + '{"Item": {"id": {"N": "1"}}}', "  ", b'{"Item": {"id": {"N": "2"}}}\n']
    assert csv_of(from_export(lines, keys=["id"]), "id") == [["1"], ["2"]]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"Item": {"id": {"N": "1"}}}', "{oops"], "line 2: not JSON"),
        (['{"Items": [{}]}'], "line 1: not a DynamoDB export item"),
        (['{"Item": {"name": {"S": "x"}}}'], "line 1: the item has no key attribute 'id'"),
    ],
)
def test_bad_documents_name_their_line(lines, message):
    with pytest.raises(ValueError, match=message):
        list(from_export(lines, keys=["id"]))


def test_keys_must_be_names_not_a_string():
    with pytest.raises(TypeError):
        from_export([], keys="id")
