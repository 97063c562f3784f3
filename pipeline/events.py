"""Stage 3: keep only the chosen event types (INSERT, MODIFY, REMOVE); the others become ``Dropped``."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .parse import EVENT_NAMES
from .records import Drop, Stage, per_record

__all__ = ["keep_events"]

_NOT_SELECTED = Drop("event type not selected")


def keep_events(names: Collection[str] = EVENT_NAMES) -> Stage:
    """Keep changes whose ``eventName`` is in *names*; a record left with no change is ``Dropped``.

    >>> changes = [{"eventName": e, "dynamodb": {"Keys": {}}} for e in ("INSERT", "REMOVE")]
    >>> [r.result for r in keep_events({"INSERT"})(changes)]
    ['Ok', 'Dropped']
    >>> keep_events({"UPSERT"})
    Traceback (most recent call last):
    ValueError: unknown event names: ['UPSERT'] (known: INSERT, MODIFY, REMOVE)
    """
    if isinstance(names, str):
        raise TypeError("keep_events takes a collection of event names, not one string")
    wanted = frozenset(names)
    unknown = wanted - EVENT_NAMES
    if unknown:
        raise ValueError(f"unknown event names: {sorted(unknown)} (known: {', '.join(sorted(EVENT_NAMES))})")
    if not wanted:
        raise ValueError("no event names given")
    if wanted == EVENT_NAMES:
        return per_record(lambda changes: changes, "keep_events")

    def keep(changes: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...] | Drop:
        if len(changes) == 1:
            return changes if changes[0]["eventName"] in wanted else _NOT_SELECTED
        kept = tuple([c for c in changes if c["eventName"] in wanted])
        return kept or _NOT_SELECTED

    return per_record(keep, "keep_events")
