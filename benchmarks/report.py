"""The results of one benchmark run, and ``benchmarks/RESULTS.md`` made from them."""

from __future__ import annotations

import os
import platform
import statistics
import sysconfig
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from .variants import CSV4_COLUMNS, CSV_COLUMNS

__all__ = [
    "COLD_STARTS",
    "IN_RUNTIME",
    "ColdStart",
    "EventInfo",
    "Memory",
    "Results",
    "Split",
    "Timing",
    "machine",
    "render",
]

SIZES = ("1 MB", "3 MB", "6 MB")
SOURCES = ("kinesis", "direct")
DEPLOYMENTS = ("default", "stdlib")  # cold start of the default install (msgspec) and of the stdlib fallback
#: The default install imported after the modules the Lambda runtime has imported itself before it imports the
#: handler (benchmarks/test_cold_start.py's RUNTIME_MODULES): what the handler adds to a Lambda cold start.
IN_RUNTIME = "in-runtime"
COLD_STARTS = (*DEPLOYMENTS, IN_RUNTIME)  # measured by turns, in fresh interpreters
_COLD_LABELS = {
    "default": "default install, bare `python -S`",
    "stdlib": "stdlib fallback, bare `python -S`",
    IN_RUNTIME: "default install, in the Lambda runtime (its own modules preloaded)",
}
BUDGETS = ("fits", "over")  # over the boundary: the full budget, then one the output does not fit in
#: Issue 10's targets on the 6 MB events: variant -> (what, at most this many times the floor).
TARGETS = {
    "csv4": ("csv, 4 plain columns, default install", 0.6),
    "csv": ("csv, 8 columns incl. `@eventName` and `@approximateCreationDateTime`, default install", 0.75),
    "jsonl": ("jsonl of the whole image, default install", 1.0),
    # The issue names no columns for the fallback: judged on both workloads, the 4 plain columns and the 8
    "csv4-stdlib": ("csv, 4 plain columns, stdlib-only fallback", 1.2),
    "csv-stdlib": ("csv, 8 columns, stdlib-only fallback", 1.2),
}
TARGET_IMPORT_MS = 50.0
TARGET_MEMORY = 0.3  # peak traced memory / event JSON size


@dataclass(frozen=True)
class EventInfo:
    """A generated event: records and the size of its JSON."""

    records: int
    json_bytes: int


@dataclass(frozen=True)
class Timing:
    """One variant on one event: best and median of its rounds (seconds), and its time relative to the floor.

    ``to_floor`` is the median, over the rounds, of the round's time over that of a floor run just before it;
    ``floor_best`` the best of those floor runs.
    """

    best: float
    median: float
    rounds: int
    to_floor: float
    floor_best: float


@dataclass(frozen=True)
class Split:
    """An over-the-boundary run on a 6 MB event: its budget, what was answered Ok and re-ingested, its time."""

    budget: int
    ok: int
    reingested: int
    timing: Timing


@dataclass(frozen=True)
class Memory:
    """Peak traced allocation during one invocation."""

    peak: int
    json_bytes: int


@dataclass(frozen=True)
class ColdStart:
    """Times to import ``handler`` in fresh interpreters (seconds), and the notable packages it loaded."""

    runs: tuple[float, ...]
    loaded: list[str]

    @property
    def boto3_loaded(self) -> bool:
        return "boto3" in self.loaded or "botocore" in self.loaded

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs) * 1000


@dataclass
class Results:
    """What one run measured, filled in by the benchmark tests."""

    events: dict[tuple[str, str], EventInfo] = field(default_factory=dict)
    timings: dict[tuple[str, str, str], Timing] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    splits: dict[tuple[str, str], Split] = field(default_factory=dict)  # (source, "fits" or "over")
    memory: dict[tuple[str, str], Memory] = field(default_factory=dict)
    cold_start: dict[str, ColdStart] = field(default_factory=dict)

    def missing(self) -> list[str]:
        """What a complete run would have measured but this one did not (a run with -k, say)."""
        gaps = [
            f"{size} {source} {name}"
            for size in SIZES
            for source in SOURCES
            for name in self.labels
            if (size, source, name) not in self.timings
        ]
        gaps += [
            f"{budget} {source}" for source in SOURCES for budget in BUDGETS if (source, budget) not in self.splits
        ]
        gaps += [f"memory {source}" for source in SOURCES if not any(s == source for s, _ in self.memory)]
        return gaps + [f"cold start {kind}" for kind in COLD_STARTS if kind not in self.cold_start]

    def floor_best(self, size: str, source: str) -> float:
        """The best time of the floor on this event, over every floor run next to a round."""
        return min(t.floor_best for (*event, _), t in self.timings.items() if event == [size, source])

    def ratio(self, size: str, source: str, name: str) -> float:
        """*name*'s time relative to the floor's on the same event, round by round."""
        return self.timings[size, source, name].to_floor


def machine() -> str:
    """CPU model, cores, OS and Python (and how it was built), for the results' header."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    built = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    pgo = "with" if "--enable-optimizations" in built else "without"
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"{platform.python_implementation()} {platform.python_version()} (built {pgo} PGO), "
        f"msgspec {version('msgspec')}"
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def _x(ratio: float) -> str:
    return f"{ratio:.2f}x"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _targets(r: Results) -> list[str]:
    big = [("6 MB", source) for source in SOURCES]
    lines = ["| target | measured (6 MB kinesis / direct) | |", "|---|---|---|"]
    for name, (what, most) in TARGETS.items():
        ratios = [r.ratio(*event, name) for event in big]
        verdict = _met(max(ratios) <= most)
        if max(ratios) > most:
            verdict += f" by {max(ratios) - most:.2f}x"
        lines.append(f"| {what}: at most {most}x the stdlib floor | {' / '.join(map(_x, ratios))} | {verdict} |")
    memory = [r.memory[source, "msgspec"] for source in SOURCES]
    worst = max(m.peak / m.json_bytes for m in memory)
    lines.append(
        f"| peak traced memory, csv, 6 MB, default install: at most {TARGET_MEMORY}x the event's JSON "
        f"| {' / '.join(_x(m.peak / m.json_bytes) for m in memory)} | {_met(worst <= TARGET_MEMORY)} |"
    )
    # Judged in the runtime: Lambda imports the handler from its runtime's bootstrap, after that runtime has
    # imported these modules for itself, so the in-runtime time is what the handler adds to a cold start.
    judged, bare = r.cold_start[IN_RUNTIME], r.cold_start["default"]
    loaded = judged.boto3_loaded or bare.boto3_loaded
    verdict = _met(judged.median_ms <= TARGET_IMPORT_MS and not loaded)
    if judged.median_ms > TARGET_IMPORT_MS:
        verdict += f" by {judged.median_ms - TARGET_IMPORT_MS:.1f} ms"
    lines.append(
        f"| cold import of `handler`, default install: at most {TARGET_IMPORT_MS:.0f} ms median, boto3 not loaded; "
        "judged in the Lambda runtime (its own modules preloaded: what Lambda adds for the handler) "
        f"| in the runtime {judged.median_ms:.1f} ms; bare `python -S` {bare.median_ms:.1f} ms; "
        f"boto3 {'loaded' if loaded else 'not loaded'} | {verdict} |"
    )
    peers = [
        f"{label}: {' / '.join(_x(r.ratio(*event, name)) for event in big)}"
        for name, label in r.labels.items()
        if name in ("naive", "powertools")
    ]
    lines += ["", "Peers on the same events: " + "; ".join(peers) + "."]
    if "csv-plain-summary" in r.labels:  # issue 13: the EMF summary line's cost, by difference in the same run
        emf = " / ".join(_x(r.ratio("6 MB", s, "csv") / r.ratio("6 MB", s, "csv-plain-summary")) for s in SOURCES)
        lines += ["", f"The summary line in CloudWatch EMF (metrics on) against the plain line, csv 8 columns: {emf}."]
    return lines


def _ratios(r: Results) -> list[str]:
    events = [(size, source) for size in SIZES for source in SOURCES]
    lines = [
        "| | " + " | ".join(f"{size} {source}" for size, source in events) + " |",
        "|---|" + "---:|" * len(events),
        "| records | " + " | ".join(f"{r.events[e].records:,}" for e in events) + " |",
        "| event JSON (MB) | " + " | ".join(f"{r.events[e].json_bytes / 1e6:.2f}" for e in events) + " |",
        "| floor, best (ms) | " + " | ".join(_ms(r.floor_best(*e)) for e in events) + " |",
    ]
    for name, label in r.labels.items():
        lines.append(f"| {label} | " + " | ".join(_x(r.ratio(*e, name)) for e in events) + " |")
    return lines


def _scaling(r: Results) -> list[str]:
    lines = [
        "| variant | event | ms | records/s | MB/s | µs per record |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name in ("floor", "naive", "powertools", "csv4", "csv", "csv4-stdlib", "csv-stdlib", "jsonl"):
        for size in SIZES:
            for source in SOURCES:
                info, took = r.events[size, source], r.ratio(size, source, name) * r.floor_best(size, source)
                lines.append(
                    f"| {r.labels[name]} | {size} {source} | {_ms(took)} | {info.records / took:,.0f} "
                    f"| {info.json_bytes / 1e6 / took:.1f} | {took / info.records * 1e6:.1f} |"
                )
    return lines


def _split(r: Results) -> list[str]:
    lines = [
        "| event | budget (bytes) | Ok | re-ingested | fits: ms | over: ms | over / fits | over / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for source in SOURCES:
        fits, over = (r.splits[source, budget] for budget in BUDGETS)
        floor_best = r.floor_best("6 MB", source)
        lines.append(
            f"| 6 MB {source} | {over.budget:,} | {over.ok:,} | {over.reingested:,} "
            f"| {_ms(fits.timing.to_floor * floor_best)} | {_ms(over.timing.to_floor * floor_best)} "
            f"| {_x(over.timing.to_floor / fits.timing.to_floor)} | {_x(over.timing.to_floor)} |"
        )
    return lines


def _memory_and_cold_start(r: Results) -> list[str]:
    lines = ["| measure | value |", "|---|---|"]
    for source in SOURCES:
        for parser in ("msgspec", "stdlib"):
            m = r.memory[source, parser]
            lines.append(
                f"| peak traced memory, csv, {parser}, 6 MB {source} "
                f"| {m.peak / 1e6:.2f} MB = {_x(m.peak / m.json_bytes)} the event's JSON |"
            )
    for kind in COLD_STARTS:
        cold = r.cold_start[kind]
        lines.append(
            f"| cold import of `handler`, {_COLD_LABELS[kind]}: median of {len(cold.runs)} "
            f"| {cold.median_ms:.1f} ms (min {min(cold.runs) * 1000:.1f}, max {max(cold.runs) * 1000:.1f}); "
            f"loaded: {', '.join(cold.loaded) or 'none of boto3, botocore, msgspec, toolz'} |"
        )
    return lines


def render(results: Results, *, host: str, when: datetime | None = None) -> str:
    """RESULTS.md for a complete run."""
    when = when or datetime.now(UTC)
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"Written by `make bench` on {when:%Y-%m-%d %H:%M} UTC. Machine: {host}.",
            "",
            "Every ratio is to the floor on the same event in the same run: the floor runs just before each",
            "round, and the ratio is the median of the rounds' ratios, steadier than comparing times taken",
            "minutes apart on a shared machine. Events come from the project's generator",
            "(`pipeline.tools.generate.generate_event`, seed 0, about 10 % awkward records). The csv columns:",
            f"`{CSV_COLUMNS}` (8)",
            f"or `{CSV4_COLUMNS}` (4); jsonl writes the whole image. The default install parses with msgspec",
            "(projection pushdown); the stdlib rows are the fallback for an environment without it. The peers",
            "answer the same events: a naive blog-style handler (two fields, `','.join`) and a Powertools-style",
            "one (Powertools' Firehose data classes, boto3's `TypeDeserializer` on the columns' attributes,",
            "`csv.writer` of the same 8 columns); neither filters, budgets nor fails records one by one.",
            "",
            "## Targets",
            "",
            *_targets(results),
            "",
            "## Time relative to the floor",
            "",
            *_ratios(results),
            "",
            "## Scaling: 1 -> 3 -> 6 MB",
            "",
            "Time = ratio x the floor's best time on that event in this run: the handler on the machine at its",
            "least disturbed (its own best times, in pytest-benchmark's table, catch fewer quiet moments).",
            "Linear scaling shows as a steady µs per record.",
            "",
            *_scaling(results),
            "",
            "## Over the boundary",
            "",
            "JSON Lines of the whole image with three partition keys (table, day, hour), on the 6 MB events. Its",
            "output is smaller than these events (their changes carry both images; no configuration makes it",
            "larger), so `PIPELINE_MAX_RESPONSE_BYTES` is set to a quarter of the event: the records that do not",
            "fit are answered `Dropped` and re-ingested into an in-memory stream. The same configuration with the",
            "full 6 MiB budget, where everything fits, shows what the split itself costs.",
            "",
            *_split(results),
            "",
            "## Memory and cold start",
            "",
            "Peak traced allocation (tracemalloc) during one invocation, the event loaded before tracing starts.",
            "Cold start: `import handler` (`PIPELINE_COLUMNS=id`) timed inside a fresh `python -S`, bytecode",
            "cached; the default install is the zip `make package` builds (with msgspec), the stdlib fallback the",
            "same with msgspec unimportable. Bare: nothing imported before (no site either), so everything",
            "`handler` needs is charged to it. In the Lambda runtime: the default install imported after the",
            "modules the runtime's own bootstrap (awslambdaric) has imported before it imports a handler",
            "(importlib, json, logging, os, sys, time, traceback, datetime, enum, decimal, math,",
            "concurrent.futures); Lambda does not charge those to the handler, so this is what the handler adds",
            "to a cold start, and what the target is judged on.",
            "",
            *_memory_and_cold_start(results),
            "",
            "Reproduce with `make bench` (about four minutes; quieter machines give steadier numbers).",
            "",
        ]
    )
