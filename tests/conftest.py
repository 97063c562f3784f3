"""Shared test helpers: fixtures by name, Firehose events from payloads, the handler from a configuration.

Safety first: every test runs with fake AWS credentials and, unless a test starts the moto server, an
endpoint on a closed loopback port, so nothing can ever reach a real AWS account.
"""

from __future__ import annotations

import base64
import csv
import importlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pipeline import Config, make_handler
from pipeline.local.context import LocalContext
from pipeline.local.contract import contract_problems
from pipeline.parse import PARSERS

FIXTURES = Path(__file__).parent / "fixtures"
parse_module = importlib.import_module("pipeline.parse")  # the module (the package's `parse` is the stage)
PEER_EVENTS = FIXTURES / "peer-events"

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="eu-west-1",
    AWS_ENDPOINT_URL="http://127.0.0.1:9",  # the discard port: nothing listens, so a stray call fails fast
)
for variable in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(variable, None)


def load_fixture(name: str) -> Any:
    """A JSON fixture by file name (peer events first), byte-order mark tolerated."""
    path = PEER_EVENTS / name if (PEER_EVENTS / name).exists() else FIXTURES / name
    return json.loads(path.read_bytes().decode("utf-8-sig"))


def firehose_event(payloads: list[bytes], *, kinesis: bool = True, ids: list[str] | None = None) -> dict[str, Any]:
    """A Firehose transformation event whose records carry *payloads* (Kinesis source unless kinesis=False)."""
    records = []
    for i, payload in enumerate(payloads):
        rec: dict[str, Any] = {
            "recordId": ids[i] if ids else f"49546986683135544286507457936321625675700192471156785{i:03d}",
            "approximateArrivalTimestamp": 1_700_000_000_000 + i,
            "data": base64.b64encode(payload).decode(),
        }
        if kinesis:
            rec["kinesisRecordMetadata"] = {
                "shardId": "shardId-000000000000",
                "partitionKey": f"pk-{i}",
                "approximateArrivalTimestamp": 1_700_000_000_000 + i,
                "sequenceNumber": f"4954698668313554428650745793632162567570019247115678{i:04d}",
                "subsequenceNumber": 0,
            }
        records.append(rec)
    event: dict[str, Any] = {"invocationId": "test-invocation", "region": "eu-west-1", "records": records}
    if kinesis:
        event["sourceKinesisStreamArn"] = "arn:aws:kinesis:eu-west-1:123456789012:stream/source"
    event["deliveryStreamArn"] = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/delivery"
    return event


def handler_for(**env: str) -> Any:
    """The handler for a configuration given as environment variables (re-ingestion off unless asked)."""
    env.setdefault("PIPELINE_REINGEST", "off")
    return make_handler(Config.from_env(env))


def run(event: dict[str, Any], **env: str) -> dict[str, Any]:
    """Run the handler for *env* on *event*, asserting the Firehose contract on the response."""
    response = handler_for(**env)(event, LocalContext())
    limit = int(env.get("PIPELINE_MAX_RESPONSE_BYTES", 6 * 1024 * 1024))
    assert contract_problems(event, response, limit) == []
    return response


def outputs(response: dict[str, Any]) -> list[bytes | None]:
    """Each entry's decoded data (None where there is none)."""
    return [base64.b64decode(e["data"]) if "data" in e else None for e in response["records"]]


def csv_rows(response: dict[str, Any]) -> list[list[str]]:
    """All Ok output read back with the standard csv reader, as Firehose would concatenate it in S3."""
    text = b"".join(o for o in outputs(response) if o).decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def results(response: dict[str, Any]) -> list[str]:
    return [e["result"] for e in response["records"]]


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest):
    """Run the test on each parser path (msgspec, stdlib): the default the handler picks is switched.

    A module opts in with ``pytestmark = pytest.mark.usefixtures("parser")``; both paths must pass unchanged.
    """
    saved = parse_module.DEFAULT_PARSER
    parse_module.DEFAULT_PARSER = request.param
    yield request.param
    parse_module.DEFAULT_PARSER = saved


@pytest.fixture
def context() -> LocalContext:
    return LocalContext()


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory):
    """The moto server's URL (one server per test session, started here on 127.0.0.1)."""
    from moto_server import moto_server

    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch):
    """An empty AWS-compatible account on the moto server; boto3 (and the handler) point at it."""
    from moto_server import reset

    reset(moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    import boto3

    session = boto3.session.Session(region_name="eu-west-1")

    class Account:
        url = moto_url
        region = "eu-west-1"

        @staticmethod
        def client(service: str, region: str = "eu-west-1"):
            return session.client(service, region_name=region, endpoint_url=moto_url)

    return Account


@pytest.fixture(autouse=True)
def pipeline_logs():
    """Each test sees the pipeline's log lines through caplog (the CLI may have pointed them elsewhere)."""
    import logging

    log = logging.getLogger("pipeline")
    saved = log.handlers[:], log.level, log.propagate
    log.handlers[:], log.propagate = [], True
    log.setLevel(logging.INFO)
    yield
    log.handlers[:], log.level, log.propagate = saved[0], saved[1], saved[2]
