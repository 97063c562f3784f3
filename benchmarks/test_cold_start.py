"""Cold start: ``import handler`` in fresh interpreters, and boto3 not among what it imports.

Two measures of the default install, by turns with the stdlib fallback: the import in a bare ``python -S``
(everything ``handler`` needs is charged to it), and the import *in the Lambda runtime*: after the modules the
runtime has already imported before it imports a handler, which Lambda does not charge to the handler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from .report import COLD_STARTS, IN_RUNTIME, ColdStart

ROOT = Path(__file__).resolve().parent.parent
RUNS = 21
#: What the Lambda Python runtime (its runtime interface client, awslambdaric) has imported when its bootstrap
#: calls ``importlib.import_module`` on the handler's module, from the stdlib, as in
#: github.com/aws/aws-lambda-python-runtime-interface-client, awslambdaric/:
#: bootstrap.py: importlib, json, logging, os, sys, time, traceback;
#: lambda_runtime_log_utils.py: json, logging, traceback, datetime, enum;
#: lambda_runtime_marshaller.py: decimal, math, os (and simplejson in newer versions: not in our venv, left out);
#: lambda_runtime_client.py: concurrent.futures (for ThreadPoolExecutor).
RUNTIME_MODULES = (
    "importlib",
    "json",
    "logging",
    "os",
    "sys",
    "time",
    "traceback",
    "datetime",
    "enum",
    "decimal",
    "math",
    "concurrent.futures",
)
# Inside the fresh interpreter: time the import alone (not the interpreter's own start, nor the modules
# preloaded for the runtime measure), and say what came with it. For "stdlib", msgspec is made unimportable,
# as in a zip whose msgspec cannot load.
PROBE = """
import json, sys, time
sys.modules["typing_extensions"] = None  # not in the zip (msgspec imports it only when it is installed)
if {hide_msgspec}:
    sys.modules["msgspec"] = None
for name in {preload!r}:
    __import__(name)
started = time.perf_counter()
import handler
took = time.perf_counter() - started
loaded = [name for name in ("boto3", "botocore", "msgspec", "toolz") if sys.modules.get(name)]
print(json.dumps({{"seconds": took, "loaded": loaded}}))
"""


def import_handler_once(kind: str) -> tuple[float, list[str]]:
    """Seconds to ``import handler`` in a fresh ``python -S``, and which notable packages came with it.

    *kind* is one of :data:`~benchmarks.report.COLD_STARTS`: ``default`` or ``stdlib`` in a bare interpreter,
    or ``in-runtime``: the default install, imported after :data:`RUNTIME_MODULES`.
    ``-S`` skips site (and the editable install's finder), so everything ``handler`` needs is charged to it;
    the project and its dependencies are found through PYTHONPATH, as Lambda finds them in the zip.
    Bytecode is cached (``__pycache__``) after the first run, as when a zip ships it.
    """
    paths = sysconfig.get_paths()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(ROOT), paths["purelib"], paths["platlib"]]),
        "PIPELINE_COLUMNS": "id",
    }
    probe = PROBE.format(hide_msgspec=kind == "stdlib", preload=RUNTIME_MODULES if kind == IN_RUNTIME else ())
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    answer = json.loads(out.splitlines()[-1])  # after the handler's own log lines (the fallback says so)
    return answer["seconds"], answer["loaded"]


def test_cold_import_of_handler(results, quick):
    """Each kind of cold start, run by turns so that all see the same load on a shared machine."""
    runs: dict[str, list[tuple[float, list[str]]]] = {kind: [] for kind in COLD_STARTS}
    for kind in COLD_STARTS:
        import_handler_once(kind)  # writes __pycache__ if it is missing; not counted
    for _ in range(1 if quick else RUNS):
        for kind in COLD_STARTS:
            runs[kind].append(import_handler_once(kind))
    for kind, measured in runs.items():
        loaded = sorted({name for _, names in measured for name in names})
        assert not {"boto3", "botocore"} & set(loaded), "import handler must not import boto3"
        assert ("msgspec" in loaded) == (kind != "stdlib")
        if not quick:
            results.cold_start[kind] = ColdStart(tuple(seconds for seconds, _ in measured), loaded)
