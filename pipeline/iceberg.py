"""Firehose's Apache Iceberg destination: one typed JSON object per change, routed by ``metadata.otfMetadata``.

What Firehose's Iceberg destination needs (Amazon Data Firehose developer guide, "Deliver data to Apache Iceberg
Tables"; the pages are cited in the README's "Current state" section):

* **Routing**: a transformation Lambda returns ``metadata.otfMetadata`` with ``destinationDatabaseName``,
  ``destinationTableName`` and ``operation`` (``insert``, ``update`` or ``delete``) on each record. One record
  carries one JSON object and one operation, so a Firehose record holding several changes
  (``{"Records": [...]}``) cannot be delivered as it is: it is answered ``ProcessingFailed`` with that reason,
  and Firehose keeps it whole in its error output (nothing is silently lost).
* **Columns**: the first level of the JSON object fills the table's columns by name (Glue names: lower case);
  every column is written, ``null`` when the attribute is missing or NULL.
* **Types**: a column's JSON value must suit its Iceberg type. Numbers are JSON numbers for the numeric types
  (every digit DynamoDB sent; a ``decimal(p,s)`` value that would lose a digit fails the record), booleans
  ``true``/``false``, timestamps **epoch microseconds** (what Firehose requires), binary the base64 text DynamoDB
  sent (Firehose accepts Basic Base64), nested values (lists, sets, maps) JSON arrays and objects for ``array``,
  ``map`` and ``struct`` columns. A ``string`` column gets any value as text (numbers with every digit, sets,
  lists and maps as compact JSON text), so it never depends on the attribute's type.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from .attributes import json_number, to_json, to_text
from .columns import Column
from .fields import table_name
from .project import pick_image
from .records import OK, Record, RecordError, Stage, map_records
from .values import is_utf8, label

__all__ = [
    "DECIMAL_TYPE",  # noqa: F822 - made on first use by __getattr__ (off the cold start)
    "ICEBERG_MODES",
    "column_name",
    "column_types",
    "default_type",
    "iceberg_line",
    "iceberg_lines",
    "parse_iceberg_table",
    "parse_types",
    "split_top",
    "with_otf_metadata",
]

ICEBERG_MODES = ("append", "upsert")
PRIMITIVE_TYPES = ("string", "boolean", "int", "bigint", "float", "double", "timestamp", "binary")
TABLE_PLACEHOLDER = "{tableName}"
# Patterns compiled on first use (``re`` caches them), not at import: only the iceberg format needs them, and
# every handler imports this module. ``DECIMAL_TYPE``, the compiled decimal pattern, is made on request.
_DECIMAL = r"decimal\((\d+), ?(\d+)\)"
_NESTED = r"(array|map|struct)<.+>"
_NAME = r"[a-z0-9_]+"
_INT_RANGE = {"int": 2**31, "bigint": 2**63}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_FROM, _US_FROM = 100_000_000_000, 100_000_000_000_000  # as pipeline.fields.epoch_millis: s, ms or µs
_TIMES = frozenset({"@approximateCreationDateTime", "@arrivalTimestamp"})
_KNOWN = {"@sizeBytes": "bigint", "@isTtlDelete": "boolean"}
Typed = Mapping[str, Any]
Convert = Callable[[Typed | None], str]


def column_name(name: str) -> str:
    """The table's column name for a pipeline column: Glue's lower case, other characters than ``[a-z0-9_]`` ``_``.

    >>> column_name("eventName"), column_name("address.city"), column_name("tags[0]")
    ('eventname', 'address_city', 'tags_0_')
    """
    return re.sub(r"[^a-z0-9_]+", "_", name.lower())


def default_type(column: Column) -> str:
    """The Iceberg type a column gets unless ``PIPELINE_ICEBERG_TYPES`` says otherwise.

    >>> from pipeline import parse_columns
    >>> [default_type(c) for c in parse_columns("id,@approximateCreationDateTime,@sizeBytes,@isTtlDelete")]
    ['string', 'timestamp', 'bigint', 'boolean']
    """
    if column.spec in _TIMES:
        return "timestamp"
    return _KNOWN.get(column.spec, "string")


def split_top(text: str) -> list[str]:
    """Split on commas outside ``()`` and ``<>`` (a type such as ``decimal(38,2)`` holds one).

    >>> split_top("id=string, amount=decimal(38,2), tags=map<string,int>")
    ['id=string', 'amount=decimal(38,2)', 'tags=map<string,int>']
    """
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "(<":
            depth += 1
        elif char in ")>":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced {char!r} in {text!r}")
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced brackets in {text!r}")
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def check_type(kind: str) -> str:
    """*kind* in lower case if it is an Iceberg type this pipeline writes (else ValueError).

    >>> check_type("DECIMAL(38,2)"), check_type("array<string>")
    ('decimal(38,2)', 'array<string>')
    >>> check_type("varchar(3)")
    Traceback (most recent call last):
    ValueError: 'varchar(3)' is not an Iceberg type this pipeline writes (string, boolean, int, bigint, float, \
double, timestamp, binary, decimal(p,s), array<...>, map<...>, struct<...>)
    """
    kind = kind.strip().lower()
    decimal = re.fullmatch(_DECIMAL, kind)
    if decimal:
        precision, scale = int(decimal[1]), int(decimal[2])
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(f"{kind!r}: Iceberg decimals have a precision of 1 to 38 and a scale of at most that")
        return kind
    if kind in PRIMITIVE_TYPES or re.fullmatch(_NESTED, kind):
        if re.fullmatch(_NESTED, kind):
            split_top(kind)  # balanced brackets
        return kind
    known = ", ".join(PRIMITIVE_TYPES)
    raise ValueError(
        f"{kind!r} is not an Iceberg type this pipeline writes ({known}, decimal(p,s), array<...>, "
        "map<...>, struct<...>)"
    )


def parse_types(text: str) -> dict[str, str]:
    """Parse ``column=type,...`` (``PIPELINE_ICEBERG_TYPES``); commas inside a type's brackets are kept.

    >>> parse_types("amount=decimal(38,2), at=timestamp, tags=array<string>")
    {'amount': 'decimal(38,2)', 'at': 'timestamp', 'tags': 'array<string>'}
    """
    types: dict[str, str] = {}
    for pair in split_top(text):
        name, sep, kind = pair.partition("=")
        if not (sep and name.strip() and kind.strip()):
            raise ValueError(f"{pair!r} is not COLUMN=TYPE")
        if name.strip() in types:
            raise ValueError(f"column {name.strip()!r} is given two types")
        types[name.strip()] = check_type(kind)
    return types


def column_types(columns: Sequence[Column], types: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """``(column name, Iceberg type)`` for every column, in order: *types* where given, else the default.

    Raises ValueError for a type given to an unknown column, and for two columns with one table column name.

    >>> from pipeline import parse_columns
    >>> column_types(parse_columns("id,amount,at=@approximateCreationDateTime"), {"amount": "decimal(38,2)"})
    (('id', 'string'), ('amount', 'decimal(38,2)'), ('at', 'timestamp'))
    """
    names = [c.name for c in columns]
    unknown = sorted(set(types) - set(names))
    if unknown:
        raise ValueError(f"types for unknown columns {unknown}; the columns: {names}")
    seen: dict[str, str] = {}
    for name in names:
        table = column_name(name)
        if table in seen:
            raise ValueError(f"columns {seen[table]!r} and {name!r} are both `{table}` in the table: rename one")
        seen[table] = name
    return tuple((c.name, check_type(types[c.name]) if c.name in types else default_type(c)) for c in columns)


def parse_iceberg_table(text: str) -> tuple[str, str]:
    """``(database, table)`` from ``database.table``; either may hold ``{tableName}``.

    >>> parse_iceberg_table("analytics.{tableName}")
    ('analytics', '{tableName}')
    >>> parse_iceberg_table("Analytics.orders")
    Traceback (most recent call last):
    ValueError: 'Analytics.orders' is not database.table in lower case letters, digits and _ \
(with {tableName} to route by DynamoDB table)
    """
    database, dot, table = text.partition(".")
    bare = (database + "." + table).replace(TABLE_PLACEHOLDER, "x")
    if not dot or not re.fullmatch(f"{_NAME}\\.{_NAME}", bare):
        raise ValueError(
            f"{text!r} is not database.table in lower case letters, digits and _ "
            f"(with {TABLE_PLACEHOLDER} to route by DynamoDB table)"
        )
    return database, table


def _operations(mode: str) -> dict[str, str]:
    if mode == "append":
        return {"INSERT": "insert", "MODIFY": "insert", "REMOVE": "insert"}
    if mode == "upsert":
        return {"INSERT": "update", "MODIFY": "update", "REMOVE": "delete"}
    raise ValueError(f"not one of {', '.join(ICEBERG_MODES)}")


def with_otf_metadata(table: str, mode: str = "append", keys: Iterable[Column] = (), image: str = "auto") -> Stage:
    """Attach ``otfMetadata`` (database, table, operation) to each record of one change; fail records of several.

    *table* is ``database.table`` (``{tableName}`` is the change's DynamoDB table, as a Glue name); *mode*
    ``append`` inserts every change, ``upsert`` updates on INSERT and MODIFY and deletes on REMOVE; *keys* are
    the unique-key columns, which every change must give a value for.

    >>> change = {"eventName": "REMOVE", "tableName": "Orders-EU", "dynamodb": {"Keys": {"id": {"S": "7"}}}}
    >>> from pipeline import parse_columns
    >>> [r.otf for r in with_otf_metadata("lake.{tableName}", "upsert", parse_columns("id"))([change])]
    [{'destinationDatabaseName': 'lake', 'destinationTableName': 'orders_eu', 'operation': 'delete'}]
    >>> [r.reason for r in with_otf_metadata("lake.t")([{"Records": [change, change]}])]  # doctest: +ELLIPSIS
    ["iceberg: the record holds 2 changes; Firehose's Iceberg destination takes one JSON object ..."]
    """
    database, name = parse_iceberg_table(table)
    operations = _operations(mode)
    keys = tuple(keys)
    choose = pick_image(image)

    routed = TABLE_PLACEHOLDER in table
    made: dict[tuple[str | None, str], Mapping[str, str]] = {}  # one otfMetadata per table and operation, shared

    def metadata(change: Mapping[str, Any], operation: str) -> Mapping[str, str]:
        found = table_name(change) if routed else None
        otf = made.get((found, operation))
        if otf is None:
            if routed and not found:
                raise RecordError(f"the change names no DynamoDB table for {TABLE_PLACEHOLDER}")
            glue = column_name(found) if found else ""
            otf = {
                "destinationDatabaseName": database.replace(TABLE_PLACEHOLDER, glue),
                "destinationTableName": name.replace(TABLE_PLACEHOLDER, glue),
                "operation": operation,
            }
            if len(made) < 4096:
                made[(found, operation)] = otf
        return otf

    def attach(rec: Record) -> Record:
        if len(rec.value) != 1:
            raise RecordError(
                f"the record holds {len(rec.value)} changes; Firehose's Iceberg destination takes one JSON "
                "object and one otfMetadata per record, so the record goes to the error output whole: send one "
                "change per record"
            )
        (change,) = rec.value
        operation = operations[change["eventName"]]
        if keys:
            image_ = choose(change)
            for key in keys:
                value = key.get(change, image_, rec)
                if value is None or "NULL" in value:
                    raise RecordError(f"key column {key.name!r} has no value for the {operation}")
        return Record._make((rec.id, rec.source, rec.value, OK, None, rec.partition_keys, metadata(change, operation)))

    return map_records(attach, "iceberg")


# --- values: a typed DynamoDB value -> the JSON text the column's Iceberg type needs -------------------------------


def _kind(value: Typed) -> str:
    if type(value) is not dict or len(value) != 1:
        raise RecordError("attribute is not a typed DynamoDB value")
    return next(iter(value))


def _as_string(value: Typed) -> str:
    return encode_basestring(to_text(value))


def _only(kind: str, column: str) -> Convert:
    """The converter of a *column* type that takes *kind* attributes only, written as :func:`to_json` does."""

    def convert(value: Typed) -> str:
        if _kind(value) != kind:
            raise RecordError(f"a {column} column takes {kind} attributes, not {_kind(value)}")
        return to_json(value)

    return convert


def _decimals() -> Callable[[Typed], Any]:
    """The function reading an ``N`` attribute's number as a Decimal, every digit kept."""
    from decimal import Decimal, InvalidOperation  # noqa: PLC0415 - only for decimal and timestamp columns

    def number(value: Typed) -> Any:
        try:
            return Decimal(json_number(value["N"]))
        except InvalidOperation:
            raise RecordError("N attribute is not a number") from None

    return number


def _as_number(kind: str) -> Convert:
    limit = _INT_RANGE.get(kind)
    integer = re.compile(r"-?[0-9]+").fullmatch  # compiled with the column, not at import

    def convert(value: Typed) -> str:
        if _kind(value) != "N":
            raise RecordError(f"a {kind} column takes N attributes, not {_kind(value)}")
        text = json_number(value["N"])
        if limit is not None and (not integer(text) or not -limit <= int(text) < limit):
            raise RecordError(f"the number does not fit a {kind} column")
        return text

    return convert


def _as_decimal(precision: int, scale: int) -> Convert:
    decimal = _decimals()  # imported now, off the cold start: only a decimal column needs it

    def convert(value: Typed) -> str:
        if _kind(value) != "N":
            raise RecordError(f"a decimal column takes N attributes, not {_kind(value)}")
        number = decimal(value)
        _sign, digits, exponent = number.as_tuple()
        assert isinstance(exponent, int)
        if -exponent > scale or len(digits) + exponent > precision - scale:
            raise RecordError(f"the number does not fit decimal({precision},{scale}) without losing digits")
        return format(number, "f")

    return convert


def _micros(value: Typed, decimal: Callable[[Typed], Any]) -> int:
    kind = _kind(value)
    if kind == "S" and type(value["S"]) is str:
        try:
            moment = datetime.fromisoformat(value["S"])
        except ValueError:
            raise RecordError("a timestamp column takes ISO 8601 text or epoch numbers") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if kind == "N":
        number = decimal(value)
        magnitude = abs(number)
        scale = 1 if magnitude >= _US_FROM else 1_000 if magnitude >= _MS_FROM else 1_000_000
        return int((number * scale).to_integral_value())
    raise RecordError(f"a timestamp column takes S or N attributes, not {kind}")


def _as_timestamp() -> Convert:
    decimal = _decimals()  # imported now, off the cold start: only a timestamp column needs it
    return lambda value: str(_micros(value, decimal))


def _as_nested(value: Typed) -> str:
    kind = _kind(value)
    if kind not in ("L", "M", "SS", "NS", "BS"):
        raise RecordError(f"a nested column takes L, M or set attributes, not {kind}")
    return to_json(value)


def _converter(kind: str) -> Convert:
    decimal = re.fullmatch(_DECIMAL, kind)
    if decimal:
        convert = _as_decimal(int(decimal[1]), int(decimal[2]))
    elif kind in ("int", "bigint", "float", "double"):
        convert = _as_number(kind)
    elif kind == "string":
        convert = _as_string
    elif kind == "boolean":
        convert = _only("BOOL", "boolean")
    elif kind == "binary":
        convert = _only("B", "binary")
    elif kind == "timestamp":
        convert = _as_timestamp()
    else:
        convert = _as_nested

    if convert is _as_string:  # the usual column: text as it is, without the typed checks' calls

        def text_or_null(value: Typed | None) -> str:
            if value is None:
                return "null"
            text = value.get("S") if type(value) is dict else None
            if type(text) is str and len(value) == 1:
                return encode_basestring(text)
            return "null" if type(value) is dict and "NULL" in value else _as_string(value)

        return text_or_null

    def or_null(value: Typed | None) -> str:
        if value is None or (type(value) is dict and "NULL" in value):
            return "null"
        return convert(value)

    return or_null


def iceberg_line(types: Sequence[tuple[str, str]]) -> Callable[[Mapping[str, Any]], str]:
    """The function writing one row as the JSON object for these ``(column, Iceberg type)`` pairs, in order.

    >>> line = iceberg_line([("id", "string"), ("amount", "decimal(38,2)"), ("at", "timestamp"), ("ok", "boolean"),
    ...                      ("tags", "array<string>"), ("gone", "string")])
    >>> line({"id": {"N": "7"}, "amount": {"N": "12.5"}, "at": {"S": "2016-12-02T01:27:00.000Z"},
    ...       "ok": {"BOOL": True}, "tags": {"SS": ["a"]}, "gone": None})
    '{"id":"7","amount":12.5,"at":1480642020000000,"ok":true,"tags":["a"],"gone":null}\\n'
    """
    keys = [encode_basestring(column_name(name)) + ":" for name, _ in types]
    converters = [_converter(kind) for _, kind in types]
    plan = tuple(zip(keys, converters, strict=True))

    def line(row: Mapping[str, Any]) -> str:
        return "{" + ",".join([key + convert(v) for (key, convert), v in zip(plan, row.values(), strict=True)]) + "}\n"

    return line


def iceberg_lines(types: Sequence[tuple[str, str]]) -> Callable[[tuple[Mapping[str, Any], ...]], bytes]:
    """A record's rows -> its data: the one change's JSON object (a record of several changes fails)."""
    line = iceberg_line(types)
    converters = [(name, _converter(kind)) for name, kind in types]

    def culprit(row: Mapping[str, Any], exc: Exception) -> Exception:
        """The error naming the column at fault, as the other formats do (the name, never the value)."""
        for (name, convert), value in zip(converters, row.values(), strict=True):
            try:
                text = convert(value)
            except RecordError as error:
                return RecordError(f"column {label(name)}: {error}")
            if not is_utf8(text):
                return RecordError(f"column {label(name)} is not UTF-8 text")
        return exc

    def lines(rows: tuple[Mapping[str, Any], ...]) -> bytes:
        if len(rows) != 1:
            raise RecordError(f"the record holds {len(rows)} changes; Firehose's Iceberg destination takes one")
        try:
            return line(rows[0]).encode()
        except (RecordError, UnicodeEncodeError) as exc:  # rare: find the column at fault
            raise culprit(rows[0], exc) from None

    return lines


def __getattr__(name: str) -> Any:
    """``DECIMAL_TYPE``: the compiled pattern of a decimal type, ``decimal(p,s)``, made when first asked for.

    >>> DECIMAL_TYPE = __getattr__("DECIMAL_TYPE")
    >>> DECIMAL_TYPE.fullmatch("decimal(38, 2)").groups()
    ('38', '2')
    """
    if name == "DECIMAL_TYPE":
        return re.compile(_DECIMAL)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
