"""Backfill: a whole table, from a DynamoDB export to S3, into the same columns and S3 layout as the stream.

* :mod:`~pipeline.backfill.manifest`: the export's manifests, read and checked (``read_export``);
* :mod:`~pipeline.backfill.changes`: an export line as the change record a stream would carry;
* :mod:`~pipeline.backfill.source`: a data file's items read as a stream, its checksum and count checked;
* :mod:`~pipeline.backfill.spool`: its rows kept on disk until it is known to be whole;
* :mod:`~pipeline.backfill.transform`: one data file through the Lambda's own stages (``transform_file``);
* :mod:`~pipeline.backfill.run`: planning, one task per data file, and the local engine (a process pool);
* :mod:`~pipeline.backfill.spark`: the Spark engine (PySpark, the ``spark`` extra);
* :mod:`~pipeline.backfill.generate`: a realistic export, for tests, demos and benchmarks.
"""

from __future__ import annotations

from .changes import change_loads
from .manifest import DataFile, Export, ExportError, read_export
from .run import Summary, plan, run_local
from .transform import FileResult, Task, transform_file

__all__ = [
    "DataFile",
    "Export",
    "ExportError",
    "FileResult",
    "Summary",
    "Task",
    "change_loads",
    "plan",
    "read_export",
    "run_local",
    "transform_file",
]
