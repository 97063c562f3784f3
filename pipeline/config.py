"""Configuration from environment variables, read and checked once: a bad value fails at start-up.

Every error names the variable and the value, so a misconfigured function fails its first (cold) start
with a message that says what to fix, instead of failing records one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import NamedTuple, TypeVar

from .budget import LAMBDA_RESPONSE_LIMIT
from .columns import Column, parse_columns
from .encode import FORMATS, encode
from .parse import EVENT_NAMES
from .partitions import PartitionKey, parse_partition_keys
from .project import IMAGES

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
    "PIPELINE_FORMAT": ("csv", "`csv`, `tsv` or `jsonl`."),
    "PIPELINE_NULL": ("", "Text written for NULL and missing attributes in csv and tsv."),
    "PIPELINE_PARTITION_KEYS": (
        "",
        "`key=spec[|strftime],...` for Firehose dynamic partitioning, "
        "e.g. `day=@approximateCreationDateTime|%Y-%m-%d`.",
    ),
    "PIPELINE_MAX_RESPONSE_BYTES": (str(LAMBDA_RESPONSE_LIMIT), "Budget for the serialised response."),
    "PIPELINE_REINGEST": ("on", "`on`: re-ingest records over the budget; `off`: answer them ProcessingFailed."),
    "PIPELINE_REINGEST_MAX_ATTEMPTS": ("8", "Attempts per re-ingestion batch before the invocation fails."),
    "LOG_LEVEL": ("INFO", "DEBUG, INFO, WARNING or ERROR."),
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


class Config(NamedTuple):  # a NamedTuple, not a dataclass: dataclasses imports inspect, 10 ms of cold start
    """The checked configuration of one pipeline."""

    columns: tuple[Column, ...] | None
    events: frozenset[str] = EVENT_NAMES
    image: str = "auto"
    format: str = "csv"
    null: str = ""
    partition_keys: tuple[PartitionKey, ...] = ()
    max_response_bytes: int = LAMBDA_RESPONSE_LIMIT
    reingest: bool = True
    reingest_max_attempts: int = 8
    log_level: int = logging.INFO

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read the ``PIPELINE_*`` variables (and ``LOG_LEVEL``) from *env*.

        >>> sorted(Config.from_env({"PIPELINE_COLUMNS": "id,name", "PIPELINE_EVENTS": "insert, MODIFY"}).events)
        ['INSERT', 'MODIFY']
        >>> Config.from_env({"PIPELINE_FORMAT": "xml"})
        Traceback (most recent call last):
        pipeline.config.ConfigError: PIPELINE_FORMAT='xml': not one of csv, tsv, jsonl
        """

        def get(name: str) -> str:
            return env.get(name, VARIABLES[name][0]).strip()

        def check(name: str, parse: Callable[[str], T]) -> T:
            try:
                return parse(get(name))
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{name}={env.get(name, '')!r}: {exc}", name, str(exc)) from None

        fmt = check("PIPELINE_FORMAT", lambda text: _choice(text.lower(), FORMATS))
        null = env.get("PIPELINE_NULL", "")  # not stripped: blanks may be the wanted null text
        check("PIPELINE_NULL", lambda _: encode(fmt, null=null))
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
        return cls(
            columns=columns,
            events=check("PIPELINE_EVENTS", _events),
            image=check("PIPELINE_IMAGE", lambda text: _choice(text.lower(), IMAGES)),
            format=fmt,
            null=null,
            partition_keys=check("PIPELINE_PARTITION_KEYS", parse_partition_keys),
            max_response_bytes=check(
                "PIPELINE_MAX_RESPONSE_BYTES", lambda text: _whole(text, 1024, LAMBDA_RESPONSE_LIMIT)
            ),
            reingest=reingest == "on",
            reingest_max_attempts=check("PIPELINE_REINGEST_MAX_ATTEMPTS", lambda text: _whole(text, 1)),
            log_level=logging.getLevelName(level),
        )


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
