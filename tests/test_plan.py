"""The plan gives the stages' answers: ``make_handler(config)`` and ``make_handler(config, fast=False)`` agree.

The plan (:mod:`pipeline.plan`) answers most records with a fast row and leaves the rest to the stages; with
``fast=False`` every record goes through the stages, the reference. On random, garbage and hostile events, for
every parser, format, image, event subset, column kind (plain, repeated, nested, every ``@``-field), budget and
re-ingestion setting, both ways give the same response (as JSON text), the same log lines (but durations and
timestamps), the same re-ingested bytes, and, when the invocation fails, the same exception.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from conftest import firehose_event
from hypothesis import example, given, settings
from hypothesis import strategies as st
from runs import pipeline_log
from test_parsers import _hostile
from test_properties import configs, hostile_configs, hostile_events, messy_events, typed

from pipeline import Config, make_handler, stages
from pipeline.budget import response_floor
from pipeline.fields import FIELD_VALUES, FIELDS, RECORD_FIELDS
from pipeline.local.context import LocalContext
from pipeline.local.memory import MemoryStreams
from pipeline.parse import PARSERS
from pipeline.plan import fast_rows
from pipeline.reingest import ReingestError, to_source
from pipeline.tools.generate import generate_event

HOSTILE = _hostile()
ALL_FIELDS = ",".join(f"@{name}" for name in FIELDS)
ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000"


# --- running one event both ways ---------------------------------------------------------------------------------


def run_all(
    events: list[Any],
    env: Mapping[str, str],
    *,
    parser: str,
    fast: bool,
    context: Any,
    client: Any = None,
) -> list[dict[str, Any]]:
    """What one handler did with each event in turn: its response as JSON text (or the exception), its log lines,
    what it re-ingested."""
    streams = MemoryStreams() if client is None else client
    config = Config.from_env(env)
    handler = make_handler(
        config,
        parser=parser,
        fast=fast,
        reingester=lambda e, c: to_source(e, c, client=streams, max_attempts=config.reingest_max_attempts),
    )
    found = []
    for event in events:
        with pipeline_log() as logged:
            try:
                response = handler(event, context)
                outcome: tuple[Any, ...] = ("response", json.dumps(response))
            except Exception as exc:  # the invocation failed: the same exception both ways
                response = None
                outcome = ("raised", type(exc).__name__, str(exc))
        put = {k: list(v) for k, v in getattr(streams, "put", {}).items()}
        found.append({"outcome": outcome, "logs": logged, "put": put, "response": response})
    return found


def all_both_ways(
    events: list[Any], env: Mapping[str, str], *, parser: str, client: Callable[[], Any] | None = None
) -> list[dict]:
    """The plan's answers and the stages' answers to *events*, one handler each way, asserted equal."""
    context = LocalContext()  # one request id for both
    fast = run_all(events, env, parser=parser, fast=True, context=context, client=client() if client else None)
    slow = run_all(events, env, parser=parser, fast=False, context=context, client=client() if client else None)
    for plan, staged in zip(fast, slow, strict=True):
        assert plan["outcome"] == staged["outcome"]
        assert plan["logs"] == staged["logs"]
        assert plan["put"] == staged["put"]
    return fast


def both_ways(event: Any, env: Mapping[str, str], *, parser: str, client: Callable[[], Any] | None = None) -> dict:
    """The plan's answer and the stages' answer to *event*, asserted equal; the plan's is returned."""
    [found] = all_both_ways([event], env, parser=parser, client=client)
    return found


def summary_of(found: dict) -> dict[str, Any]:
    [summary] = [line for line in found["logs"] if line.get("message") == "summary"]
    return summary


# --- what the events hold --------------------------------------------------------------------------------------

text = st.sampled_from(["", "x", "a,b", 'say "hi"', "two\nlines", "tab\there", "back\\slash", "Zürich", "🦊", "\\N"])
long_text = st.integers(0, 120).map(lambda n: "v" * n)
number = st.sampled_from(["0", "-1", "1.50", "12345678901234567890123456789012345678", "1.5E+30", "-0.0001"])
bad = st.sampled_from(
    [{"N": "abc"}, {"N": ""}, {"N": 5}, {"S": 1}, {"B": "not base64!"}, {"X": 1}, {}, {"S": "a", "N": "1"}, None]
)
value = st.one_of(
    typed,
    text.map(lambda s: {"S": s}),
    long_text.map(lambda s: {"S": s}),
    number.map(lambda n: {"N": n}),
    st.just({"NULL": True}),
    st.dictionaries(st.sampled_from(["b", "k", "c.d"]), typed, max_size=3).map(lambda m: {"M": m}),
    st.lists(typed, max_size=3).map(lambda v: {"L": v}),
    bad,
)
NAMES = ["a", "b", "c", "m", "l", "c.d", "amount", "é", "a b"]
image = st.dictionaries(st.sampled_from(NAMES), value, max_size=5)


@st.composite
def changes(draw: st.DrawFn) -> dict[str, Any]:
    """A change in either source format, with any image present or not, and the fields the @-columns read."""
    name = draw(st.sampled_from(["INSERT", "MODIFY", "REMOVE"]))
    ddb: dict[str, Any] = {"Keys": draw(st.dictionaries(st.sampled_from(["a", "id"]), value, max_size=2))}
    for which in ("NewImage", "OldImage"):
        if draw(st.booleans()):
            ddb[which] = draw(image)
    streams_format = draw(st.booleans())
    if streams_format:  # DynamoDB Streams: seconds, a SequenceNumber, the table in the ARN
        when = draw(st.sampled_from([1_700_000_000, 1_700_000_000.5, None]))
        ddb["SequenceNumber"] = draw(st.sampled_from(["100000000027074219927", "12", "", "x" * 3, 7]))
        c: dict[str, Any] = {"eventName": name, "eventVersion": "1.1", "eventSourceARN": ARN, "awsRegion": "eu-west-1"}
    else:  # Kinesis Data Streams for DynamoDB: milliseconds or microseconds, tableName
        when = draw(st.sampled_from([1_700_000_000_123, 1_700_000_000_123_456, "soon", None]))
        c = {"eventName": name, "tableName": draw(st.sampled_from(["orders", "", 3]))}
    if when is not None:
        ddb["ApproximateCreationDateTime"] = when
    if draw(st.booleans()):
        ddb["SizeBytes"] = draw(st.sampled_from([12, 0, "12", 1.5]))
    if draw(st.booleans()):
        c["eventID"] = draw(st.sampled_from(["e-1", "", 4]))
    if name == "REMOVE" and draw(st.booleans()):
        c["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    c["dynamodb"] = ddb
    return c


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """One change mostly; else several in {"Records": [...]} or a JSON array, none, a BOM, or a hostile one."""
    kind = draw(st.sampled_from(["one"] * 6 + ["records", "array", "empty", "bom", "hostile"]))
    if kind == "one":
        return json.dumps(draw(changes())).encode()
    if kind == "records":
        return json.dumps({"Records": draw(st.lists(changes(), min_size=1, max_size=3))}).encode()
    if kind == "array":
        return json.dumps(draw(st.lists(changes(), min_size=1, max_size=3))).encode()
    if kind == "empty":
        return draw(st.sampled_from([b'{"Records": []}', b"[]"]))
    if kind == "bom":
        return b"\xef\xbb\xbf" + json.dumps(draw(changes())).encode()
    return draw(st.sampled_from(HOSTILE))


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event = firehose_event(draw(st.lists(payloads(), min_size=1, max_size=10)), kinesis=draw(st.booleans()))
    for rec in event["records"]:
        if draw(st.integers(0, 9)) == 0:
            rec["data"] = draw(st.sampled_from(["not base64!", 42, "YQ"]))
    return event


COLUMNS = [
    "a",
    "a,b,c",
    "b,a",  # plain, not in the image's order
    "x=a,y=a,b",  # one attribute twice
    'a,a0=a.k,m.b,l[0],l[1].c,"c.d",m."c.d"',  # nested paths, quoted names
    "a,amountt",  # a misspelt column
    ALL_FIELDS,
    "a,m.k," + ALL_FIELDS,
    "@eventName,a,@recordId,@partitionKey,@arrivalTimestamp,@sequenceNumber,b",
    "l[0],@approximateCreationDateTime,@version,amount",
    "é,a b,e=@eventName,when=@approximateCreationDateTime",  # names that are not identifiers
]
plan_configs = st.fixed_dictionaries(
    {
        "PIPELINE_COLUMNS": st.sampled_from(COLUMNS),
        "PIPELINE_FORMAT": st.sampled_from(["csv", "tsv", "jsonl"]),
        "PIPELINE_IMAGE": st.sampled_from(["auto", "new", "old", "keys"]),
        "PIPELINE_EVENTS": st.sampled_from(["INSERT,MODIFY,REMOVE", "INSERT", "MODIFY,REMOVE", "REMOVE"]),
        "PIPELINE_NULL": st.sampled_from(["", "NULL", "\\N"]),
        "PIPELINE_REINGEST": st.sampled_from(["on", "off"]),
        "PIPELINE_PARTITION_KEYS": st.sampled_from(
            [
                "",
                "day=@approximateCreationDateTime|%Y-%m-%d",
                "t=@tableName,e=@eventName",
                "k=a",  # an attribute the columns may not read
                "c=m.k,h=@arrivalTimestamp|%H",  # a path; a time from the Firehose record
                "when=a|%Y",  # an attribute read as a time
            ]
        ),
    }
)


def whole_image_sometimes(env: dict[str, str], whole: bool) -> dict[str, str]:
    """jsonl of the whole image (no PIPELINE_COLUMNS) when *whole*."""
    if whole and env.get("PIPELINE_FORMAT") == "jsonl":
        return {**env, "PIPELINE_COLUMNS": ""}
    return env


def with_budget(event: Mapping[str, Any], env: dict[str, str], share: float | None) -> dict[str, str]:
    """*env* with a response budget between the batch's floor and a little above it (None: the default)."""
    if share is None or type(event) is not dict or type(event.get("records")) is not list:
        return env
    try:
        floor, _ = response_floor(r["recordId"] for r in event["records"])
    except (TypeError, KeyError):
        return env
    return {**env, "PIPELINE_MAX_RESPONSE_BYTES": str(max(1024, floor + int(share * 4000)))}


budgets = st.none() | st.floats(0, 1)


# --- the properties --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=60)
@given(events(), plan_configs, st.booleans(), budgets)
def test_the_plan_answers_as_the_stages_do(parser, event, env, whole, share):
    env = with_budget(event, whole_image_sometimes(env, whole), share)
    both_ways(event, env, parser=parser)


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=25)
@given(messy_events(), configs, budgets)
@example(firehose_event(HOSTILE), {"PIPELINE_COLUMNS": "a", "PIPELINE_FORMAT": "csv"}, None)
def test_the_plan_answers_garbage_as_the_stages_do(parser, event, env, share):
    """The property tests' messy events and configurations (partition keys too: those run the stages)."""
    both_ways(event, with_budget(event, env, share), parser=parser)


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=25)
@given(hostile_events(), hostile_configs, budgets)
def test_the_plan_answers_hostile_strings_as_the_stages_do(parser, event, env, share):
    both_ways(event, with_budget(event, env, share), parser=parser)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "env",
    [
        {"PIPELINE_COLUMNS": "a,b," + ALL_FIELDS},
        {"PIPELINE_COLUMNS": "x=a.b[0],a,@eventID,@version", "PIPELINE_IMAGE": "old", "PIPELINE_FORMAT": "tsv"},
        {"PIPELINE_COLUMNS": "a,b", "PIPELINE_IMAGE": "keys", "PIPELINE_EVENTS": "INSERT", "PIPELINE_NULL": "\\N"},
        {"PIPELINE_COLUMNS": "b,a,@recordId", "PIPELINE_FORMAT": "jsonl", "PIPELINE_IMAGE": "new"},
        {"PIPELINE_FORMAT": "jsonl"},
        {"PIPELINE_FORMAT": "jsonl", "PIPELINE_IMAGE": "old", "PIPELINE_EVENTS": "MODIFY,REMOVE"},
    ],
    ids=["fields", "paths-old-tsv", "keys-insert", "jsonl-columns", "jsonl-whole", "jsonl-whole-old"],
)
def test_hostile_payloads_get_the_stages_answer(parser, env):
    both_ways(firehose_event(HOSTILE), env, parser=parser)
    both_ways(firehose_event(HOSTILE, kinesis=False), {**env, "PIPELINE_REINGEST": "off"}, parser=parser)


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=20)
@given(st.lists(events(), min_size=2, max_size=3), plan_configs, budgets)
def test_one_handler_answers_invocation_after_invocation_as_the_stages_do(parser, batches, env, share):
    """Nothing one invocation leaves behind (the presence of columns, caches) changes the next one's answer."""
    all_both_ways(batches, with_budget(batches[0], env, share), parser=parser)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "event",
    [
        None,
        {"Records": []},
        {"records": "x"},
        {"records": [{"recordId": "a", "data": "e30="}, {"recordId": "a", "data": "e30="}]},
        {"records": [{"recordId": "a", "data": "e30="}, {"data": "e30="}]},
        {"records": [{"recordId": "\ud800", "data": "e30="}]},
        {"records": []},
    ],
    ids=["none", "not-firehose", "records-not-a-list", "repeated-id", "no-id", "id-not-utf8", "empty"],
)
def test_an_event_that_cannot_be_answered_fails_the_same_way(parser, event):
    found = both_ways(event, {"PIPELINE_COLUMNS": "a,@recordId"}, parser=parser)
    assert found["outcome"][0] == ("response" if event == {"records": []} else "raised")


@pytest.mark.parametrize(("spec", "name"), [('"a""b"', 'a"b'), ('"a\\b"', "a\\b")], ids=["quote", "backslash"])
def test_a_column_named_with_a_quote_or_backslash_gets_one_answer_from_every_parser(spec, name):
    """A quoted attribute name may hold a double quote (written twice) or a backslash: the README allows it.

    Found by this file: with msgspec, make_handler raises msgspec's ValueError (``Renamed field names must not
    contain '\\', '"', or control characters``) from :func:`pipeline.parse.image_struct`, fast or not, where the
    standard library path writes the row.
    """
    change = {"eventName": "INSERT", "dynamodb": {"Keys": {}, "NewImage": {name: {"S": "x"}, "c": {"N": "1"}}}}
    event = firehose_event([json.dumps(change).encode()])
    env = {"PIPELINE_COLUMNS": f"{spec},c", "PIPELINE_REINGEST": "off"}
    for parser in ("stdlib", "msgspec"):
        found = both_ways(event, env, parser=parser)
        assert found["outcome"][0] == "response", found["outcome"]
        assert base64.b64decode(found["response"]["records"][0]["data"]) == b"x,1\n"


# --- the budget and re-ingestion -------------------------------------------------------------------------------


def wide(i: int, event_name: str = "INSERT", pad: int = 100) -> bytes:
    new = {"a": {"S": f"item-{i}" + "x" * pad}, "b": {"N": str(i)}, "m": {"M": {"k": {"S": "v"}}}}
    return json.dumps(
        {
            "eventName": event_name,
            "tableName": "orders",
            "dynamodb": {"ApproximateCreationDateTime": 1_700_000_000_123, "Keys": {"a": new["a"]}, "NewImage": new},
        }
    ).encode()


budget_setups = st.fixed_dictionaries(
    {
        "columns": st.sampled_from(["a,b,@recordId", "a,m.k", "", "b"]),
        "format": st.sampled_from(["csv", "jsonl", "tsv"]),
        "reingest": st.sampled_from(["on", "off"]),
        "kinesis": st.booleans(),
        "share": st.floats(0, 1),
    }
)


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=30)
@given(
    st.lists(st.sampled_from(["wide", "narrow", "several", "bad", "removed"]), min_size=1, max_size=40), budget_setups
)
def test_records_over_the_budget_get_the_same_answer(parser, kinds, setup):
    """Budgets near the floor: the same records fit, are re-ingested (the same bytes) or fail, both ways."""
    columns, fmt = setup["columns"], setup["format"]
    if fmt != "jsonl" and not columns:
        columns = "a,b"
    payloads = []
    for i, kind in enumerate(kinds):
        if kind == "wide":
            payloads.append(wide(i, pad=300))
        elif kind == "narrow":
            payloads.append(wide(i, pad=0))
        elif kind == "several":
            payloads.append(json.dumps({"Records": [json.loads(wide(i)), json.loads(wide(i + 1))]}).encode())
        elif kind == "bad":
            payloads.append(wide(i).replace(b'{"N": "', b'{"N": "x'))
        else:
            payloads.append(wide(i, "REMOVE"))
    event = firehose_event(payloads, kinesis=setup["kinesis"])
    floor, _ = response_floor(r["recordId"] for r in event["records"])
    env = {
        "PIPELINE_COLUMNS": columns,
        "PIPELINE_FORMAT": fmt,
        "PIPELINE_EVENTS": "INSERT,MODIFY",
        "PIPELINE_REINGEST": setup["reingest"],
        "PIPELINE_MAX_RESPONSE_BYTES": str(max(1024, floor + int(setup["share"] * 12_000))),
    }
    found = both_ways(event, env, parser=parser)
    if found["response"] is not None:
        assert summary_of(found)["ResponseBytes"] == len(json.dumps(found["response"]))


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("kinesis", [True, False], ids=["kinesis", "direct-put"])
def test_summary_counts_sizes_and_reasons_are_the_same_both_ways(parser, kinesis):
    """bytesIn, bytesOut, results, reasons and ResponseBytes, on a batch with every kind of answer."""
    payloads = [wide(i, pad=200) for i in range(30)]
    payloads[3] = wide(3, "REMOVE")  # Dropped: not selected
    payloads[5] = b"junk"  # ProcessingFailed at parse
    payloads[7] = wide(7).replace(b'{"N": "7"}', b'{"N": "seven"}')  # ProcessingFailed at encode
    payloads[9] = b'{"Records": []}'  # Dropped: no changes
    payloads[11] = json.dumps({"Records": [json.loads(wide(11)), json.loads(wide(12))]}).encode()
    payloads[13] = b"\xef\xbb\xbf" + wide(13)
    event = firehose_event(payloads, kinesis=kinesis)
    env = {"PIPELINE_COLUMNS": "a,b,@eventName", "PIPELINE_EVENTS": "INSERT", "PIPELINE_MAX_RESPONSE_BYTES": "6000"}
    found = both_ways(event, env, parser=parser)
    summary = summary_of(found)
    results = [e["result"] for e in found["response"]["records"]]
    assert summary["results"] == {k: results.count(k) for k in ("Ok", "Dropped", "ProcessingFailed")}
    assert summary["reasons"]["event type not selected"] == 1
    assert summary["reasons"]["no change records in payload"] == 1
    assert summary["reasons"]["over response budget"] >= 1  # the budget was reached: some went back
    assert summary["bytesIn"] == sum(map(len, payloads))
    assert summary["bytesOut"] == sum(
        len(base64.b64decode(e["data"])) for e in found["response"]["records"] if "data" in e
    )
    assert summary["ResponseBytes"] == len(json.dumps(found["response"]))
    assert sum(map(len, found["put"].values())) == summary["reingested"]["records"] > 0


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("ids", ["firehose", "odd"])
def test_a_record_that_fits_to_the_byte_is_answered_ok_both_ways(parser, fmt, ids):
    """At a budget of exactly the whole response every record is Ok; a byte less and the last one goes back."""
    payloads = [wide(i, pad=40 + 7 * i) for i in range(12)]
    record_ids = [f'r-{i}-é"\\' for i in range(12)] if ids == "odd" else None
    event = firehose_event(payloads, ids=record_ids)
    env = {"PIPELINE_COLUMNS": "a,b,@eventName", "PIPELINE_FORMAT": fmt}
    whole = both_ways(event, env, parser=parser)["response"]
    exact = len(json.dumps(whole))
    assert exact > 1024
    for budget, last in [(exact + 1, "Ok"), (exact, "Ok"), (exact - 1, "Dropped")]:
        found = both_ways(event, {**env, "PIPELINE_MAX_RESPONSE_BYTES": str(budget)}, parser=parser)
        results = [e["result"] for e in found["response"]["records"]]
        assert results == ["Ok"] * 11 + [last]
        assert summary_of(found)["ResponseBytes"] == len(json.dumps(found["response"])) <= budget


# --- the column-presence warning -------------------------------------------------------------------------------


def never_seen(found: dict) -> list[str] | None:
    warned = [line for line in found["logs"] if line.get("message") == "columns never seen"]
    return warned[0]["columns"] if warned else None


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "env",
    [
        {"PIPELINE_COLUMNS": "a,b,amountt"},
        {"PIPELINE_COLUMNS": "a,amountt,b,@eventName", "PIPELINE_FORMAT": "tsv"},
        {"PIPELINE_COLUMNS": "b,x=a,m.k,amountt", "PIPELINE_FORMAT": "jsonl"},
    ],
    ids=["csv-plain", "tsv-field", "jsonl-path"],
)
@pytest.mark.parametrize(("good", "failing"), [(60, 38), (60, 39), (0, 98), (0, 99), (150, 30)])
def test_a_record_failing_at_encode_is_noted_once(parser, env, good, failing):
    """The warning needs 100 changes: 99 noted must not warn, 100 must; a record that fails is counted once."""
    payloads = [wide(i) for i in range(good)]
    payloads += [wide(i).replace(b'{"N": "', b'{"N": "not a number ') for i in range(good, good + failing)]
    payloads.insert(len(payloads) // 2, b"junk")  # not a change: never noted
    payloads.insert(len(payloads) // 3, wide(1, "REMOVE"))  # kept: a change all the same
    event = firehose_event(payloads)
    env = {**env, "PIPELINE_REINGEST": "off"}
    found = both_ways(event, env, parser=parser)
    results = [e["result"] for e in found["response"]["records"]]
    assert results.count("ProcessingFailed") == failing + 1
    expected = ["amountt"] if good + failing + 1 >= 100 else None
    assert never_seen(found) == expected


@pytest.mark.parametrize("parser", PARSERS)
def test_columns_never_seen_with_over_budget_and_several_changes(parser):
    """Records noted then turned away by the budget, and payloads of several changes, count once each."""
    payloads = [wide(i, pad=50) for i in range(70)]
    payloads += [json.dumps({"Records": [json.loads(wide(i)), json.loads(wide(i))]}).encode() for i in range(15)]
    event = firehose_event(payloads)
    floor, _ = response_floor(r["recordId"] for r in event["records"])
    env = {"PIPELINE_COLUMNS": "a,amountt", "PIPELINE_MAX_RESPONSE_BYTES": str(floor + 3000)}
    found = both_ways(event, env, parser=parser)
    assert never_seen(found) == ["amountt"]  # 70 + 2 * 15 = 100 changes
    assert "over response budget" in summary_of(found)["reasons"]
    found = both_ways(firehose_event(payloads[1:]), env, parser=parser)
    assert never_seen(found) is None  # 99


def presence_payload(i: int, kind: str) -> bytes:
    if kind == "bad":
        return wide(i).replace(b'{"N": "', b'{"N": "not a number ')
    if kind == "junk":
        return b"junk"
    if kind == "several":
        return json.dumps({"Records": [json.loads(wide(i)), json.loads(wide(i + 1, "MODIFY"))]}).encode()
    if kind == "keys-only":
        return json.dumps({"eventName": "REMOVE", "dynamodb": {"Keys": {"a": {"S": "k"}}}}).encode()
    return wide(i, kind)


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=15)
@given(
    st.lists(
        st.sampled_from(["INSERT"] * 6 + ["MODIFY", "REMOVE", "bad", "bad", "junk", "several", "keys-only"]),
        min_size=85,
        max_size=125,
    ),
    st.fixed_dictionaries(
        {
            "PIPELINE_COLUMNS": st.sampled_from(["a,amountt", "b,amountt,m.k", "amountt,@eventName,x=a", "amountt"]),
            "PIPELINE_FORMAT": st.sampled_from(["csv", "tsv", "jsonl"]),
            "PIPELINE_EVENTS": st.sampled_from(["INSERT,MODIFY,REMOVE", "INSERT,MODIFY", "REMOVE"]),
            "PIPELINE_IMAGE": st.sampled_from(["auto", "new", "keys"]),
            "PIPELINE_REINGEST": st.just("off"),
        }
    ),
)
def test_the_columns_never_seen_are_the_same_both_ways(parser, kinds, env):
    """Around the 100 changes the warning needs, with failing, dropped and several-change records."""
    event = firehose_event([presence_payload(i, kind) for i, kind in enumerate(kinds)])
    both_ways(event, env, parser=parser)


# --- a re-ingestion failure, injected at the client --------------------------------------------------------------


class FailingClient(MemoryStreams):
    """A Kinesis and Firehose client whose put fails (an exception, as botocore raises one) from call *failing_call*."""

    def __init__(self, failing_call: int) -> None:
        super().__init__()
        self.failing_call = failing_call

    def _put(self, stream: str, entries: list[dict[str, Any]]) -> tuple[int, list[dict[str, str]]]:
        if self.calls + 1 >= self.failing_call:
            self.calls += 1
            raise ConnectionAbortedError("injected fault")
        return super()._put(stream, entries)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("kinesis", [True, False], ids=["kinesis", "direct-put"])
def test_injected_throttling_of_some_entries_ends_both_ways_with_the_same_error_and_summary(parser, kinesis):
    """Every other entry throttled and one attempt allowed: the invocation fails with the same counts."""
    payloads = [wide(i, pad=20) for i in range(40)]
    event = firehose_event(payloads, kinesis=kinesis)
    floor, _ = response_floor(r["recordId"] for r in event["records"])
    env = {
        "PIPELINE_COLUMNS": "a,b",
        "PIPELINE_MAX_RESPONSE_BYTES": str(max(1024, floor + 500)),
        "PIPELINE_REINGEST_MAX_ATTEMPTS": "1",
    }

    def throttled() -> MemoryStreams:
        return MemoryStreams(fail=lambda _call, i: "ProvisionedThroughputExceededException" if i % 2 else None)

    found = both_ways(event, env, parser=parser, client=throttled)
    assert found["outcome"][:2] == ("raised", ReingestError.__name__)
    reingested = summary_of(found)["reingested"]
    assert reingested["retriedEntries"] == reingested["notReingested"] > 0


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("kinesis", [True, False], ids=["kinesis", "direct-put"])
@pytest.mark.parametrize("failing_call", [1, 2], ids=["first-put-mid-batch", "last-put-at-the-end"])
def test_injected_reingest_fault_mid_batch_ends_both_ways_with_the_same_error_and_summary(
    parser, kinesis, failing_call
):
    """Over 500 records over the budget: the first put is sent mid-batch; the fault ends the invocation."""
    payloads = [wide(i, pad=20) for i in range(620)]
    payloads[10] = b"junk"
    payloads[600] = wide(600, "REMOVE")
    event = firehose_event(payloads, kinesis=kinesis)
    floor, _ = response_floor(r["recordId"] for r in event["records"])
    env = {
        "PIPELINE_COLUMNS": "a,b",
        "PIPELINE_EVENTS": "INSERT",
        "PIPELINE_MAX_RESPONSE_BYTES": str(floor + 2000),
    }
    found = both_ways(event, env, parser=parser, client=lambda: FailingClient(failing_call))
    kind, name, message = found["outcome"]
    assert (kind, name) == ("raised", ReingestError.__name__)
    assert "ConnectionAbortedError" in message
    summary = summary_of(found)
    assert summary["results"]["Ok"] > 0
    assert summary["reingested"]["calls"] == failing_call
    failed = [line for line in found["logs"] if line.get("message") == "invocation failed"]
    assert len(failed) == 1


@pytest.mark.parametrize("name", sorted(set(FIELDS) - RECORD_FIELDS))
def test_a_field_outside_record_fields_reads_the_change_alone(name):
    """The plan makes no envelope for these: their getters must answer from the change with no record."""
    change = {
        "eventName": "REMOVE",
        "eventID": "e1",
        "awsRegion": "eu-west-1",
        "tableName": "t",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {"ApproximateCreationDateTime": 1_700_000_000_123, "SizeBytes": 12, "Keys": {}},
    }
    assert FIELDS[name](change, None) is not None


@pytest.mark.parametrize("name", sorted(FIELD_VALUES))
def test_a_field_value_is_its_path_converted(name):
    """fields.FIELD_VALUES (read by attrgetter on msgspec's structs) says what FIELDS reads from a change dict."""
    path, convert = FIELD_VALUES[name]
    change = {"eventName": "INSERT", "eventID": "e1", "awsRegion": "r", "dynamodb": {"Keys": {}}}
    change["dynamodb"].update(ApproximateCreationDateTime=1_700_000_000_123, SizeBytes=7)
    top, _, inner = path.partition(".")
    value = change[top][inner] if inner else change[top]
    assert FIELDS[name](change, None) == convert(value)


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("columns", ["", "id,amount,note", "event=@eventName,id,when=@approximateCreationDateTime"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_partition_keys_come_from_the_fast_row_as_the_stages_give_them(parser, columns, fmt):
    """Dynamic partitioning: the fast row gives each ordinary record its line and keys; the answers are the stages'."""
    if fmt == "csv" and not columns:
        columns = "id"
    env = {
        "PIPELINE_COLUMNS": columns,
        "PIPELINE_FORMAT": fmt,
        "PIPELINE_PARTITION_KEYS": "table=@tableName,day=@approximateCreationDateTime|%Y-%m-%d,status=status",
    }
    event = generate_event(40_000, seed=3)
    found = both_ways(event, env, parser=parser)
    entries = found["response"]["records"]
    assert {e["result"] for e in entries} == {"Ok"}
    assert all(e["metadata"]["partitionKeys"]["table"] == "orders" for e in entries)
    config = Config.from_env(env)
    steps = [step for stage in stages(config, parser=parser) for step in stage.steps]
    line, keys = fast_rows(config, steps, parser=parser)(event["records"][0])
    assert keys == entries[0]["metadata"]["partitionKeys"]
    assert base64.b64encode(line).decode() == entries[0]["data"]
