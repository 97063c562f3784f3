"""Cold start: ``import handler`` in fresh interpreters, and boto3 not among what it imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from .report import DEPLOYMENTS, ColdStart

ROOT = Path(__file__).resolve().parent.parent
RUNS = 21
# Inside the fresh interpreter: time the import alone (not the interpreter's own start), and say what came with
# it. For "stdlib", msgspec is made unimportable, as in a zip whose msgspec cannot load.
PROBE = """
import json, sys, time
sys.modules["typing_extensions"] = None  # not in the zip (msgspec imports it only when it is installed)
if {hide_msgspec}:
    sys.modules["msgspec"] = None
started = time.perf_counter()
import handler
took = time.perf_counter() - started
loaded = [name for name in ("boto3", "botocore", "msgspec", "toolz") if sys.modules.get(name)]
print(json.dumps({{"seconds": took, "loaded": loaded}}))
"""


def import_handler_once(deployment: str) -> tuple[float, list[str]]:
    """Seconds to ``import handler`` in a fresh ``python -S``, and which notable packages came with it.

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
    probe = PROBE.format(hide_msgspec=deployment == "stdlib")
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    answer = json.loads(out.splitlines()[-1])  # after the handler's own log lines (the fallback says so)
    return answer["seconds"], answer["loaded"]


def test_cold_import_of_handler(results, quick):
    """Both deployments, run by turns so that both see the same load on a shared machine."""
    runs: dict[str, list[tuple[float, list[str]]]] = {deployment: [] for deployment in DEPLOYMENTS}
    for deployment in DEPLOYMENTS:
        import_handler_once(deployment)  # writes __pycache__ if it is missing; not counted
    for _ in range(1 if quick else RUNS):
        for deployment in DEPLOYMENTS:
            runs[deployment].append(import_handler_once(deployment))
    for deployment, measured in runs.items():
        loaded = sorted({name for _, names in measured for name in names})
        assert not {"boto3", "botocore"} & set(loaded), "import handler must not import boto3"
        assert ("msgspec" in loaded) == (deployment == "default")
        if not quick:
            results.cold_start[deployment] = ColdStart(tuple(seconds for seconds, _ in measured), loaded)
