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
from typing import TYPE_CHECKING

from ..columns import Column
from ..config import Config
from ..partitions import PartitionKey

if TYPE_CHECKING:  # argparse is imported by the command line only, not at the Lambda's cold start
    pass

__all__ = ["athena_ddl", "athena_name", "firehose_prefix", "java_date_format"]

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
_LOCATION = r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?"
_TYPE = r"[a-z][a-z0-9_]*(\(\d+(, ?\d+)?\)|<[a-z0-9_<>,: ()]+>)?"
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


def _column_type(column: Column, fmt: str, types: Mapping[str, str]) -> str:
    if column.name in types:
        kind = types[column.name].lower()
        if not re.fullmatch(_TYPE, kind):
            raise ValueError(f"{kind!r} is not an Athena type (column {column.name!r})")
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


def _projection(key: PartitionKey, column: str, since: date) -> dict[str, str]:
    if key.fmt is None:
        return {f"projection.{column}.type": "injected"}
    pattern, unit = java_date_format(key.fmt)
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
    since: date = date(2020, 1, 1),
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
    if not re.fullmatch(_TABLE, table):
        raise ValueError(f"table {table!r} is not NAME or DATABASE.NAME (letters, digits and _)")
    if not re.fullmatch(_LOCATION, location):
        raise ValueError(f"location {location!r} is not an s3://bucket/prefix/ URL")
    location = location if location.endswith("/") else location + "/"
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
