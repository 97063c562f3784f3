"""The Lambda handler assembled from the stages: validate the event, run the stages, answer, log a summary."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .budget import BudgetError, within_budget
from .config import Config
from .decode import decode
from .encode import encode
from .events import keep_events
from .iceberg import with_otf_metadata
from .logs import embedded_metrics, log
from .parse import EVENT_NAMES, MSGSPEC_LOADED, parse, reads_for, resolve_parser
from .partitions import with_partition_keys
from .project import ColumnPresence, note_presence, project
from .records import Stage, chain
from .reingest import Reingester, ReingestError, fail_overflow, reingest, to_source
from .response import Summary, respond
from .values import is_utf8, label

__all__ = ["InvalidEvent", "firehose_records", "make_handler", "stages"]

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


class InvalidEvent(ValueError):
    """The event is not a Firehose transformation event that can be answered record by record."""


def firehose_records(event: Any) -> list[Mapping[str, Any]]:
    """The event's records, checked so that every one can be answered exactly once (ids are UTF-8 text).

    >>> firehose_records({"records": [{"recordId": "a", "data": ""}]})
    [{'recordId': 'a', 'data': ''}]
    >>> firehose_records({"Records": []})
    Traceback (most recent call last):
    pipeline.app.InvalidEvent: not a Firehose transformation event: it has no 'records' list
    """
    records = event.get("records") if isinstance(event, Mapping) else None
    if type(records) is not list:
        raise InvalidEvent("not a Firehose transformation event: it has no 'records' list")
    seen: set[str] = set()
    for i, rec in enumerate(records):
        record_id = rec.get("recordId") if type(rec) is dict or isinstance(rec, Mapping) else None
        if type(record_id) is not str:
            raise InvalidEvent(f"records[{i}] has no recordId text, so it cannot be answered")
        if not record_id.isascii() and not is_utf8(record_id):  # Firehose's ids are ASCII: no call for them
            raise InvalidEvent(f"records[{i}] recordId is not UTF-8 text, so no response can carry it")
        if record_id in seen:
            raise InvalidEvent(f"records[{i}] repeats recordId {label(record_id)}; each must be answered once")
        seen.add(record_id)
    return records


def stages(config: Config, *, parser: str | None = None, presence: ColumnPresence | None = None) -> list[Stage]:
    """The event-independent stages for *config*, in order: decode ... encode.

    The parser decodes only what the other stages read (projection pushdown, see :mod:`pipeline.parse`);
    *parser* is ``msgspec`` or ``stdlib`` (default: msgspec when it loads). ``keep_events`` is left out when
    every event type is kept: parse lets only those through. With *presence*, the projected rows are noted in
    it (which columns had values).
    """
    extra = [k.column.spec for k in config.partition_keys]
    if config.format == "iceberg":
        extra.append("@tableName")  # the routing's {tableName}
    reads = reads_for(config.columns, extra, config.image)
    chosen: list[Stage] = [decode, parse(parser=parser, reads=reads)]
    if config.events != EVENT_NAMES:
        chosen.append(keep_events(config.events))
    if config.partition_keys:
        chosen.append(with_partition_keys(config.partition_keys, config.image))
    if config.format == "iceberg":
        assert config.columns is not None
        keys = [c for c in config.columns if c.name in config.iceberg_keys]
        chosen.append(with_otf_metadata(config.iceberg_table, config.iceberg_mode, keys, config.image))
    chosen.append(project(config.columns, config.image))
    if presence is not None:
        chosen.append(note_presence(presence))
    types = config.iceberg_types if config.format == "iceberg" else None
    chosen.append(encode(config.format, null=config.null, types=types))
    return chosen


def make_handler(
    config: Config,
    *,
    parser: str | None = None,
    reingester: Callable[[Mapping[str, Any], Any], Reingester] | None = None,
    on_summary: Callable[[dict[str, Any], list[str]], None] | None = None,
) -> Handler:
    """Build ``lambda_handler(event, context)`` for *config*; every stage is checked now, not per event.

    The built-in stages run fused (:func:`pipeline.records.chain`): one loop, one ``try`` and one envelope per
    record from decode to encode. *parser* is ``msgspec`` or ``stdlib`` (default: msgspec when it loads; if it
    cannot, that is logged once). *reingester* makes the re-ingestion target for an invocation (default:
    :func:`to_source`); tests and benchmarks pass one with their own client. *on_summary* is given each
    invocation's summary fields and the columns never seen in it (the command line prints them).
    """
    if not MSGSPEC_LOADED:
        _say_fallback_once()
    presence = ColumnPresence.for_columns(config.columns)
    transform = chain(stages(config, parser=resolve_parser(parser), presence=presence))
    make_target = reingester or (
        lambda event, context: to_source(event, context, max_attempts=config.reingest_max_attempts)
    )

    def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        summary = Summary()
        target: Reingester | None = None
        if presence is not None:
            presence.reset()
        try:  # whatever ends the invocation, it logs the failure and the summary
            batch = firehose_records(event)
            target = make_target(event, context) if config.reingest else None
            budget = within_budget(config.max_response_bytes, (r["recordId"] for r in batch))
            overflow = reingest(target) if target is not None else fail_overflow
            response = respond(overflow(budget(transform(batch))), summary)
        except Exception as exc:
            log(logging.ERROR, "invocation failed", error=_failure(exc))
            _log_summary(event, context=context, summary=summary, target=target, started=started, config=config)
            raise
        never_seen = presence.never_seen() if presence is not None else []
        fields = _log_summary(
            event,
            context=context,
            batch=batch,
            summary=summary,
            target=target,
            started=started,
            config=config,
            never_seen=never_seen,
        )
        if on_summary is not None:
            on_summary(fields, never_seen)
        return response

    return lambda_handler


_fallback_said: list[bool] = []


def _say_fallback_once() -> None:
    if not _fallback_said:
        _fallback_said.append(True)
        log(logging.WARNING, "msgspec could not be loaded: records are parsed with the standard library")


_OWN_ERRORS = (InvalidEvent, BudgetError, ReingestError)


def _failure(exc: Exception) -> str:
    """What ended the invocation, for the log: our own messages in full, others by type (they may quote data)."""
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, _OWN_ERRORS) else type(exc).__name__


def _log_summary(
    event: Any,
    *,
    context: Any,
    summary: Summary,
    target: Reingester | None,
    started: float,
    config: Config,
    batch: list[Mapping[str, Any]] | None = None,
    never_seen: list[str] | None = None,
) -> dict[str, Any]:
    if batch is None:  # the invocation failed: count what can be counted, whatever shape the event has
        records = event.get("records") if isinstance(event, Mapping) else None
        batch = records if type(records) is list else []
    for record_id, reason in summary.failures:
        log(logging.WARNING, "record failed", recordId=record_id, reason=reason)
    if never_seen:  # names only: a typo in PIPELINE_COLUMNS would write empty cells without a word
        log(logging.WARNING, "columns never seen", columns=never_seen)
    fields: dict[str, Any] = {
        "invocationId": event.get("invocationId") if isinstance(event, Mapping) else None,
        "requestId": getattr(context, "aws_request_id", None),
        "records": len(batch),
        "results": {k: summary.results[k] for k in ("Ok", "Dropped", "ProcessingFailed")},
        "bytesIn": sum(map(_data_size, batch)),
        "bytesOut": summary.bytes_out,
        "durationMs": round((time.perf_counter() - started) * 1000, 1),
        "reasons": dict(summary.reasons.most_common(20)),
    }
    failed = summary.results["ProcessingFailed"]
    if failed > len(summary.failures):
        fields["failuresNotLogged"] = failed - len(summary.failures)
    if never_seen:
        fields["columnsNeverSeen"] = len(never_seen)
    if target is not None:
        stats = target.stats
        fields["reingested"] = {
            "records": stats.records,
            "bytes": stats.bytes,
            "calls": stats.calls,
            "attempts": stats.attempts,
            "retriedEntries": stats.retried_entries,
            "errorCodes": dict(stats.error_codes),
        }
        if stats.not_reingested:
            fields["reingested"]["notReingested"] = stats.not_reingested
    # --- the line as CloudWatch embedded metric format (PIPELINE_METRICS_NAMESPACE; README "Metrics") ---
    if config.metrics_namespace is not None:
        fields.update(_metrics(event, context=context, fields=fields, summary=summary, target=target, config=config))
    log(logging.INFO, "summary", **fields)
    return fields


def _metrics(
    event: Mapping[str, Any],
    *,
    context: Any,
    fields: Mapping[str, Any],
    summary: Summary,
    target: Reingester | None,
    config: Config,
) -> dict[str, Any]:
    """The summary line's EMF members: its counts again, under the metric names, with their dimensions."""
    results = summary.results
    stats = target.stats if target is not None else None
    values = {
        "RecordsIn": fields.get("records", 0),
        "RecordsOk": results["Ok"],
        "RecordsDropped": results["Dropped"],
        "RecordsFailed": results["ProcessingFailed"],
        "RecordsReingested": stats.records if stats is not None else 0,
        "ReingestRetries": stats.retried_entries if stats is not None else 0,
        "BytesIn": fields.get("bytesIn", 0),
        "BytesOut": summary.bytes_out,
        "ResponseBytes": summary.response_bytes,
        "ResponseBudgetShare": round(summary.response_bytes * 100 / config.max_response_bytes, 2),
        "DurationMs": fields.get("durationMs", 0),
    }
    function = getattr(context, "function_name", None)
    arn = event.get("deliveryStreamArn") if isinstance(event, Mapping) else None
    stream = arn.rpartition("/")[2] if type(arn) is str else None  # arn:...:deliverystream/NAME
    dimensions = {  # a dimension's value must be a non-empty string: "unknown" outside Lambda and Firehose
        "FunctionName": function if type(function) is str and function else "unknown",
        "DeliveryStreamName": stream or "unknown",
    }
    return embedded_metrics(config.metrics_namespace or "", dimensions, values, int(time.time() * 1000))


def _data_size(rec: Any) -> int:
    data = rec.get("data") if isinstance(rec, Mapping) else None
    if type(data) is not str:
        return 0
    return len(data) * 3 // 4 - (2 if data.endswith("==") else 1 if data.endswith("=") else 0)
