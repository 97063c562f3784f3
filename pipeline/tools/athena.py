r"""``CREATE EXTERNAL TABLE`` for Athena over what the pipeline writes: its columns, format and partition keys.

What Athena (engine 3, which reads the Hive text formats the way Trino does) needs for our exact output:

* **csv**: ``OpenCSVSerde``, since cells may be quoted (commas, quotes doubled, as RFC 4180). Escaping is turned
  off (``escapeChar`` NUL): RFC 4180 has none, and with the default backslash every ``\`` in a value would be
  lost. The SerDe reads every column as ``string`` and an empty cell as ``''``, never NULL. A line break
  inside a cell splits the row in Athena: use tsv or jsonl for such text.
* **tsv**: ``LazySimpleSerDe``, tab-separated, ``escape.delim`` backslash (``\\`` reads back as ``\``) and
  ``serialization.null.format`` set to ``PIPELINE_NULL``; the null text is matched before unescaping, so with
  ``\N`` a NULL stays NULL and the text ``\N`` (written ``\\N``) stays text. Hive's unescaping keeps the
  character after a backslash, so a tab, line feed or carriage return *inside a value* (written ``\t``, ``\n``,
  ``\r``) reads back as ``t``, ``n`` or ``r``.
* **jsonl**: the OpenX ``JsonSerDe``; ``mapping.*`` properties tie column names to keys where they differ.
  Numbers read into ``string`` columns keep every digit; declare ``decimal(38,s)`` where the scale is known.

Column names are Athena's: lower case, each run of other characters than letters, digits and ``_`` made one
``_``. Columns are ``string`` unless their type is known (``@sizeBytes`` bigint, ``@isTtlDelete`` boolean,
the ``@``-times timestamp in jsonl) or given. Each partition key is projected (no crawler, no ``MSCK``): a
``|strftime`` key with a year as a date range from *since* to now, one with a single field such as ``%H`` as
numbers (00 to 23), any other as ``injected`` (queries must name its value). Firehose must then write under
``LOCATION`` + :func:`firehose_prefix`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from ..columns import Column
from ..config import Config
from ..iceberg import column_name
from ..partitions import PartitionKey
from ..sinks.storage import check_s3_url

__all__ = [
    "DEFAULT_SINCE",
    "athena_ddl",
    "athena_name",
    "athena_type",
    "check_table",
    "firehose_prefix",
    "iceberg_ddl",
    "is_date_range",
    "is_injected",
    "java_date_format",
]

_SERDES = {
    "csv": "org.apache.hadoop.hive.serde2.OpenCSVSerde",
    "tsv": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
    "jsonl": "org.openx.data.jsonserde.JsonSerDe",
}
_KNOWN_TYPES = {"@sizeBytes": "bigint", "@isTtlDelete": "boolean"}
_TIMES = frozenset({"@approximateCreationDateTime", "@arrivalTimestamp"})
_JAVA_FIELDS = {  # strftime code -> Java DateTimeFormatter letters, projection interval unit
    "Y": ("yyyy", "YEARS"),
    "m": ("MM", "MONTHS"),
    "d": ("dd", "DAYS"),
    "H": ("HH", "HOURS"),
    "M": ("mm", "MINUTES"),
    "S": ("ss", "SECONDS"),
}
_NUMBER_RANGES = {"m": (1, 12), "d": (1, 31), "H": (0, 23), "M": (0, 59), "S": (0, 59)}
_UNITS = ("SECONDS", "MINUTES", "HOURS", "DAYS", "MONTHS", "YEARS")
# Patterns, not compiled regexes: the Lambda imports this module (via pipeline) but never uses it.
_PLAIN = r"[-/_:., ]*"
_TABLE = r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?"
# Athena's DDL types (Hive names): https://docs.aws.amazon.com/athena/latest/ug/data-types.html
_PRIMITIVES = frozenset(
    {"boolean", "tinyint", "smallint", "int", "integer", "bigint", "float", "double", "string", "binary"}
    | {"date", "timestamp"}
)
_TYPE_TOKEN = r"\s*([a-z_][a-z0-9_]*|\d+|[<>(),:])"
_TYPE_HELP = (
    "use boolean, tinyint, smallint, int, bigint, float, double, decimal(p,s), char(n), varchar(n), string, "
    "binary, date, timestamp, array<T>, map<K,V> or struct<name:T,...>"
)
_LITERAL_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\0": "\\0", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def athena_name(name: str) -> str:
    """The Athena name for a column or partition key.

    >>> athena_name("eventName"), athena_name("address.city"), athena_name("tags[0]")
    ('eventname', 'address_city', 'tags_0_')
    """
    return re.sub(r"[^a-z0-9_]+", "_", name.lower())


def java_date_format(fmt: str) -> tuple[str, str]:
    """The Java DateTimeFormatter pattern for a partition key's strftime format, and its smallest unit.

    >>> java_date_format("%Y-%m-%d"), java_date_format("%Y/%m/%dT%H")
    (('yyyy-MM-dd', 'DAYS'), ("yyyy/MM/dd'T'HH", 'HOURS'))
    """
    parts, units, literal = [], [], ""
    pieces = iter(fmt)
    for char in pieces:
        if char != "%":
            literal += char
            continue
        code = next(pieces, "")
        if code == "%":
            literal += "%"
            continue
        if code not in _JAVA_FIELDS:
            known = " ".join(f"%{c}" for c in _JAVA_FIELDS)
            raise ValueError(f"%{code} in {fmt!r} cannot be projected by Athena (use {known})")
        parts.append(_java_literal(literal))
        literal = ""
        pattern, unit = _JAVA_FIELDS[code]
        parts.append(pattern)
        units.append(unit)
    parts.append(_java_literal(literal))
    if not units:
        raise ValueError(f"{fmt!r} has no date or time field")
    return "".join(parts), min(units, key=_UNITS.index)


def _java_literal(text: str) -> str:
    return text if re.fullmatch(_PLAIN, text) else "'" + text.replace("'", "''") + "'"


def firehose_prefix(keys: tuple[PartitionKey, ...]) -> str:
    """The S3 prefix Firehose must write under (after the data prefix) for these partition keys, in order.

    >>> from pipeline import parse_partition_keys
    >>> firehose_prefix(parse_partition_keys("day=@approximateCreationDateTime|%Y-%m-%d,table=@tableName"))
    'day=!{partitionKeyFromLambda:day}/table=!{partitionKeyFromLambda:table}/'
    """
    return "".join(f"{k.name}=!{{partitionKeyFromLambda:{k.name}}}/" for k in keys)


def athena_type(text: str) -> str:
    """*text* as an Athena DDL column type, in lower case; ValueError if Athena's type grammar refuses it.

    >>> athena_type("DECIMAL(38, 9)"), athena_type("map<string,array<struct<a:int,b:varchar(10)>>>")
    ('decimal(38,9)', 'map<string,array<struct<a:int,b:varchar(10)>>>')
    >>> athena_type("varchr")
    Traceback (most recent call last):
    ValueError: 'varchr' is not an Athena type: use boolean, tinyint, ..., map<K,V> or struct<name:T,...>
    """
    tokens, end = [], 0
    source = text.lower().strip()
    for match in re.finditer(_TYPE_TOKEN, source):
        if match.start() != end:
            break
        tokens.append(match[1])
        end = match.end()
    try:
        if end != len(source):
            raise ValueError(f"unexpected {source[end:].strip()[:1]!r}")
        kind, rest = _parse_type(tokens)
        if rest:
            raise ValueError(f"unexpected {rest[0]!r} after {kind}")
    except RecursionError:
        raise ValueError(f"{text[:40]!r}... is not an Athena type (nested too deep): {_TYPE_HELP}") from None
    except (ValueError, IndexError) as exc:
        detail = "" if not isinstance(exc, ValueError) or str(exc).startswith("unknown") else f" ({exc})"
        raise ValueError(f"{text!r} is not an Athena type{detail}: {_TYPE_HELP}") from None
    return kind


def _expect(tokens: list[str], token: str) -> list[str]:
    if not tokens or tokens[0] != token:
        raise ValueError(f"expected {token!r}")
    return tokens[1:]


def _bounded(tokens: list[str], least: int, most: int, what: str) -> tuple[int, list[str]]:
    if not tokens or not tokens[0].isdigit() or not least <= int(tokens[0]) <= most:
        raise ValueError(f"{what} must be {least} to {most}")
    return int(tokens[0]), tokens[1:]


def _parse_type(tokens: list[str]) -> tuple[str, list[str]]:
    head, rest = tokens[0], tokens[1:]
    if head in _PRIMITIVES:
        return head, rest
    if head == "decimal":
        if not rest or rest[0] != "(":
            return head, rest
        precision, rest = _bounded(rest[1:], 1, 38, "a decimal's precision")
        scale = 0
        if rest and rest[0] == ",":
            scale, rest = _bounded(rest[1:], 0, precision, "a decimal's scale")
        return f"decimal({precision},{scale})", _expect(rest, ")")
    if head in ("char", "varchar"):
        length, rest = _bounded(_expect(rest, "("), 1, 255 if head == "char" else 65535, f"a {head}'s length")
        return f"{head}({length})", _expect(rest, ")")
    if head == "array":
        inner, rest = _parse_type(_expect(rest, "<"))
        return f"array<{inner}>", _expect(rest, ">")
    if head == "map":
        key, rest = _parse_type(_expect(rest, "<"))
        if "<" in key:
            raise ValueError("a map's key must be a primitive type")
        value, rest = _parse_type(_expect(rest, ","))
        return f"map<{key},{value}>", _expect(rest, ">")
    if head == "struct":
        fields, rest = [], _expect(rest, "<")
        while True:
            field = rest[0]
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", field):
                raise ValueError(f"{field!r} is not a field name")
            kind, rest = _parse_type(_expect(rest[1:], ":"))
            fields.append(f"{field}:{kind}")
            if rest[:1] != [","]:
                return f"struct<{','.join(fields)}>", _expect(rest, ">")
            rest = rest[1:]
    raise ValueError(f"unknown type {head!r}")


def _column_type(column: Column, fmt: str, types: Mapping[str, str]) -> str:
    if column.name in types:
        try:
            kind = athena_type(types[column.name])
        except ValueError as exc:
            raise ValueError(f"column {column.name!r}: {exc}") from None
        if column.spec == "@version" and kind != "string":
            raise ValueError(
                f"column {column.name!r} (@version) is text that sorts as text (up to 40 digits): no --type"
            )
        return kind
    if fmt == "csv":
        return "string"
    if fmt == "jsonl" and column.spec in _TIMES:
        return "timestamp"
    return _KNOWN_TYPES.get(column.spec, "string")


def check_table(table: str) -> None:
    """ValueError unless *table* is ``NAME`` or ``DATABASE.NAME`` (letters, digits and ``_``).

    >>> check_table("analytics.orders")
    >>> check_table("my-table")
    Traceback (most recent call last):
    ValueError: table 'my-table' is not NAME or DATABASE.NAME (letters, digits and _)
    """
    if not re.fullmatch(_TABLE, table):
        raise ValueError(f"table {table!r} is not NAME or DATABASE.NAME (letters, digits and _)")


def _table_location(table: str, location: str) -> str:
    """*location* (an ``s3://`` URL) as a folder, ending in ``/``, once it and *table* are checked."""
    check_table(table)
    try:
        check_s3_url(location)
    except ValueError as exc:
        raise ValueError(f"location {exc}") from None
    return location if location.endswith("/") else location + "/"


def _literal(text: str) -> str:
    return "'" + text.translate(_LITERAL_ESCAPES) + "'"


def _properties(props: Mapping[str, str]) -> str:
    return ",\n".join(f"  {_literal(key)} = {_literal(value)}" for key, value in props.items())


def _serde_properties(config: Config, mapping: Mapping[str, str]) -> dict[str, str]:
    if config.format == "csv":
        return {"separatorChar": ",", "quoteChar": '"', "escapeChar": "\0"}
    if config.format == "tsv":
        return {"field.delim": "\t", "escape.delim": "\\", "serialization.null.format": config.null}
    return {f"mapping.{column}": key for column, key in mapping.items()}


#: The first day of a date partition's range when none is given (``athena-ddl --since``).
DEFAULT_SINCE = date(2020, 1, 1)


def is_injected(key: PartitionKey) -> bool:
    """Whether the table projects *key* as ``injected``: every query must give its value.

    >>> from pipeline import parse_partition_keys
    >>> [is_injected(k) for k in parse_partition_keys("t=@tableName,d=@approximateCreationDateTime|%Y-%j,"
    ...                                                  "h=@approximateCreationDateTime|%H")]
    [True, True, False]
    """
    return _projection(key, "k", DEFAULT_SINCE)["projection.k.type"] == "injected"


def is_date_range(key: PartitionKey) -> bool:
    """Whether the table projects *key* as a range of dates (from ``since`` to now).

    >>> from pipeline import parse_partition_keys
    >>> [is_date_range(k) for k in parse_partition_keys("t=@tableName,d=@approximateCreationDateTime|%Y-%m-%d")]
    [False, True]
    """
    return _projection(key, "k", DEFAULT_SINCE)["projection.k.type"] == "date"


def _projection(key: PartitionKey, column: str, since: date) -> dict[str, str]:
    if key.fmt is None:
        return {f"projection.{column}.type": "injected"}
    try:
        pattern, unit = java_date_format(key.fmt)
    except ValueError:  # a code Athena's date projection has no letter for (%a, %j ...): queries give the value
        return {f"projection.{column}.type": "injected"}
    number = re.fullmatch(r"%([mdHMS])", key.fmt)
    if number:  # one field and no year (the hour of a day ...): a number, not a point in time
        low, high = _NUMBER_RANGES[number[1]]
        return {
            f"projection.{column}.type": "integer",
            f"projection.{column}.range": f"{low},{high}",
            f"projection.{column}.digits": "2",
        }
    if "%Y" not in key.fmt:  # a date range needs the year
        return {f"projection.{column}.type": "injected"}
    return {
        f"projection.{column}.type": "date",
        f"projection.{column}.format": pattern,
        f"projection.{column}.range": f"{since.strftime(key.fmt)},NOW",
        f"projection.{column}.interval": "1",
        f"projection.{column}.interval.unit": unit,
    }


def athena_ddl(
    config: Config,
    table: str,
    location: str,
    *,
    types: Mapping[str, str] | None = None,
    since: date = DEFAULT_SINCE,
) -> str:
    """The ``CREATE EXTERNAL TABLE`` statement for the output of *config* under *location*.

    *types* gives Athena types by column name (e.g. ``{"amount": "decimal(38,9)"}``); *since* is the first
    day of date-projected partitions.

    >>> config = Config.from_env({"PIPELINE_COLUMNS": "id,event=@eventName,@sizeBytes", "PIPELINE_FORMAT": "tsv",
    ...                           "PIPELINE_NULL": "\\\\N", "PIPELINE_PARTITION_KEYS": "table=@tableName"})
    >>> print(athena_ddl(config, "changes", "s3://my-bucket/data"))
    CREATE EXTERNAL TABLE `changes` (
      `id` string,
      `event` string,
      `sizebytes` bigint
    )
    PARTITIONED BY (
      `table` string
    )
    ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe'
    WITH SERDEPROPERTIES (
      'field.delim' = '\\t',
      'escape.delim' = '\\\\',
      'serialization.null.format' = '\\\\N'
    )
    STORED AS TEXTFILE
    LOCATION 's3://my-bucket/data/'
    TBLPROPERTIES (
      'projection.enabled' = 'true',
      'projection.table.type' = 'injected',
      'storage.location.template' = 's3://my-bucket/data/table=${table}/'
    )
    """
    if config.columns is None:
        raise ValueError("Athena needs fixed columns: set PIPELINE_COLUMNS (the whole image has none)")
    if config.format == "iceberg":
        raise ValueError("PIPELINE_FORMAT=iceberg fills an Iceberg table, not files: add --iceberg")
    location = _table_location(table, location)
    types = dict(types or {})
    unknown = set(types) - {c.name for c in config.columns}
    if unknown:
        raise ValueError(
            f"types for unknown columns {sorted(unknown)}; the columns: {[c.name for c in config.columns]}"
        )
    if types and config.format == "csv":
        raise ValueError("OpenCSVSerde reads csv as string: CAST in queries, or write tsv or jsonl to declare types")
    names: dict[str, str] = {}  # Athena name -> what it names, to catch two that become one

    def claim(name: str, what: str) -> str:
        athena = athena_name(name)
        if athena in names:
            raise ValueError(f"{names[athena]} and {what} are both `{athena}` in Athena: rename one (alias=spec)")
        names[athena] = what
        return athena

    columns, mapping = [], {}
    for column in config.columns:
        athena = claim(column.name, f"column {column.name!r}")
        columns.append(f"  `{athena}` {_column_type(column, config.format, types)}")
        if athena != column.name.lower():
            mapping[athena] = column.name
    partitions, table_props, template = [], {}, location
    for key in config.partition_keys:
        athena = claim(key.name, f"partition key {key.name!r}")
        partitions.append(f"  `{athena}` string")
        table_props.update(_projection(key, athena, since))
        template += f"{key.name}=${{{athena}}}/"
    quoted = ".".join(f"`{part.lower()}`" for part in table.split("."))
    lines = [f"CREATE EXTERNAL TABLE {quoted} (", ",\n".join(columns), ")"]
    if partitions:
        lines += ["PARTITIONED BY (", ",\n".join(partitions), ")"]
    lines += [f"ROW FORMAT SERDE {_literal(_SERDES[config.format])}"]
    serde = _serde_properties(config, mapping)
    if serde:
        lines += ["WITH SERDEPROPERTIES (", _properties(serde), ")"]
    lines += ["STORED AS TEXTFILE", f"LOCATION {_literal(location)}"]
    if partitions:
        props = {"projection.enabled": "true", **table_props, "storage.location.template": template}
        lines += ["TBLPROPERTIES (", _properties(props), ")"]
    return "\n".join(lines)


def iceberg_ddl(config: Config, table: str, location: str, *, types: Mapping[str, str] | None = None) -> str:
    """The ``CREATE TABLE ... TBLPROPERTIES ('table_type'='ICEBERG')`` that ``PIPELINE_FORMAT=iceberg`` fills.

    Column names and types are the ones the function writes (``PIPELINE_ICEBERG_TYPES``); *types* (``--type``)
    may repeat them but not contradict them, since the function would then write values the table cannot take.

    >>> config = Config.from_env({"PIPELINE_FORMAT": "iceberg", "PIPELINE_ICEBERG_TABLE": "lake.orders",
    ...     "PIPELINE_COLUMNS": "id,amount,event=@eventName,at=@approximateCreationDateTime",
    ...     "PIPELINE_ICEBERG_TYPES": "amount=decimal(38,2)"})
    >>> print(iceberg_ddl(config, "lake.orders", "s3://my-bucket/warehouse/orders"))
    CREATE TABLE `lake`.`orders` (
      `id` string,
      `amount` decimal(38,2),
      `event` string,
      `at` timestamp
    )
    LOCATION 's3://my-bucket/warehouse/orders/'
    TBLPROPERTIES (
      'table_type' = 'ICEBERG'
    )
    """
    if config.format != "iceberg" or not config.iceberg_types:
        raise ValueError(
            "--iceberg describes the table PIPELINE_FORMAT=iceberg fills: set PIPELINE_FORMAT=iceberg and the "
            "PIPELINE_ICEBERG_* variables as for the function"
        )
    location = _table_location(table, location)
    written = dict(config.iceberg_types)
    for name, kind in (types or {}).items():
        if name not in written:
            raise ValueError(f"--type for unknown column {name!r}; the columns: {list(written)}")
        if kind.strip().lower().replace(", ", ",") != written[name].replace(", ", ","):
            raise ValueError(
                f"--type {name}={kind}: the function writes {name!r} as {written[name]}; set "
                f"PIPELINE_ICEBERG_TYPES={name}={kind} for the function and here, so that the two agree"
            )
    columns = ",\n".join(f"  `{column_name(name)}` {kind}" for name, kind in config.iceberg_types)
    quoted = ".".join(f"`{part.lower()}`" for part in table.split("."))
    return "\n".join(
        [
            f"CREATE TABLE {quoted} (",
            columns,
            ")",
            f"LOCATION {_literal(location)}",
            "TBLPROPERTIES (",
            _properties({"table_type": "ICEBERG"}),
            ")",
        ]
    )
