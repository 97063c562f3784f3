"""Stage 1: the base64 text Firehose sends -> the record's bytes."""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Iterator
from typing import Any

from .records import Record, RecordError, per_record

try:  # msgspec's base64 decoder is about twice as fast as binascii's; without it, binascii does the work
    from msgspec import convert as _convert
except ImportError:  # exercised by the fallback test, in a subprocess
    _convert = None

__all__ = ["b64decode", "decode", "strict_b64decode"]


def strict_b64decode(data: Any) -> bytes:
    """The bytes of base64 *data* (text; standard alphabet, padded, no whitespace), by the standard library.

    >>> strict_b64decode("aGk=")
    b'hi'
    >>> strict_b64decode("h!")
    Traceback (most recent call last):
    pipeline.records.RecordError: data is not valid base64 (Only base64 data is allowed)
    """
    if type(data) is not str:
        raise RecordError("record has no base64 'data' text")
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordError(f"data is not valid base64 ({exc})") from None


def b64decode(data: Any) -> bytes:
    """:func:`strict_b64decode`, by msgspec when it loads: the same bytes, the same reasons.

    msgspec accepts a subset of what ``binascii``'s strict mode does, with the same bytes (a property test checks
    it); whatever msgspec refuses goes to :func:`strict_b64decode`, whose answer is the one given.

    >>> b64decode("aGk="), b64decode("AAAA=")  # the second is binascii's to accept
    (b'hi', b'\\x00\\x00\\x00')
    """
    if _convert is not None and type(data) is str:
        try:
            return _convert(data, bytes)
        except Exception:  # the standard library's answer, value or reason, is the one given
            pass
    return strict_b64decode(data)


_decode = per_record(b64decode, "decode")


def decode(records: Iterable[Any]) -> Iterator[Record]:
    """Decode each Firehose record's base64 ``data`` into bytes; invalid base64 -> ``ProcessingFailed``.

    >>> [(r.result, r.value or r.reason) for r in decode([{"recordId": "1", "data": "aGk="},
    ...                                                    {"recordId": "2", "data": "h!"}])]
    [('Ok', b'hi'), ('ProcessingFailed', 'decode: data is not valid base64 (Only base64 data is allowed)')]
    """
    return _decode(records)


decode.steps = _decode.steps  # type: ignore[attr-defined]  # so that make_handler fuses it with the next stages
