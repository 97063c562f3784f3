"""Backfill throughput: the local engine on 1 and 2 workers and Spark local[2], against the stages alone.

One generated export (about a million items in 16 data files; 2,000 in quick mode) goes through each engine
with the csv columns of the handler benchmarks. The baseline is the handler's stages in one process on the
same items as INSERT change records (what the Lambda does, without the response): the target is at least
80 % of its rate per worker. Rates are given twice: by the clock (items/s, MB/s: what a run takes on this
machine, busy or not) and per CPU-second of the workers (what one core does, which other work on a shared
machine disturbs far less). A complete measured run writes ``BACKFILL.md`` beside ``RESULTS.md`` (the committed
``benchmarks/BACKFILL.md`` with ``make bench-record``); the README quotes it.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from pipeline import Config, stages
from pipeline.backfill import plan, read_export, run_local
from pipeline.backfill.generate import generate_export

from .report import machine
from .variants import CSV_COLUMNS

FULL, QUICK = (1_000_000, 16), (2_000, 4)
BASELINE_ITEMS = 100_000  # the stages alone, on this many of the export's items, in memory
ENV = {"PIPELINE_COLUMNS": CSV_COLUMNS}
# Beside RESULTS.md: .benchmarks/ for `make bench`, the committed benchmarks/ for `make bench-record`
BACKFILL_MD = Path(os.environ.get("BENCH_RESULTS") or Path(__file__).parent.parent / ".benchmarks" / "RESULTS.md")
BACKFILL_MD = BACKFILL_MD.with_name("BACKFILL.md")
TARGET = 0.8
GLUE_CORES = 36  # 10 G.1X workers: one is the driver, 9 executors x 4 vCPU


@pytest.fixture(scope="module")
def export(quick, tmp_path_factory):
    items, files = QUICK if quick else FULL
    root = tmp_path_factory.mktemp("backfill-export")
    found = read_export(generate_export(str(root), items, files))
    json_bytes = sum(len(gzip.decompress((root / f.key).read_bytes())) for f in found.files)
    gz_bytes = sum((root / f.key).stat().st_size for f in found.files)
    return found, json_bytes, gz_bytes


class Rate(NamedTuple):
    """One engine's rates: by the clock, and per CPU-second of its workers."""

    items_per_s: float
    mb_per_s: float
    items_per_cpu_s: float
    workers: int


@pytest.fixture(scope="module")
def measured(quick):
    """Rates by engine, written to BACKFILL.md at the end of a complete, measured run."""
    rates: dict[str, Rate] = {}
    yield rates
    if not quick and len(rates) == 4:
        BACKFILL_MD.parent.mkdir(parents=True, exist_ok=True)
        BACKFILL_MD.write_text(render(rates), "utf-8")


def _change_records(export, limit: int) -> list[dict]:
    """The export's first *limit* items as Firehose records of INSERT changes (Kinesis format, as backfill makes)."""
    records = []
    root = Path(export.root)
    for data in export.files:
        for line in gzip.decompress((root / data.key).read_bytes()).splitlines():
            item = json.loads(line)["Item"]
            change = {
                "eventName": "INSERT",
                "tableName": export.table,
                "awsRegion": export.region,
                "dynamodb": {"ApproximateCreationDateTime": export.export_micros, "Keys": {}, "NewImage": item},
            }
            payload = json.dumps(change, ensure_ascii=False, separators=(",", ":")).encode()
            records.append({"recordId": str(len(records)), "data": base64.b64encode(payload).decode()})
            if len(records) == limit:
                return records
    return records


def test_stage_throughput_baseline(benchmark, export, measured):
    found, _, _ = export
    records = _change_records(found, BASELINE_ITEMS)
    chain = stages(Config.from_env(ENV))

    cpu: list[float] = []

    def transform() -> int:
        started = time.process_time()
        out = records
        for stage in chain:
            out = stage(out)
        ok = sum(1 for rec in out if rec.result == "Ok")
        cpu.append(time.process_time() - started)
        return ok

    started = time.perf_counter()
    ok = benchmark.pedantic(transform, rounds=3 if benchmark.enabled else 1, warmup_rounds=0)
    assert ok == len(records)
    seconds = benchmark.stats.stats.median if benchmark.stats else time.perf_counter() - started
    measured["stages, 1 process (baseline)"] = Rate(len(records) / seconds, 0.0, len(records) / min(cpu), 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_local_engine(benchmark, export, measured, tmp_path, workers):
    found, json_bytes, _ = export
    tasks = plan(found, str(tmp_path / "out"), ENV)
    summaries = []

    def run() -> None:
        shutil.rmtree(tmp_path / "out", ignore_errors=True)
        summaries.append(run_local(tasks, workers))

    benchmark.pedantic(run, rounds=1, iterations=1)
    summary = summaries[-1]
    assert summary.ok and summary.rows == found.item_count
    measured[f"local engine, {workers} worker{'s' * (workers > 1)}"] = _rate(summary, json_bytes, workers)


@pytest.mark.spark
def test_spark_local_2(benchmark, export, measured, tmp_path):
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    from pyspark.sql import SparkSession

    from pipeline.backfill.spark import run_spark

    found, json_bytes, _ = export
    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        tasks = plan(found, str(tmp_path / "out"), ENV)
        summaries = []
        benchmark.pedantic(lambda: summaries.append(run_spark(tasks)), rounds=1, iterations=1)
    finally:
        session.stop()
    summary = summaries[-1]
    assert summary.ok and summary.rows == found.item_count
    measured["Spark local[2]"] = _rate(summary, json_bytes, 2)


def _rate(summary, json_bytes: int, workers: int) -> Rate:
    return Rate(
        summary.items / summary.seconds,
        json_bytes / 1e6 / summary.seconds,
        summary.items / summary.cpu_seconds,
        workers,
    )


def render(rates: dict[str, Rate]) -> str:
    """BACKFILL.md: rates by engine, per worker against the baseline, and the Glue extrapolation."""
    base = rates["stages, 1 process (baseline)"]
    bytes_per_item = next(r.mb_per_s / r.items_per_s for r in rates.values() if r.mb_per_s) * 1e6
    lines = [
        "# Backfill throughput",
        "",
        f"`make bench` on {machine()}, {time.strftime('%Y-%m-%d')}: a generated full export of "
        f"{FULL[0]:,} items in {FULL[1]} gzip data files ({bytes_per_item:,.0f} bytes of JSON per item), "
        f"csv of `{CSV_COLUMNS}`.",
        "",
        "| engine | items/s | MB/s of export JSON | items per CPU-second, per worker | vs the stages alone |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, rate in rates.items():
        mb = f"{rate.mb_per_s:,.1f}" if rate.mb_per_s else ""
        share = rate.items_per_cpu_s / base.items_per_cpu_s
        lines.append(f"| {name} | {rate.items_per_s:,.0f} | {mb} | {rate.items_per_cpu_s:,.0f} | {share:.0%} |")
    local = rates["local engine, 1 worker"].items_per_cpu_s / base.items_per_cpu_s
    spark = rates["Spark local[2]"]
    per_core = spark.items_per_cpu_s * bytes_per_item / 1e6  # a core of its own
    by_clock = spark.mb_per_s / spark.workers  # a core shared as this machine's were

    def minutes(mb_per_s: float) -> str:
        return f"{100_000 / (mb_per_s * GLUE_CORES) / 60:,.0f}"

    lines += [
        "",
        f"Target: the local engine at least {TARGET:.0%} of the stages' rate per worker: "
        f"{local:.0%} ({'met' if local >= TARGET else 'missed'}). Rates by the clock depend on what else the "
        f"{os.cpu_count()} cores run: on a shared machine, 2 workers need not be twice as fast as 1.",
        "",
        f"**Extrapolation** to AWS Glue, not measured there: Spark did {spark.items_per_cpu_s:,.0f} items per "
        f"CPU-second, {per_core:,.1f} MB/s of export JSON per core ({by_clock:,.1f} MB/s per core by the clock "
        f"here). With {GLUE_CORES} executor cores (10 G.1X workers) that is {minutes(per_core)} to "
        f"{minutes(by_clock)} minutes per 100 GB of export JSON, assuming linear scaling, one core per task, "
        "at least as many data files as cores, and S3 not the limit.",
    ]
    return "\n".join(lines) + "\n"
