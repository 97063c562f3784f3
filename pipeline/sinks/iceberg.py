"""``run-local --to iceberg:DIR?table=db.t``: Firehose's Apache Iceberg destination, locally, with pyiceberg.

A SQL catalog on SQLite (``DIR/catalog.db``) and a warehouse of Parquet files (``DIR/warehouse``), made if absent.
Each delivered record is one JSON object (``PIPELINE_FORMAT=iceberg``) with ``metadata.otfMetadata`` naming its
table and operation, applied as Firehose applies them with unique keys:

* ``insert`` appends the row;
* ``update`` deletes the rows with the record's key values, then appends the row;
* ``delete`` deletes the rows with the record's key values.

A delivery (one invocation's records) is one Iceberg commit per table, its operations applied in record order:
a key's rows are deleted once, and only the rows its last operations leave are appended. A table named by a
record that does not exist yet is created with the configured columns and types. A record that cannot be applied
(not the expected JSON, a value its column cannot hold, an update or delete without its key values) is answered
with a reason and goes to the error output, as Firehose sends such records to its S3 error prefix.

pyiceberg is an optional dependency (the ``iceberg`` extra); only this module imports it.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError, ResolveError
from pyiceberg.expressions import AlwaysFalse, And, BooleanExpression, EqualTo, In, Or
from pyiceberg.schema import Schema, promote
from pyiceberg.table import Table
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    PrimitiveType,
    StringType,
    StructType,
    TimestampType,
)
from sqlalchemy.exc import DatabaseError, OperationalError

from ..iceberg import DECIMAL_TYPE, column_name, parse_iceberg_table, split_top
from .delivery import Delivered, Destination
from .prefixes import DEFAULT_ERROR_PREFIX
from .storage import Folder

__all__ = ["IcebergSink", "open_catalog", "open_iceberg", "parse_iceberg_location"]

ICEBERG_SCHEME = "iceberg:"
_EPOCH = datetime(1970, 1, 1)  # Iceberg's timestamp (without zone) as pyarrow reads it back: naive, UTC
_EXACT = Context(prec=80)  # room for any decimal(38,s) value: quantize must never round
_PRIMITIVES: dict[str, IcebergType] = {
    "string": StringType(),
    "boolean": BooleanType(),
    "int": IntegerType(),
    "bigint": LongType(),
    "float": FloatType(),
    "double": DoubleType(),
    "timestamp": TimestampType(),
    "binary": BinaryType(),
}


def parse_iceberg_location(location: str) -> tuple[str, str | None]:
    """``(folder, table or None)`` from ``iceberg:DIR[?table=db.t]``.

    >>> parse_iceberg_location("iceberg:/tmp/lake?table=lake.orders")
    ('/tmp/lake', 'lake.orders')
    """
    rest = location[len(ICEBERG_SCHEME) :]
    folder, _, query = rest.partition("?")
    if not folder:
        raise ValueError(f"{location!r}: give the folder, iceberg:DIR?table=database.table")
    table = None
    for pair in filter(None, query.split("&")):
        name, _, value = pair.partition("=")
        if name != "table" or not value:
            raise ValueError(f"{location!r}: the only option is table=database.table")
        if table is not None:
            raise ValueError(f"{location!r}: give table=database.table once")
        parse_iceberg_table(value)
        table = value
    return folder, table


def open_catalog(folder: str | Path) -> SqlCatalog:
    """The SQL catalog (SQLite) of a local Iceberg folder, as the sink writes it; read tables back through it.

    ValueError if the folder holds something else where the catalog or the warehouse should be.
    """
    root = Path(folder).resolve()
    catalog, warehouse = root / "catalog.db", root / "warehouse"
    again = "give a folder the Iceberg destination made, or a new folder"
    if warehouse.exists() and not warehouse.is_dir():
        raise ValueError(f"{warehouse} is a file where the warehouse folder should be: {again}")
    if catalog.is_dir():
        raise ValueError(f"{catalog} is a folder, not a SQLite catalog: {again}")
    warehouse.mkdir(parents=True, exist_ok=True)
    try:
        return SqlCatalog("local", uri=f"sqlite:///{catalog}", warehouse=warehouse.as_uri())
    except DatabaseError as exc:
        if isinstance(exc, OperationalError):  # locked, or a disk error: not the file's fault
            raise
        raise ValueError(f"{catalog} is not a SQLite catalog ({exc.orig}): {again}") from None


class _Types:
    """Iceberg types from the pipeline's type texts (``decimal(38,2)``, ``array<string>``, ``struct<a:int>``)."""

    def __init__(self) -> None:
        self.next_id = 0

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def parse(self, text: str) -> IcebergType:
        text = text.strip()
        decimal = DECIMAL_TYPE.fullmatch(text)
        if decimal:
            return DecimalType(int(decimal[1]), int(decimal[2]))
        if text in _PRIMITIVES:
            return _PRIMITIVES[text]
        outer, _, inner = text.partition("<")
        parts = split_top(inner[:-1])
        if outer == "array" and len(parts) == 1:
            return ListType(self.new_id(), self.parse(parts[0]), element_required=False)
        if outer == "map" and len(parts) == 2:
            return MapType(self.new_id(), self.parse(parts[0]), self.new_id(), self.parse(parts[1]), False)
        if outer == "struct":
            fields = []
            for part in parts:
                name, _, kind = part.partition(":")
                fields.append(NestedField(self.new_id(), name.strip(), self.parse(kind), required=False))
            return StructType(*fields)
        raise ValueError(f"{text!r} is not a type the local Iceberg sink can make")


def table_schema(types: Sequence[tuple[str, str]]) -> Schema:
    """The Iceberg schema for the pipeline's ``(column, type)`` pairs: every column optional, Glue names.

    >>> print(table_schema([("id", "string"), ("at", "timestamp"), ("tags", "array<string>")]))
    table {
      1: id: optional string
      2: at: optional timestamp
      3: tags: optional list<string>
    }
    """
    ids = _Types()
    ids.next_id = len(types)
    fields = [
        NestedField(i, column_name(name), ids.parse(kind), required=False) for i, (name, kind) in enumerate(types, 1)
    ]
    return Schema(*fields)


def _python(value: Any, kind: IcebergType) -> Any:
    """A JSON value as the Python value pyarrow takes for *kind* (numbers parsed exactly, as Decimal)."""
    if value is None:
        return None
    if isinstance(kind, TimestampType):
        if type(value) is not int:
            raise ValueError("a timestamp is epoch microseconds")
        return _EPOCH + timedelta(microseconds=value)
    if isinstance(kind, BinaryType):
        return base64.b64decode(value, validate=True)
    if isinstance(kind, DecimalType):
        number = Decimal(value)
        quantized = number.quantize(Decimal(1).scaleb(-kind.scale), context=_EXACT)
        if quantized != number or len(quantized.as_tuple().digits) > kind.precision:
            raise ValueError(f"{value} does not fit decimal({kind.precision},{kind.scale})")
        return quantized
    if isinstance(kind, (IntegerType, LongType)):
        limit = 2**31 if isinstance(kind, IntegerType) else 2**63
        if type(value) is not int or not -limit <= value < limit:
            raise ValueError(f"{kind} takes whole numbers that fit it")
        return value
    if isinstance(kind, (FloatType, DoubleType)):
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise ValueError(f"{kind} takes numbers")
        return float(value)
    if isinstance(kind, BooleanType):
        if type(value) is not bool:
            raise ValueError("boolean takes true or false")
        return value
    if isinstance(kind, StringType):
        if type(value) is not str:
            raise ValueError("string takes text")
        return value
    if isinstance(kind, ListType):
        return [_python(v, kind.element_type) for v in value]
    if isinstance(kind, MapType):
        return [(_python(k, kind.key_type), _python(v, kind.value_type)) for k, v in value.items()]
    if isinstance(kind, StructType):
        return {f.name: _python(value.get(f.name), f.field_type) for f in kind.fields}
    raise ValueError(f"type {kind} is not supported")


def _takes(column: NestedField | None, kind: IcebergType) -> bool:
    """Whether an existing table's *column* takes values of *kind* (the same type, or a wider one).

    >>> _takes(NestedField(1, "n", LongType(), required=False), IntegerType())
    True
    >>> _takes(NestedField(1, "n", StringType(), required=False), LongType())
    False
    """
    if column is None:
        return False
    if str(column.field_type) == str(kind):  # nested types compared without their field ids
        return True
    try:
        return isinstance(kind, PrimitiveType) and promote(kind, column.field_type) is not None
    except ResolveError:
        return False


@dataclass
class _Pending:
    """One table's operations in one delivery, reduced to what they leave: keys to delete, rows to append."""

    deleted: set[tuple[Any, ...]] = field(default_factory=set)
    rows: dict[tuple[Any, ...] | int, list[dict[str, Any]]] = field(default_factory=dict)


class IcebergSink:
    """Delivers run-local's records into local Iceberg tables; failed records go to *errors* (a folder)."""

    prefix = ""  # no S3 prefix: the runner's partition-key checks have nothing to check

    def __init__(
        self,
        folder: str | Path,
        types: Sequence[tuple[str, str]],
        *,
        table: str | None = None,
        keys: Sequence[str] = (),
        stream: str = "local-firehose",
        error_prefix: str = DEFAULT_ERROR_PREFIX,
    ) -> None:
        self.root = root = Path(folder).resolve()
        self.catalog = open_catalog(root)
        self.schema = table_schema(types)
        self.table = table
        self.keys = tuple(column_name(k) for k in keys)
        self.stream = stream
        self.errors = Destination(Folder(root / "errors"), error_prefix=error_prefix, stream=stream)
        self.commits = 0
        self._tables: dict[tuple[str, str], Table] = {}

    def __repr__(self) -> str:
        return f"IcebergSink(table={self.table!r}, keys={self.keys!r})"

    def checked(self, partition_keys: Iterable[str] = ()) -> IcebergSink:
        """This sink (the Iceberg destination has no S3 prefix to check)."""
        return self

    def open_table(self, database: str, name: str) -> Table:
        """The table *database.name*, created with the configured schema if absent."""
        key = (database, name)
        if key not in self._tables:
            self.catalog.create_namespace_if_not_exists(database)
            try:
                self._tables[key] = self._takes_rows(self.catalog.load_table(key), f"{database}.{name}")
            except NoSuchTableError:
                self._tables[key] = self.catalog.create_table(key, schema=self.schema)
        return self._tables[key]

    def _takes_rows(self, table: Table, name: str) -> Table:
        """*table*, if rows of the configured columns can be appended to it; else ValueError saying what differs."""
        theirs = {f.name: f for f in table.schema().fields}
        differ = [
            f"{f.name}: {theirs[f.name].field_type if f.name in theirs else 'missing'} in the table, {f.field_type} "
            "configured"
            for f in self.schema.fields
            if not _takes(theirs.get(f.name), f.field_type)
        ]
        differ += [f"{f.name}: required in the table" for f in theirs.values() if f.required]
        if differ:
            raise ValueError(
                f"table {name} exists with other columns ({'; '.join(differ)}): use another table name, or drop "
                f"the table (or remove {self.root}) to make it anew"
            )
        return table

    def deliver_records(self, records: Sequence[Delivered]) -> tuple[int, list[tuple[int, str]]]:
        """Apply *records* in order, one commit per table: ``(commits, [(index, reason) of records not applied])``."""
        rejected: list[tuple[int, str]] = []
        pending: dict[tuple[str, str], _Pending] = {}
        for index, rec in enumerate(records):
            try:
                where, operation, row = self._read(rec)
                self._stage(pending.setdefault(where, _Pending()), index, operation, row)
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                rejected.append((index, f"Iceberg: {exc}"))
        # every table opened first, so one that cannot take the rows is said before any of the delivery's commits
        tables = {where: self.open_table(*where) for where in pending}
        for where, work in pending.items():
            self._commit(tables[where], work)
        return len(pending), rejected

    def _read(self, rec: Delivered) -> tuple[tuple[str, str], str, dict[str, Any]]:
        otf = rec.otf or {}
        if otf:
            where = (otf["destinationDatabaseName"], otf["destinationTableName"])
        elif self.table:
            where = parse_iceberg_table(self.table)
        else:
            raise ValueError("the record has no otfMetadata and the sink no table=database.table")
        operation = otf.get("operation", "insert")
        if operation not in ("insert", "update", "delete"):
            raise ValueError(f"operation {operation!r} is not insert, update or delete")
        doc = json.loads(rec.data, parse_float=Decimal)
        if type(doc) is not dict:
            raise ValueError("the record is not one JSON object")
        columns = {f.name for f in self.schema.fields}
        extra = sorted(set(doc) - columns)
        if extra:
            raise ValueError(f"the record has columns the table does not: {extra}")
        row = {f.name: _python(doc.get(f.name), f.field_type) for f in self.schema.fields}
        return where, operation, row

    def _stage(self, work: _Pending, index: int, operation: str, row: dict[str, Any]) -> None:
        if operation == "insert":
            work.rows[index] = [row]
            return
        if not self.keys:
            raise ValueError(f"an {operation} needs unique keys (PIPELINE_ICEBERG_KEYS)")
        key = tuple(row[k] for k in self.keys)
        if any(v is None for v in key):
            raise ValueError(f"the {operation} has no value for a unique key {self.keys}")
        work.deleted.add(key)
        work.rows.pop(key, None)  # an earlier update of the key in this delivery is replaced
        for staged in [i for i, rows in work.rows.items() if type(i) is int and self._key(rows[0]) == key]:
            del work.rows[staged]  # so is an earlier insert of it
        if operation == "update":
            work.rows[key] = [row]

    def _key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[k] for k in self.keys) if self.keys else ()

    def _commit(self, table: Table, work: _Pending) -> None:
        rows = [row for staged in work.rows.values() for row in staged]
        with table.transaction() as tx:
            if work.deleted:
                with warnings.catch_warnings():  # deleting a key no row has is what Firehose does too: no news
                    warnings.filterwarnings("ignore", "Delete operation did not match any records")
                    tx.delete(delete_filter=self._matching(work.deleted))
            if rows:
                tx.append(pa.Table.from_pylist(rows, schema=self.schema.as_arrow()))
        self.commits += 1

    def _matching(self, keys: set[tuple[Any, ...]]) -> BooleanExpression:
        if len(self.keys) == 1:
            return In(self.keys[0], {k[0] for k in keys})
        found: BooleanExpression = AlwaysFalse()
        for key in keys:
            found = Or(found, And(*(EqualTo(name, value) for name, value in zip(self.keys, key, strict=True))))
        return found


def open_iceberg(location: str, types: Sequence[tuple[str, str]], keys: Sequence[str], stream: str) -> IcebergSink:
    """The sink for ``iceberg:DIR[?table=db.t]``."""
    folder, table = parse_iceberg_location(location)
    return IcebergSink(folder, types, table=table, keys=keys, stream=stream)
