"""Structured logging: one JSON object per line, ids, counts, sizes and reasons only (never contents)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

__all__ = ["configure_logging", "log", "logger"]

logger = logging.getLogger("pipeline")


def log(level: int, message: str, **fields: Any) -> None:
    """Log *message* with *fields* as one JSON line (the JSON is built only if the level is enabled)."""
    if logger.isEnabledFor(level):
        line = {"level": logging.getLevelName(level), "message": message, **fields}
        logger.log(level, json.dumps(line, ensure_ascii=False, default=str))


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send the pipeline's JSON lines, bare, to *stream* (stdout by default, which CloudWatch collects)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
