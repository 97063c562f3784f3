"""How Athena (engine 3) splits our csv and tsv lines into values: small ports of Trino's readers.

Trino implements the Hive text SerDes "bug for bug" in ``lib/trino-hive-formats``; these follow
``line/csv/CsvDeserializer.parseLine`` (OpenCSVSerde) and ``line/simple/SimpleDeserializer`` with
``encodings/text/StringEncoding.unescape`` (LazySimpleSerDe), for string columns only. They let the tests check
the SerDe properties that ``athena-ddl`` chooses against the exact bytes the encoders write.
"""

from __future__ import annotations


def open_csv_fields(line: str, columns: int, *, sep: str = ",", quote: str = '"', escape: str = "\\") -> list:
    """The values OpenCSVSerde reads from one line (None for a missing field)."""
    values: list[str | None] = [None] * columns
    buffer, index, in_quotes, in_field, pos = [], 0, False, False, 0
    while pos < len(line) and index < columns:
        char = line[pos]
        following = line[pos + 1] if pos + 1 < len(line) else None
        if char == escape:
            if (in_quotes or in_field) and following in (quote, escape):
                buffer.append(following)
                pos += 1
        elif char == quote:
            if (in_quotes or in_field) and following == quote:
                buffer.append(following)
                pos += 1
            else:
                if pos > 2 and line[pos - 1] != sep and following is not None and following != sep:
                    if buffer and "".join(buffer).isspace():
                        buffer.clear()
                    else:
                        buffer.append(char)
                in_quotes = not in_quotes
            in_field = not in_field
        elif char == sep and not in_quotes:
            values[index] = "".join(buffer)
            index, buffer, in_field = index + 1, [], False
        else:
            buffer.append(char)
            in_field = True
        pos += 1
    if index < columns and not in_quotes:
        values[index] = "".join(buffer)
    return values


def lazy_simple_fields(line: str, *, sep: str = "\t", escape: str | None = "\\", null: str = "\\N") -> list:
    """The values LazySimpleSerDe reads from one line: the null text is matched before unescaping."""
    fields, start, pos = [], 0, 0
    while pos < len(line):
        if line[pos] == sep:
            fields.append(line[start:pos])
            start = pos + 1
        elif line[pos] == escape:
            pos += 1  # the character after the escape is never a separator
        pos += 1
    fields.append(line[start:])
    return [None if field == null else _unescape(field, escape) for field in fields]


def _unescape(field: str, escape: str | None) -> str:
    if escape is None:
        return field
    out, pos = [], 0
    while pos < len(field):
        if field[pos] == escape and pos + 1 < len(field):
            pos += 1  # the escape goes, the next character stays, whatever it is
        out.append(field[pos])
        pos += 1
    return "".join(out)
