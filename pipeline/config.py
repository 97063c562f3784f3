"""Configuration from environment variables, read and checked once: a bad value fails at start-up.

Every error names the variable and the value, so a misconfigured function fails its first (cold) start
with a message that says what to fix, instead of failing records one by one.
"""

from __future__ import annotations

import logging
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .budget import LAMBDA_RESPONSE_LIMIT
from .columns import Column, parse_columns
from .encode import FORMATS, encode
from .iceberg import ICEBERG_MODES, column_types, parse_iceberg_table, parse_types
from .logs import DEFAULT_NAMESPACE, check_namespace
from .parse import EVENT_NAMES
from .partitions import PartitionKey, parse_partition_keys
from .project import IMAGES
from .values import is_utf8

__all__ = ["VARIABLES", "Config", "ConfigError"]

#: Each variable, its default and what it does (the README's configuration table is made from this).
VARIABLES: dict[str, tuple[str, str]] = {
    "PIPELINE_COLUMNS": (
        "",
        "Comma-separated column specs: attribute paths (`id`, `address.city`, `tags[0]`) or `@`-fields, "
        "each optionally `alias=spec`. Required for csv and tsv; for jsonl, unset means the whole image.",
    ),
    "PIPELINE_EVENTS": ("INSERT,MODIFY,REMOVE", "Event types to keep; the others are answered `Dropped`."),
    "PIPELINE_IMAGE": ("auto", "`auto` (NewImage, else OldImage, else Keys), `new`, `old` or `keys`."),
    "PIPELINE_FORMAT": ("csv", "`csv`, `tsv`, `jsonl` or `iceberg` (for Firehose's Apache Iceberg destination)."),
    "PIPELINE_NULL": ("", "Text written for NULL and missing attributes in csv and tsv."),
    "PIPELINE_PARTITION_KEYS": (
        "",
        "`key=spec[|strftime],...` for Firehose dynamic partitioning, "
        "e.g. `day=@approximateCreationDateTime|%Y-%m-%d`.",
    ),
    "PIPELINE_MAX_RESPONSE_BYTES": (str(LAMBDA_RESPONSE_LIMIT), "Budget for the serialised response."),
    "PIPELINE_REINGEST": ("on", "`on`: re-ingest records over the budget; `off`: answer them ProcessingFailed."),
    "PIPELINE_REINGEST_MAX_ATTEMPTS": ("8", "Attempts per re-ingestion batch before the invocation fails."),
    "PIPELINE_METRICS_NAMESPACE": (
        DEFAULT_NAMESPACE,
        "CloudWatch namespace of the metrics in the summary line (embedded metric format); `off`: a plain line.",
    ),
    "LOG_LEVEL": ("INFO", "DEBUG, INFO, WARNING or ERROR."),
    # --- Firehose's Apache Iceberg destination (PIPELINE_FORMAT=iceberg) ---
    "PIPELINE_ICEBERG_TABLE": (
        "",
        "`database.table` each change goes to (`otfMetadata`); `{tableName}` in it is the change's DynamoDB table. "
        "Required for iceberg.",
    ),
    "PIPELINE_ICEBERG_MODE": (
        "append",
        "`append`: every change is a row (operation insert); `upsert`: INSERT and MODIFY update, REMOVE deletes, "
        "on the key columns.",
    ),
    "PIPELINE_ICEBERG_KEYS": (
        "",
        "The columns that identify a row (Firehose's unique keys), e.g. `id,sk`. Required for upsert.",
    ),
    "PIPELINE_ICEBERG_TYPES": (
        "",
        "`column=type,...`: the Iceberg types of columns that are not `string` "
        "(e.g. `amount=decimal(38,2),n=bigint`); the @-times are timestamp.",
    ),
}
T = TypeVar("T")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A configuration variable has a value the pipeline cannot use; ``variable`` and ``reason`` say which and why.

    >>> error = ConfigError("PIPELINE_FORMAT='xml': not one of csv, tsv, jsonl", "PIPELINE_FORMAT", "not one of ...")
    >>> error.variable, error.reason
    ('PIPELINE_FORMAT', 'not one of ...')
    """

    def __init__(self, message: str, variable: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.variable, self.reason = variable, reason if reason is not None else message


#: Config's fields after ``columns``, in order, with their defaults.
_DEFAULTS: dict[str, Any] = {
    "events": EVENT_NAMES,
    "image": "auto",
    "format": "csv",
    "null": "",
    "partition_keys": (),
    "max_response_bytes": LAMBDA_RESPONSE_LIMIT,
    "reingest": True,
    "reingest_max_attempts": 8,
    "metrics_namespace": DEFAULT_NAMESPACE,  # None: the summary line carries no metrics
    "log_level": logging.INFO,
    "iceberg_table": "",
    "iceberg_mode": "append",
    "iceberg_keys": (),
    "iceberg_types": (),  # (column name, Iceberg type) for every column, in order
}


# a namedtuple subclass (see pipeline.records), not a dataclass: dataclasses imports inspect, 10 ms of cold start
class Config(namedtuple("Config", ["columns", *_DEFAULTS], defaults=list(_DEFAULTS.values()))):
    """The checked configuration of one pipeline."""

    __slots__ = ()
    columns: tuple[Column, ...] | None
    events: frozenset[str]
    image: str
    format: str
    null: str
    partition_keys: tuple[PartitionKey, ...]
    max_response_bytes: int
    reingest: bool
    reingest_max_attempts: int
    metrics_namespace: str | None
    log_level: int
    iceberg_table: str
    iceberg_mode: str
    iceberg_keys: tuple[str, ...]
    iceberg_types: tuple[tuple[str, str], ...]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read the ``PIPELINE_*`` variables (and ``LOG_LEVEL``) from *env*.

        >>> sorted(Config.from_env({"PIPELINE_COLUMNS": "id,name", "PIPELINE_EVENTS": "insert, MODIFY"}).events)
        ['INSERT', 'MODIFY']
        >>> Config.from_env({"PIPELINE_FORMAT": "xml"})
        Traceback (most recent call last):
        pipeline.config.ConfigError: PIPELINE_FORMAT='xml': not one of csv, tsv, jsonl, iceberg
        """

        for name in VARIABLES:  # names and null text reach the output and the response: UTF-8 text only
            if name in env and not is_utf8(env[name]):
                raise ConfigError(f"{name}={env[name]!r}: not UTF-8 text (the environment held bytes that are not)")

        def get(name: str) -> str:
            return env.get(name, VARIABLES[name][0]).strip()

        def check(name: str, parse: Callable[[str], T]) -> T:
            try:
                return parse(get(name))
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{name}={env.get(name, '')!r}: {exc}", name, str(exc)) from None

        fmt = check("PIPELINE_FORMAT", lambda text: _choice(text.lower(), FORMATS))
        null = env.get("PIPELINE_NULL", "")  # not stripped: blanks may be the wanted null text
        check("PIPELINE_NULL", lambda _: encode(fmt, null=null, types=()))  # types: checked with the columns
        columns = check("PIPELINE_COLUMNS", lambda text: parse_columns(text) if text else None)
        if columns is None and fmt != "jsonl":
            why = f"required when PIPELINE_FORMAT is {fmt}"
            raise ConfigError(
                f"PIPELINE_COLUMNS is {why} (e.g. PIPELINE_COLUMNS=id,name,@eventName); "
                "only jsonl can write the whole image",
                "PIPELINE_COLUMNS",
                f"{why} (e.g. id,name,@eventName); only jsonl can write the whole image",
            )
        reingest = check("PIPELINE_REINGEST", lambda text: _choice(text.lower(), ("on", "off")))
        level = check("LOG_LEVEL", lambda text: _choice(text.upper(), _LEVELS))
        partition_keys = check("PIPELINE_PARTITION_KEYS", parse_partition_keys)
        iceberg = _iceberg(env, fmt, columns, partition_keys, check)
        return cls(
            columns=columns,
            events=check("PIPELINE_EVENTS", _events),
            image=check("PIPELINE_IMAGE", lambda text: _choice(text.lower(), IMAGES)),
            format=fmt,
            null=null,
            partition_keys=partition_keys,
            max_response_bytes=check(
                "PIPELINE_MAX_RESPONSE_BYTES", lambda text: _whole(text, 1024, LAMBDA_RESPONSE_LIMIT)
            ),
            reingest=reingest == "on",
            reingest_max_attempts=check("PIPELINE_REINGEST_MAX_ATTEMPTS", lambda text: _whole(text, 1)),
            metrics_namespace=check("PIPELINE_METRICS_NAMESPACE", _namespace),
            log_level=logging.getLevelName(level),
            **iceberg,
        )


def _iceberg(
    env: Mapping[str, str],
    fmt: str,
    columns: tuple[Column, ...] | None,
    partition_keys: tuple[PartitionKey, ...],
    check: Callable[[str, Callable[[str], T]], T],
) -> dict[str, Any]:
    """The ``iceberg_*`` fields, checked: the PIPELINE_ICEBERG_* variables go with PIPELINE_FORMAT=iceberg only."""
    mode = check("PIPELINE_ICEBERG_MODE", lambda text: _choice(text.lower(), ICEBERG_MODES))
    names = ("PIPELINE_ICEBERG_TABLE", "PIPELINE_ICEBERG_KEYS", "PIPELINE_ICEBERG_TYPES")
    if fmt != "iceberg":
        for name in names:
            if env.get(name, "").strip():
                raise ConfigError(f"{name}={env[name]!r}: only used with PIPELINE_FORMAT=iceberg (it is {fmt})")
        if mode != _DEFAULTS["iceberg_mode"]:  # the default may be set (the template does): it changes nothing
            raise ConfigError(f"PIPELINE_ICEBERG_MODE={mode}: only used with PIPELINE_FORMAT=iceberg (it is {fmt})")
        return {"iceberg_mode": mode}
    assert columns is not None  # PIPELINE_COLUMNS is required for every format but jsonl
    if not env.get("PIPELINE_ICEBERG_TABLE", "").strip():
        raise ConfigError(
            "PIPELINE_ICEBERG_TABLE is required when PIPELINE_FORMAT is iceberg "
            "(e.g. PIPELINE_ICEBERG_TABLE=analytics.orders, or analytics.{tableName} to route by DynamoDB table)"
        )
    table = check("PIPELINE_ICEBERG_TABLE", lambda text: ".".join(parse_iceberg_table(text)))
    if partition_keys:
        raise ConfigError(
            f"PIPELINE_PARTITION_KEYS={env['PIPELINE_PARTITION_KEYS']!r}: partition keys are for S3 dynamic "
            "partitioning; with PIPELINE_FORMAT=iceberg the table's own partition spec decides (unset it)"
        )
    names_in_columns = [c.name for c in columns]

    def keys(text: str) -> tuple[str, ...]:
        found = tuple(k.strip() for k in text.split(",") if k.strip())
        unknown = [k for k in found if k not in names_in_columns]
        if unknown:
            raise ValueError(f"{unknown} are not among the column names {names_in_columns} (PIPELINE_COLUMNS)")
        if len(set(found)) != len(found):
            raise ValueError("a key column is named twice")
        return found

    key_columns = check("PIPELINE_ICEBERG_KEYS", keys)
    if mode == "upsert" and not key_columns:
        raise ConfigError(
            "PIPELINE_ICEBERG_KEYS is required when PIPELINE_ICEBERG_MODE is upsert: the columns Firehose matches "
            "rows on (its unique keys), e.g. PIPELINE_ICEBERG_KEYS=id"
        )
    image = env.get("PIPELINE_IMAGE", "auto").strip().lower()
    if mode == "upsert" and image in ("new", "old"):
        raise ConfigError(
            f"PIPELINE_IMAGE={image}: upsert matches rows on the key columns, and some changes have no {image} "
            "image to take them from (a REMOVE has no new one, an INSERT no old one): use auto or keys"
        )
    types = check("PIPELINE_ICEBERG_TYPES", lambda text: column_types(columns, parse_types(text)))
    return {"iceberg_table": table, "iceberg_mode": mode, "iceberg_keys": key_columns, "iceberg_types": types}


def _choice(text: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise ValueError(f"not one of {', '.join(choices)}")
    return text


def _events(text: str) -> frozenset[str]:
    names = frozenset(n.strip().upper() for n in text.split(",") if n.strip())
    unknown = names - EVENT_NAMES
    if unknown or not names:
        raise ValueError(f"not a subset of {', '.join(sorted(EVENT_NAMES))}")
    return names


def _namespace(text: str) -> str | None:
    return None if text.lower() == "off" else check_namespace(text)


def _whole(text: str, least: int, most: int | None = None) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise ValueError("not a whole number") from None
    if value < least:
        raise ValueError(f"must be at least {least}")
    if most is not None and value > most:
        raise ValueError(f"must be at most {most} (Lambda's response limit)")
    return value
