"""Build the Lambda deployment zip: ``handler.py``, ``pipeline/`` and the runtime dependencies.

``python deploy/package.py dist/lambda.zip [--arch arm64|x86_64] [--python 3.12|3.13]`` (``make package``,
``make package ARCH=x86_64 PYTHON=3.13``). The dependencies are the project's ``install_requires`` (toolz, and
msgspec, whose compiled extension must match the Lambda's architecture and Python), pinned to the versions
installed here, so the zip runs what the tests ran; boto3 is left out because the Lambda runtime has it. The
wheels are downloaded for the chosen runtime (``manylinux2014_<arch>``, binary only), whatever machine builds
the zip; the defaults are the runtime in ``deploy/template.yaml`` (Python 3.12 on arm64). The zip is
reproducible: sorted entries, fixed timestamps and modes, no ``__pycache__``, no tests (toolz ships its own)
and no tool caches.
"""

from __future__ import annotations

import argparse
import configparser
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSION = "3.12"  # deploy/template.yaml: Runtime python3.12
ARCH = "arm64"  # deploy/template.yaml: Architectures [arm64]
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}  # Lambda's architectures
PYTHONS = ("3.11", "3.12", "3.13")  # 3.12 and 3.13 for Lambda; 3.11 builds a zip this repository's tests can run
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


def build(out: Path, arch: str = ARCH, python: str = PYTHON_VERSION) -> Path:
    """Write the zip to *out* for Lambda's *arch* and *python*: the dependencies, then handler.py and pipeline/."""
    if arch not in PLATFORMS:
        raise ValueError(f"ARCH={arch!r}: not one of {', '.join(PLATFORMS)}")
    if python not in PYTHONS:
        raise ValueError(f"PYTHON={python!r}: not one of {', '.join(PYTHONS)}")
    with tempfile.TemporaryDirectory() as tmp:
        deps = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                *("-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"),
                *("--target", str(deps), "--only-binary=:all:", "--implementation", "cp"),
                *("--python-version", python, "--platform", PLATFORMS[arch]),
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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line saying what is wrong, not the usage too
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    """``package.py OUT.zip [--arch ...] [--python ...]``; a bad choice gets one line on stderr and status 2."""
    parser = _Parser(prog="deploy/package.py", description="Build the Lambda deployment zip.")
    parser.add_argument("out", type=Path, help="where to write the zip, e.g. dist/lambda.zip")
    parser.add_argument("--arch", default=ARCH, choices=sorted(PLATFORMS), help=f"Lambda architecture ({ARCH})")
    parser.add_argument("--python", default=PYTHON_VERSION, choices=PYTHONS, help=f"Python ({PYTHON_VERSION})")
    args = parser.parse_args(argv)
    zip_path = build(args.out, args.arch, args.python)
    print(f"{zip_path}: {zip_path.stat().st_size:,} bytes, for Python {args.python} on {args.arch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
