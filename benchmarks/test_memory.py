"""Memory: the peak traced allocation of one invocation, relative to the size of the event's JSON.

The event is loaded before tracing starts (Lambda hands it over parsed); what is traced is the handler's own
work: the response being built and the record in flight, nothing held per record for the whole batch.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from .report import SOURCES, Memory
from .variants import CSV_COLUMNS, full_handler, json_size


def peak_traced(handler, event) -> int:
    """Peak bytes allocated (and traced) while *handler* answers *event*."""
    gc.collect()
    tracemalloc.start()
    try:
        handler(event, None)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("parser", ["msgspec", "stdlib"])
def test_peak_memory(make_event, results, quick, source, parser):
    event = make_event("6 MB", source)
    handler = full_handler({"PIPELINE_COLUMNS": CSV_COLUMNS}, stdlib=parser == "stdlib")
    handler(event, None)  # first-call work (caches, lazy imports) is not what a batch costs
    peak = peak_traced(handler, event)
    assert peak > 0
    if not quick:
        results.memory[source, parser] = Memory(peak, json_size(event))
