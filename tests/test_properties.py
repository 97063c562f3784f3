"""The invariants, on random input (hypothesis): the contract always holds, values read back exactly,
the response stays within budget, and every record over the budget is re-ingested.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from decimal import Decimal

import pytest
from conftest import firehose_event
from hypothesis import HealthCheck, example, given, settings
from hypothesis import event as event_kind
from hypothesis import strategies as st

from pipeline import BudgetError, Config, make_handler
from pipeline.budget import response_floor
from pipeline.local.context import LocalContext
from pipeline.local.contract import contract_problems, runtime_size
from pipeline.local.memory import MemoryStreams
from pipeline.reingest import to_source

pytestmark = pytest.mark.usefixtures("parser")  # every test here runs on both parser paths

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", ",", '"', "\n", "\r\n", "\t", "\\", '""', "a,b", "Zürich", "東京", "🦊", " lead", "trail "]
)
number = st.from_regex(r"-?(0|[1-9][0-9]{0,37})(\.[0-9]{1,12})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)
binary = st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode())
scalar = st.one_of(
    text.map(lambda s: {"S": s}),
    number.map(lambda n: {"N": n}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    binary.map(lambda b: {"B": b}),
    st.lists(text, min_size=1, max_size=3, unique=True).map(lambda v: {"SS": v}),
    st.lists(number, min_size=1, max_size=3, unique=True).map(lambda v: {"NS": v}),
    st.lists(binary, min_size=1, max_size=3, unique=True).map(lambda v: {"BS": v}),
)
typed = st.recursive(
    scalar,
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda v: {"L": v})
        | st.dictionaries(text, inner, max_size=3).map(lambda v: {"M": v})
    ),
    max_leaves=6,
)
NAMES = ("a", "b", "c", "d")
TSV_ESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}  # what follows a backslash in a TSV cell
image = st.dictionaries(st.sampled_from(NAMES), typed)


def change(event_name, new, key="k"):
    ddb = {"ApproximateCreationDateTime": 1_700_000_000_123, "Keys": {"id": {"S": key}}}
    if event_name != "REMOVE":
        ddb["NewImage"] = new
    if event_name != "INSERT":
        ddb["OldImage"] = new
    return {"eventName": event_name, "eventID": key, "tableName": "t", "dynamodb": ddb}


def plain(value):
    """The oracle: a typed value as Python, numbers as Decimal (independent of the code under test)."""
    [(kind, v)] = value.items()
    if kind in ("S", "B"):
        return v
    if kind == "N":
        return Decimal(v)
    if kind in ("BOOL",):
        return v
    if kind == "NULL":
        return None
    if kind == "NS":
        return [Decimal(n) for n in v]
    if kind in ("SS", "BS"):
        return list(v)
    if kind == "L":
        return [plain(x) for x in v]
    return {k: plain(x) for k, x in v.items()}


def numbers_in(value):
    [(kind, v)] = value.items()
    if kind == "N":
        return [v]
    if kind == "NS":
        return list(v)
    if kind == "L":
        return [n for x in v for n in numbers_in(x)]
    if kind == "M":
        return [n for x in v.values() for n in numbers_in(x)]
    return []


def handler(**env):
    env.setdefault("PIPELINE_REINGEST", "off")
    return make_handler(Config.from_env(env))


def decoded(response):
    return b"".join(base64.b64decode(e["data"]) for e in response["records"] if "data" in e).decode()


@given(st.lists(image, min_size=1, max_size=5), st.sampled_from(["", "NULL", r"\N"]))
def test_csv_reads_back_exactly(images, null):
    event = firehose_event([json.dumps(change("INSERT", img)).encode() for img in images])
    response = handler(PIPELINE_COLUMNS=",".join(NAMES), PIPELINE_NULL=null)(event, LocalContext())
    assert contract_problems(event, response) == []
    rows = list(csv.reader(io.StringIO(decoded(response), newline="")))
    assert len(rows) == len(images)
    for row, img in zip(rows, images, strict=True):
        for cell, name in zip(row, NAMES, strict=True):
            value = img.get(name)
            kind = next(iter(value)) if value else None
            if kind is None or kind == "NULL":
                assert cell == null
            elif kind in ("S", "N", "B"):
                assert cell == value[kind]  # N: exactly the digits sent
            elif kind == "BOOL":
                assert cell == ("true" if value["BOOL"] else "false")
            else:
                assert json.loads(cell, parse_float=Decimal, parse_int=Decimal) == plain(value)
                assert all(n in cell for n in numbers_in(value))


@given(st.lists(image, min_size=1, max_size=5))
@example([{"a": {"S": "\x00"}}])  # a NUL was the test's own placeholder for a backslash: it read back wrong
def test_tsv_unescapes_back_exactly(images):
    event = firehose_event([json.dumps(change("MODIFY", img)).encode() for img in images])
    response = handler(PIPELINE_COLUMNS=",".join(NAMES), PIPELINE_FORMAT="tsv", PIPELINE_NULL=r"\N")(
        event, LocalContext()
    )
    lines = decoded(response).split("\n")
    assert lines.pop() == ""
    for line, img in zip(lines, images, strict=True):
        cells = line.split("\t")
        assert len(cells) == len(NAMES)
        for cell, name in zip(cells, NAMES, strict=True):
            value = img.get(name)
            if value is None or "NULL" in value:
                assert cell == r"\N"
            else:
                unescaped = re.sub(r"\\(.)", lambda m: TSV_ESCAPES[m[1]], cell, flags=re.DOTALL)
                kind = next(iter(value))
                if kind in ("S", "N", "B"):
                    assert unescaped == value[kind]


@given(st.lists(image, min_size=1, max_size=5))
def test_json_lines_keep_every_value_and_digit(images):
    event = firehose_event([json.dumps(change("REMOVE", img)).encode() for img in images])
    response = handler(PIPELINE_FORMAT="jsonl")(event, LocalContext())
    lines = decoded(response).split("\n")[:-1]  # JSON Lines end each line in \n (and only there)
    assert [json.loads(line, parse_float=Decimal, parse_int=Decimal) for line in lines] == [
        {k: plain(v) for k, v in img.items()} for img in images
    ]
    for line, img in zip(lines, images, strict=True):
        assert all(n in line for v in img.values() for n in numbers_in(v))


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=5,
)
payload = st.one_of(
    image.map(lambda img: json.dumps(change("INSERT", img)).encode()),
    st.lists(image, max_size=3).map(lambda imgs: json.dumps({"Records": [change("MODIFY", i) for i in imgs]}).encode()),
    st.binary(max_size=40),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(["eventName", "dynamodb", "Keys", "NewImage"]).map(
        lambda key: json.dumps(_without(change("INSERT", {"a": {"S": "x"}}), key)).encode()
    ),
    st.just(b'{"eventName": "INSERT", "dynamodb": {"Keys": {}, "NewImage": {"a": {"N": "' + b"9" * 5000 + b'"}}}}'),
    st.just(b'{"eventName": "INSERT", "dynamodb": {"Keys": {}, "NewImage": {"a": "untyped", "b": {"Q": 1}}}}'),
)


def _without(c, key):
    c = json.loads(json.dumps(c))
    for holder in (c, c.get("dynamodb", {})):
        holder.pop(key, None)
    return c


@st.composite
def messy_events(draw):
    payloads = draw(st.lists(payload, min_size=1, max_size=8))
    event = firehose_event(payloads, kinesis=draw(st.booleans()))
    for rec in event["records"]:
        damage = draw(st.sampled_from([None] * 6 + ["not base64", "missing", "number", "unicode"]))
        if damage == "not base64":
            rec["data"] = draw(st.text(max_size=10)) + "!"
        elif damage == "missing":
            del rec["data"]
        elif damage == "number":
            rec["data"] = 42
        elif damage == "unicode":
            rec["data"] = "Zm9v8J+mig=="[: draw(st.integers(0, 11))] + "é"
    return event


configs = st.fixed_dictionaries(
    {
        "PIPELINE_COLUMNS": st.sampled_from(
            ["a", "a,b,c", "x=a.b[0],@eventName,@approximateCreationDateTime", "@recordId,d"]
        ),
        "PIPELINE_FORMAT": st.sampled_from(["csv", "tsv", "jsonl"]),
        "PIPELINE_EVENTS": st.sampled_from(["INSERT,MODIFY,REMOVE", "INSERT", "MODIFY,REMOVE"]),
        "PIPELINE_IMAGE": st.sampled_from(["auto", "new", "old", "keys"]),
        "PIPELINE_PARTITION_KEYS": st.sampled_from(["", "t=@tableName", "d=@approximateCreationDateTime|%Y-%m-%d,v=a"]),
    }
)


@given(messy_events(), configs)
def test_contract_holds_on_any_input(event, env):
    response = handler(**env)(event, LocalContext())  # never raises for bad records
    assert contract_problems(event, response) == []


@given(
    st.lists(st.tuples(image, st.integers(0, 3)), min_size=1, max_size=25),
    st.floats(-0.1, 1.1),
    st.sampled_from(["jsonl", "csv"]),
    st.booleans(),
    st.booleans(),
)
def test_budget_holds_and_every_dropped_record_is_reingested(items, share, fmt, kinesis, keyed):
    """Output larger than input (JSON Lines of the whole image, long partition keys), budgets near the floor.

    *share* puts the budget between the smallest possible response (0) and the response with no limit (1).
    """
    payloads = [
        json.dumps(change("INSERT", img, key=f"key-{i}" * (1 + pad * 20))).encode()
        for i, (img, pad) in enumerate(items)
    ]
    event = firehose_event(payloads, kinesis=kinesis)
    env = {"PIPELINE_FORMAT": fmt}
    env["PIPELINE_COLUMNS"] = "" if fmt == "jsonl" else "a,b,c,d,@eventID,@approximateCreationDateTime"
    if keyed:
        env["PIPELINE_PARTITION_KEYS"] = "long=@eventID,day=@approximateCreationDateTime|%Y-%m-%dT%H:%M:%S.%f"
    unlimited = len(json.dumps(handler(**env)(event, LocalContext())))
    floor, _ = response_floor(r["recordId"] for r in event["records"])
    budget = max(1024, floor + int(share * (unlimited - floor)))
    streams = MemoryStreams()
    config = Config.from_env({**env, "PIPELINE_MAX_RESPONSE_BYTES": str(budget)})
    run = make_handler(config, reingester=lambda e, c: to_source(e, c, client=streams))
    if floor > budget:
        with pytest.raises(BudgetError):
            run(event, LocalContext())
        return
    response = run(event, LocalContext())
    assert runtime_size(response) <= budget  # as the Lambda runtime serialises it
    assert contract_problems(event, response, budget) == []
    dropped = [i for i, e in enumerate(response["records"]) if e["result"] == "Dropped"]
    put = [item for stream in streams.put.values() for item in stream]
    assert [data for data, _ in put] == [payloads[i] for i in dropped]  # the original bytes, in order
    if kinesis:
        assert [key for _, key in put] == [f"pk-{i}" for i in dropped]  # with their partition keys
    event_kind("re-ingested" if dropped else "all fitted")


# Hostile strings: lone surrogates (json.loads accepts them in escapes; the Firehose event may carry them in its
# metadata), empty text, controls and astral characters, in attribute names and values, table names, Kinesis
# partition keys, and so in partition-key values and re-ingestion keys.
hostile = st.one_of(
    st.sampled_from(["x", "Zürich", "東京"]),  # mostly ordinary text, so that records get through to the budget
    st.sampled_from(["y", "São Paulo"]),
    st.text(st.characters(), max_size=6),
    st.text(st.characters(categories=["Cs"]) | st.sampled_from('aé🦊\x00\n,"'), max_size=6),
    st.sampled_from(["", "\ud800", "t\udfff", "\udcff", "🦊", "\x7f", "\u2028"]),
)
hostile_scalar = st.one_of(
    st.text(max_size=30).map(lambda s: {"S": s}),
    hostile.map(lambda s: {"S": s}),
    st.sampled_from(["1", "-2.5E+3", "NaN", "", "1,2\n", "\ud800"]).map(lambda n: {"N": n}),
    st.sampled_from(["", "YQ==", "not base64!", "\udcff"]).map(lambda b: {"B": b}),
    st.dictionaries(hostile, st.just({"S": "x"}), max_size=2).map(lambda m: {"M": m}),
    st.sampled_from([{"SECRET-M": "1"}, {"NULL": True}, {"BOOL": False}]),
)
hostile_configs = st.fixed_dictionaries(
    {
        "PIPELINE_COLUMNS": st.sampled_from(["a,b", "@tableName,a", "@partitionKey,b"]),
        "PIPELINE_FORMAT": st.sampled_from(["csv", "tsv", "jsonl"]),
        "PIPELINE_PARTITION_KEYS": st.sampled_from(
            ["", "t=@tableName", "v=a", "k=@partitionKey", "t=@tableName,v=b,d=@approximateCreationDateTime|%Y"]
        ),
    }
)


@st.composite
def hostile_events(draw):
    changes = []
    for i in range(draw(st.integers(1, 8))):
        new = draw(st.dictionaries(st.sampled_from(["a", "b"]) | hostile, hostile_scalar, max_size=3))
        c = change("INSERT", new, key=f"k{i}")
        c["tableName"] = draw(hostile)
        changes.append(c)
    event = firehose_event([json.dumps(c).encode() for c in changes])  # ensure_ascii: surrogates as escapes
    for rec in event["records"]:
        rec["kinesisRecordMetadata"]["partitionKey"] = draw(
            hostile | st.just(rec["kinesisRecordMetadata"]["partitionKey"])
        )
    return event


@given(hostile_events(), hostile_configs, st.sampled_from(["msgspec", "stdlib"]), st.floats(0, 1.1))
def test_every_response_can_be_sent_by_the_runtime_and_stays_in_budget(event, env, parser, share):
    """Whatever the strings, the response serialises the runtime's way (UTF-8 encodable) within the budget."""
    if env["PIPELINE_FORMAT"] == "jsonl" and share > 0.5:
        env["PIPELINE_COLUMNS"] = ""  # the whole image: hostile attribute names become output keys
    floor, _ = response_floor(r["recordId"] for r in event["records"])
    unlimited = runtime_size(
        make_handler(Config.from_env({**env, "PIPELINE_REINGEST": "off"}), parser=parser)(event, LocalContext())
    )
    budget = max(1024, floor + int(share * (unlimited - floor)))
    streams = MemoryStreams()
    config = Config.from_env({**env, "PIPELINE_MAX_RESPONSE_BYTES": str(budget)})
    run = make_handler(config, parser=parser, reingester=lambda e, c: to_source(e, c, client=streams))
    if floor > budget:
        with pytest.raises(BudgetError):
            run(event, LocalContext())
        return
    response = run(event, LocalContext())
    json.dumps(response, ensure_ascii=False).encode("utf-8")  # the python3.12 runtime's serialisation
    assert runtime_size(response) <= budget
    assert contract_problems(event, response, budget) == []
    for entry in response["records"]:
        keys = entry.get("metadata", {}).get("partitionKeys", {})
        assert all(value and type(value) is str for value in keys.values())  # never empty
    for stream in streams.put.values():
        for _data, key in stream:
            key.encode("utf-8")  # re-ingested with a key Kinesis can take
    event_kind(" ".join(sorted(set(results_of(response)))))


def results_of(response):
    return [e["result"] for e in response["records"]]
