"""Time per invocation: the floor, the naive baseline and the full handler, on the same events in one run.

Each event (1, 3 and just under 6 MB, Kinesis and Direct PUT sources) goes through every variant, the floor
first, so that the ratios in RESULTS.md compare work done on the same data in the same run.
"""

from __future__ import annotations

import base64
import statistics
import time

import pytest

from pipeline import LAMBDA_RESPONSE_LIMIT, Config, make_handler
from pipeline.local.memory import MemoryStreams
from pipeline.parse import DEFAULT_PARSER
from pipeline.reingest import to_source

from .report import BUDGETS, SIZES, SOURCES, EventInfo, Split, Timing
from .variants import VARIANTS, floor, json_size, lowered_budget, over_boundary_handler

ROUNDS = {"1 MB": 61, "3 MB": 31, "6 MB": 31}  # odd: the median is a round; enough to ride out a busy spell


def paired(benchmark, handler, event, rounds: int):
    """Benchmark *handler* on *event*, timing the floor on the same event just before each round.

    Other work on a shared machine comes and goes; a floor run next to each round sees the same conditions,
    so the median of the per-round ratios is steadier than a ratio of times taken minutes apart.
    Returns the handler's response and, when measured, its Timing.
    """
    floor_times: list[float] = []

    def time_floor() -> None:
        started = time.perf_counter()
        floor(event)
        floor_times.append(time.perf_counter() - started)

    response = benchmark.pedantic(handler, args=(event, None), setup=time_floor, rounds=rounds, warmup_rounds=1)
    if benchmark.stats is None:  # quick mode: run once, not measured
        return response, None
    stats = benchmark.stats.stats
    ratios = [t / f for t, f in zip(stats.data, floor_times[-rounds:], strict=True)]
    return response, Timing(stats.min, stats.median, stats.rounds, statistics.median(ratios), min(floor_times))


def test_the_default_parser_is_msgspec():
    """The default-install rows use the default parser: msgspec, a runtime dependency."""
    assert DEFAULT_PARSER == "msgspec"


@pytest.mark.parametrize(
    ("size", "source", "variant"),
    [(size, source, variant) for size in SIZES for source in SOURCES for variant in VARIANTS],
    ids=lambda value: getattr(value, "name", str(value).replace(" ", "")),
)
def test_invocation(benchmark, make_event, results, size, source, variant):
    event = make_event(size, source)
    handler = variant.make()
    benchmark.group = f"{size} {source}"
    response, measured = paired(benchmark, handler, event, ROUNDS[size])

    assert [e["recordId"] for e in response["records"]] == [r["recordId"] for r in event["records"]]
    assert {e["result"] for e in response["records"]} == {"Ok"}  # every generated change transforms
    if measured:
        results.labels[variant.name] = variant.label
        results.events[size, source] = EventInfo(len(event["records"]), json_size(event))
        results.timings[size, source, variant.name] = measured


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("budget", BUDGETS)
def test_over_the_boundary(benchmark, make_event, results, source, budget):
    """The size-budget split: records over the budget are answered Dropped and re-ingested (into memory)."""
    event = make_event("6 MB", source)
    max_bytes = LAMBDA_RESPONSE_LIMIT if budget == "fits" else lowered_budget(event)
    handler = over_boundary_handler(max_bytes)
    benchmark.group = f"6 MB {source} over the boundary"
    response, measured = paired(benchmark, handler, event, ROUNDS["6 MB"])

    answered = [e["result"] for e in response["records"]]
    ok, over = answered.count("Ok"), answered.count("Dropped")
    assert ok + over == len(event["records"])
    assert (over > 0) == (budget == "over")
    assert json_size(response) <= max_bytes
    if measured:
        results.splits[source, budget] = Split(max_bytes, ok, over, measured)


def test_over_the_boundary_reingests_the_original_bytes(make_event):
    """What goes back to the source is each dropped record's original bytes, with its partition key."""
    event = make_event("1 MB", "kinesis")
    streams = MemoryStreams()
    config = Config.from_env({"PIPELINE_FORMAT": "jsonl", "PIPELINE_MAX_RESPONSE_BYTES": str(lowered_budget(event))})
    handler = make_handler(config, reingester=lambda event, context: to_source(event, context, client=streams))
    response = handler(event, None)

    dropped = {e["recordId"] for e in response["records"] if e["result"] == "Dropped"}
    assert dropped
    assert streams.put["orders-changes"] == [
        (base64.b64decode(r["data"]), r["kinesisRecordMetadata"]["partitionKey"])
        for r in event["records"]
        if r["recordId"] in dropped
    ]
