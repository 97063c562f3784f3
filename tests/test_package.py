"""make package: the zip holds what Lambda needs and runs on its own, in an interpreter that sees nothing else."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import platform
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest
from conftest import outputs, run

from pipeline.local.contract import contract_problems

ROOT = Path(__file__).resolve().parent.parent
ENV = {"PIPELINE_COLUMNS": "event=@eventName,key,name,population,ttl=@isTtlDelete"}
# Run as Lambda does (the task folder first on sys.path), in `python -I -S`: no PYTHON* variables, no user or
# venv site-packages, so only the standard library and the unzipped folder can be imported.
RUNNER = """
import json, os, sys
sys.path.insert(0, os.getcwd())
import handler
event = json.load(sys.stdin)
response = handler.lambda_handler(event, None)
names = ("handler", "pipeline", "toolz", "boto3", "msgspec")
loaded = {name: getattr(sys.modules.get(name), "__file__", None) for name in names}
print(json.dumps({"response": response, "loaded": loaded}))
"""


def _build_module():
    spec = importlib.util.spec_from_file_location("package_build", ROOT / "deploy" / "package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HERE = {
    "arch": {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()],
    "python": "{}.{}".format(*sys.version_info),
}
PLATFORM_TAGS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}


def build(out: Path, arch: str, python: str) -> Path:
    """The same command `make package ARCH=... PYTHON=...` runs (pip fetches the pinned wheels)."""
    command = [sys.executable, str(ROOT / "deploy" / "package.py"), str(out), "--arch", arch, "--python", python]
    subprocess.run(command, check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def lambda_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once, for this machine's architecture and interpreter, so that it can run here."""
    return build(tmp_path_factory.mktemp("dist") / "lambda.zip", **HERE)


def wheel_tags(archive: zipfile.ZipFile, project: str) -> list[str]:
    """The ``Tag:`` lines of *project*'s WHEEL file in the zip."""
    [wheel] = [n for n in archive.namelist() if n.startswith(f"{project}-") and n.endswith(".dist-info/WHEEL")]
    return [
        line.split(":", 1)[1].strip() for line in archive.read(wheel).decode().splitlines() if line.startswith("Tag:")
    ]


def test_zip_holds_handler_pipeline_toolz_and_msgspec_only(lambda_zip):
    names = zipfile.ZipFile(lambda_zip).namelist()
    assert names == sorted(names)
    tops = {name.split("/")[0] for name in names}
    assert {"handler.py", "pipeline", "toolz", "msgspec"} <= tops
    assert not {t for t in tops if t.split("-")[0] in ("boto3", "botocore", "orjson", "tests", "typing_extensions")}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if {"tests", "test", ".pytest_cache"} & set(n.split("/"))]  # e.g. toolz/tests
    assert {f"pipeline/{p.name}" for p in (ROOT / "pipeline").glob("*.py")} <= set(names)


@pytest.mark.parametrize(("arch", "python"), [("arm64", "3.12"), ("x86_64", "3.13")])
def test_the_msgspec_wheel_matches_the_chosen_architecture_and_python(tmp_path, arch, python):
    archive = zipfile.ZipFile(build(tmp_path / "lambda.zip", arch, python))
    cp = "cp" + python.replace(".", "")
    tags = wheel_tags(archive, "msgspec")
    assert tags and all(tag.startswith(f"{cp}-{cp}-") for tag in tags), tags
    assert any(tag.endswith(PLATFORM_TAGS[arch]) for tag in tags), tags
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[arch]
    assert [n for n in archive.namelist() if n.startswith(f"msgspec/_core.cpython-{cp[2:]}-{machine}-linux")]
    assert wheel_tags(archive, "toolz") == ["py3-none-any"]


def test_zip_is_reproducible(lambda_zip):
    infos = zipfile.ZipFile(lambda_zip).infolist()
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o644}


def test_unzipped_handler_runs_in_a_clean_interpreter(lambda_zip, tmp_path):
    task = tmp_path / "task"
    zipfile.ZipFile(lambda_zip).extractall(task)
    event = json.loads(resources.files("pipeline").joinpath("samples/cities.json").read_text("utf-8"))
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER],
        input=json.dumps(event),
        cwd=task,
        env={"PATH": os.environ.get("PATH", ""), **ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    *logged, last = result.stdout.splitlines()  # the handler logs JSON lines to stdout, as in Lambda
    reply = json.loads(last)
    summary = json.loads(logged[-1])
    assert summary["message"] == "summary"
    assert summary["results"] == {"Ok": 10, "Dropped": 0, "ProcessingFailed": 1}
    loaded = reply["loaded"]
    for name in ("handler", "pipeline"):
        assert Path(loaded[name]).resolve().is_relative_to(task.resolve()), loaded
    assert loaded["toolz"] is None  # in the zip for the stages' other users, but not on the cold-start path
    assert loaded["boto3"] is None  # nothing was over budget, so nothing imported boto3
    assert Path(loaded["msgspec"]).resolve().is_relative_to(task.resolve()), loaded  # its extension loaded
    assert "msgspec could not be loaded" not in result.stdout
    response = reply["response"]
    assert contract_problems(event, response) == []
    assert outputs(response) == outputs(run(event, **ENV))  # the same answer as the handler in this repository
    assert base64.b64decode(response["records"][0]["data"]) == "INSERT,1,Zürich,421878,false\n".encode()


def test_zip_is_built_for_the_templates_runtime():
    package = _build_module()
    template = (ROOT / "deploy" / "template.yaml").read_text()
    assert f"Runtime: python{package.PYTHON_VERSION}\n" in template
    assert f"Architectures: [{package.ARCH}]" in template
    assert "CodeUri: ../dist/lambda.zip\n" in template
    assert [r.split("==")[0] for r in package.requirements()] == ["toolz", "msgspec"]


def test_a_wrong_choice_is_one_line_and_status_2(tmp_path):
    command = [sys.executable, str(ROOT / "deploy" / "package.py"), str(tmp_path / "x.zip"), "--arch", "sparc"]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    assert run.returncode == 2
    [line] = run.stderr.splitlines()
    assert "invalid choice: 'sparc'" in line


@pytest.mark.parametrize("python", ["2.7", "3"])
def test_make_refuses_a_python_version_lambda_does_not_run(python):
    """PYTHON=3.13 names the Lambda runtime; a bare version that is not 3.x was taken for an interpreter's name
    and hidden by the existing .venv, so the zip was built for 3.12 without a word."""
    argv = ["make", "-n", "package", f"PYTHON={python}"]
    done = subprocess.run(argv, check=False, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert f"PYTHON={python} is a version Lambda does not run: give 3.12 or 3.13" in done.stderr
