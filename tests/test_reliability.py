"""Hostile input and hanging endpoints (issue 15): each case here failed before its fix.

* a response the Lambda runtime could not send (lone surrogates on their way to ``metadata.partitionKeys``);
* re-ingestion that outlived the Lambda against an endpoint that never answers (a real socket on 127.0.0.1);
* logs that quoted a record, or said nothing when the invocation ended early;
* N and B values that are not what their type says.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from conftest import firehose_event, handler_for, results, run
from silent_server import silent_server

from pipeline import BudgetError, Config, ConfigError, InvalidEvent, ReingestError, make_handler
from pipeline.local.context import LocalContext
from pipeline.local.contract import contract_problems, runtime_size
from pipeline.local.memory import MemoryStreams
from pipeline.records import RecordError
from pipeline.reingest import KINESIS, Reingester, call_limits, client_for, to_source
from pipeline.values import always_empty, check_partition_value, is_base64, is_number, is_utf8

pytestmark = pytest.mark.usefixtures("parser")  # every test here runs on both parser paths

SECRET = "SECRET-M"
LONE = "\ud800"  # a lone surrogate: json.loads accepts it in an escape, UTF-8 cannot encode it


def change(i=1, table="t", **attrs):
    image = {"id": {"N": str(i)}, **attrs}
    return {
        "eventName": "INSERT",
        "eventID": f"e{i}",
        "tableName": table,
        "dynamodb": {
            "ApproximateCreationDateTime": 1_700_000_000_000,
            "Keys": {"id": {"N": str(i)}},
            "NewImage": image,
        },
    }


def payload(c):
    return json.dumps(c).encode()  # ensure_ascii: a lone surrogate travels as the escape \ud800


def stdlib_handler(**env):
    """The handler, which lets lone surrogate escapes through the parse on either path (msgspec hands them to the
    standard library, which takes them), so that the later checks must catch them."""
    env.setdefault("PIPELINE_REINGEST", "off")
    return make_handler(Config.from_env(env))


def lines(caplog):
    return [json.loads(r.getMessage()) for r in caplog.records]


# 1. Every string that reaches the response is UTF-8 text -------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "bad"),
    [
        ("table=@tableName", change(2, table="t" + LONE)),
        ("v=a", change(2, a={"S": "x" + LONE})),
        ("d=@approximateCreationDateTime|%Y,v=a", change(2, a={"S": LONE})),
    ],
)
def test_lone_surrogate_in_a_partition_key_value_fails_that_record_alone(keys, bad, caplog):
    event = firehose_event([payload(change(1, a={"S": "ok"})), payload(bad), payload(change(3, a={"S": "ok"}))])
    response = stdlib_handler(PIPELINE_COLUMNS="id", PIPELINE_PARTITION_KEYS=keys)(event, LocalContext())
    assert results(response) == ["Ok", "ProcessingFailed", "Ok"]
    json.dumps(response, ensure_ascii=False).encode("utf-8")  # what the python3.12 runtime does: no error
    assert contract_problems(event, response) == []
    [failed] = [line for line in lines(caplog) if line["message"] == "record failed"]
    assert "is not UTF-8 text" in failed["reason"] and "partition key" in failed["reason"]


def test_the_contract_check_serialises_as_the_runtime_does():
    event = {"records": [{"recordId": "a", "data": "eA=="}]}
    response = {
        "records": [{"recordId": "a", "result": "Ok", "data": "eQ==", "metadata": {"partitionKeys": {"k": LONE}}}]
    }
    json.dumps(response)  # the escaped form alone would not notice
    assert contract_problems(event, response) == [
        "response cannot be sent: the Lambda runtime's UTF-8 encoding fails (a lone surrogate in a string)"
    ]
    ok = {"records": [{"recordId": "a", "result": "Ok", "data": "eQ==", "metadata": {"partitionKeys": {"k": "é"}}}]}
    escaped, utf8 = len(json.dumps(ok)), len(json.dumps(ok, ensure_ascii=False).encode("utf-8"))
    assert runtime_size(ok) == max(escaped, utf8) == escaped  # the larger of the runtime's two forms
    assert contract_problems(event, ok, escaped - 1) == [
        f"response is {escaped} bytes, over the limit of {escaped - 1}"
    ]


def test_a_record_id_that_is_not_utf8_text_is_an_invalid_event_logged_with_the_summary(caplog):
    event = firehose_event([payload(change())], ids=["a" + LONE])
    with pytest.raises(InvalidEvent, match=r"records\[0\] recordId is not UTF-8 text"):
        handler_for(PIPELINE_COLUMNS="id")(event, LocalContext())
    messages = [line["message"] for line in lines(caplog)]
    assert messages == ["invocation failed", "summary"]


def test_kinesis_partition_key_with_a_lone_surrogate_fails_that_record_at_reingestion():
    payloads = [payload(change(i, a={"S": "x" * 400})) for i in range(6)]
    event = firehose_event(payloads)
    event["records"][4]["kinesisRecordMetadata"]["partitionKey"] = "pk" + LONE
    streams = MemoryStreams()
    config = Config.from_env({"PIPELINE_COLUMNS": "id,a", "PIPELINE_MAX_RESPONSE_BYTES": "1700"})
    response = make_handler(config, reingester=lambda e, c: to_source(e, c, client=streams))(event, LocalContext())
    got = results(response)
    assert got[4] == "ProcessingFailed" and got.count("Dropped") >= 1
    assert [key for _, key in streams.put["source"]] == [f"pk-{i}" for i, r in enumerate(got) if r == "Dropped"]
    assert contract_problems(event, response, 1700) == []


def test_kinesis_partition_key_check_names_the_reason():
    target = Reingester(KINESIS, "s", "eu-west-1", client=MemoryStreams())
    event = firehose_event([b"x"])
    event["records"][0]["kinesisRecordMetadata"]["partitionKey"] = LONE
    from pipeline import Record

    rec = Record(event["records"][0]["recordId"], event["records"][0], None)
    assert target.add(rec) == "the record's Kinesis partition key is not UTF-8 text"


@pytest.mark.parametrize(
    "keys", ["d=@approximateCreationDateTime|%Ez", "d=ts|%Ez", "a=@arrivalTimestamp|%Ez%Ez", "d=@tableName,e=ts|%Ez"]
)
def test_a_partition_key_format_that_can_only_give_empty_text_is_refused_at_start_up(keys):
    # refused by whichever rule comes first: %E is not a portable code, and it gives empty text on glibc
    refused = r"^PIPELINE_PARTITION_KEYS=.*(gives empty text|%E in .* is not a strftime code)"
    assert always_empty(keys.rsplit("|", 1)[1])
    with pytest.raises(ConfigError, match=refused):
        Config.from_env({"PIPELINE_COLUMNS": "id", "PIPELINE_PARTITION_KEYS": keys})


def test_an_empty_partition_key_value_fails_the_record_whatever_it_comes_from():
    with pytest.raises(RecordError, match="partition key 'd' is empty"):
        check_partition_value("", "d")
    event = firehose_event([payload(change(1, a={"S": ""})), payload(change(2, a={"S": "x"}))])
    event["records"][1]["kinesisRecordMetadata"]["partitionKey"] = ""
    response = run(event, PIPELINE_COLUMNS="id", PIPELINE_PARTITION_KEYS="v=a")
    assert results(response) == ["ProcessingFailed", "Ok"]
    response = run(event, PIPELINE_COLUMNS="id", PIPELINE_PARTITION_KEYS="k=@partitionKey")
    assert results(response) == ["Ok", "ProcessingFailed"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PIPELINE_PARTITION_KEYS", "t\udcff=@tableName"),  # bytes that were not UTF-8, as os.environ keeps them
        ("PIPELINE_COLUMNS", "id,n\udcffame=name"),
        ("PIPELINE_NULL", "\udcff"),
    ],
)
def test_configuration_that_is_not_utf8_text_is_refused_naming_the_variable(name, value):
    env = {"PIPELINE_COLUMNS": "id", "PIPELINE_FORMAT": "jsonl", name: value}
    with pytest.raises(ConfigError, match=f"^{name}=.*not UTF-8 text"):
        Config.from_env(env)


# 2. Re-ingestion never outlives the Lambda --------------------------------------------------------------


@pytest.mark.parametrize("left", [0.5, 1.0, 2.0, 5.0, 13.0, 20.0, 31.9, 40.0, 52.0, 600.0])
def test_each_call_fits_in_the_time_left(left):
    limits = call_limits(left)
    worst_backoff = {1: 0, 2: 6, 3: 13}[limits.attempts]  # botocore standard mode: 2**(i-1) s, +5 s retry-after
    assert limits.attempts * (limits.connect + limits.read) + worst_backoff <= left
    assert limits.connect <= 3 and limits.read <= 10 and 1 <= limits.attempts <= 3
    assert limits.connect > 0 and limits.read > 0


def test_with_time_to_spare_a_call_gets_the_default_client():
    assert call_limits(300.0) == call_limits(52.0)
    assert (call_limits(300.0).attempts, call_limits(300.0).connect, call_limits(300.0).read) == (3, 3.0, 10.0)
    tight = client_for("kinesis", "eu-west-1", call_limits(2.0))
    assert tight is client_for("kinesis", "eu-west-1", call_limits(2.0))  # cached per limits
    assert tight.meta.config.read_timeout + tight.meta.config.connect_timeout <= 2.0
    assert tight.meta.config.retries["total_max_attempts"] == 1
    assert client_for("kinesis", "eu-west-1") is client_for("kinesis", "eu-west-1", call_limits(300.0))


@pytest.mark.parametrize("remaining_ms", [2000, 5000])
def test_reingestion_into_an_endpoint_that_never_answers_stops_within_the_remaining_time(
    remaining_ms, monkeypatch, caplog
):
    """The hanging endpoint is a real socket on 127.0.0.1 (the fault is on the wire, not in the client)."""
    payloads = [payload(change(i, a={"S": "x" * 400})) for i in range(8)]
    event = firehose_event(payloads)
    config = Config.from_env({"PIPELINE_COLUMNS": "id,a", "PIPELINE_MAX_RESPONSE_BYTES": "2000"})
    targets = []
    handler = make_handler(config, reingester=lambda e, c: targets.append(to_source(e, c)) or targets[-1])
    with silent_server() as (url, seen):
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        client_for("kinesis", "eu-west-1", call_limits(1.0))  # boto3 imported and a model loaded beforehand
        started = time.monotonic()
        with pytest.raises(ReingestError) as raised:
            handler(event, LocalContext(timeout_ms=remaining_ms))
        elapsed = time.monotonic() - started
    assert elapsed < remaining_ms / 1000 + 2  # a generous bound: the feature itself is about time
    message = str(raised.value)
    assert "out of time" in message
    assert "0 records re-ingested into kinesis source" in message
    assert "not re-ingested" in message
    stats = targets[0].stats
    if remaining_ms == 2000:  # less than the 3 s margin: no call is even started
        assert seen.accepted == 0 and stats.calls == 0
    else:  # one call, bounded by the ~2 s left: botocore makes one attempt with short timeouts
        assert seen.accepted >= 1 and stats.calls >= 1
    logged = lines(caplog)
    assert [line["message"] for line in logged[-2:]] == ["invocation failed", "summary"]
    assert logged[-1]["reingested"]["records"] == 0
    assert logged[-1]["reingested"]["notReingested"] >= 1


# 3. Logs ------------------------------------------------------------------------------------------------


def test_an_unknown_type_key_is_not_logged(caplog):
    event = firehose_event([payload(change(1, a={SECRET: "1"})), payload(change(2, a={"S": "x"}))])
    for fmt in ("csv", "jsonl"):
        response = run(event, PIPELINE_COLUMNS="id,a", PIPELINE_FORMAT=fmt)
        assert results(response) == ["ProcessingFailed", "Ok"]
    assert all("SECRET" not in r.getMessage() for r in caplog.records)
    reasons = {line["reason"] for line in lines(caplog) if line["message"] == "record failed"}
    assert reasons == {"encode: column 'a': unknown DynamoDB type"}


def test_an_invalid_event_logs_the_failure_and_the_summary(caplog):
    with pytest.raises(InvalidEvent):
        handler_for(PIPELINE_COLUMNS="id")({"records": [{"recordId": "a"}, {"recordId": "a"}]}, LocalContext())
    logged = lines(caplog)
    assert [line["message"] for line in logged] == ["invocation failed", "summary"]
    assert "InvalidEvent" in logged[0]["error"]
    assert logged[1]["records"] == 2


def test_a_budget_error_logs_the_failure_and_the_summary(caplog):
    event = firehose_event([payload(change(i)) for i in range(40)])
    with pytest.raises(BudgetError):
        handler_for(PIPELINE_COLUMNS="id", PIPELINE_MAX_RESPONSE_BYTES="1024")(event, LocalContext())
    logged = lines(caplog)
    assert [line["message"] for line in logged] == ["invocation failed", "summary"]
    assert "BudgetError" in logged[0]["error"]
    assert logged[1]["records"] == 40 and logged[1]["invocationId"] == "test-invocation"


# 5. Values that are not what their type says ------------------------------------------------------------

BAD_NUMBERS = ["NaN", "1,2\n", "", "1e", "--1", "0x10", "١", "Infinity", " 1", "1 "]
BAD_BINARY = ["not base64!", "YWJj\n", "YWJ", "é", "YW=j"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
@pytest.mark.parametrize(
    ("value", "what"),
    [({"N": n}, "N") for n in BAD_NUMBERS]
    + [({"B": b}, "B") for b in BAD_BINARY]
    + [({"NS": ["1", "x"]}, "N"), ({"BS": ["YQ==", "!"]}, "B"), ({"M": {"q": {"L": [{"N": "1.2.3"}]}}}, "N")],
)
def test_n_and_b_values_are_checked_in_every_format(fmt, value, what, caplog):
    event = firehose_event([payload(change(1, price=value)), payload(change(2, price={"N": "2"}))])
    response = run(event, PIPELINE_COLUMNS="id,price", PIPELINE_FORMAT=fmt)
    assert results(response) == ["ProcessingFailed", "Ok"]
    [failed] = [line for line in lines(caplog) if line["message"] == "record failed"]
    expected = "N value is not a number" if what == "N" else "B value is not base64"
    assert failed["reason"] == f"encode: column 'price': {expected}"  # the name, never the value


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_valid_numbers_and_binary_are_written_as_sent(fmt):
    numbers = ["0", "-0", "+1", ".5", "5.", "1E+3", "-1.0e-130", "12345678901234567890123456789012345678"]
    blob = base64.b64encode(b"\x00\xff").decode()
    images = [{"n": {"N": n}, "b": {"B": blob}} for n in numbers]
    event = firehose_event([payload(change(i, **img)) for i, img in enumerate(images)])
    response = run(event, PIPELINE_COLUMNS="n,b", PIPELINE_FORMAT=fmt)
    sep = "," if fmt == "csv" else "\t"
    data = b"".join(base64.b64decode(e["data"]) for e in response["records"]).decode()
    assert data.splitlines() == [f"{n}{sep}{blob}" for n in numbers]


def test_value_rules_are_small_functions_the_parsers_can_share():
    assert [is_number(t) for t in ("1", "-1.5E+3", ".5", "5.", "+0")] == [True] * 5
    assert [is_number(t) for t in BAD_NUMBERS] == [False] * len(BAD_NUMBERS)
    assert [is_base64(t) for t in ("", "YQ==", "YWJj")] == [True] * 3
    assert [is_base64(t) for t in BAD_BINARY] == [False] * len(BAD_BINARY)
    assert [is_utf8(t) for t in ("", "a", "é", "🦊", LONE, "a\udcff")] == [True] * 4 + [False] * 2
