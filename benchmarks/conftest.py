"""Benchmark fixtures: the generated events, the run's results, and RESULTS.md written when the run is complete.

``make bench`` measures and writes ``.benchmarks/RESULTS.md`` (ignored by git); ``make bench-record`` writes
the committed ``benchmarks/RESULTS.md`` (the file named by ``BENCH_RESULTS``). ``make test`` passes
``--benchmark-disable`` (quick mode): every benchmark then runs once, on small events, as a smoke test, and
nothing is written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from pipeline.logs import configure_logging, logger
from pipeline.tools.generate import generate_event, parse_size

from .report import SIZES, Results, machine, render

RESULTS_MD = Path(os.environ.get("BENCH_RESULTS") or Path(__file__).parent.parent / ".benchmarks" / "RESULTS.md")
_OUTCOME = pytest.StashKey[str]()
FULL_SIZES = {"1 MB": parse_size("1MB"), "3 MB": parse_size("3MB"), "6 MB": parse_size("6MiB") - parse_size("16KiB")}
QUICK_SIZES = {label: size // 100 for label, size in FULL_SIZES.items()}
assert tuple(FULL_SIZES) == SIZES


def is_quick(config: pytest.Config) -> bool:
    """Quick mode: the benchmarks run once each (``--benchmark-disable``), on small events."""
    return bool(config.getoption("benchmark_disable"))


@pytest.fixture(scope="session")
def quick(request: pytest.FixtureRequest) -> bool:
    return is_quick(request.config)


@lru_cache(maxsize=1)  # the tests run event by event: keep one, as a Lambda holds one
def _event(size: int, source: str) -> dict[str, Any]:
    return generate_event(size, source, seed=0)


@pytest.fixture(scope="session")
def make_event(quick: bool):
    """``make_event("6 MB", "kinesis")``: the generated event of that size (small in quick mode)."""
    sizes = QUICK_SIZES if quick else FULL_SIZES
    return lambda label, source: _event(sizes[label], source)


@pytest.fixture(scope="session")
def results(request: pytest.FixtureRequest, quick: bool) -> Iterator[Results]:
    """The run's results; a complete, measured run writes them to RESULTS.md at the end of the session."""
    collected = Results()
    yield collected
    if quick:
        return
    missing = collected.missing()
    if missing:
        request.config.stash[_OUTCOME] = f"RESULTS.md not written: this run did not measure {', '.join(missing)}"
        return
    RESULTS_MD.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_MD.write_text(render(collected, host=machine()), "utf-8")
    request.config.stash[_OUTCOME] = f"wrote {RESULTS_MD}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say, at the end of the run, whether RESULTS.md was written."""
    if _OUTCOME in config.stash:
        terminalreporter.write_line(config.stash[_OUTCOME])


@pytest.fixture(autouse=True)
def lambda_logging() -> Iterator[None]:
    """Log as in Lambda (INFO, one summary line per invocation), to /dev/null; restored afterwards."""
    saved = logger.handlers[:], logger.level, logger.propagate
    with open(os.devnull, "w") as devnull:
        configure_logging(logging.INFO, devnull)
        yield
    logger.handlers[:], logger.level, logger.propagate = saved
