"""Structured logging: one JSON object per line, ids, counts, sizes and reasons only (never contents).

The summary line of an invocation also carries its metrics in CloudWatch's *embedded metric format* (EMF),
so that CloudWatch Logs turns the line into metrics, with no API call and no library: an ``_aws`` member
that names the namespace, the dimensions and each metric's unit, and each metric's value and each
dimension's value as a top-level member of the line (the specification: https://docs.aws.amazon.com/
AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

__all__ = [
    "DEFAULT_NAMESPACE",
    "DIMENSIONS",
    "METRICS",
    "check_namespace",
    "configure_logging",
    "embedded_metrics",
    "log",
    "logger",
]

logger = logging.getLogger("pipeline")

#: The namespace of the summary line's metrics unless ``PIPELINE_METRICS_NAMESPACE`` says otherwise.
DEFAULT_NAMESPACE = "DynamoDBFirehosePipeline"
#: Each metric of the summary line and its CloudWatch unit, in the order the line declares them.
METRICS: dict[str, str] = {
    "RecordsIn": "Count",
    "RecordsOk": "Count",
    "RecordsDropped": "Count",
    "RecordsFailed": "Count",
    "RecordsReingested": "Count",
    "ReingestRetries": "Count",
    "BytesIn": "Bytes",
    "BytesOut": "Bytes",
    "ResponseBytes": "Bytes",
    "ResponseBudgetShare": "Percent",
    "DurationMs": "Milliseconds",
}
#: The one dimension set of every metric: the function, and the delivery stream that invoked it.
DIMENSIONS = ("FunctionName", "DeliveryStreamName")
# CloudWatch's namespace rule: 1 to 255 ASCII letters, digits, . - _ / # : and space; not starting with ':' (nor,
# here, with a space). A set, not a regex: the namespace is checked at every cold start, and compiling costs more.
_NAMESPACE_CHARACTERS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._/#: -")


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


def check_namespace(namespace: str) -> str:
    """*namespace* if CloudWatch accepts it for custom metrics, else ValueError saying why.

    >>> check_namespace("Orders/Pipeline")
    'Orders/Pipeline'
    >>> check_namespace("AWS/Lambda")
    Traceback (most recent call last):
    ValueError: namespaces starting with AWS/ are reserved for AWS services
    """
    if namespace.upper().startswith("AWS/"):
        raise ValueError("namespaces starting with AWS/ are reserved for AWS services")
    valid = 0 < len(namespace) <= 255 and namespace[0] not in ": " and _NAMESPACE_CHARACTERS.issuperset(namespace)
    if not valid or not namespace.strip():
        raise ValueError(
            "not a CloudWatch namespace (1 to 255 of A-Z a-z 0-9 . - _ / # : and space, not starting with :) nor off"
        )
    return namespace


def embedded_metrics(
    namespace: str, dimensions: Mapping[str, str], values: Mapping[str, float], timestamp_ms: int
) -> dict[str, Any]:
    """The members that make a log line an EMF document: dimension values, metric values and ``_aws``.

    *dimensions* gives a value to each of :data:`DIMENSIONS`, *values* one to each of :data:`METRICS`;
    merge the result into the line's other members (their names do not collide: those start lower case).

    >>> members = embedded_metrics("Demo", {"FunctionName": "f", "DeliveryStreamName": "s"},
    ...                            dict.fromkeys(METRICS, 0), 1700000000000)
    >>> members["RecordsIn"], members["FunctionName"], members["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    (0, 'f', [['FunctionName', 'DeliveryStreamName']])
    >>> members["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]
    {'Name': 'RecordsIn', 'Unit': 'Count'}
    """
    directive = _DIRECTIVES.get(namespace)
    if directive is None:
        metrics = [{"Name": name, "Unit": unit} for name, unit in METRICS.items()]
        directive = _DIRECTIVES[namespace] = [
            {"Namespace": namespace, "Dimensions": [list(DIMENSIONS)], "Metrics": metrics}
        ]
    members: dict[str, Any] = {name: dimensions[name] for name in DIMENSIONS}
    members.update((name, values[name]) for name in METRICS)
    members["_aws"] = {"Timestamp": timestamp_ms, "CloudWatchMetrics": directive}
    return members


_DIRECTIVES: dict[str, list[dict[str, Any]]] = {}  # the directive of a namespace, built once
