"""Kinesis streams that output goes back into: a client and ARN for a stream, and an item's partition key."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from ..reingest import client_for
from .storage import region

__all__ = ["item_key", "kinesis_stream"]


def kinesis_stream(stream: str, client: Any = None) -> tuple[Any, str]:
    """A Kinesis client and the ARN of *stream*: an ARN, or a name in the environment's region."""
    given = stream.startswith("arn:")
    client = client or client_for("kinesis", stream.split(":")[3] if given else region())
    where = {"StreamARN": stream} if given else {"StreamName": stream}
    return client, client.describe_stream_summary(**where)["StreamDescriptionSummary"]["StreamARN"]


def item_key(keys: Mapping[str, Any]) -> str:
    """The partition key for an item: its key values joined by ``|`` (an MD5 hex digest if over 256 characters).

    >>> item_key({"id": {"S": "order-1"}}), item_key({"pk": {"S": "a"}, "sk": {"N": "7"}})
    ('order-1', 'a|7')
    """
    parts = []
    for name in sorted(keys):
        (value,) = keys[name].values()
        parts.append(base64.b64encode(value).decode("ascii") if isinstance(value, bytes | bytearray) else str(value))
    text = "|".join(parts)
    return text if 1 <= len(text) <= 256 else hashlib.md5(text.encode()).hexdigest().upper()
