"""Typed DynamoDB attribute values (``{"S": "x"}``, ``{"N": "1"}``, ...) -> CSV cell text or JSON text.

Numbers stay the exact strings DynamoDB sent (up to 38 digits, exponents kept): never a float or Decimal.
Only the attributes a column asks for are ever converted. Every value is checked against its type on the
way, in every format (:mod:`pipeline.values`): an ``N`` that is not a number or a ``B`` that is not base64
raises RecordError, and so does an unknown type, whose key is not quoted (it comes from the record).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from json.encoder import encode_basestring  # the C encoder: escapes quotes and controls, keeps non-ASCII
from typing import Any

from .records import RecordError
from .values import check_binary, check_number, is_number

__all__ = ["json_number", "plain_image", "plain_map", "to_json", "to_plain", "to_text"]

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?").fullmatch
_LENIENT_NUMBER = re.compile(r"([-+]?)([0-9]*)(?:\.([0-9]*))?((?:[eE][-+]?[0-9]+)?)").fullmatch


_NOT_TYPED = "value is not a typed DynamoDB value"
_UNKNOWN = "unknown DynamoDB type"  # the type key itself is never quoted: it comes from the record


def _one(value: Any) -> tuple[str, Any]:
    if type(value) is not dict or len(value) != 1:
        raise RecordError(_NOT_TYPED)
    ((kind, v),) = value.items()
    return kind, v


_STR = frozenset({str})


def _strings(kind: str, items: Any) -> list[str]:
    if type(items) is not list or not {*map(type, items)} <= _STR:  # the types at C speed, not a generator
        raise RecordError(f"{kind} value is not a list of strings")
    return items


def json_number(text: Any) -> str:
    """The JSON number for a DynamoDB ``N`` string, every digit kept.

    >>> json_number("12345678901234567890123456789012345678"), json_number("1E+3")
    ('12345678901234567890123456789012345678', '1E+3')
    >>> json_number(".5"), json_number("+007.50"), json_number("5."), json_number("-000")
    ('0.5', '7.50', '5', '-0')
    """
    if type(text) is not str:
        raise RecordError("N value is not a string")
    if (  # digits with at most one inner point and no leading zero: JSON as it is, the usual N
        text.isascii()
        and text.replace(".", "", 1).isdigit()
        and text[0] != "."
        and text[-1] != "."
        and (text[0] != "0" or len(text) == 1 or text[1] == ".")
    ):
        return text
    if _JSON_NUMBER(text):
        return text
    # forms DynamoDB may accept but JSON does not: '+1', '.5', '5.', '007'
    match = _LENIENT_NUMBER(text) if is_number(text) else None
    if match is None:
        raise RecordError("N value is not a number")
    sign, whole, fraction, exponent = match.groups()
    whole = whole.lstrip("0") or "0"
    return f"{'-' if sign == '-' else ''}{whole}{'.' + fraction if fraction else ''}{exponent}"


def to_json(value: Any) -> str:
    """Compact JSON text for a typed value: N as numbers with every digit, sets and L as arrays, M as objects.

    >>> to_json({"M": {"n": {"N": "1.50"}, "ok": {"BOOL": True}, "tags": {"SS": ["a", "ü"]}, "x": {"NULL": True}}})
    '{"n":1.50,"ok":true,"tags":["a","ü"],"x":null}'
    """
    kind, v = _one(value)
    if kind in ("S", "B"):
        if type(v) is not str:
            raise RecordError(f"{kind} value is not a string")
        return encode_basestring(v if kind == "S" else check_binary(v))
    if kind == "N":
        return json_number(v)
    if kind == "BOOL":
        if type(v) is not bool:
            raise RecordError("BOOL value is not true or false")
        return "true" if v else "false"
    if kind == "NULL":
        return "null"
    if kind == "SS":
        return f"[{','.join(map(encode_basestring, _strings(kind, v)))}]"
    if kind == "BS":
        return f"[{','.join([encode_basestring(check_binary(b)) for b in _strings(kind, v)])}]"
    if kind == "NS":
        return f"[{','.join(map(json_number, _strings(kind, v)))}]"
    if kind == "L":
        if type(v) is not list:
            raise RecordError("L value is not a list")
        return f"[{','.join(map(to_json, v))}]"
    if kind == "M":
        if type(v) is not dict:
            raise RecordError("M value is not an object")
        return "{" + ",".join(f"{encode_basestring(k)}:{to_json(x)}" for k, x in v.items()) + "}"
    raise RecordError(_UNKNOWN)


def to_plain(value: Any, raw: Any) -> Any:
    """The value for a JSON encoder: what :func:`to_json` writes, with N as ``raw(digits)`` (written verbatim).

    The same checks as :func:`to_json`, with the same reasons (a value has one type, so the order in which the
    types are tried changes no answer: the usual ones first).

    >>> to_plain({"M": {"n": {"N": "+1.50"}, "tags": {"SS": ["a"]}, "x": {"NULL": True}}}, lambda n: f"<{n}>")
    {'n': '<1.50>', 'tags': ['a'], 'x': None}
    """
    if type(value) is not dict or len(value) != 1:  # _one, inlined: this runs for every value of every image
        raise RecordError(_NOT_TYPED)
    ((kind, v),) = value.items()
    if type(v) is str:
        if kind == "S":
            return v
        if kind == "N":
            return raw(json_number(v))
        if kind == "B":
            return check_binary(v)
    elif kind in ("S", "N", "B"):
        raise RecordError(f"{kind} value is not a string")
    if kind == "M":
        if type(v) is not dict:
            raise RecordError("M value is not an object")
        return _plain_into({}, v, raw, False)
    if kind == "BOOL":
        if type(v) is not bool:
            raise RecordError("BOOL value is not true or false")
        return v
    if kind == "NULL":
        return None
    if kind == "L":
        if type(v) is not list:
            raise RecordError("L value is not a list")
        return [to_plain(x, raw) for x in v]
    if kind == "SS":
        return _strings(kind, v)
    if kind == "NS":
        return [raw(json_number(n)) for n in _strings(kind, v)]
    if kind == "BS":
        return [check_binary(b) for b in _strings(kind, v)]
    raise RecordError(_UNKNOWN)


def plain_map(image: Mapping[str, Any], raw: Any) -> dict[str, Any]:
    """``{name: to_plain(value, raw)}`` for a row or an image, a missing value (None) as None.

    >>> plain_map({"s": {"S": "x"}, "n": {"N": "7"}, "gone": None}, str)
    {'s': 'x', 'n': '7', 'gone': None}
    """
    return _plain_into({}, image, raw, True)


def plain_image(image: dict[str, Any], raw: Any, top: bool = True) -> dict[str, Any]:
    """:func:`plain_map` done in place: *image*'s values (and its maps' values) are replaced by their plain ones.

    For an image decoded for this alone (nothing else reads it): no second dict is built, and each typed value
    is taken apart (emptied) on the way. The same values and the same errors as :func:`plain_map`; on an error
    the image is left half converted. A None value is None only in an image (*top*), not in a map.

    Each typed value gives up its one ``(type, value)`` pair (``popitem``): one call instead of a look-up per
    type tried, and a value left non-empty had two types. The usual types are written inline; the others,
    and any value of the wrong type, are :func:`to_plain`'s, with its reasons.

    >>> image = {"s": {"S": "x"}, "m": {"M": {"n": {"N": "7"}}}, "gone": None}
    >>> plain_image(image, str) is image, image
    (True, {'s': 'x', 'm': {'n': '7'}, 'gone': None})
    """
    for name, value in image.items():
        try:
            kind, v = value.popitem()
        except (AttributeError, KeyError):  # not a dict (None, a list, ...) or {}
            if value is None and top:
                continue
            raise RecordError(_NOT_TYPED) from None
        if value:  # a second type
            raise RecordError(_NOT_TYPED)
        if kind == "S" and type(v) is str:
            image[name] = v
        elif kind == "N" and type(v) is str:
            if (  # json_number's first test, inlined
                v.isascii()
                and v.replace(".", "", 1).isdigit()
                and v[0] != "."
                and v[-1] != "."
                and (v[0] != "0" or len(v) == 1 or v[1] == ".")
            ):
                image[name] = raw(v)
            else:
                image[name] = raw(json_number(v))
        elif kind == "BOOL" and type(v) is bool:
            image[name] = v
        elif kind == "NULL":
            image[name] = None
        elif kind == "M" and type(v) is dict:
            image[name] = plain_image(v, raw, False)
        elif kind == "SS" and type(v) is list and {*map(type, v)} <= _STR:
            image[name] = v
        else:
            image[name] = to_plain({kind: v}, raw)
    return image


def _plain_into(out: dict[str, Any], image: Mapping[str, Any], raw: Any, none: bool) -> dict[str, Any]:
    """*image*'s values made plain into the new dict *out*; a None value is None if *none*.

    :func:`to_plain` with its commonest types inlined: this runs for every value of every row written.
    """
    for name, value in image.items():
        if type(value) is dict and len(value) == 1:
            v = value.get("S")
            if type(v) is str:
                out[name] = v
                continue
            v = value.get("N")
            if type(v) is str:
                out[name] = raw(json_number(v))
                continue
            v = value.get("BOOL")
            if type(v) is bool:
                out[name] = v
                continue
            if "NULL" in value:
                out[name] = None
                continue
            v = value.get("M")
            if type(v) is dict:
                out[name] = _plain_into({}, v, raw, False)
                continue
            v = value.get("SS")
            if type(v) is list and {*map(type, v)} <= _STR:
                out[name] = v
                continue
            v = value.get("L")
            if type(v) is list:
                out[name] = [to_plain(x, raw) for x in v]
                continue
            v = value.get("NS")
            if type(v) is list and {*map(type, v)} <= _STR:
                out[name] = [raw(json_number(n)) for n in v]
                continue
        elif value is None and none:
            out[name] = None
            continue
        out[name] = to_plain(value, raw)
    return out


def to_text(value: Mapping[str, Any] | None, null: str = "") -> str:
    """The text of one CSV/TSV cell: S, N and B as sent, BOOL true/false, NULL and missing as *null*.

    Sets, lists and maps become compact JSON text. N must be a number and B base64, else RecordError.

    >>> [to_text(v, r"\\N") for v in ({"S": "Zürich"}, {"N": "-1.0E-130"}, {"BOOL": False}, {"NULL": True}, None)]
    ['Zürich', '-1.0E-130', 'false', '\\\\N', '\\\\N']
    >>> to_text({"NS": ["1", "2.50"]})
    '[1,2.50]'
    """
    if value is None:
        return null
    if type(value) is not dict or len(value) != 1:  # _one, inlined: this runs for every cell
        raise RecordError(_NOT_TYPED)
    text = value.get("S")  # fast path first: most cells are strings or numbers, written as sent
    if type(text) is str:
        return text
    text = value.get("N")
    if type(text) is str:  # check_number's fast path inlined: plain digits and decimals, the usual numbers
        return text if text.isascii() and text.replace(".", "", 1).isdigit() else check_number(text)
    ((kind, v),) = value.items()
    if kind in ("S", "N", "B"):
        if type(v) is not str:
            raise RecordError(f"{kind} value is not a string")
        return check_binary(v)  # S and N strings were returned above
    if kind == "BOOL":
        if type(v) is not bool:
            raise RecordError("BOOL value is not true or false")
        return "true" if v else "false"
    if kind == "NULL":
        return null
    return to_json(value)
