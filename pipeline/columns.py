"""Column specs: which value of a change becomes which column.

A spec is an attribute path in the chosen image (``id``, ``address.city``, ``tags[0]``, ``"odd.name"``
with double quotes around a name holding ``.``, ``[``, ``,``, ``=`` or ``|``) or an ``@``-field of the
change record (see :mod:`pipeline.fields`). ``alias=spec`` names the column; the name defaults to the spec
(without its ``@``).
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .fields import FIELDS
from .records import Record

__all__ = ["Column", "attribute_of", "parse_column", "parse_columns", "split_specs"]

Typed = Mapping[str, Any]
Getter = Callable[[Mapping[str, Any], Mapping[str, Any], Record], Any]
# A path's tokens: a quoted name, an index, a dot, a bare name, or anything else (an error). Compiled on first
# use (``re`` caches it), not at import: a spec that is one bare name, the common case, never needs it.
_TOKEN = r'"((?:[^"]|"")*)"|\[(\d+)\]|(\.)|([^.\[\]"]+)|(.)'
_NOT_BARE = frozenset('.[]"')


# a namedtuple subclass, not a typing.NamedTuple: see pipeline.records
class Column(namedtuple("Column", "name spec get attribute", defaults=[None])):
    """A named output column and how to get its typed value from ``(change, image, record)``."""

    __slots__ = ()
    name: str
    spec: str
    get: Getter
    attribute: str | None  #: None, or set when the spec is one attribute of the image: ``get`` is ``image.get`` of it

    def __repr__(self) -> str:
        return f"Column({self.name!r}, {self.spec!r})"


def split_specs(text: str, sep: str = ",") -> list[str]:
    """Split *text* on *sep* outside double quotes, trimming blanks.

    >>> split_specs('id, "a,b".c ,x')
    ['id', '"a,b".c', 'x']
    """
    parts, start, quoted = [], 0, False
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append(text[start:i].strip())
            start = i + 1
    if quoted:
        raise ValueError(f"unbalanced double quote in {text!r}")
    parts.append(text[start:].strip())
    return parts


def _path(spec: str) -> tuple[str | int, ...]:
    if spec and _NOT_BARE.isdisjoint(spec):  # one bare name: what the tokens would give, without them
        return (spec,)
    steps: list[str | int] = []
    expect_name = True
    for quoted, index, dot, name, other in re.findall(_TOKEN, spec, re.DOTALL):
        if other:
            raise ValueError(f"unexpected {other!r} in column {spec!r}")
        if dot:
            if expect_name:
                raise ValueError(f"empty name in column {spec!r}")
            expect_name = True
        elif index:
            if expect_name:
                raise ValueError(f"index without a name in column {spec!r}")
            steps.append(int(index))
        else:
            if not expect_name:
                raise ValueError(f"missing '.' between names in column {spec!r}")
            steps.append(quoted.replace('""', '"') if name == "" else name)
            expect_name = False
    if expect_name:
        raise ValueError(f"column {spec!r} does not end in a name or index")
    return tuple(steps)


def attribute_of(spec: str) -> str | None:
    """The attribute of the image a column spec reads (the head of its path); None for an ``@``-field.

    >>> attribute_of('address.city'), attribute_of('"a.b"[0]'), attribute_of("@eventName")
    ('address', 'a.b', None)
    """
    if spec.startswith("@"):
        return None
    head = _path(spec)[0]
    return head if type(head) is str else None


def _resolve(value: Any, steps: tuple[str | int, ...]) -> Any:
    for step in steps:
        inner = value.get("L" if type(step) is int else "M") if type(value) is dict else None
        if type(step) is int:
            value = inner[step] if type(inner) is list and step < len(inner) else None
        else:
            value = inner.get(step) if type(inner) is dict else None
        if value is None:
            return None
    return value


def _path_getter(steps: tuple[str | int, ...]) -> Getter:
    head, rest = steps[0], steps[1:]
    if type(head) is not str:
        raise ValueError("a column path starts with an attribute name")
    if not rest:
        return lambda _change, image, _rec: image.get(head)

    def get(_change: Mapping[str, Any], image: Mapping[str, Any], _rec: Record) -> Any:
        value = image.get(head)
        return None if value is None else _resolve(value, rest)

    return get


def parse_column(text: str) -> Column:
    """Parse one column spec, with an optional ``alias=`` in front.

    >>> parse_column("city=address.city"), parse_column("@eventName"), parse_column('tags[0]')
    (Column('city', 'address.city'), Column('eventName', '@eventName'), Column('tags[0]', 'tags[0]'))
    >>> image = {"address": {"M": {"city": {"S": "Kraków"}}}, "tags": {"L": [{"S": "old town"}]}}
    >>> parse_column("address.city").get({}, image, None), parse_column("tags[0]").get({}, image, None)
    ({'S': 'Kraków'}, {'S': 'old town'})
    """
    alias, spec = None, text.strip()
    parts = split_specs(spec, "=")
    if len(parts) == 2:
        alias, spec = parts
        if not alias:
            raise ValueError(f"empty column name in {text!r}")
    elif len(parts) > 2:
        raise ValueError(f"more than one '=' in column {text!r}")
    if not spec:
        raise ValueError(f"empty column spec in {text!r}")
    if spec.startswith("@"):
        field = FIELDS.get(spec[1:])
        if field is None:
            raise ValueError(f"unknown field {spec!r}; known: {', '.join('@' + f for f in FIELDS)}")
        return Column(alias or spec[1:], spec, lambda change, _image, rec: field(change, rec))
    steps = _path(spec)
    plain = steps[0] if len(steps) == 1 and type(steps[0]) is str else None
    return Column(alias or spec, spec, _path_getter(steps), plain)


def parse_columns(specs: str | Iterable[str | Column]) -> tuple[Column, ...]:
    """Parse a comma-separated spec list (or an iterable of specs or Columns); names must be unique.

    >>> [c.name for c in parse_columns("id, name, when=@approximateCreationDateTime")]
    ['id', 'name', 'when']
    """
    items = split_specs(specs) if isinstance(specs, str) else list(specs)
    columns = tuple(c if isinstance(c, Column) else parse_column(c) for c in items)
    if not columns:
        raise ValueError("no columns given")
    names = [c.name for c in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate column names: {', '.join(duplicates)}")
    return columns
