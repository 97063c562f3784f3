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
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

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
    quiet: bool = False,
) -> Summary:
    """Run the tasks on Spark: the active session, else a new one (on *master*, e.g. ``local[2]``).

    A session this call made is stopped at the end; one that was already running (a notebook's, a test's,
    Glue's) is left as it was. A session made *quiet* shows no progress bar and logs only errors.
    """
    if not spark_available():
        raise ValueError("--engine spark needs PySpark: pip install '.[spark]' (or run it with spark-submit)")
    from pyspark.sql import SparkSession  # noqa: PLC0415 - the optional engine's import, only when chosen

    session = SparkSession.getActiveSession()
    made = session is None
    if session is None:
        session = _start(master, quiet=quiet)
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


# Errors only, on stderr, and no "Setting default log level" notice (Spark's log4j2.properties.template's layout).
_QUIET_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
"""


def _start(master: str | None, *, quiet: bool) -> Any:
    """A new SparkSession on *master*; on this machine, its Python workers run this interpreter.

    Spark starts its workers with ``PYSPARK_PYTHON``, else ``python3`` from ``PATH``: a virtualenv's interpreter
    run by its path (``.venv/bin/python -m pipeline``) would get workers without the package. Under
    ``spark-submit`` (or Glue) its settings stand: the interpreter, and the log.
    """
    from pyspark.sql import SparkSession  # noqa: PLC0415 - the optional engine's import, only when chosen

    builder = SparkSession.builder.appName("ddb-firehose-pipeline backfill")
    if master:
        builder = builder.master(master)
    if "PYSPARK_GATEWAY_PORT" in os.environ:  # spark-submit started Spark's JVM, then this script
        return builder.getOrCreate()
    if master is None or master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if not quiet:
        return _launch(builder)
    with tempfile.TemporaryDirectory(prefix="backfill-spark-") as folder:  # read once, as the JVM starts
        log4j = Path(folder, "log4j2.properties")
        log4j.write_text(_QUIET_LOG4J)
        options = {
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={log4j.as_uri()}",
        }
        return _launch(builder.config(map=options))


def _launch(builder: Any) -> Any:
    """Start Spark's JVM; ValueError (one line) when it exits at once (no Java, a setting Spark refuses)."""
    try:
        return builder.getOrCreate()
    except Exception as exc:
        if getattr(exc, "getErrorClass", lambda: None)() != "JAVA_GATEWAY_EXITED":
            raise
        raise ValueError(
            "Spark's Java process exited as it started (its reason is above): check that Java 17, 11 or 8 is installed "
            "(java on PATH, or JAVA_HOME) and the --master given"
        ) from None
