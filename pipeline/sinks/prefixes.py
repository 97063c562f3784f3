"""Firehose's S3 key names: custom prefixes with ``!{namespace:value}`` expressions, and the object suffix.

Supported expressions, as Firehose evaluates them:

* ``!{timestamp:yyyy/MM/dd/HH}``: a Java ``DateTimeFormatter`` pattern (letters ``y M d H m s``, ``'quoted'``
  literals, anything else as it is) applied to the record's arrival time, in UTC;
* ``!{partitionKeyFromLambda:name}``: the partition key the transformation returned for the record;
* ``!{firehose:error-output-type}`` (``processing-failed``) and ``!{firehose:random-string}``.

Without a prefix Firehose writes under ``yyyy/MM/dd/HH/``, and failed records under
``processing-failed/yyyy/MM/dd/HH/``. The checks run once, when the runner starts, not per record.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime

__all__ = ["DEFAULT_ERROR_PREFIX", "DEFAULT_PREFIX", "check_prefix", "object_name", "render_prefix"]

DEFAULT_PREFIX = "!{timestamp:yyyy/MM/dd/HH}/"
DEFAULT_ERROR_PREFIX = "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
_EXPRESSION = re.compile(r"!\{([A-Za-z]+):([^}]*)\}")
_PATTERN = re.compile(r"'([^']*)'|(y+|M+|d+|H+|m+|s+)|([A-Za-z])|(.)", re.DOTALL)
_FIELDS = {"y": "%Y", "M": "%m", "d": "%d", "H": "%H", "m": "%M", "s": "%S"}


def _strftime(pattern: str) -> str:
    out = []
    for literal, field, letter, other in _PATTERN.findall(pattern):
        if letter:
            raise ValueError(f"timestamp pattern {pattern!r}: letter {letter!r} is not supported (y M d H m s are)")
        if field:
            out.append(_FIELDS[field[0]] if field[0] != "y" or len(field) != 2 else "%y")
        else:
            out.append((literal or other).replace("%", "%%"))
    return "".join(out)


def check_prefix(template: str, partition_keys: Collection[str] = (), *, error: bool = False) -> None:
    """Raise ValueError if *template* has an expression this runner (or Firehose) cannot evaluate, or would make
    keys that leave a folder: a leading ``/``, or a ``.`` or ``..`` folder. *error*: the error output prefix,
    the one place Firehose allows ``!{firehose:error-output-type}``.

    >>> check_prefix("day=!{partitionKeyFromLambda:day}/", {"day"})
    >>> check_prefix("!{partitionKeyFromLambda:day}/", set())
    Traceback (most recent call last):
    ValueError: prefix uses partition key 'day', which PIPELINE_PARTITION_KEYS does not define
    >>> check_prefix("../!{timestamp:yyyy}/")
    Traceback (most recent call last):
    ValueError: prefix '../!{timestamp:yyyy}/' has a '..' folder, which would put objects outside the destination
    """
    leftover = _EXPRESSION.sub("", template)
    if "!{" in leftover:
        raise ValueError(f"prefix {template!r} has an unfinished !{{...}} expression")
    for namespace, value in _EXPRESSION.findall(template):
        if namespace == "timestamp":
            if not value:
                raise ValueError(f"prefix {template!r}: !{{timestamp:}} needs a pattern, such as yyyy/MM/dd")
            _strftime(value)
        elif namespace == "partitionKeyFromLambda":
            if value not in partition_keys:
                raise ValueError(f"prefix uses partition key {value!r}, which PIPELINE_PARTITION_KEYS does not define")
        elif namespace == "firehose" and value == "error-output-type" and not error:
            raise ValueError(
                f"prefix {template!r}: !{{firehose:error-output-type}} is for the error output prefix only"
            )
        elif namespace != "firehose" or value not in ("error-output-type", "random-string"):
            raise ValueError(f"prefix expression !{{{namespace}:{value}}} is not supported")
    sample = render_prefix(template, 0, dict.fromkeys(partition_keys, "key"))  # the folders the expressions make
    if sample.startswith("/"):
        raise ValueError(f"prefix {template!r} starts with '/', which S3 keeps as an empty folder name: leave it out")
    folders = sample.split("/")
    if ".." in folders:
        raise ValueError(f"prefix {template!r} has a '..' folder, which would put objects outside the destination")
    if "." in folders:
        raise ValueError(f"prefix {template!r} has a '.' folder, which S3 keeps and a local folder drops: leave it out")


def render_prefix(
    template: str, arrival_ms: int, keys: Mapping[str, str] | None = None, error_type: str = "processing-failed"
) -> str:
    """Evaluate *template* for a record that arrived at *arrival_ms* with partition *keys*.

    >>> render_prefix("dt=!{timestamp:yyyy'-'MM'-'dd}/t=!{partitionKeyFromLambda:t}/", 1767225600000, {"t": "x"})
    'dt=2026-01-01/t=x/'
    >>> render_prefix(DEFAULT_ERROR_PREFIX, 1767225600000)
    'processing-failed/2026/01/01/00/'
    """
    moment = datetime.fromtimestamp(arrival_ms / 1000, UTC)

    def evaluate(match: re.Match[str]) -> str:
        namespace, value = match[1], match[2]
        if namespace == "timestamp":
            return moment.strftime(_strftime(value))
        if namespace == "partitionKeyFromLambda":
            if keys is None or value not in keys:
                raise ValueError(f"record has no partition key {value!r}")
            return keys[value]
        return error_type if value == "error-output-type" else uuid.uuid4().hex[:11]

    return _EXPRESSION.sub(evaluate, template)


def object_name(stream: str, now: datetime | None = None) -> str:
    """The suffix Firehose gives an object: ``<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>``.

    >>> object_name("orders-to-s3", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))  # doctest: +ELLIPSIS
    'orders-to-s3-1-2026-01-02-03-04-05-...'
    """
    moment = now or datetime.now(UTC)
    return f"{stream}-1-{moment:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}"
