"""The current state of a table from its change log: per key, the change with the highest ``@version``.

What lands in S3 is every INSERT, MODIFY and REMOVE as a row, with copies (a re-ingested record whose
response was lost, a Kinesis duplicate) and, from a Kinesis Data Streams source, in any order. The view keeps,
for each key, the row with the highest ``@version`` (every copy of one change has the same version, so which
copy wins does not matter) and leaves the key out when that row is a REMOVE. What it needs, checked here:

* ``@eventName``, ``@version`` and the key columns among ``PIPELINE_COLUMNS`` (a key may also be a partition
  key, e.g. ``@tableName`` for a stream that carries several tables);
* every event kept (``PIPELINE_EVENTS``: a dropped REMOVE would leave a deleted item in the view);
* an image that holds the key for every event (``PIPELINE_IMAGE`` ``auto`` or ``keys``: with ``new`` a REMOVE
  has no key, with ``old`` an INSERT has none);
* an ``injected`` partition key among the keys: Athena wants its value in every query, and a filter on the
  view reaches the table only through the columns the view partitions by.

The statement is plain SQL (double-quoted names, ``row_number()``), which Athena runs as it is and other
engines read too (the tests run it in DuckDB, transpiled from Athena's dialect by sqlglot).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import Config
from ..parse import EVENT_NAMES
from .athena import athena_name, check_table, is_injected

__all__ = ["current_query", "current_view"]

_NEEDED = ("@eventName", "@version")


def _quoted(table: str) -> str:
    return ".".join(f'"{part.lower()}"' for part in table.split("."))


def _columns(config: Config, keys: Sequence[str]) -> tuple[list[str], list[str], str, str]:
    """The table's Athena column names (data, then partitions), the key columns, the event and version columns."""
    if config.columns is None:
        raise ValueError("the current-state view needs fixed columns: set PIPELINE_COLUMNS")
    by_spec = {c.spec: athena_name(c.name) for c in config.columns}
    data = [athena_name(c.name) for c in config.columns]
    partitions = {athena_name(k.name): k for k in config.partition_keys}
    names = data + list(partitions)
    keys = [k.strip() for k in keys if k.strip()]
    if not keys:
        raise ValueError("the current-state view needs the item's key: --key id or --key pk,sk")
    key_columns = [athena_name(k) for k in keys]
    missing = [s for s in _NEEDED if s not in by_spec] + [k for k in keys if athena_name(k) not in names]
    if missing:
        raise ValueError(
            f"the current-state view needs @eventName, @version and the key columns among PIPELINE_COLUMNS: "
            f"add {', '.join(missing)} to PIPELINE_COLUMNS"
        )
    if len(set(key_columns)) != len(key_columns):
        raise ValueError(f"--key names a column twice: {', '.join(keys)}")
    if config.events != EVENT_NAMES:
        raise ValueError(
            "the current-state view needs every change: set PIPELINE_EVENTS=INSERT,MODIFY,REMOVE (the default)"
        )
    if config.image not in ("auto", "keys"):
        raise ValueError(
            f"PIPELINE_IMAGE={config.image}: some changes have no {config.image} image, so no key for the view; "
            "use auto (the default) or keys"
        )
    for name, key in partitions.items():
        if name not in key_columns and is_injected(key):
            raise ValueError(
                f"partition key {key.name!r} is injected (queries must give its value): "
                f"add it to --key so that a filter on the view reaches the table"
            )
    return names, key_columns, by_spec["@eventName"], by_spec["@version"]


def current_query(config: Config, table: str, keys: Sequence[str]) -> str:
    """A ``SELECT`` of the current state of *table* (made by :func:`~pipeline.tools.athena.athena_ddl`).

    Per key, the row with the highest ``@version``, unless that row is a REMOVE. *keys* are the item's key
    columns (their names in ``PIPELINE_COLUMNS`` or in Athena).

    >>> config = Config.from_env({"PIPELINE_COLUMNS": "event=@eventName,id,name,v=@version"})
    >>> print(current_query(config, "orders", ["id"]))
    SELECT "event", "id", "name", "v"
    FROM (
      SELECT *, row_number() OVER (PARTITION BY "id" ORDER BY "v" DESC) AS "current_rank"
      FROM "orders"
    ) AS "changes"
    WHERE "current_rank" = 1 AND "event" <> 'REMOVE'
    """
    check_table(table)
    names, key_columns, event, version = _columns(config, keys)
    rank = "current_rank"
    while rank in names:
        rank += "_"
    listed = ", ".join(f'"{n}"' for n in names)
    partition = ", ".join(f'"{k}"' for k in key_columns)
    return "\n".join(
        [
            f"SELECT {listed}",
            "FROM (",
            f'  SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY "{version}" DESC) AS "{rank}"',
            f"  FROM {_quoted(table)}",
            ') AS "changes"',
            f'WHERE "{rank}" = 1 AND "{event}" <> \'REMOVE\'',
        ]
    )


def current_view(config: Config, table: str, keys: Sequence[str]) -> str:
    """``CREATE OR REPLACE VIEW <table>_current`` over :func:`current_query`, for Athena.

    >>> config = Config.from_env({"PIPELINE_COLUMNS": "@eventName,pk,sk,@version", "PIPELINE_FORMAT": "jsonl"})
    >>> print(current_view(config, "analytics.orders", ["pk", "sk"]))  # doctest: +ELLIPSIS
    CREATE OR REPLACE VIEW "analytics"."orders_current" AS
    SELECT "eventname", "pk", "sk", "version"
    ...
    >>> current_view(Config.from_env({"PIPELINE_COLUMNS": "id,@eventName"}), "orders", ["id"])
    Traceback (most recent call last):
    ValueError: the current-state view needs @eventName, @version and the key columns among PIPELINE_COLUMNS: \
add @version to PIPELINE_COLUMNS
    """
    query = current_query(config, table, keys)
    return f"CREATE OR REPLACE VIEW {_quoted(table + '_current')} AS\n{query}"
