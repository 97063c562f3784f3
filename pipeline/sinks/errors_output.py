"""Firehose's error output: one JSON document per failed record, as written under ``processing-failed/``.

Written as the Firehose documentation shows it (``attemptsMade``, ``arrivalTimestamp``, ``errorCode``,
``errorMessage``, ``attemptEndingTimestamp``, ``rawData``, ``lambdaArn``). Read tolerantly, because real
objects differ from the documentation: ``lambdaARN`` as well as ``lambdaArn``, timestamps and attempts as
numbers or strings (epoch milliseconds or ISO 8601), ``ErrorCode``/``lastErrorCode`` in other error types,
documents one per line or run together, and gzip-compressed objects.
"""

from __future__ import annotations

import binascii
import gzip
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple

__all__ = ["FailedRecord", "Unreadable", "error_line", "read_error_object"]

_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n"


class FailedRecord(NamedTuple):
    """One record of Firehose's error output; ``where`` says where it was read from (``key:line``)."""

    raw_data: str  # base64, as Firehose received the record
    error_code: str
    error_message: str
    attempts: int
    arrival_ms: int | None
    ending_ms: int | None
    lambda_arn: str | None
    where: str = ""

    @property
    def raw(self) -> bytes:
        """The record's original bytes."""
        return binascii.a2b_base64(self.raw_data)


class Unreadable(NamedTuple):
    """A part of an error object that is not a Firehose error record, and why."""

    where: str
    reason: str


def error_line(rec: FailedRecord) -> str:
    """The record as one line of an error object (fields in the documented order).

    >>> print(error_line(FailedRecord("eA==", "Lambda.ProcessingFailedStatus", "failed", 1, 5, 9, "arn:fn")), end="")
    {"attemptsMade":1,"arrivalTimestamp":5,"errorCode":"Lambda.ProcessingFailedStatus","errorMessage":"failed",\
"attemptEndingTimestamp":9,"rawData":"eA==","lambdaArn":"arn:fn"}
    """
    doc = {
        "attemptsMade": rec.attempts,
        "arrivalTimestamp": rec.arrival_ms,
        "errorCode": rec.error_code,
        "errorMessage": rec.error_message,
        "attemptEndingTimestamp": rec.ending_ms,
        "rawData": rec.raw_data,
        "lambdaArn": rec.lambda_arn,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def _millis(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if type(value) in (int, float):
        return int(value)
    if type(value) is str:
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    raise ValueError(f"{value!r} is not a timestamp")


def _first(doc: Mapping[str, Any], *names: str) -> Any:
    return next((doc[n] for n in names if n in doc), None)


def _record(doc: Any, where: str) -> FailedRecord:
    if not isinstance(doc, Mapping):
        raise ValueError("not a JSON object")
    raw = doc.get("rawData")
    if type(raw) is not str:
        raise ValueError("has no rawData text")
    binascii.a2b_base64(raw, strict_mode=True)  # fails now, with the record named, not later
    attempts = _first(doc, "attemptsMade")
    return FailedRecord(
        raw_data=raw,
        error_code=str(_first(doc, "errorCode", "ErrorCode", "lastErrorCode") or ""),
        error_message=str(_first(doc, "errorMessage", "ErrorMessage", "lastErrorMessage") or ""),
        attempts=int(attempts) if attempts not in (None, "") else 0,
        arrival_ms=_millis(_first(doc, "arrivalTimestamp")),
        ending_ms=_millis(_first(doc, "attemptEndingTimestamp")),
        lambda_arn=_first(doc, "lambdaArn", "lambdaARN"),
        where=where,
    )


_TOO_DEEP = "JSON nested too deep to read"


def read_error_object(body: bytes, key: str) -> Iterator[FailedRecord | Unreadable]:
    r"""The error records in one object (gzip or not), each named ``key:line``; what is not one, as Unreadable.

    >>> body = b'{"rawData":"eA==","lambdaARN":"arn:fn","arrivalTimestamp":"1654710150135"}\n{oops}\n'
    >>> first, second = read_error_object(body, "k")
    >>> first.where, first.arrival_ms, first.lambda_arn, first.raw
    ('k:1', 1654710150135, 'arn:fn', b'x')
    >>> second
    Unreadable(where='k:2', reason='not JSON (Expecting property name enclosed in double quotes)')
    """
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    text = body.decode("utf-8-sig")
    pos, line, counted = 0, 1, 0
    while True:
        while pos < len(text) and text[pos] in _SPACE:
            pos += 1
        if pos == len(text):
            return
        line += text.count("\n", counted, pos)
        counted = pos
        where = f"{key}:{line}"
        try:
            doc, pos = _DECODER.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as exc:
            yield Unreadable(where, f"not JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else _TOO_DEEP)
            newline = text.find("\n", pos)  # on to the next line
            pos = len(text) if newline < 0 else newline
            continue
        try:
            yield _record(doc, where)
        except (ValueError, TypeError, binascii.Error) as exc:
            yield Unreadable(where, f"not a Firehose error record: {exc}")
