"""Stage 5: rows -> the bytes Firehose delivers, one newline-terminated line per change.

* ``csv``: RFC 4180: comma-separated, a cell quoted when it holds a comma, quote, CR or LF, quotes doubled;
  a row of one empty cell is written ``""`` so that readers do not take it for a blank line.
* ``tsv``: tab-separated, with backslash escapes for tab, newline, carriage return and backslash.
* ``jsonl``: one compact JSON object per change (numbers with every digit, sets and lists as arrays).
* ``iceberg``: for Firehose's Iceberg destination, one JSON object per record with every column typed as its
  Iceberg type needs (see :mod:`pipeline.iceberg`); the routing ``otfMetadata`` comes from its own stage.

A value that breaks a rule (an ``N`` that is not a number, a ``B`` that is not base64, text that is not
UTF-8, an unknown type) fails its record with a reason naming the column, never quoting the value. The
happy path pays nothing for the naming: the culprit is looked for only after a row has failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any

from .attributes import plain_map, to_json, to_text
from .iceberg import iceberg_lines
from .records import RecordError, Stage, per_record
from .values import all_numbers, is_utf8, label

try:  # msgspec writes JSON Lines byte for byte as json_line does, faster; without it, json_line runs
    from msgspec import Raw
    from msgspec.json import Encoder
except ImportError:
    Raw = Encoder = None

__all__ = [
    "FORMATS",
    "TSV_ESCAPES",
    "cell_texts",
    "column_texts",
    "csv_cell",
    "csv_line",
    "encode",
    "json_line",
    "line_encoder",
    "tsv_line",
]

Row = Mapping[str, Any]
FORMATS = ("csv", "tsv", "jsonl", "iceberg")
TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _json_lines() -> Callable[[tuple[Row, ...]], bytes]:
    """JSON Lines with msgspec's encoder: the same bytes and reasons as :func:`json_line`, numbers verbatim.

    >>> _json_lines()(({"n": {"N": "1.50"}, "s": {"S": "é\\n"}, "gone": None},)) == _stdlib_json_lines(
    ...     ({"n": {"N": "1.50"}, "s": {"S": "é\\n"}, "gone": None},))
    True
    """
    encode = Encoder().encode

    def lines(rows: tuple[Row, ...]) -> bytes:
        # every row checked first, as json_line does before the text is encoded: a bad value's reason wins
        try:
            plain = [plain_map(row, Raw) for row in rows]
            if len(plain) == 1:
                return encode(plain[0]) + b"\n"
            return b"\n".join(map(encode, plain)) + b"\n"
        except (RecordError, UnicodeEncodeError) as exc:  # rare: name the column at fault, as json_line's path does
            raise _culprit(rows, _json_value, exc) from None

    return lines


def csv_cell(text: str) -> str:
    """One CSV cell: quoted, its quotes doubled, if it holds a comma, quote, CR or LF.

    >>> print(csv_cell("plain"), csv_cell('a "b", c'))
    plain "a ""b"", c"
    """
    if '"' in text or "," in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_line(cells: list[str]) -> str:
    """One RFC 4180 line.

    >>> csv_line(["São Paulo", 'say "hi", then', "two\\nlines", "12345678901234567890123456789012345678"])
    'São Paulo,"say ""hi"", then","two\\nlines",12345678901234567890123456789012345678\\n'
    >>> csv_line([""])
    '""\\n'
    """
    line = ",".join(cells)
    if '"' in line or "\n" in line or "\r" in line or line.count(",") != len(cells) - 1:
        line = ",".join(map(csv_cell, cells))
    elif line == "":
        return '""\n'
    return line + "\n"


def tsv_line(cells: list[str]) -> str:
    r"""One TSV line, each cell escaped.

    >>> tsv_line(["a\tb", "c\\d", "e\nf"])
    'a\\tb\tc\\\\d\te\\nf\n'
    """
    line = "\t".join(cells)
    if "\\" in line or "\n" in line or "\r" in line or line.count("\t") != len(cells) - 1:
        line = "\t".join([c.translate(TSV_ESCAPES) for c in cells])
    return line + "\n"


def json_line(row: Row) -> str:
    """One JSON Lines line; a missing value is ``null``.

    >>> json_line({"id": {"N": "12345678901234567890.123"}, "name": {"S": "Kraków"}, "gone": None})
    '{"id":12345678901234567890.123,"name":"Kraków","gone":null}\\n'
    """
    return (
        "{"
        + ",".join(
            f"{encode_basestring(name)}:{'null' if value is None else to_json(value)}" for name, value in row.items()
        )
        + "}\n"
    )


def cell_texts(values: Iterable[Any], null: str) -> list[str]:
    """``[to_text(v, null) for v in values]``, with to_text's usual cases inlined: S, plain N, NULL, missing.

    >>> cell_texts([{"S": "a"}, {"N": "1.50"}, {"NULL": True}, None, {"BOOL": False}], "-")
    ['a', '1.50', '-', '-', 'false']
    """
    return [
        text
        if type(v) is dict
        and len(v) == 1
        and (
            type(text := v.get("S")) is str
            or (type(text := v.get("N")) is str and text.isascii() and text.replace(".", "", 1).isdigit())
        )
        else null
        if v is None or (type(v) is dict and len(v) == 1 and "NULL" in v)
        else to_text(v, null)
        for v in values
    ]


def column_texts(values: Sequence[Any], null: str) -> tuple[list[str], str]:
    """:func:`cell_texts` of one column's values (a chunk of rows'), and the text to look in for characters a
    format escapes: the texts joined, or "" for a column of numbers (no number holds one).

    A column all of S is its values' own text (the join checks that they are all text), and so is a column all
    of N (:func:`pipeline.values.all_numbers`); any other column is converted cell by cell.

    >>> column_texts([{"N": "1"}, {"N": "-2.5E3"}], ""), column_texts([{"S": "a"}, {"NULL": True}], "-")
    ((['1', '-2.5E3'], ''), (['a', '-'], 'a-'))
    """
    first = values[0] if values else None
    if type(first) is dict and len(first) == 1:
        (kind,) = first
        if kind in ("S", "N"):
            try:
                texts = list(map(itemgetter(kind), values))
                if sum(map(len, values)) == len(values):  # one type each
                    if kind == "S":
                        return texts, "".join(texts)
                    if all_numbers(texts):
                        return texts, ""
            except (KeyError, TypeError):  # a value of another type, or missing; a value of S not text
                pass
    texts = cell_texts(values, null)
    return texts, "".join(texts)


def line_encoder(fmt: str, null: str = "") -> Callable[[Iterable[Any]], bytes] | None:
    """For csv and tsv, the function from one row's values (in column order) to its line's bytes; else None.

    It raises as the stage would fail the record, but without naming the column: a caller that needs the
    reason runs :func:`encode`.

    >>> line_encoder("csv")([{"S": "a,b"}, {"N": "1.50"}, None])
    b'"a,b",1.50,\\n'
    """
    if fmt == "csv":

        def csv_values(values: Iterable[Any]) -> bytes:
            return csv_line(cell_texts(values, null)).encode()

        return csv_values
    if fmt == "tsv":
        if "\\" not in null:
            return lambda values: tsv_line(cell_texts(values, null)).encode()
        return lambda values: ("\t".join([_tsv_cell(v, null) for v in values]) + "\n").encode()
    return None


def _culprit(rows: tuple[Row, ...], convert: Callable[[Any], str], exc: Exception) -> Exception:
    """The error for a row that failed to encode, naming the column at fault (names are config or keys)."""
    for row in rows:
        for name, value in row.items():
            try:
                text = convert(value)
            except RecordError as error:
                return RecordError(f"column {label(str(name))}: {error}")
            if not is_utf8(text) or not is_utf8(str(name)):
                return RecordError(f"column {label(str(name))} is not UTF-8 text")
    return exc


def _json_value(value: Any) -> str:
    return "null" if value is None else to_json(value)


def _stdlib_json_lines(rows: tuple[Row, ...]) -> bytes:
    try:
        return "".join(map(json_line, rows)).encode()
    except (RecordError, UnicodeEncodeError) as exc:
        raise _culprit(rows, _json_value, exc) from None


def _csv_lines(null: str) -> Callable[[tuple[Row, ...]], bytes]:
    def cell(value: Any) -> str:
        return to_text(value, null)

    def lines(rows: tuple[Row, ...]) -> bytes:
        try:
            if len(rows) == 1:
                return csv_line(cell_texts(rows[0].values(), null)).encode()
            return "".join([csv_line(cell_texts(row.values(), null)) for row in rows]).encode()
        except (RecordError, UnicodeEncodeError) as exc:  # rare: name the column at fault
            raise _culprit(rows, cell, exc) from None

    return lines


def _tsv_lines(null: str) -> Callable[[tuple[Row, ...]], bytes]:
    if "\\" not in null:  # the null text needs no escaping: escape the joined line at once

        def row_text(row: Row) -> str:
            return tsv_line(cell_texts(row.values(), null))

    else:  # a null text such as \N is written as it is, unescaped, unlike a string holding it

        def row_text(row: Row) -> str:
            return "\t".join([_tsv_cell(v, null) for v in row.values()]) + "\n"

    def cell(value: Any) -> str:
        return to_text(value, null)

    def lines(rows: tuple[Row, ...]) -> bytes:
        try:
            return "".join([row_text(row) for row in rows]).encode()
        except (RecordError, UnicodeEncodeError) as exc:  # rare: name the column at fault
            raise _culprit(rows, cell, exc) from None

    return lines


def _tsv_cell(value: Any, null: str) -> str:
    if value is None or (type(value) is dict and "NULL" in value):
        return null
    return to_text(value).translate(TSV_ESCAPES)


def encode(fmt: str = "csv", *, null: str = "", types: Sequence[tuple[str, str]] | None = None) -> Stage:
    """Encode each record's rows as UTF-8 lines in *fmt*; *null* is the text for NULL and missing values.

    ``iceberg`` needs *types*: ``(column name, Iceberg type)`` for every column, in order
    (:func:`pipeline.iceberg.column_types`).

    >>> from pipeline import Record
    >>> rows = ({"name": {"S": "Zürich"}, "pop": {"N": "421878"}, "note": None},)
    >>> [r.value for r in encode("csv")([Record("1", {}, rows)])]
    [b'Z\\xc3\\xbcrich,421878,\\n']
    >>> [r.value for r in encode("tsv", null="\\\\N")([Record("1", {}, rows)])]
    [b'Z\\xc3\\xbcrich\\t421878\\t\\\\N\\n']
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "iceberg":
        if types is None:
            raise ValueError("the iceberg format needs the columns' Iceberg types")
        return per_record(iceberg_lines(types), "encode")
    if fmt == "jsonl":
        return per_record(_json_lines() if Encoder is not None else _stdlib_json_lines, "encode")
    if fmt == "csv":
        return per_record(_csv_lines(null), "encode")
    if "\t" in null or "\n" in null or "\r" in null:
        raise ValueError(f"null text {null!r} holds a tab or line break, which would break TSV rows")
    return per_record(_tsv_lines(null), "encode")
