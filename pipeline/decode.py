"""Stage 1: the base64 text Firehose sends -> the record's bytes."""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Iterator
from typing import Any

from .records import Record, RecordError, per_record

__all__ = ["decode"]


def _b64decode(data: Any) -> bytes:
    if type(data) is not str:
        raise RecordError("record has no base64 'data' text")
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordError(f"data is not valid base64 ({exc})") from None


_decode = per_record(_b64decode, "decode")


def decode(records: Iterable[Any]) -> Iterator[Record]:
    """Decode each Firehose record's base64 ``data`` into bytes; invalid base64 -> ``ProcessingFailed``.

    >>> [(r.result, r.value or r.reason) for r in decode([{"recordId": "1", "data": "aGk="},
    ...                                                    {"recordId": "2", "data": "h!"}])]
    [('Ok', b'hi'), ('ProcessingFailed', 'decode: data is not valid base64 (Only base64 data is allowed)')]
    """
    return _decode(records)


decode.steps = _decode.steps  # type: ignore[attr-defined]  # so that make_handler fuses it with the next stages
