"""The summary line as CloudWatch embedded metric format (EMF): valid by the published specification, shaped
like what Powertools' ``Metrics`` emits for the same metrics, true to the invocation, and still one line."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from conftest import FIXTURES, firehose_event, handler_for
from hypothesis import given
from hypothesis import strategies as st
from test_reingest import changes, overflowing

from pipeline import Config, ConfigError, Record, ReingestError, make_handler, respond
from pipeline.local.context import LocalContext
from pipeline.local.memory import MemoryStreams
from pipeline.logs import DEFAULT_NAMESPACE, DIMENSIONS, METRICS
from pipeline.reingest import to_source
from pipeline.response import Summary

INSERT = b'{"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"N": "1"}}, "NewImage": {"id": {"N": "1"}}}}'
SCHEMA = json.loads((FIXTURES / "emf" / "schema.json").read_text("utf-8"))
# The summary line as it was before it carried metrics: these members keep their names and meanings.
PLAIN = {"level", "message", "invocationId", "requestId", "records", "results", "bytesIn", "bytesOut", "durationMs"}


def summary_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if json.loads(r.getMessage())["message"] == "summary"]


def summary_of(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    (line,) = summary_lines(caplog)
    assert "\n" not in line and "\r" not in line  # one line per invocation, whatever it holds
    return json.loads(line)


def invoke(payloads: list[bytes], caplog: pytest.LogCaptureFixture, **env: str) -> tuple[dict, dict[str, Any]]:
    event = firehose_event(payloads)
    response = handler_for(PIPELINE_COLUMNS="id", **env)(event, LocalContext(function_name="orders-to-s3"))
    return response, summary_of(caplog)


def spec_problems(document: dict[str, Any]) -> list[str]:
    """What the specification requires beyond its JSON schema ("Target members", "MetricDirective object")."""
    problems = []
    for directive in document["_aws"]["CloudWatchMetrics"]:
        if len(directive["Metrics"]) > 100:
            problems.append("more than 100 MetricDefinition objects")
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                if type(document.get(name)) is not str:
                    problems.append(f"dimension target {name!r} is not a string member of the root node")
        for metric in directive["Metrics"]:
            value = document.get(metric["Name"])
            numbers = value if isinstance(value, list) else [value]
            if not numbers or len(numbers) > 100 or any(type(v) not in (int, float) for v in numbers):
                problems.append(f"metric target {metric['Name']!r} is not a number (or up to 100 numbers)")
    return problems


def test_the_summary_line_is_emf_by_the_published_schema_and_rules(caplog):
    _, line = invoke([INSERT, b"junk"], caplog)
    jsonschema.validate(line, SCHEMA)
    assert spec_problems(line) == []
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == DEFAULT_NAMESPACE == "DynamoDBFirehosePipeline"
    assert directive["Dimensions"] == [["FunctionName", "DeliveryStreamName"]]
    assert [(m["Name"], m["Unit"]) for m in directive["Metrics"]] == list(METRICS.items())
    assert (line["FunctionName"], line["DeliveryStreamName"]) == ("orders-to-s3", "delivery")
    assert abs(line["_aws"]["Timestamp"] / 1000 - caplog.records[-1].created) < 60  # milliseconds since 1970


def test_the_checks_catch_what_they_should():
    """The schema and the rules really look: broken copies of a valid document fail them."""
    good = {
        "_aws": {
            "Timestamp": 1,
            "CloudWatchMetrics": [
                {"Namespace": "n", "Dimensions": [["D"]], "Metrics": [{"Name": "M", "Unit": "Count"}]}
            ],
        },
        "D": "d",
        "M": 1,
    }
    jsonschema.validate(good, SCHEMA)
    assert spec_problems(good) == []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "_aws": {**good["_aws"], "Timestamp": 1.5}}, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        directive = {**good["_aws"]["CloudWatchMetrics"][0], "Metrics": [{"Name": "M", "Unit": "Percents"}]}
        jsonschema.validate({**good, "_aws": {**good["_aws"], "CloudWatchMetrics": [directive]}}, SCHEMA)
    assert (
        spec_problems({**good, "M": "1"}) and spec_problems({**good, "D": 1}) and spec_problems({"_aws": good["_aws"]})
    )


def test_metric_values_are_the_invocations_counts(caplog):
    payloads = [INSERT, b"junk", b"more junk"]
    response, line = invoke(payloads, caplog, PIPELINE_EVENTS="MODIFY")
    # every member the plain line had is still there, with the same meaning
    assert set(line) >= PLAIN
    assert line["results"] == {"Ok": 0, "Dropped": 1, "ProcessingFailed": 2}
    assert (line["RecordsIn"], line["RecordsOk"], line["RecordsDropped"], line["RecordsFailed"]) == (3, 0, 1, 2)
    assert (line["RecordsReingested"], line["ReingestRetries"]) == (0, 0)
    assert (line["BytesIn"], line["BytesOut"]) == (line["bytesIn"], line["bytesOut"]) == (sum(map(len, payloads)), 0)
    assert line["DurationMs"] == line["durationMs"]
    assert line["ResponseBytes"] == len(json.dumps(response))
    assert line["ResponseBudgetShare"] == round(len(json.dumps(response)) * 100 / 6291456, 2)


ids = st.text(max_size=8) | st.from_regex(r"[0-9]{56}", fullmatch=True)
keys = st.none() | st.dictionaries(st.text(max_size=4), st.text(max_size=6), max_size=2)
otf = st.none() | st.fixed_dictionaries(
    {"destinationDatabaseName": st.text(max_size=4), "destinationTableName": st.text(max_size=4)},
    optional={"operation": st.sampled_from(["insert", "update", "delete"])},
)
answered = st.tuples(ids, st.sampled_from(["Ok", "Dropped", "ProcessingFailed"]), st.binary(max_size=20), keys, otf)


@given(st.lists(answered, max_size=12, unique_by=lambda a: a[0]))
def test_response_bytes_is_what_json_dumps_writes_for_any_answer(answers):
    """Any ids (quotes, backslashes, control characters, non-ASCII), results, data, partition keys and otfMetadata."""
    records = [
        Record(i, {}, data, result, partition_keys=pk, otf=meta)
        if result == "Ok"
        else Record(i, {}, None, result, "some reason")
        for i, result, data, pk, meta in answers
    ]
    summary = Summary()
    assert summary.response_bytes == 0
    response = respond(records, summary)
    assert summary.response_bytes == len(json.dumps(response))


@pytest.mark.parametrize("partitioned", [False, True])
def test_response_bytes_is_the_serialised_response_also_with_partition_keys_and_escaped_ids(caplog, partitioned):
    payloads = changes(30, size=40)
    event = firehose_event(payloads, ids=[f'r-{i}-é"\\' for i in range(30)])
    env = {"PIPELINE_FORMAT": "jsonl", "PIPELINE_EVENTS": "INSERT", "PIPELINE_REINGEST": "off"}
    if partitioned:
        env["PIPELINE_PARTITION_KEYS"] = "id=@eventID,day=@approximateCreationDateTime|%Y-%m-%d"
    response = make_handler(Config.from_env(env))(event, LocalContext())
    assert summary_of(caplog)["ResponseBytes"] == len(json.dumps(response))


def test_reingestion_counts_are_metrics_too_with_faults_injected_at_the_client_edge(caplog):
    """Records over the budget go to an in-memory stream whose first call throttles two entries."""
    _, event, env = overflowing(40, share=0.5)
    caplog.clear()  # overflowing ran the handler once to size the budget
    throttled = {(1, 0), (1, 1)}
    streams = MemoryStreams(
        fail=lambda call, i: "ProvisionedThroughputExceededException" if (call, i) in throttled else None
    )
    reingester = lambda event, context: to_source(event, context, client=streams, sleep=lambda _s: None)  # noqa: E731
    response = make_handler(Config.from_env(env), reingester=reingester)(event, LocalContext())
    line = summary_of(caplog)
    dropped = sum(e["result"] == "Dropped" for e in response["records"])
    assert dropped > 2
    assert line["RecordsReingested"] == line["reingested"]["records"] == dropped == len(streams.put["source"])
    assert line["ReingestRetries"] == line["reingested"]["retriedEntries"] == 2
    assert line["ResponseBytes"] == len(json.dumps(response)) <= int(env["PIPELINE_MAX_RESPONSE_BYTES"])
    assert 0 < line["ResponseBudgetShare"] <= 100
    jsonschema.validate(line, SCHEMA)


def test_a_failing_invocation_still_logs_its_metrics(caplog):
    """Re-ingestion fails for good (every entry refused at the client edge): the summary is EMF all the same."""
    _, event, env = overflowing(20, share=0.5)
    caplog.clear()
    streams = MemoryStreams(fail=lambda call, i: "InternalFailure")
    reingester = lambda event, context: to_source(  # noqa: E731
        event, context, client=streams, sleep=lambda _s: None, max_attempts=2
    )
    with pytest.raises(ReingestError):
        make_handler(Config.from_env(env), reingester=reingester)(event, LocalContext())
    line = summary_of(caplog)
    jsonschema.validate(line, SCHEMA)
    assert spec_problems(line) == []
    assert line["RecordsIn"] == 20


def test_off_keeps_the_plain_line_and_a_namespace_is_configurable(caplog):
    _, line = invoke([b"junk"], caplog, PIPELINE_METRICS_NAMESPACE="off")
    assert "_aws" not in line
    assert not set(line) & (set(METRICS) | set(DIMENSIONS))
    assert set(line) >= PLAIN
    caplog.clear()
    _, line = invoke([b"junk"], caplog, PIPELINE_METRICS_NAMESPACE="Orders/Pipeline")
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Orders/Pipeline"


def test_outside_lambda_and_firehose_the_dimensions_are_unknown_not_missing(caplog):
    event = firehose_event([b"junk"])
    del event["deliveryStreamArn"]
    handler_for(PIPELINE_COLUMNS="id")(event, None)
    line = summary_of(caplog)
    assert (line["FunctionName"], line["DeliveryStreamName"]) == ("unknown", "unknown")
    assert spec_problems(line) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("AWS/Lambda", "reserved for AWS services"),
        (":colon", "not a CloudWatch namespace"),
        ("naïve", "not a CloudWatch namespace"),
        ("x" * 256, "not a CloudWatch namespace"),
        ("", "not a CloudWatch namespace"),
    ],
)
def test_a_bad_namespace_fails_the_configuration_naming_the_variable(value, message):
    with pytest.raises(ConfigError) as error:
        Config.from_env({"PIPELINE_COLUMNS": "id", "PIPELINE_METRICS_NAMESPACE": value})
    assert str(error.value).startswith(f"PIPELINE_METRICS_NAMESPACE={value!r}: ")
    assert message in str(error.value)


@pytest.fixture
def powertools_metrics(monkeypatch):
    """Powertools' Metrics, its class-wide metric set emptied before and after."""
    from aws_lambda_powertools import Metrics

    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    metrics = Metrics(namespace=DEFAULT_NAMESPACE)
    metrics.clear_metrics()
    metrics.clear_default_dimensions()
    yield metrics
    metrics.clear_metrics()


def test_same_shape_as_what_powertools_metrics_emits_for_the_same_metrics(caplog, capsys, powertools_metrics):
    """Powertools records the same dimensions and metrics, and its ``log_metrics`` prints its EMF line."""
    from aws_lambda_powertools.metrics import MetricUnit

    _, ours = invoke([INSERT], caplog)

    @powertools_metrics.log_metrics
    def powertools_handler(event: dict[str, Any], context: Any) -> None:
        for name in DIMENSIONS:
            powertools_metrics.add_dimension(name=name, value=ours[name])
        for name, unit in METRICS.items():
            powertools_metrics.add_metric(name=name, unit=MetricUnit(unit), value=ours[name])

    capsys.readouterr()
    powertools_handler({}, LocalContext())
    (printed,) = [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    theirs = json.loads(printed)

    jsonschema.validate(theirs, SCHEMA)  # the schema agrees with Powertools too
    assert set(theirs) <= set(ours)  # every member Powertools writes, ours has ...
    assert set(ours) - set(theirs) == set(ours) - set(METRICS) - set(DIMENSIONS) - {"_aws"}  # ... and the plain line
    assert set(theirs["_aws"]) == set(ours["_aws"]) == {"Timestamp", "CloudWatchMetrics"}
    assert theirs["_aws"]["CloudWatchMetrics"] == ours["_aws"]["CloudWatchMetrics"]  # directive for directive
    for name in METRICS:  # Powertools writes each value as a list of the values added, which EMF allows
        assert theirs[name] == [ours[name]]
    for name in DIMENSIONS:
        assert theirs[name] == ours[name]
