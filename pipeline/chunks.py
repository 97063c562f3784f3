"""Column by column: a chunk of records worked out with C-level maps over its columns, no Python frame per record.

The plan (:mod:`pipeline.plan`) answers a batch a chunk of :data:`CHUNK_RECORDS` records at a time. For the
common configuration (csv or tsv of attribute columns and simple ``@``-fields, no partition keys) the chunk
is first worked out here: its payloads decoded (msgspec into the fast row's structs; the standard library one
record at a time, each parsed change let go at once), made columns (each attribute's values, each field's),
each column made text at once (:func:`pipeline.encode.column_texts`: a column all of S, or all of numbers, is
its values), the lines joined, encoded and base64-encoded by ``map``. Whatever is unusual (a record that is not
one change, a value the fast row would not write, anything that raises) declines the chunk: each of its
records then takes the fast row, one at a time. So a chunk never answers a record differently from the fast
row; ``tests/test_plan_chunks.py`` checks it record by record.
"""

from __future__ import annotations

from binascii import a2b_base64, b2a_base64
from collections import namedtuple
from collections.abc import Callable, Sequence
from functools import partial
from itertools import compress, repeat
from operator import add, and_, attrgetter, itemgetter, methodcaller
from typing import Any

from .budget import decoded_size
from .columns import attribute_of
from .config import Config
from .encode import TSV_ESCAPES, column_texts, csv_cell
from .fields import FIELD_VALUES, TEXT_FIELDS, iso_millis_texts
from .parse import _SCAN, EVENT_NAMES, MSGSPEC_LOADED, NOT_SELECTED, image_struct, payload_type, reads_for, renamable
from .project import ColumnPresence

if MSGSPEC_LOADED:
    import msgspec

__all__ = ["CHUNK_RECORDS", "Chunk", "Columns", "fast_chunks", "heads_of", "strict_base64"]

#: A chunk of Firehose records' ``data`` values -> ``(values, texts, size)``: each record's fast-row value (what
#: the fast row would give), its line's base64 text (or None), and the bytes the data decode to (for the
#: summary's bytesIn); None when the chunk cannot be done this way.
Chunk = Callable[[Sequence[Any]], "tuple[list[Any], list[str | None], int] | None"]
CHUNK_RECORDS = 64  # enough to pay for the calls per chunk, few enough to keep peak memory under 0.3x the event
#: Per format: whether a text holds a character its cells escape (four ``in`` tests beat a regex or ``any``).
_SPECIALS: dict[str, Callable[[str], bool]] = {
    "csv": lambda text: '"' in text or "," in text or "\n" in text or "\r" in text,
    "tsv": lambda text: "\\" in text or "\t" in text or "\n" in text or "\r" in text,
}
_b2a = partial(b2a_base64, newline=False)
_STR = frozenset({str})
_ABSENT: Any = object()


# a namedtuple subclass, not a typing.NamedTuple: see pipeline.records
class Columns(namedtuple("Columns", "names fields heads size")):
    """A chunk's changes as columns, each with one item per change kept: what the column getters read."""

    __slots__ = ()
    names: list[str]  #: the event names
    fields: dict[str, Sequence[Any]]  #: per path of an ``@``-field (:data:`pipeline.fields.FIELD_VALUES`), its values
    heads: list[tuple[Any, ...]]  #: per head attribute, its typed values in the chosen images
    size: int  #: the bytes the chunk's data decode to (:func:`pipeline.budget.decoded_size`)


#: A chunk's ``data`` values -> ``(kept, columns)``: which records the event filter keeps (None: all) and their
#: columns; None unless every record is one change.
ChunkReader = Callable[[Sequence[Any]], "tuple[list[bool] | None, Columns] | None"]
#: A chunk's columns -> one column's values (typed, or None when absent) and its texts if known already.
ColumnGetter = Callable[[Columns], "tuple[Sequence[Any], list[str] | None]"]


def fast_chunks(config: Config, *, parser: str, presence: ColumnPresence | None = None) -> Chunk | None:
    """The chunk function for *config* (see :func:`pipeline.plan.answer`), or None: then record by record.

    csv and tsv of attribute columns and simple ``@``-fields, without partition keys, are worked out a chunk at a
    time, column by column: the common configuration, whose records then cost no Python frame each.

    >>> config = Config.from_env({"PIPELINE_COLUMNS": "id, event=@eventName"})
    >>> chunk = fast_chunks(config, parser="msgspec")
    >>> chunk(["eyJldmVudE5hbWUiOiJJTlNFUlQiLCJkeW5hbW9kYiI6eyJLZXlzIjp7fX19"])
    ([b',INSERT\\n'], ['LElOU0VSVAo='], 45)
    """
    columns = config.columns
    if (
        columns is None
        or config.partition_keys
        or config.format not in _SPECIALS
        or (config.format == "tsv" and "\\" in config.null)  # a null text written unescaped
    ):
        return None
    heads = heads_of(config)
    if not all(map(renamable, heads)):
        return None
    getters: list[ColumnGetter] = []
    paths: list[str] = []  # what the @-fields read
    for c in columns:
        field = c.spec[1:] if c.attribute is None else None
        if c.attribute is not None:
            getters.append(_head_getter(heads.index(c.attribute)))
        elif field == "eventName":  # checked to be INSERT, MODIFY or REMOVE: its own text
            getters.append(_event_names)
        elif field in FIELD_VALUES:
            getters.append(_field_getter(field))
            paths.append(FIELD_VALUES[field][0])
        else:  # a path, or a field that reads the record: the fast row
            return None
    reader = (_struct_chunk_reader if parser == "msgspec" else _dict_chunk_reader)(config, heads, sorted(set(paths)))
    return _chunk(config, reader, getters, presence)


def _chunk(config: Config, read: ChunkReader, getters: list[ColumnGetter], presence: ColumnPresence | None) -> Chunk:
    """Each column worked out for the whole chunk, then the lines joined, encoded and base64-encoded by ``map``.

    A column's texts are its values' own (all S, or all numbers) or :func:`pipeline.encode.cell_texts`'; a
    column holding a character to escape is escaped cell by cell. Whatever raises, the chunk is given back
    undone (None) and each record takes the fast row.
    """
    null, names_of_columns = config.null, [c.name for c in config.columns or ()]
    special = _SPECIALS[config.format]
    escape = csv_cell if config.format == "csv" else methodcaller("translate", TSV_ESCAPES)
    sep = "," if config.format == "csv" else "\t"
    one_cell = len(getters) == 1 and config.format == "csv"  # a row of one empty cell is written ""

    def chunk(datas: Sequence[Any]) -> tuple[list[Any], list[str | None], int] | None:
        try:
            found = read(datas)
            if found is None:
                return None
            kept, columns = found
            got = [get(columns) for get in getters]
            cells = []
            for values, texts in got:
                if texts is None:
                    texts, joined = column_texts(values, null)
                else:
                    joined = "".join(texts)
                if special(joined):
                    texts = list(map(escape, texts))
                cells.append(texts)
            lines = list(map(sep.join, zip(*cells, strict=True))) if len(cells) > 1 else cells[0]
            if one_cell and "" in lines:
                lines = ['""' if line == "" else line for line in lines]
            values = list(map(str.encode, map(add, lines, repeat("\n"))))
            texts_out: list[str | None] = list(map(bytes.decode, map(_b2a, values)))
        except Exception:  # the records take the fast row, whose answer is the one given
            return None
        if presence is not None and presence.unseen:  # once the lines are made, as the fast row notes its rows
            presence.see_columns(dict(zip(names_of_columns, [col for col, _ in got], strict=True)), len(lines))
        if kept is None:
            return values, texts_out, columns.size
        lines_in, texts_in = iter(values), iter(texts_out)
        return (
            [next(lines_in) if k else NOT_SELECTED for k in kept],
            [next(texts_in) if k else None for k in kept],
            columns.size,
        )

    return chunk


def _head_getter(index: int) -> ColumnGetter:
    return lambda columns: (columns.heads[index], None)


def _event_names(columns: Columns) -> tuple[Sequence[Any], list[str]]:
    return columns.names, columns.names


def _field_getter(field: str) -> ColumnGetter:
    """An ``@``-field of :data:`pipeline.fields.FIELD_VALUES`, converted from the values at its path: a column of
    times formatted at once, a column all of text of a :data:`~pipeline.fields.TEXT_FIELDS` field its own texts."""
    path, convert = FIELD_VALUES[field]
    times, texts_as_they_are = field == "approximateCreationDateTime", field in TEXT_FIELDS

    def get(columns: Columns) -> tuple[Sequence[Any], list[str] | None]:
        values = columns.fields[path]
        if times:
            texts = iso_millis_texts(values)
        elif texts_as_they_are and set(map(type, values)) == _STR:
            texts = list(values)
        else:
            texts = None
        if texts is not None:
            return texts, texts
        return list(map(convert, values)), None

    return get


def _struct_chunk_reader(config: Config, heads: list[str], paths: list[str]) -> ChunkReader:
    """The chunk's payloads decoded into the fast row's structs (:func:`pipeline.plan.fast_rows`), made columns.

    With ``auto``, OldImage and Keys are only checked to be objects, their contents skipped; a change without a
    NewImage (a REMOVE) is decoded again with them, to take OldImage, else Keys.
    """
    assert config.columns is not None
    image_type = image_struct(heads)
    reads = reads_for(config.columns, [k.column.spec for k in config.partition_keys], config.image)
    choice = config.image
    whole = msgspec.json.Decoder(payload_type(reads, image_type)).decode
    decode = (
        msgspec.json.Decoder(payload_type(reads, image_type, image_struct([]))).decode if choice == "auto" else whole
    )
    convert, astuple, unset, empty = msgspec.convert, msgspec.structs.astuple, msgspec.UNSET, image_type()
    event, dynamodb = attrgetter("eventName"), attrgetter("dynamodb")
    chosen = attrgetter({"auto": "NewImage", "new": "NewImage", "old": "OldImage", "keys": "Keys"}[choice])
    wanted = None if config.events == EVENT_NAMES else config.events
    fields = [(path, attrgetter(path)) for path in paths]

    def read(datas: Sequence[Any]) -> tuple[list[bool] | None, Columns] | None:
        if set(map(type, datas)) != _STR:
            return None
        payloads = list(map(convert, datas, repeat(bytes)))  # what b64decode gives, when msgspec takes it
        if not all(map(bytes.isascii, payloads)):  # a byte-order mark: the fast row
            return None
        changes = list(map(decode, payloads))
        names = list(map(event, changes))
        ddbs = list(map(dynamodb, changes))
        if unset in names or unset in ddbs:  # several changes, or none
            return None
        images = list(map(chosen, ddbs))
        if unset in images:
            if choice == "auto":  # decoded again with OldImage and Keys
                for i in [i for i, image in enumerate(images) if image is unset]:
                    changes[i] = change = whole(payloads[i])
                    ddb = change.dynamodb
                    images[i] = ddb.OldImage if ddb.OldImage is not unset else ddb.Keys
            else:
                images = [empty if image is unset else image for image in images]
        kept, (names, changes, images) = _kept(wanted, names, changes, images)
        by_head = list(zip(*map(astuple, images), strict=True)) if images else [() for _ in heads]
        fields_values = {path: list(map(get, changes)) for path, get in fields}
        size = sum(map(len, payloads))  # what decoded_size counts: msgspec takes base64 of whole quads only
        return kept, Columns(names, fields_values, by_head, size)

    return read


def _dict_chunk_reader(config: Config, heads: list[str], paths: list[str]) -> ChunkReader:
    """The standard library's: each payload read by the JSON scanner and its image's heads taken, one record at a
    time (the parsed change is let go at once), checked as :func:`pipeline.parse.check_change` checks it; None
    unless every record is one change.

    What is not a dict, or lacks a key, raises on the way (``change["dynamodb"]["Keys"]``): the chunk is declined.
    A change is a dict when ``change["dynamodb"]`` does not raise: no other JSON value takes a string index.
    """
    choice, wanted = config.image, None if config.events == EVENT_NAMES else config.events
    get = itemgetter(*heads) if len(heads) > 1 else lambda image: (image[heads[0]],)
    key = {"new": "NewImage", "old": "OldImage"}.get(choice)
    tops = tuple(p for p in paths if "." not in p)
    inners = tuple(p.partition(".")[2] for p in paths if "." in p)
    order = [*tops, *(p for p in paths if "." in p)]
    one_inner = inners[0] if len(inners) == 1 and not tops else None  # the usual: ApproximateCreationDateTime

    def read(datas: Sequence[Any]) -> tuple[list[bool] | None, Columns] | None:
        if set(map(type, datas)) != _STR:  # a2b_base64 would take bytes too
            return None
        size = decoded_size(datas)
        payloads = strict_base64(datas, size)
        if payloads is None:
            return None
        texts = list(map(bytes.decode, payloads))  # not UTF-8: raises
        names: list[Any] = []
        rows: list[tuple[Any, ...]] = []
        found: list[Any] = []
        ends: list[int] = []
        for text in texts:
            change, end = _SCAN(text, 0)
            ends.append(end)
            ddb = change["dynamodb"]  # raises unless change and ddb are dicts
            keys = ddb["Keys"]
            new, old = ddb.get("NewImage", _ABSENT), ddb.get("OldImage", _ABSENT)
            if (
                type(keys) is not dict
                or (new is not _ABSENT and type(new) is not dict)
                or (old is not _ABSENT and type(old) is not dict)
            ):
                return None
            names.append(change["eventName"])  # checked below, with the others
            if choice == "auto":
                image = new if new is not _ABSENT else old if old is not _ABSENT else keys
            elif choice == "keys":
                image = keys
            else:
                image = ddb.get(key) or {}
            try:
                rows.append(get(image))
            except KeyError:  # an attribute not in this image
                rows.append(tuple(map(image.get, heads)))
            if one_inner is not None:
                found.append(ddb.get(one_inner))
            elif order:
                found.append((*map(change.get, tops), *map(ddb.get, inners)))
        if ends != list(map(len, texts)):  # text after the document: the fast row (the decoder judges)
            return None
        if not set(names) <= EVENT_NAMES:
            return None
        kept, (names, rows, found) = _kept(wanted, names, rows, found)
        by_head = list(zip(*rows, strict=True)) if rows else [() for _ in heads]
        by_path = [found] if one_inner is not None else list(zip(*found, strict=True)) if found else [() for _ in order]
        by_path_values = dict(zip(order, by_path, strict=True))
        return kept, Columns(names, by_path_values, by_head, size)

    return read


def strict_base64(datas: Sequence[str], size: int) -> list[bytes] | None:
    """What strict base64 decoding gives for each of *datas*, or None where it may not; *size* is their
    :func:`~pipeline.budget.decoded_size`. Faster than strict mode, which costs a fifth more time here.

    ``a2b_base64``'s loose mode skips what is not base64 and stops at a padding, where strict mode raises; then
    fewer bytes come out than the texts' lengths and padding promise (never more). So texts of whole quads
    whose bytes all come out, as the sum tells, are read as strict mode reads them. (Some texts strict mode
    takes, such as padding after a whole quad, are declined: the fast row then reads them.)

    >>> texts = ["aGk=", "aA=="], ["aGk=", "a!A="], ["aGk=aGk="]
    >>> [strict_base64(t, decoded_size(t)) for t in texts]
    [[b'hi', b'h'], None, None]
    """
    try:
        payloads = list(map(a2b_base64, datas))
    except ValueError:  # a quad left unfinished (binascii.Error), a character that is not ASCII
        return None
    if any(map(and_, map(len, datas), repeat(3))) or sum(map(len, payloads)) != size:
        return None
    return payloads


def _kept(
    wanted: frozenset[str] | None, names: list[Any], *columns: list[Any]
) -> tuple[list[bool] | None, tuple[list[Any], ...]]:
    """The event filter over a chunk: which records it keeps (None: all of them), and the kept records' *names*
    and *columns*.

    >>> _kept(frozenset({"INSERT"}), ["INSERT", "REMOVE"], [1, 2])
    ([True, False], (['INSERT'], [1]))
    """
    kept = None if wanted is None else list(map(wanted.__contains__, names))
    if kept is None or all(kept):
        return None, (names, *columns)
    return kept, tuple(list(compress(c, kept)) for c in (names, *columns))


def heads_of(config: Config) -> list[str]:
    """The attributes the columns (then the partition keys) read, in the order they first appear.

    >>> heads_of(Config.from_env({"PIPELINE_COLUMNS": "b, a.x, @eventName, a", "PIPELINE_PARTITION_KEYS": "k=c"}))
    ['b', 'a', 'c']
    """
    assert config.columns is not None
    heads: list[str] = []
    for c in [*config.columns, *(k.column for k in config.partition_keys)]:
        head = c.attribute if c.attribute is not None else attribute_of(c.spec)
        if head is not None and head not in heads:
            heads.append(head)
    return heads
