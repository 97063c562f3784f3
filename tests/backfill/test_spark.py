"""The Spark engine (local[2]) against the local engine and the Lambda, on one export of 50,000 items in 8 files.

Marked ``spark``: ``make test`` (CI) runs them; ``-m 'not spark'`` skips them on a developer's machine.
One SparkSession for the module, quiet, with two cores.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest
from conftest import firehose_event, run

from pipeline.backfill import plan, read_export, run_local
from pipeline.backfill.generate import generate_export

pytestmark = pytest.mark.spark
pyspark = pytest.importorskip("pyspark", reason="the spark extra is not installed")

ITEMS, FILES = 50_000, 8
ENV = {
    "PIPELINE_COLUMNS": "event=@eventName,id,amount,customer,note,tags,address.city,history,"
    "at=@approximateCreationDateTime,table=@tableName,region=@awsRegion,ttl=@isTtlDelete",
    "PIPELINE_PARTITION_KEYS": "day=@approximateCreationDateTime|%Y-%m-%d",
}


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("backfill-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> str:
    return generate_export(str(tmp_path_factory.mktemp("export")), ITEMS, FILES, awkward=0.2)


def contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_spark_and_local_write_the_same_files_byte_for_byte_as_the_lambda(spark, export, tmp_path):
    from pipeline.backfill.spark import run_spark

    found = read_export(export)
    assert (found.item_count, len(found.files)) == (ITEMS, FILES)
    local = run_local(plan(found, str(tmp_path / "local"), ENV), workers=2)
    on_spark = run_spark(plan(found, str(tmp_path / "spark"), ENV))
    assert spark.sparkContext._jsc is not None  # the test's session was used, and left running
    for summary in (local, on_spark):
        assert (summary.files, summary.items, summary.rows, summary.failed) == (FILES, ITEMS, ITEMS, 0)
    by_local, by_spark = contents(tmp_path / "local"), contents(tmp_path / "spark")
    assert len(by_local) == FILES and all(key.startswith("data/day=2026-01-02/") for key in by_local)
    assert by_local == by_spark

    # The Lambda, given the same items as INSERT changes in the Kinesis Data Streams for DynamoDB format
    # (at the export time, microsecond precision), writes the same rows in the same order.
    root = Path(export).parent.parent
    for data in found.files:
        lines = gzip.decompress((root / data.key).read_bytes()).splitlines()
        changes = [
            {
                "eventName": "INSERT",
                "tableName": "orders",
                "awsRegion": "eu-west-1",
                "dynamodb": {"ApproximateCreationDateTime": found.export_micros, **_images(line)},
            }
            for line in lines
        ]
        lambda_rows = b""
        for start in range(0, len(changes), 2_000):
            batch = [json.dumps(c).encode() for c in changes[start : start + 2_000]]
            response = run(firehose_event(batch), **ENV)
            assert {e["result"] for e in response["records"]} == {"Ok"}
            assert {json.dumps(e["metadata"]) for e in response["records"]} == {
                '{"partitionKeys": {"day": "2026-01-02"}}'
            }
            lambda_rows += b"".join(base64.b64decode(e["data"]) for e in response["records"])
        name = data.key.rsplit("/", 1)[1].split(".")[0]
        assert by_local[f"data/day=2026-01-02/backfill-{found.export_id}-{name}"] == lambda_rows


def _images(line: bytes) -> dict:
    item = json.loads(line)["Item"]
    return {"Keys": {"id": item["id"]}, "NewImage": item}


def test_spark_runs_incremental_exports_and_reports_failures(spark, tmp_path):
    from pipeline.backfill.spark import run_spark

    folder = generate_export(str(tmp_path / "export"), 3_000, 3, incremental=True)
    env = {"PIPELINE_COLUMNS": "event=@eventName,id,status", "PIPELINE_PARTITION_KEYS": "n=note"}  # often null
    local = run_local(plan(read_export(folder), str(tmp_path / "local"), env), workers=1)
    on_spark = run_spark(plan(read_export(folder), str(tmp_path / "spark"), env))
    assert contents(tmp_path / "local") == contents(tmp_path / "spark")
    assert (on_spark.items, on_spark.rows, on_spark.failed) == (local.items, local.rows, local.failed)
    assert on_spark.failed > 0 and not on_spark.ok
    assert sorted(on_spark.failures) == sorted(local.failures)


def test_the_glue_job_script_with_glue_arguments(spark, tmp_path, monkeypatch, capsys):
    """deploy/backfill_job.py as Glue runs it: its arguments among Glue's own, PIPELINE_* as arguments."""
    import runpy

    folder = generate_export(str(tmp_path / "export"), 500, 2)
    # the job's argument wins; set here so that monkeypatch restores the variable the script sets
    monkeypatch.setenv("PIPELINE_COLUMNS", "not,these")
    argv = ["backfill_job.py", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1", "--TempDir", "s3://glue-temp/"]
    argv += ["--export", folder, "--to", str(tmp_path / "lake"), "--gzip", "true"]
    argv += ["--PIPELINE_COLUMNS", "event=@eventName,id,v=@version", "--enable-continuous-cloudwatch-log", "true"]
    monkeypatch.setattr("sys.argv", argv)
    script = Path(__file__).resolve().parents[2] / "deploy" / "backfill_job.py"
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code == 0
    assert "2 files, 500 items: 500 rows" in capsys.readouterr().out
    written = contents(tmp_path / "lake")
    assert len(written) == 2 and all(k.startswith("data/2026/01/02/00/") and k.endswith(".gz") for k in written)
    rows = b"".join(gzip.decompress(body) for body in written.values()).decode().splitlines()
    assert len(rows) == 500 and rows[0].startswith("INSERT,order-") and rows[0].endswith(",00001767312000000000")


def test_the_spark_engine_runs_this_interpreter_without_it_on_path_and_quietly(tmp_path):
    """``.venv/bin/python -m pipeline backfill --engine spark`` with the venv not on PATH: Spark's workers would run
    ``python3`` from PATH, without the package; they run the interpreter that runs the command. --quiet: no Spark
    warnings, no progress bars."""
    import os
    import subprocess
    import sys

    folder = generate_export(str(tmp_path / "export"), 40, 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_")}
    env |= {"PATH": "/usr/bin:/bin", "PIPELINE_COLUMNS": "id"}
    command = [sys.executable, "-m", "pipeline", "backfill", folder, "--to", str(tmp_path / "out")]
    command += ["--engine", "spark", "--master", "local[1]", "--quiet"]
    done = subprocess.run(command, check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 files, 40 items: 40 rows, 0 dropped (filtered out), 0 failed" in done.stdout
    assert "WARN" not in done.stderr and "[Stage" not in done.stderr, done.stderr[-3000:]
    assert len(contents(tmp_path / "out")) == 2
