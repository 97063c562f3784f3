"""Cold start: ``import handler`` in fresh interpreters, and boto3 not among what it imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from report import ColdStart

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
# Inside the fresh interpreter: time the import alone (not the interpreter's own start), list what it loaded.
PROBE = """
import json, sys, time
started = time.perf_counter()
import handler
took = time.perf_counter() - started
print(json.dumps({"seconds": took, "boto3": "boto3" in sys.modules or "botocore" in sys.modules}))
"""


def import_handler_once() -> tuple[float, bool]:
    """Seconds to ``import handler`` in a fresh ``python -S``, and whether boto3 came with it.

    ``-S`` skips site (and the editable install's finder), so everything ``handler`` needs is charged to it;
    the project and its dependencies are found through PYTHONPATH, as Lambda finds them in the zip.
    """
    paths = sysconfig.get_paths()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(ROOT), paths["purelib"], paths["platlib"]]),
        "PIPELINE_COLUMNS": "id",
    }
    out = subprocess.run(
        [sys.executable, "-S", "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    probe = json.loads(out)
    return probe["seconds"], probe["boto3"]


def test_cold_import_of_handler(results, quick):
    runs = [import_handler_once() for _ in range(2 if quick else RUNS)]
    assert not any(boto3 for _, boto3 in runs), "import handler must not import boto3"
    if not quick:
        results.cold_start = ColdStart(tuple(seconds for seconds, _ in runs), boto3_loaded=False)
