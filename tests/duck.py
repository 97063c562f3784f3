"""The current-state view run for real: athena-ddl's statements, sqlglot (Athena -> DuckDB), DuckDB over the output.

The base table is a DuckDB view named as in the DDL, over the delivered files, with the DDL's columns, all
VARCHAR, read the way Athena's SerDes read them: OpenCSVSerde gives '' for an empty cell (never NULL),
LazySimpleSerDe matches the null text first and then keeps the character after each backslash, the OpenX
JsonSerDe reads each key (or its ``mapping.``) into its column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from pipeline import Config
from pipeline.sinks.storage import Store
from pipeline.tools.athena import athena_ddl
from pipeline.tools.views import current_view


def statements(config: Config, table: str, keys: Sequence[str]) -> tuple[exp.Create, exp.Create]:
    """What ``athena-ddl --current`` prints, parsed as Athena's dialect: the table and the view."""
    # One at a time, as Athena runs them: sqlglot's Athena dialect reads a text in Hive's syntax (where "x" is a
    # string) when it starts with CREATE EXTERNAL TABLE, and in Trino's (where "x" is a name) otherwise.
    texts = (athena_ddl(config, table, "s3://lake/data/"), current_view(config, table, keys))
    parsed = [sqlglot.parse_one(text, read="athena") for text in texts]
    assert [type(e) for e in parsed] == [exp.Create, exp.Create]
    assert parsed[0].args["kind"] == "TABLE" and parsed[1].args["kind"] == "VIEW"
    return parsed[0], parsed[1]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _base_table(config: Config, table: exp.Create, files: list[str]) -> str:
    columns = [c.name for c in table.this.expressions]
    assert table.find(exp.PartitionedByProperty) is None, "the tests' tables are not partitioned"
    serde = table.find(exp.RowFormatSerdeProperty)
    props = serde.args.get("serde_properties")
    mapping = {p.name: p.args["value"].this for p in props.expressions} if props else {}
    paths = "[" + ", ".join(_literal(f) for f in files) + "]"
    if config.format == "jsonl":
        by_lower = {c.name.lower(): c.name for c in config.columns or ()}  # OpenX matches keys case-insensitively
        keys = {c: mapping.get(f"mapping.{c}", by_lower.get(c, c)) for c in columns}
        types = ", ".join(f"{_literal(k)}: 'VARCHAR'" for k in keys.values())
        source = f"read_json({paths}, format='newline_delimited', columns={{{types}}})"
        cells = [f'"{keys[c]}" AS "{c}"' for c in columns]
    else:
        types = ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in columns)
        if config.format == "csv":
            options = "delim=',', quote='\"', escape='\"'"
            cells = [f'coalesce("{c}", \'\') AS "{c}"' for c in columns]
        else:
            options = f"delim='\\t', quote='', escape='', nullstr={_literal(config.null)}"
            cells = [f"regexp_replace(\"{c}\", '\\\\(.)', '\\1', 'g') AS \"{c}\"" for c in columns]
        source = f"read_csv({paths}, header=false, {options}, columns={{{types}}})"
    return f"SELECT {', '.join(cells)} FROM {source}"


def downloaded(store: Store, folder: Path) -> list[Path]:
    """Every object of *store* copied into *folder* (one flat file each), for DuckDB to read."""
    files = []
    for key in store.listing():
        path = folder / key.replace("/", "_")
        path.write_bytes(store.get(key))
        files.append(path)
    return files


def current_rows(config: Config, table: str, keys: Sequence[str], files: Iterable[Path]) -> list[tuple[Any, ...]]:
    """The rows of ``<table>_current`` in DuckDB over *files*, after the view made by athena-ddl."""
    create_table, create_view = statements(config, table, keys)
    paths = [str(f) for f in files]
    con = duckdb.connect()
    try:
        if paths:
            con.execute(f'CREATE VIEW "{table}" AS {_base_table(config, create_table, paths)}')
        else:  # nothing delivered: an empty table with the DDL's columns
            names = ", ".join(f'"{c.name}" VARCHAR' for c in create_table.this.expressions)
            con.execute(f'CREATE TABLE "{table}" ({names})')
        con.execute(create_view.sql("duckdb"))
        return con.sql(f'SELECT * FROM "{table}_current"').fetchall()
    finally:
        con.close()
