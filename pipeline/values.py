"""The value rules: what a value must be to reach the output or the response, each a small function.

Every parser path (the standard library's, orjson's, a faster one) and every format applies the same rules,
so they live here, apart from any one stage:

* an ``N`` value follows DynamoDB's number syntax (:func:`is_number`); a ``B`` value is base64
  (:func:`is_base64`);
* every string that reaches the response is UTF-8 text (:func:`is_utf8`): the Lambda runtime for python3.12
  serialises the response with ``ensure_ascii=False`` and encodes it as UTF-8, so one lone surrogate would
  fail the whole invocation, on every retry;
* a partition key value is non-empty UTF-8 text (:func:`check_partition_value`), and a ``strftime`` format
  that can only give empty text is refused when the configuration is read (:func:`always_empty`).

A rule that fails raises :class:`~pipeline.records.RecordError` with a reason naming the column or key,
never the value.
"""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime

from .records import RecordError

__all__ = [
    "all_numbers",
    "always_empty",
    "check_binary",
    "check_number",
    "check_partition_value",
    "is_base64",
    "is_number",
    "is_utf8",
    "label",
]

#: DynamoDB's number syntax: an optional sign, digits with an optional fraction (at least one digit), an
#: optional exponent. ASCII digits only (``[0-9]``, not ``\d``). Precision and range are DynamoDB's to enforce.
_NUMBER_SYNTAX = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_a2b = binascii.a2b_base64
# Moments that differ in every strftime field (year, month, day, weekday, hour, minute, second, microsecond).
_MOMENTS = (
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2000, 2, 29, 13, 4, 5, 600_000, tzinfo=UTC),
    datetime(2037, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
)


def is_number(text: str) -> bool:
    """Whether *text* is a number in DynamoDB's syntax.

    >>> [is_number(t) for t in ("42", "-1.5E+3", ".5", "5.", "+0")]
    [True, True, True, True, True]
    >>> [is_number(t) for t in ("NaN", "1,2", "", "1e", "0x10", "١", " 1")]
    [False, False, False, False, False, False, False]
    """
    # plain digits and decimals ('17', '5307.33', '.5') without the regex, which costs several times more
    return (text.isascii() and text.replace(".", "", 1).isdigit()) or _number(text) is not None


def _number(text: str) -> re.Match[str] | None:
    """The number syntax's fullmatch; compiled on the first call (not at import: the cold start), which
    replaces this function with the compiled pattern's own ``fullmatch``."""
    global _number  # noqa: PLW0603 - the compiled pattern takes this function's place
    _number = re.compile(_NUMBER_SYNTAX).fullmatch
    return _number(text)


def all_numbers(texts: list[str]) -> bool:
    """Whether every one of *texts* is a number in DynamoDB's syntax: ``all(map(is_number, texts))``, at C speed.

    The texts are joined a line each, between line breaks. A column of plain numbers (digits with at most one
    point), the usual one, is told by what is left once the digits are taken out, as bytes (``bytes.translate``):
    points and line breaks only, no line of two points (``..`` left), no empty line and no lone point. Any
    other column is checked text by text.

    >>> all_numbers(["42", "-1.5E+3", ".5"]), all_numbers(["1", "1\\n2"]), all_numbers(["1", 2])
    (True, False, False)
    >>> all_numbers(["1", "20"]), all_numbers(["1", ""]), all_numbers(["-1.25", "3"]), all_numbers(["1.2.3"])
    (True, False, True, False)
    >>> all_numbers(["5.", ".5", "007"]), all_numbers(["1", "."]), all_numbers(["1.5", "2..0"]), all_numbers([])
    (True, False, False, True)
    """
    try:
        framed = "\n".join(["", *texts, ""])  # a line each, between line breaks
    except TypeError:  # not all text
        return False
    if framed.count("\n") != len(texts) + 1:  # a line break inside a text
        return False
    if framed.isascii():
        rest = framed.encode().translate(None, _DIGITS)
        if not rest.translate(None, b".\n"):  # digits, points and line breaks only
            return b".." not in rest and "\n\n" not in framed and "\n.\n" not in framed
    return all(map(is_number, texts))


_DIGITS = b"0123456789"


def is_base64(text: str) -> bool:
    """Whether *text* is base64 (standard alphabet, padded, no whitespace), as DynamoDB sends ``B`` values.

    >>> [is_base64(t) for t in ("", "YQ==", "YWJj", "YWJ", "YWJj\\n", "é")]
    [True, True, True, False, False, False]
    """
    try:
        _a2b(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return True


def is_utf8(text: str) -> bool:
    """Whether *text* can be encoded as UTF-8 (it holds no lone surrogate).

    >>> [is_utf8(t) for t in ("a", "é", "🦊", "\\ud800", "a\\udcff")]
    [True, True, True, False, False]
    """
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def label(name: str) -> str:
    """A column or key name for a reason: quoted, escaped, at most 64 characters (names may come from records).

    >>> label("price"), label("x" * 100)[-5:], label("a\\ud800")
    ("'price'", "x...'", "'a\\\\ud800'")
    """
    return repr(name if len(name) <= 64 else name[:61] + "...")


def check_number(text: str) -> str:
    """*text* if it is a number in DynamoDB's syntax, else RecordError (the value is not in the reason).

    >>> check_number("1.5")
    '1.5'
    >>> check_number("NaN")
    Traceback (most recent call last):
    pipeline.records.RecordError: N value is not a number
    """
    if is_number(text):
        return text
    raise RecordError("N value is not a number")


def check_binary(text: str) -> str:
    """*text* if it is base64, else RecordError (the value is not in the reason).

    >>> check_binary("YQ==")
    'YQ=='
    >>> check_binary("not base64!")
    Traceback (most recent call last):
    pipeline.records.RecordError: B value is not base64
    """
    if is_base64(text):
        return text
    raise RecordError("B value is not base64")


def check_partition_value(text: str, name: str) -> str:
    """*text* if it can be a partition key value (non-empty UTF-8 text), else RecordError naming the key.

    >>> check_partition_value("2024-02-29", "day")
    '2024-02-29'
    >>> check_partition_value("", "day")
    Traceback (most recent call last):
    pipeline.records.RecordError: partition key 'day' is empty
    """
    if not text:
        raise RecordError(f"partition key {label(name)} is empty")
    if not is_utf8(text):
        raise RecordError(f"partition key {label(name)} is not UTF-8 text")
    return text


def always_empty(fmt: str) -> bool:
    """Whether the strftime format *fmt* gives empty text for moments that differ in every field.

    Such a format (``%Ez`` on glibc) can only make empty partition keys: the configuration refuses it.

    >>> always_empty("%Ez"), always_empty("%Y-%m-%d"), always_empty("%%")
    (True, False, False)
    """
    return not any(moment.strftime(fmt) for moment in _MOMENTS)
