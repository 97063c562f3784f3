"""The Lambda handler assembled from the stages: validate the event, run the stages, answer, log a summary."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .budget import Budget, BudgetError, decoded_size
from .chunks import fast_chunks
from .config import Config
from .encode import encode
from .iceberg import with_otf_metadata
from .logs import embedded_metrics, log
from .parse import EVENT_NAMES, MSGSPEC_LOADED, decode, keep_events, parse, reads_for, resolve_parser, strict_b64decode
from .partitions import with_partition_keys
from .plan import answer, fast_rows
from .project import ColumnPresence, note_presence, project
from .records import Stage, chain, per_record
from .reingest import Reingester, ReingestError, fail_one, to_source, to_target
from .response import Response, Summary
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
    return _records_and_ids(event)[0]


def _records_and_ids(event: Any) -> tuple[list[Mapping[str, Any]], tuple[str, ...], tuple[Any, ...]]:
    """:func:`firehose_records`, with the ids and the ``data`` values (None where missing) in order.

    The records are read once, here (each later pass over thousands of records would miss the CPU's caches
    again); Firehose's ids (unique ASCII text) are checked at C speed.
    """
    records = event.get("records") if isinstance(event, Mapping) else None
    if type(records) is not list:
        raise InvalidEvent("not a Firehose transformation event: it has no 'records' list")
    ids: list[Any] = []
    datas: list[Any] = []
    add_id, add_data = ids.append, datas.append
    try:
        for rec in records:
            add_id(rec["recordId"])
            add_data(rec["data"])
    except Exception:  # a record that is not a mapping, or has no id or no data: the loop below
        ids, datas = [], _datas_of(records)
    if len(ids) == len(records) and (
        not ids or (set(map(type, ids)) == {str} and all(map(str.isascii, ids)) and len(set(ids)) == len(ids))
    ):
        return records, tuple(ids), tuple(datas)  # tuples of strings: the collector untracks them, not walks them
    seen: set[str] = set()
    for i, rec in enumerate(records):  # the first record at fault, named
        record_id = rec.get("recordId") if type(rec) is dict or isinstance(rec, Mapping) else None
        if type(record_id) is not str:
            raise InvalidEvent(f"records[{i}] has no recordId text, so it cannot be answered")
        if not record_id.isascii() and not is_utf8(record_id):
            raise InvalidEvent(f"records[{i}] recordId is not UTF-8 text, so no response can carry it")
        if record_id in seen:
            raise InvalidEvent(f"records[{i}] repeats recordId {label(record_id)}; each must be answered once")
        seen.add(record_id)
    return records, tuple(rec["recordId"] for rec in records), tuple(datas)


def _datas_of(records: list[Any]) -> list[Any]:
    """Each record's ``data`` value, None where a record is not a mapping or has none (the one-by-one way)."""
    return [rec.get("data") if isinstance(rec, Mapping) else None for rec in records]


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
    parser = resolve_parser(parser)
    # the standard library path decodes base64 with binascii too: what runs where msgspec cannot load
    first = decode if parser == "msgspec" else per_record(strict_b64decode, "decode")
    chosen: list[Stage] = [first, parse(parser=parser, reads=reads)]
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
    fast: bool = True,
) -> Handler:
    """Build ``lambda_handler(event, context)`` for *config*; every stage is checked now, not per event.

    The batch is answered by the plan (:mod:`pipeline.plan`): one loop in which each record takes the fast
    row when it can, and the stages, fused (:func:`pipeline.records.chain`), when it cannot; configurations the
    plan does not cover run the fused stages on the whole batch. *parser* is ``msgspec`` or ``stdlib``
    (default: msgspec when it loads; if it cannot, that is logged once). *reingester* makes the re-ingestion
    target for an invocation (default: :func:`to_source`); tests and benchmarks pass one with their own client.
    *on_summary* is given each invocation's summary fields and the columns never seen in it (the command line
    prints them). ``fast=False`` leaves the plan's fast row out: every record goes through the stages (the
    tests compare the two).
    """
    if not MSGSPEC_LOADED:
        _say_fallback_once()
    presence = ColumnPresence.for_columns(config.columns)
    parser = resolve_parser(parser)
    built = stages(config, parser=parser, presence=presence)
    transform = chain(built)
    fusable = all(hasattr(stage, "steps") for stage in built)  # else the plan cannot run the stages' steps
    steps = [step for stage in built for step in getattr(stage, "steps", ())]
    row = fast_rows(config, steps, parser=parser, presence=presence) if fusable and fast else None
    chunk = fast_chunks(config, parser=parser, presence=presence) if row is not None else None
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
            batch, ids, datas = _records_and_ids(event)
            target = make_target(event, context) if config.reingest else None
            budget = Budget(config.max_response_bytes, ids)
            send = to_target(target) if target is not None else fail_one
            answered = Response(summary)
            if row is not None:
                bytes_in = answer(
                    batch,
                    row,
                    ids=ids,
                    datas=datas,
                    transform=transform,
                    budget=budget,
                    send=send,
                    response=answered,
                    chunk=chunk,
                )
            else:
                for rec in transform(batch):
                    answered.add(send(budget.admit(rec)))
                bytes_in = decoded_size(datas)
            if target is not None:
                target.flush()  # the last re-ingestion batch
            response = answered.done(budget.ids_size)  # every record answered once: the ids the budget measured
        except Exception as exc:
            log(logging.ERROR, "invocation failed", error=_failure(exc))
            _log_summary(event, context=context, summary=summary, target=target, started=started, config=config)
            raise
        never_seen = presence.never_seen() if presence is not None else []
        fields = _log_summary(
            event,
            context=context,
            records=len(batch),
            bytes_in=bytes_in,
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
    records: int | None = None,
    bytes_in: int | None = None,
    never_seen: list[str] | None = None,
) -> dict[str, Any]:
    if records is None or bytes_in is None:  # the invocation failed: count what can be, whatever the event's shape
        batch = event.get("records") if isinstance(event, Mapping) else None
        batch = batch if type(batch) is list else []
        records = len(batch)
        bytes_in = decoded_size(_datas_of(batch))
    for record_id, reason in summary.failures:
        log(logging.WARNING, "record failed", recordId=record_id, reason=reason)
    if never_seen:  # names only: a typo in PIPELINE_COLUMNS would write empty cells without a word
        log(logging.WARNING, "columns never seen", columns=never_seen)
    fields: dict[str, Any] = {
        "invocationId": event.get("invocationId") if isinstance(event, Mapping) else None,
        "requestId": getattr(context, "aws_request_id", None),
        "records": records,
        "results": {k: summary.results[k] for k in ("Ok", "Dropped", "ProcessingFailed")},
        "bytesIn": bytes_in,
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
