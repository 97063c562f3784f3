"""The Spark engine: one task per data file, each transformed by the same function as on one machine.

The driver plans (it has read the manifests); the executors do everything else: ``mapPartitions`` applies
:func:`~pipeline.backfill.transform.transform_partition`, a pure top-level function that opens its own stores,
reads its file, runs the handler's stages and writes its objects. Only each file's small
:class:`~pipeline.backfill.transform.FileResult` comes back to the driver; no data does.

Works with ``local[*]``, with ``spark-submit`` and on AWS Glue 5 / EMR (Spark 3.5 APIs only). PySpark is the
``spark`` extra, imported only here, only when this engine is chosen.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import TextIO

from .run import Summary
from .transform import FileResult, Task, transform_partition

__all__ = ["run_spark", "spark_available"]


def spark_available() -> bool:
    """True when PySpark can be imported (``pip install '.[spark]'``)."""
    return importlib.util.find_spec("pyspark") is not None


def run_spark(
    tasks: list[Task],
    master: str | None = None,
    *,
    progress: TextIO | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> Summary:
    """Run the tasks on Spark: the active session, else a new one (on *master*, e.g. ``local[2]``).

    A session this call made is stopped at the end; one that was already running (a notebook's, a test's,
    Glue's) is left as it was.
    """
    if not spark_available():
        raise ValueError("--engine spark needs PySpark: pip install '.[spark]' (or run it with spark-submit)")
    from pyspark.sql import SparkSession  # noqa: PLC0415 - the optional engine's import, only when chosen

    session = SparkSession.getActiveSession()
    made = session is None
    if session is None:
        builder = SparkSession.builder.appName("ddb-firehose-pipeline backfill")
        if master:
            builder = builder.master(master)
        session = builder.getOrCreate()
    summary = Summary()
    try:
        if tasks:
            context = session.sparkContext
            context.setJobDescription(f"backfill: {len(tasks)} data files")
            # One partition per file. collect() brings back one small FileResult per file, never rows;
            # Spark's own console progress bar shows how the stage goes.
            results = context.parallelize(tasks, len(tasks)).mapPartitions(transform_partition).collect()
            for result in results:
                summary.add(result)
                if on_result:
                    on_result(result)
            if progress:
                progress.write(f"backfill: {summary.progress(len(tasks))}\n")
    finally:
        if made:
            session.stop()
    return summary
