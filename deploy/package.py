"""Build the Lambda deployment zip: ``handler.py``, ``pipeline/`` and the runtime dependencies.

``python deploy/package.py dist/lambda.zip`` (``make package``). The dependencies are the project's
``install_requires`` (toolz), pinned to the versions installed here, so the zip runs what the tests ran; boto3
is left out because the Lambda runtime has it. Wheels are chosen for the runtime in ``deploy/template.yaml``
(Python 3.12 on arm64), whatever machine builds the zip. The zip is reproducible: sorted entries, fixed
timestamps and modes, no ``__pycache__``, no tests (toolz ships its own) and no tool caches.
"""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSION = "3.12"  # deploy/template.yaml: Runtime python3.12
PLATFORM = "manylinux2014_aarch64"  # deploy/template.yaml: Architectures [arm64]
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_NAME = re.compile(r"[A-Za-z0-9._-]+")
# Folders a Lambda never needs: the dependencies' own tests, and caches left by tools.
_LEFT_OUT = frozenset({"tests", "test", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"})


def requirements() -> list[str]:
    """The runtime requirements from setup.cfg, each pinned to the installed version when there is one."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "setup.cfg")
    pinned = []
    for line in config["options"]["install_requires"].splitlines():
        spec = line.strip()
        if not spec:
            continue
        name = _NAME.match(spec)[0]
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pinned.append(spec)
    return pinned


def _files(base: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base)
        if path.is_file() and not _LEFT_OUT.intersection(relative.parts) and path.suffix != ".pyc":
            yield path, relative.as_posix()


def _add(archive: zipfile.ZipFile, path: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, path.read_bytes())


def build(out: Path) -> Path:
    """Write the zip to *out*: the dependencies installed for the runtime, then handler.py and pipeline/."""
    with tempfile.TemporaryDirectory() as tmp:
        deps = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                *("-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"),
                *("--target", str(deps), "--only-binary=:all:", "--implementation", "cp"),
                *("--python-version", PYTHON_VERSION, "--platform", PLATFORM),
                *requirements(),
            ],
            check=True,
        )
        entries = dict(_files(deps))
        entries[ROOT / "handler.py"] = "handler.py"
        entries.update((path, f"pipeline/{name}") for path, name in _files(ROOT / "pipeline"))
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w") as archive:
            for path, name in sorted(entries.items(), key=lambda item: item[1]):
                _add(archive, path, name)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python deploy/package.py OUT.zip")
    zip_path = build(Path(sys.argv[1]))
    print(f"{zip_path}: {zip_path.stat().st_size:,} bytes")
