"""Firehose transformation for DynamoDB change data: lazy, composable stages and the Lambda handler.

A notebook can use the stages on their own, on Firehose records or on plain change records::

    >>> from toolz import pipe
    >>> from pipeline import keep_events, project, encode, respond
    >>> change = {"eventName": "INSERT", "dynamodb": {"Keys": {"key": {"N": "1"}},
    ...           "NewImage": {"key": {"N": "1"}, "name": {"S": "Zürich"}}}}
    >>> [r.value for r in pipe([change], keep_events({"INSERT"}), project("key,name"), encode("csv"))]
    [b'1,Z\\xc3\\xbcrich\\n']

The companions live in subpackages and are imported only when used: ``athena_ddl``, ``current_view``,
``current_query`` and ``from_export`` (from ``pipeline.tools``) are reached through this package lazily, so
``import handler`` loads none of them.
"""

from __future__ import annotations

import importlib
from typing import Any

from .app import InvalidEvent, firehose_records, make_handler, stages
from .attributes import json_number, to_json, to_text
from .budget import LAMBDA_RESPONSE_LIMIT, BudgetError, entry_size, within_budget
from .columns import Column, parse_column, parse_columns
from .config import Config, ConfigError
from .encode import FORMATS, csv_line, encode, json_line, tsv_line
from .fields import FIELDS, change_version
from .iceberg import with_otf_metadata
from .parse import EVENT_NAMES, check_change, decode, keep_events, parse
from .partitions import parse_partition_keys, with_partition_keys
from .project import IMAGES, project
from .records import (
    DROPPED,
    FAILED,
    OK,
    OVER_BUDGET,
    Drop,
    Record,
    RecordError,
    as_record,
    map_records,
    per_record,
)
from .reingest import Reingester, ReingestError, fail_overflow, reingest, to_source
from .response import Summary, respond

__all__ = [
    "DROPPED",
    "EVENT_NAMES",
    "FAILED",
    "FIELDS",
    "FORMATS",
    "IMAGES",
    "LAMBDA_RESPONSE_LIMIT",
    "OK",
    "OVER_BUDGET",
    "BudgetError",
    "Column",
    "Config",
    "ConfigError",
    "Drop",
    "InvalidEvent",
    "Record",
    "RecordError",
    "ReingestError",
    "Reingester",
    "Summary",
    "as_record",
    "athena_ddl",
    "change_version",
    "check_change",
    "csv_line",
    "current_query",
    "current_view",
    "decode",
    "encode",
    "entry_size",
    "fail_overflow",
    "firehose_records",
    "from_export",
    "json_line",
    "json_number",
    "keep_events",
    "make_handler",
    "map_records",
    "parse",
    "parse_column",
    "parse_columns",
    "parse_partition_keys",
    "per_record",
    "project",
    "reingest",
    "respond",
    "stages",
    "to_json",
    "to_source",
    "to_text",
    "tsv_line",
    "with_otf_metadata",
    "with_partition_keys",
    "within_budget",
]

_LAZY = {
    "athena_ddl": "pipeline.tools.athena",
    "current_query": "pipeline.tools.views",
    "current_view": "pipeline.tools.views",
    "from_export": "pipeline.tools.export",
}


def __getattr__(name: str) -> Any:
    """Companion names (``athena_ddl``, ``current_view`` ...) imported on first use, off the handler's import path."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
