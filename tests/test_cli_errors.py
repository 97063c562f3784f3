"""Every command speaks to a person: a mistake is one line on stderr and exit status 2, never a traceback.

Most cases run in process through ``main(argv)`` (fast); a few run ``python -m pipeline`` for the real exit path.
AWS is never reached: credentials are fake or absent and every endpoint is a closed port on 127.0.0.1.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import firehose_event

from pipeline.cli import _parser, main
from pipeline.local.sources import FileSource, file_payloads

ROOT = Path(__file__).resolve().parent.parent
CITIES = str(ROOT / "pipeline" / "samples" / "cities.json")
FAILED = str(ROOT / "pipeline" / "samples" / "cities-processing-failed.jsonl")
COLUMNS = "event=@eventName,key,name,population"
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root reads any file: no "permission denied" to see


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Real files and folders the bad arguments point at."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "not-json.json").write_text("{")
    (tmp_path / "not-an-event.json").write_text('{"Records": []}')
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "no-data.json").write_text('{"records": [{"recordId": "a", "data": "eA=="}, {"recordId": "b"}]}')
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b""))
    (tmp_path / "deep.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)  # deeper than json can follow
    unreadable = tmp_path / "unreadable.json"
    unreadable.write_text("{}")
    unreadable.chmod(0)
    event = firehose_event([json.dumps({"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"N": "1"}}}}).encode()])
    (tmp_path / "event.json").write_text(json.dumps(event))
    return {
        "missing": str(tmp_path / "nope.json"),
        "folder": str(tmp_path / "folder"),
        "empty-folder": str(tmp_path / "empty-folder"),
        "not-json": str(tmp_path / "not-json.json"),
        "not-an-event": str(tmp_path / "not-an-event.json"),
        "a-file": str(tmp_path / "a-file"),
        "deep": str(tmp_path / "deep.json"),
        "empty-gz": str(tmp_path / "empty.gz"),
        "no-data": str(tmp_path / "no-data.json"),
        "unreadable": str(unreadable),
        "event": str(tmp_path / "event.json"),
        "out": str(tmp_path / "out"),
    }


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake credentials, a closed loopback endpoint, no instance metadata; returns the endpoint."""
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return url


def test_every_subcommand_has_help_that_prints(capsys):
    commands = next(a for a in _parser()._actions if a.dest == "command").choices
    assert set(commands) == {
        *("demo", "transform", "generate-event", "athena-ddl", "run-local", "redrive", "sandbox"),
        *("backfill", "generate-export"),
    }
    assert main(["--help"]) == 0
    assert "COMMAND" in capsys.readouterr().out
    for command in commands:
        assert main([command, "--help"]) == 0, command
        out, err = capsys.readouterr()
        assert out.startswith(f"usage: python -m pipeline {command}"), command
        assert err == ""


# (argv, what the one line must say, exit status). {name} is replaced by the file of that name (fixture files).
CASES = [
    ([], "required: COMMAND", 2),
    (["nope"], "invalid choice: 'nope'", 2),
    (["demo", "--format", "xml"], "argument --format: invalid choice", 2),
    # transform
    (["transform", "{missing}"], "no such file", 2),
    (["transform", "{folder}"], "is a folder: give a file", 2),
    (["transform", ""], "an empty file name", 2),
    (["transform", "{not-json}", "--columns", "id"], "is not a JSON file", 2),
    (["transform", "{not-an-event}", "--columns", "id"], "not a Firehose transformation event", 2),
    (["transform", "{deep}", "--columns", "id"], "is not a JSON file (nested too deep to read)", 2),
    (["transform", "{event}", "--columns", "id["], "--columns 'id[': unexpected '['", 2),
    (["transform", "{event}", "--columns", ""], "--columns '': required when PIPELINE_FORMAT is csv", 2),
    (["transform", "{event}"], "PIPELINE_COLUMNS is required when PIPELINE_FORMAT is csv", 2),
    (["transform", "{event}", "--columns", "id", "--max-response-bytes", "0"], "--max-response-bytes '0'", 2),
    (["transform", "{event}", "--columns", "id", "--max-response-bytes", "-5"], "must be at least 1024", 2),
    (["transform", "{event}", "--columns", "id", "--max-response-bytes", "lots"], "not a whole number", 2),
    (["transform", "{event}", "--columns", "id", "--format", "xml"], "--format 'xml': not one of", 2),
    (["transform", "{event}", "--columns", "id", "--reingest", "maybe"], "--reingest 'maybe'", 2),
    (
        ["transform", "{event}", "--columns", "id", "--partition-keys", "day=@approximateCreationDateTime|%Q"],
        "%Q in '%Q' is not a strftime code",
        2,
    ),
    # generate-event
    (["generate-event", "--size", "0"], "argument --size: '0' is outside", 2),
    (["generate-event", "--size=-1MB"], "argument --size: '-1MB' is not a size", 2),
    (["generate-event", "--size", "-1MB"], "argument --size: '-1MB' is not a size", 2),
    (["generate-event", "--size", "10GB"], "argument --size: '10GB' is outside 1,000 bytes to 1000MB", 2),
    (["generate-event", "--size", ""], "argument --size", 2),
    (["generate-event", "--awkward", "2"], "argument --awkward: 2 is not a number from 0 to 1", 2),
    (["generate-event", "--seed", "-1"], "argument --seed: -1 is too small", 2),
    (["generate-event", "-o", "/nonexistent/event.json"], "the folder /nonexistent does not exist", 2),
    (["generate-event", "-o", "{folder}"], "is a folder: give a file name", 2),
    (["generate-event", "-o", "s3://bucket/event.json"], "is a URL: this takes a local file", 2),
    # athena-ddl (PIPELINE_COLUMNS=id is set for these)
    (["athena-ddl", "--location", "s3://bucket/data/"], "required: --table", 2),
    (["athena-ddl", "--table", "t", "--location", "s3://b/d/"], "bucket name 'b' has 1 character", 2),
    (["athena-ddl", "--table", "t", "--location", "https://bucket/d/"], "is not an s3:// URL", 2),
    (["athena-ddl", "--table", "t", "--location", ""], "is not an s3:// URL", 2),
    (["athena-ddl", "--table", "t", "--location", "s3://xn--bucket/"], "begins with 'xn--', which S3 keeps out", 2),
    (["athena-ddl", "--table", "t;", "--location", "s3://bucket/d/"], "table 't;' is not NAME", 2),
    (["athena-ddl", "--table", "t", "--location", "s3://bucket/", "--type", "id=varchr"], "not an Athena type", 2),
    (["athena-ddl", "--table", "t", "--location", "s3://bucket/", "--type", "id"], "is not COLUMN=TYPE", 2),
    (["athena-ddl", "--table", "t", "--location", "s3://bucket/", "--since", "May"], "'May' is not a date", 2),
    (["athena-ddl", "--table", "t", "--location", "s3://bucket/", "--since", "2021-01-01"], "has none with a year", 2),
    (
        ["athena-ddl", "--table", "t", "--location", "s3://bucket/", "--type", "id=" + "array<" * 3000 + "int"],
        "is not an Athena type (nested too deep)",
        2,
    ),
    (["athena-ddl", "--table", "t", "--location", "s3://bucket/", "--key", "id"], "--key is for the current", 2),
    (["athena-ddl", "--table", "t", "--location", "s3://bucket/", "--current"], "--current needs the item's key", 2),
    (["athena-ddl", "--table", "t", "--location", "s3://bucket/", "--current", "--key", ""], "is not COLUMN", 2),
    # run-local
    (["run-local", "--file", "{missing}", "--to", "{out}"], "argument --file: ", 2),
    (["run-local", "--file", "{folder}", "--to", "{out}"], "is a folder: give a file", 2),
    (["run-local", "--file", CITIES], "required: --to", 2),
    (["run-local", "--file", CITIES, "--to", "{a-file}"], "is a file: give a folder", 2),
    (["run-local", "--file", CITIES, "--to", "s3://My-Bucket/"], "may hold only lower-case letters", 2),
    (["run-local", "--file", CITIES, "--to", "ftp://host/x"], "neither a folder nor an s3://", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--buffer-size", "0"], "'0' is outside 0.2MB to 3MB", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--buffer-size", "10MB"], "outside 0.2MB to 3MB", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--buffer-interval", "-1"], "not a number from 0 to 900", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--retries", "-1"], "-1 is too small", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--name", ""], "is not a delivery stream name", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--prefix", "!{nope}"], "prefix", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--prefix", "../x/"], "has a '..' folder", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--prefix", "/x/"], "starts with '/'", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--prefix", "a/./b/"], "has a '.' folder", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--error-prefix", "e/../../x/"], "has a '..' folder", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--prefix", "!{timestamp:'..'}/"], "has a '..' folder", 2),
    (["run-local", "--file", CITIES, "--to", "{out}", "--prefix", "!{timestamp:}/"], "needs a pattern", 2),
    (
        ["run-local", "--file", CITIES, "--to", "{out}", "--prefix", "!{firehose:error-output-type}/"],
        "is for the error output prefix only",
        2,
    ),
    (["run-local", "--file", "{not-an-event}", "--to", "{out}"], "holds no records: give JSON Lines", 2),
    (["run-local", "--file", "{no-data}", "--to", "{out}"], "records[1] has no base64 'data' text, so the file", 2),
    (["run-local", "--stream", "", "--to", "{out}"], "is not a Kinesis stream name or ARN (1 to 128 letters", 2),
    (
        ["run-local", "--stream", "arn:aws:kinesis:eu-west-1:123:stream/x", "--to", "{out}"],
        "ACCOUNT of 12 digits",
        2,
    ),
    (["run-local", "--stream", "s", "--to", "{out}", "--endpoint-url", "localhost:1"], "not an http://", 2),
    # redrive
    (["redrive", "{missing}", "--to", "{out}"], "no such file or folder", 2),
    (["redrive", "{empty-folder}", "--to", "{out}"], "no objects there, so nothing to redrive", 2),
    (["redrive", FAILED], "required: --to", 2),
    (["redrive", FAILED, "--to", "s3://a/"], "bucket name 'a' has 1 character", 2),
    (["redrive", FAILED, "--to", "kinesis://"], "is not a Kinesis stream name or ARN", 2),
    (["redrive", "s3:///x", "--to", "{out}"], "no bucket name", 2),
    (["redrive", FAILED, "--to", "{out}", "--prefix", "/x/"], "starts with '/'", 2),
    (["redrive", "{empty-gz}", "--to", "{out}"], "its objects hold no records, so nothing to redrive", 2),
    (["redrive", "{folder}", "--to", "{folder}/redriven"], "is inside SOURCE", 2),
    (["redrive", FAILED, "--to", "kinesis://orders", "--prefix", "x/"], "--prefix: for rows written to a folder", 2),
    (["redrive", FAILED, "--to", "kinesis://orders", "--name", "n"], "--name: for rows written to a folder", 2),
    # backfill and generate-export: options that do not go together (checked before the export is read)
    (["backfill", "{folder}", "--to", "{out}", "--master", "local[2]"], "--master is for --engine spark", 2),
    (["backfill", "{folder}", "--to", "{out}", "--engine", "spark", "--workers", "2"], "--workers is for", 2),
    (["generate-export", "--view", "NEW_IMAGE", "-o", "{out}"], "--view is for incremental exports", 2),
    # sandbox
    (["sandbox", "--items", "0"], "argument --items: 0 is too small", 2),
    (["sandbox", "--items", "-1"], "argument --items: -1 is too small", 2),
    (["sandbox", "--items", "many"], "argument --items: 'many' is not a whole number", 2),
    (["sandbox", "--budget", "100"], "argument --budget: 100 is too small", 2),
    (["sandbox", "--budget", "7000000"], "argument --budget: 7000000 is too large", 2),
    (["sandbox", "--out", "/etc/passwd"], "is a file: give a folder", 2),
    (["sandbox", "--out", "{a-file}/inside"], "is a file, so the folder cannot be made", 2),
    (["sandbox", "--source", "sqs"], "argument --source: invalid choice: 'sqs'", 2),
    (["sandbox", "--out", "s3://bucket/"], "'s3://bucket/' is a URL: this takes a local folder", 2),
]


def _argv(argv: list[str], files: dict[str, str]) -> list[str]:
    return [arg.format(**files) if "{" in arg and "!{" not in arg else arg for arg in argv]


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(("argv", "says", "status"), CASES, ids=[" ".join(c[0])[:70] for c in CASES])
@pytest.mark.usefixtures("no_aws")
def test_a_mistake_is_one_line_and_status_2(argv, says, status, files, monkeypatch, capsys):  # noqa: PLR0917
    columns = {"athena-ddl": "id", "run-local": COLUMNS, "redrive": COLUMNS}.get(argv[0] if argv else "")
    if columns:
        monkeypatch.setenv("PIPELINE_COLUMNS", columns)
    else:
        monkeypatch.delenv("PIPELINE_COLUMNS", raising=False)
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    assert main(_argv(argv, files)) == status
    line = _one_line(capsys.readouterr().err)
    assert says in line
    assert "error" in line


@pytest.mark.skipif(AS_ROOT, reason="root reads any file, so there is no permission to be denied")
@pytest.mark.parametrize(
    "argv",
    [
        ["transform", "{unreadable}"],
        ["run-local", "--file", "{unreadable}", "--to", "{out}"],
        ["redrive", "{unreadable}", "--to", "{out}"],
    ],
)
def test_an_unreadable_file_is_one_line_and_status_2(argv, files, capsys):
    assert main(_argv(argv, files)) == 2
    assert "permission denied" in _one_line(capsys.readouterr().err)


def test_no_credentials_say_what_to_set(files, no_aws, monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["run-local", "--stream", "orders", "--to", files["out"]]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")


@pytest.mark.parametrize(
    "argv",
    [
        ["run-local", "--stream", "orders", "--to", "{out}"],
        ["run-local", "--file", CITIES, "--to", "s3://bucket/base/"],
        ["redrive", "s3://bucket/processing-failed/", "--to", "{out}"],
        ["redrive", FAILED, "--to", "kinesis://orders"],
    ],
)
def test_an_endpoint_nothing_listens_on_says_what_to_check(argv, files, no_aws, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    monkeypatch.setenv("LOG_LEVEL", "ERROR")  # run-local --file logs the sample's junk record as a WARNING
    assert main(_argv(argv, files)) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"error: could not connect to {no_aws}: ")
    assert line.endswith("check --endpoint-url / AWS_ENDPOINT_URL and that the service there is running")


def test_endpoint_url_flag_is_used_by_the_command(files, no_aws, monkeypatch, capsys):
    other = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["run-local", "--stream", "orders", "--to", files["out"], "--endpoint-url", other]) == 2
    assert other in _one_line(capsys.readouterr().err)


@pytest.mark.moto
def test_a_stream_or_bucket_that_does_not_exist_is_a_mistake(aws, files, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["run-local", "--stream", "no-such-stream", "--to", files["out"]]) == 2
    assert "ResourceNotFoundException" in _one_line(capsys.readouterr().err)
    assert main(["redrive", "s3://no-such-bucket/processing-failed/", "--to", files["out"]]) == 2
    assert "NoSuchBucket" in _one_line(capsys.readouterr().err)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")  # the sample's junk record would be logged, were it transformed
    assert main(["run-local", "--file", CITIES, "--to", "s3://no-such-lake/"]) == 2
    assert "NoSuchBucket" in _one_line(capsys.readouterr().err)  # said before any record is transformed
    aws.client("s3").create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert main(["redrive", "s3://lake/processing-failed/", "--to", files["out"]]) == 2
    assert "no objects there, so nothing to redrive" in _one_line(capsys.readouterr().err)


def test_a_batch_the_budget_cannot_hold_fails_the_job_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOG_LEVEL", "CRITICAL")  # the handler's own "invocation failed" log line is not shown
    event = firehose_event([b"{}"] * 200)
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    assert main(["transform", str(path), "--columns", "id", "--max-response-bytes", "2000"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: the handler failed the invocation: the response for 200 records needs at least")
    assert line.endswith("raise the budget or lower the delivery stream's buffer size")


def _overflowing_event(tmp_path: Path) -> str:
    """An event whose rows do not all fit a 4 KB budget: some must be re-ingested."""
    changes = [
        json.dumps({"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": f"{i:01000d}"}}}}).encode()
        for i in range(10)
    ]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(firehose_event(changes)))
    return str(path)


def test_transform_reingesting_to_an_endpoint_nothing_listens_on_says_what_to_check(
    tmp_path, no_aws, monkeypatch, capsys
):
    monkeypatch.setenv("LOG_LEVEL", "CRITICAL")  # the handler's own "invocation failed" log line is not shown
    monkeypatch.setenv("PIPELINE_REINGEST_MAX_ATTEMPTS", "1")
    argv = ["transform", _overflowing_event(tmp_path), "--columns", "id", "--reingest", "on"]
    assert main([*argv, "--max-response-bytes", "4096"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (
        "error: could not connect to the stream to re-ingest into: check --endpoint-url / AWS_ENDPOINT_URL and "
        "that the service there is running"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", "localhost:1")  # checked before the event is read
    assert main([*argv, "--max-response-bytes", "4096"]) == 2
    assert "AWS_ENDPOINT_URL='localhost:1' is not an http:// or https:// URL" in _one_line(capsys.readouterr().err)


def test_transform_names_columns_no_change_had(tmp_path, capsys):
    changes = [
        json.dumps({"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"N": str(i)}}}}).encode() for i in range(120)
    ]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(firehose_event(changes)))
    assert main(["transform", str(path), "--decode", "--columns", "id,idd,amountt", "--image", "keys"]) == 0
    err = capsys.readouterr().err
    assert "columns never seen (check PIPELINE_COLUMNS / --columns): idd, amountt\n" in err
    assert '"columnsNeverSeen": 2' in err


def test_run_local_prints_its_tally_once_when_stderr_is_not_a_terminal(files, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["run-local", "--file", CITIES, "--to", files["out"]]) == 0
    err = capsys.readouterr().err
    assert sum(line.startswith("records in 11 |") for line in err.splitlines()) == 1


def test_ctrl_c_injected_at_the_source_ends_with_one_line_and_status_130(files, monkeypatch, capsys):
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(FileSource, "poll", interrupted)
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["run-local", "--file", CITIES, "--to", files["out"]]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "interrupted"


@pytest.mark.moto
def test_sandbox_shows_why_invocations_failed(tmp_path, monkeypatch, capsys):
    for name in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "restored after the test")  # the command points this process at its server
    monkeypatch.setenv("AWS_SESSION_TOKEN", "restored after the test")
    assert main(["sandbox", "--items", "20", "--budget", "1024", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "first failed invocation: Lambda.FunctionError: BudgetError: the response for" in out


# The real exit path: `python -m pipeline` in a fresh interpreter, with nothing that could reach AWS.
def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "PIPELINE_COLUMNS": COLUMNS,
    }
    return env | extra


@pytest.mark.parametrize(
    ("argv", "status", "says"),
    [
        (["transform", "--help"], 0, ""),
        (["transform", "/nonexistent/event.json"], 2, "no such file"),
        (["run-local", "--stream", "orders", "--to", "out"], 2, "no AWS credentials"),
        (["sandbox", "--out", "/etc/passwd"], 2, "is a file: give a folder"),
    ],
)
def test_as_a_module(argv, status, says, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", *argv],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == status, result.stderr
    if status:
        assert says in _one_line(result.stderr)
    else:
        assert result.stderr == ""


@pytest.mark.moto
def test_ctrl_c_as_a_module_ends_with_a_short_line_and_status_130(aws, tmp_path):
    """A run that follows a stream is stopped by Ctrl-C once it has delivered what the stream held."""
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName="orders", ShardCount=1)
    payloads = list(file_payloads(CITIES))
    kinesis.put_records(StreamName="orders", Records=[{"Data": p, "PartitionKey": "k"} for p in payloads])
    argv = ["run-local", "--stream", "orders", "--to", str(tmp_path / "out"), "--follow", "--buffer-interval", "0"]
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *argv],
        env=_env(tmp_path, AWS_ENDPOINT_URL=aws.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        seen = []
        for line in process.stderr:  # wait until the records are delivered and it is polling for more
            seen.append(line)
            if line.startswith(f"records in {len(payloads)} |"):
                break
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            process.kill()
    assert rest.splitlines()[-1] == "interrupted", "".join(seen) + rest
    assert "Traceback" not in rest


def test_the_console_script_names_itself(tmp_path):
    script = Path(sys.executable).parent / "ddb-firehose-pipeline"
    if not script.exists():
        pytest.skip("the console script is installed by pip install (make test does it)")
    result = subprocess.run(
        [str(script), "sandbox", "--items", "0"], env=_env(tmp_path), capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert _one_line(result.stderr).startswith("ddb-firehose-pipeline sandbox: error: argument --items")


def test_a_file_the_system_refuses_to_read_injected_at_read_bytes_is_one_line(files, monkeypatch, capsys):
    def refused(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refused)  # the edge: works as root too, where chmod 0 does not
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["transform", files["event"]]) == 2
    assert _one_line(capsys.readouterr().err) == f"error: {files['event']}: permission denied"
    assert main(["run-local", "--file", files["event"], "--to", files["out"]]) == 2
    assert _one_line(capsys.readouterr().err) == f"error: {files['event']}: permission denied"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("AWS_ENDPOINT_URL", "localhost:4566", "AWS_ENDPOINT_URL='localhost:4566' is not an http:// or https:// URL"),
        ("AWS_REGION", "bad region!", "'bad region!' is not an AWS region: set AWS_REGION"),
    ],
)
@pytest.mark.usefixtures("no_aws")
def test_a_bad_aws_variable_is_named(variable, value, says, files, monkeypatch, capsys):  # noqa: PLR0917
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["run-local", "--stream", "orders", "--to", files["out"]]) == 2
    assert _one_line(capsys.readouterr().err).startswith(f"error: {says}")


def test_a_file_nested_deeper_than_json_can_follow_fails_its_record_not_the_command(files, monkeypatch, capsys):
    """run-local reads a file that is not JSON as lines, each a record: this one fails alone, with its reason."""
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["run-local", "--file", files["deep"], "--to", files["out"]]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and '"reason": "parse: nested too deeply"' in err
    assert "failed 1" in err.splitlines()[-1]


def test_an_export_behind_an_endpoint_nothing_listens_on_says_what_to_check(files, no_aws, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["backfill", "s3://exports/AWSDynamoDB/0123-ab/", "--to", files["out"]]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(
        "error: cannot read the export at s3://exports/AWSDynamoDB/0123-ab/ (EndpointConnectionError)"
    )
    assert line.endswith(
        f"could not connect to {no_aws}: check --endpoint-url / AWS_ENDPOINT_URL and that the service there is running"
    )


def test_an_export_without_credentials_says_what_to_set(files, no_aws, monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    assert main(["backfill", "s3://exports/AWSDynamoDB/0123-ab/", "--to", files["out"]]) == 2
    assert "(NoCredentialsError): no AWS credentials: set AWS_ACCESS_KEY_ID" in _one_line(capsys.readouterr().err)


def test_run_local_reads_standard_input_and_says_when_it_holds_no_records(files, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_COLUMNS", COLUMNS)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(Path(CITIES).read_bytes())))
    assert main(["run-local", "--file", "-", "--to", files["out"]]) == 0
    assert "records in " in capsys.readouterr().err
    assert any(Path(files["out"]).rglob("local-firehose-*"))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\n\n")))
    assert main(["run-local", "--file", "-", "--to", files["out"]]) == 2
    assert "standard input holds no records: give JSON Lines" in _one_line(capsys.readouterr().err)


class _FullDisk(io.StringIO):
    """Standard output on a full disk: writes are buffered, the flush fails (as with > /dev/full)."""

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_under_standard_output_injected_at_its_flush_is_one_line_naming_it(monkeypatch, capsys):
    capsys.readouterr()
    monkeypatch.setattr("sys.stdout", _FullDisk())
    assert main(["demo"]) == 1
    assert capsys.readouterr().err == "error: cannot write to standard output: No space left on device\n"
