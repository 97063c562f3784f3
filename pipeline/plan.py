"""The handler's plan: for one configuration, the stages' work on a record fused with the budget and the response.

:func:`make_handler <pipeline.app.make_handler>` answers a batch in one loop (:func:`answer`). For each record
it first tries the configuration's *fast row* (:func:`fast_rows`), a function from the Firehose record to its
output line with no envelope, generator or intermediate dict on the way:

* with msgspec and named columns, the payload is decoded straight into structs that hold only the columns'
  attributes (and the ``@``-fields' inputs), in column order, so a row of cells is one ``astuple`` away;
* otherwise (the standard library parser, or the whole image for jsonl) it calls the stages' own per-record
  functions (their ``steps``) one after the other.

The fast row only takes the common case: one change per record, an event type that is kept or not, a line
that fits the budget. Anything else (a payload of several changes or none, a value it cannot write, any
exception, a record over the budget) goes the general way: the stages run on that one record, and their
answer and reason are the ones given; then :meth:`Budget.admit <pipeline.budget.Budget.admit>`, re-ingestion
and :meth:`Response.add <pipeline.response.Response.add>` answer it as the staged handler does. So the plan
never decides anything the stages would decide differently: the property tests run every batch both ways and
compare the responses and the logs.

With partition keys the fast row gives the line and the keys (the entry's metadata). The Iceberg format is not
in the plan (:func:`fast_rows` gives None): it runs the stages on the whole batch.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from operator import add, attrgetter, itemgetter
from typing import Any

from .attributes import plain_image
from .budget import Budget, decoded_size, metadata_size
from .chunks import CHUNK_RECORDS, Chunk, heads_of
from .columns import Column, attribute_of
from .config import Config
from .encode import encode, line_encoder
from .fields import FIELD_VALUES, FIELDS, RECORD_FIELDS
from .parse import (
    EVENT_NAMES,
    MSGSPEC_LOADED,
    NOT_SELECTED,
    b64decode,
    image_struct,
    json_body,
    payload_type,
    reads_for,
    renamable,
    stdlib_changes,
    strict_b64decode,
)
from .project import NOTE_PRESENCE, ColumnPresence, pick_image
from .records import DROPPED, OK, Drop, Record, Stage, Step
from .response import Response

if MSGSPEC_LOADED:
    import msgspec

__all__ = ["FastRow", "answer", "fast_rows"]

_BYTES = frozenset({bytes})
_b2a = partial(b2a_base64, newline=False)

#: A Firehose record -> its output line (bytes), a Drop, or None: "take the general way". A row that needs only
#: the record's data has the same function of the data as its ``of_data`` attribute.
FastRow = Callable[[Mapping[str, Any]], Any]
_new = tuple.__new__
_OPEN_BRACE = ord("{")


def fast_rows(
    config: Config, steps: Sequence[Step], *, parser: str, presence: ColumnPresence | None = None
) -> FastRow | None:
    """The fast row for *config*, or None if the plan does not cover it (the Iceberg format).

    The row gives the record's line, or ``(line, partition keys)`` when the configuration has partition keys.

    *steps* are the per-record steps of ``stages(config, parser=parser, presence=presence)``, in order: with
    the whole image (jsonl without columns) the fast row calls them directly.

    >>> config = Config.from_env({"PIPELINE_COLUMNS": "id, city"})
    >>> row = fast_rows(config, [], parser="msgspec")
    >>> row({"recordId": "1", "data": "eyJldmVudE5hbWUiOiJJTlNFUlQiLCJkeW5hbW9kYiI6eyJLZXlzIjp7fX19"})  # no image
    b',\\n'
    """
    if config.format == "iceberg":
        return None
    if config.columns is None:
        if config.format == "jsonl" and parser == "msgspec":
            return _whole_row(config)
        return _steps_row(tuple(steps), presence)
    heads = heads_of(config)
    wanted = None if config.events == EVENT_NAMES else config.events
    if parser == "msgspec" and not all(map(renamable, heads)):  # no struct for such names: the stages' functions
        return _steps_row(tuple(steps), presence)
    reader = _struct_reader if parser == "msgspec" else _dict_reader
    return _columns_row(config, presence, heads, reader(config, heads, wanted), structs=parser == "msgspec")


def _steps_row(steps: tuple[Step, ...], presence: ColumnPresence | None) -> FastRow:
    """The stages' per-record functions called one after the other, without an envelope.

    The rows are shown to *presence* only once the line is made: a record that fails goes the general way,
    whose stages note it, and must not be noted twice.
    """
    noting = tuple(name == NOTE_PRESENCE for name, _, _ in steps)

    with_keys = any(kind == "keys" for _, _, kind in steps)

    def row(rec: Mapping[str, Any]) -> Any:
        value: Any = rec["data"]
        envelope = noted = keys = None
        for (_, fn, kind), note in zip(steps, noting, strict=True):
            if note:
                noted = value
            elif kind == "value":
                value = fn(value)
            else:  # "record" or "keys": the function reads the record's id and source (the @-fields)
                if envelope is None:
                    envelope = _new(Record, (rec["recordId"], rec, None, OK, None, None, None))
                if kind == "keys":
                    keys = fn(value, envelope)
                    continue
                value = fn(value, envelope)
            if type(value) is Drop:
                return value
        if noted is not None and presence is not None and presence.unseen:
            presence.see(noted)
        return (value, keys) if with_keys else value

    return row


def _one_change(decode: Callable[[bytes], Any]) -> Callable[[Mapping[str, Any]], Any]:
    """A Firehose record -> its one change, decoded from its base64 ``data`` by msgspec's *decode*, or None.

    None for a payload of several changes (``{"Records": [...]}``) or none; what msgspec refuses raises: both go
    the general way.
    """
    unset = msgspec.UNSET

    def change_of(rec: Mapping[str, Any]) -> Any:
        data = rec["data"]
        if type(data) is not str:  # no base64 text: the stages say so
            return None
        payload = b64decode(data)
        change = decode(payload if payload.isascii() else json_body(payload))  # a BOM is not ASCII
        if change.dynamodb is unset or change.eventName is unset:
            return None
        return change

    return change_of


def _whole_row(config: Config) -> FastRow:
    """The fast row for JSON Lines of the whole image, with msgspec: decode, choose the image, write it.

    The payload is decoded into the written image as a dict, the other images only checked to be objects (with
    ``auto``, a change without a NewImage is decoded again with them as ``msgspec.Raw``, as the parse stage
    decodes it, :func:`pipeline.parse.msgspec_changes`, to take OldImage, else Keys). The chosen image, decoded
    for this row alone, is made plain in place (:func:`pipeline.attributes.plain_image`) and encoded. No change
    dict, no project. A payload that is not one change, an image that is not an object, anything msgspec or the
    conversion refuses: the general way.
    """
    partition_keys = config.partition_keys
    reads = reads_for(None, [k.column.spec for k in partition_keys], config.image)
    whole = msgspec.json.Decoder(payload_type(reads, dict[str, Any], msgspec.Raw)).decode
    decode = (  # msgspec checks that the images it skips are objects: no look at their first byte per record
        msgspec.json.Decoder(payload_type(reads, dict[str, Any], image_struct([]))).decode
        if config.image == "auto"
        else whole
    )
    as_dict = msgspec.json.Decoder(dict[str, Any]).decode  # an image kept raw, once chosen
    write = msgspec.json.Encoder().encode
    raw_type, unset, convert = msgspec.Raw, msgspec.UNSET, msgspec.convert
    wanted = None if config.events == EVENT_NAMES else config.events
    choice = config.image
    key = "OldImage" if choice == "old" else "NewImage"

    def row_of(data: Any, rec: Mapping[str, Any] | None = None) -> Any:  # rec: for the partition keys
        if type(data) is not str:  # _one_change's and b64decode's work, inlined: of_data is called straight
            return None  # from the plan
        try:
            payload = convert(data, bytes)
        except Exception:  # what msgspec refuses: the standard library's answer, value or reason
            payload = strict_b64decode(data)
        body = payload if payload.isascii() else json_body(payload)
        change = decode(body)
        ddb = change.dynamodb
        if ddb is unset or change.eventName is unset:
            return None
        if choice == "auto":  # NewImage, else OldImage, else Keys; the others only checked to be objects
            image = ddb.NewImage
            if image is unset:  # decoded again, with OldImage and Keys raw
                change = whole(body)
                ddb = change.dynamodb
                image, keys = ddb.OldImage, ddb.Keys
                if image is unset:
                    image, keys = keys, None
                elif memoryview(keys)[0] != _OPEN_BRACE:
                    return None
                image = as_dict(image)  # an image that is not an object raises: the general way
        elif choice == "keys":
            image = ddb.Keys
        else:
            image = getattr(ddb, key)
            if image is unset:
                image = {}
        if wanted is not None and change.eventName not in wanted:
            return NOT_SELECTED
        if not partition_keys:
            return write(plain_image(image, raw_type)) + b"\n"
        assert rec is not None
        envelope = _new(Record, (rec["recordId"], rec, None, OK, None, None, None))
        found = {k.name: k.value(change, image, envelope) for k in partition_keys}  # before it is made plain
        return write(plain_image(image, raw_type)) + b"\n", found

    def row(rec: Mapping[str, Any]) -> Any:
        return row_of(rec["data"], rec)

    if not partition_keys:
        row.of_data = row_of  # type: ignore[attr-defined]  # the row from the data alone: see answer()
    return row


#: A Firehose record -> ``(its one change, the heads' values in the chosen image)``, a Drop if the change's event
#: type is not wanted, or None for the general way.
Reader = Callable[[Mapping[str, Any]], Any]


def _struct_reader(config: Config, heads: list[str], wanted: frozenset[str] | None) -> Reader:
    """msgspec decodes each payload into structs that hold only the *heads* attributes, in that order."""
    assert config.columns is not None
    image_type = image_struct(heads)
    reads = reads_for(config.columns, [k.column.spec for k in config.partition_keys], config.image)
    change_of = _one_change(msgspec.json.Decoder(payload_type(reads, image_type)).decode)
    astuple, unset, empty = msgspec.structs.astuple, msgspec.UNSET, image_type()
    choice = config.image

    def read(rec: Mapping[str, Any]) -> Any:
        change = change_of(rec)
        if change is None:
            return None
        ddb = change.dynamodb
        if wanted is not None and change.eventName not in wanted:
            return NOT_SELECTED
        if choice == "auto":
            image = ddb.NewImage
            if image is unset:
                image = ddb.OldImage
                if image is unset:
                    image = ddb.Keys
        elif choice == "keys":
            image = ddb.Keys
        else:
            image = ddb.NewImage if choice == "new" else ddb.OldImage
            if image is unset:
                image = empty
        return change, astuple(image)

    return read


def _dict_reader(config: Config, heads: list[str], wanted: frozenset[str] | None) -> Reader:
    """The standard library parses each payload whole (:func:`pipeline.parse.stdlib_changes`)."""
    choose = pick_image(config.image)
    get = itemgetter(*heads) if len(heads) > 1 else None
    heads_set = frozenset(heads)

    def read(rec: Mapping[str, Any]) -> Any:
        changes = stdlib_changes(strict_b64decode(rec["data"]))
        if type(changes) is not tuple or len(changes) != 1:
            return None
        change = changes[0]
        if wanted is not None and change["eventName"] not in wanted:
            return NOT_SELECTED
        image = choose(change)
        if get is not None and image.keys() >= heads_set:  # every attribute there: one C call
            return change, get(image)
        return change, tuple(map(image.get, heads))

    return read


def _columns_row(
    config: Config, presence: ColumnPresence | None, heads: list[str], read: Reader, *, structs: bool
) -> FastRow:
    """The fast row for named columns: read the change and the heads' values, make the cells, write the line."""
    columns = config.columns
    assert columns is not None
    plain = [c.attribute for c in columns] == heads  # each column one attribute, each attribute once, in order
    cells_of = None if plain else _cells_of(columns, heads, structs)
    names = tuple(c.name for c in columns)
    line = line_encoder(config.format, config.null)
    if line is None:  # jsonl: the encode stage's own function, on the row as a dict
        lines = encode(config.format, null=config.null).steps[0].fn  # type: ignore[attr-defined]

        def line(cells: Iterable[Any]) -> bytes:
            return lines((dict(zip(names, cells, strict=True)),))

    keys = config.partition_keys

    def row(rec: Mapping[str, Any]) -> Any:
        found = read(rec)
        if type(found) is not tuple:  # None or a Drop
            return found
        change, values = found
        cells = values if cells_of is None else cells_of(change, values, rec)
        out = line(cells)
        if keys:  # on a view of the image with the attributes they read
            envelope = _new(Record, (rec["recordId"], rec, None, OK, None, None, None))
            view = dict(zip(heads, values, strict=True))
            out = out, {k.name: k.value(change, view, envelope) for k in keys}
        if presence is not None and presence.unseen:  # as note_presence does, for the first rows
            presence.see((dict(zip(names, cells, strict=True)),))
        return out

    return row


def _head(column: Column) -> str | None:
    """The attribute a column reads (the head of its path), None for an @-field."""
    return column.attribute if column.attribute is not None else attribute_of(column.spec)


def _cells_of(columns: Sequence[Column], heads: list[str], structs: bool) -> Callable[..., tuple[Any, ...]]:
    """The function giving a row's cells from ``(change, the heads' values, Firehose record)``.

    After the heads' values come, in this order, the ``@``-fields read from *structs* (msgspec's) by an
    ``attrgetter`` and converted by the field's function (:data:`pipeline.fields.FIELD_VALUES`), the other
    fields (their getters read the change and the record) and the paths (each column's getter on its attribute
    alone); one ``itemgetter`` puts them in column order.
    """
    simple: list[tuple[Callable[[Any], Any], Callable[[Any], Any]]] = []
    getters: list[Callable[[Any, Any], Any]] = []
    paths: list[tuple[Any, str, int]] = []
    where: list[tuple[int, int]] = []  # per column: (group, index in it); group 0 is the heads' values
    for c in columns:
        head = _head(c)
        if c.attribute is not None:
            where.append((0, heads.index(c.attribute)))
        elif head is not None:
            where.append((3, len(paths)))
            paths.append((c.get, head, heads.index(head)))
        elif structs and c.spec[1:] in FIELD_VALUES:
            path, convert = FIELD_VALUES[c.spec[1:]]
            where.append((1, len(simple)))
            simple.append((convert, attrgetter(path)))
        else:
            where.append((2, len(getters)))
            getters.append(FIELDS[c.spec[1:]])
    starts = (0, len(heads), len(heads) + len(simple), len(heads) + len(simple) + len(getters))
    order = [starts[group] + i for group, i in where]
    pick: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None
    if order != list(range(starts[3] + len(paths))):  # else the values are the row as they come
        pick = itemgetter(*order) if len(order) > 1 else lambda values: (values[order[0]],)
    needs_record = any(c.spec[1:] in RECORD_FIELDS for c in columns if c.spec.startswith("@"))

    def cells(change: Any, values: tuple[Any, ...], rec: Mapping[str, Any]) -> tuple[Any, ...]:
        found = [convert(get(change)) for convert, get in simple]
        if getters:  # an envelope only for the fields that read the record
            envelope = _new(Record, (rec["recordId"], rec, None, OK, None, None, None)) if needs_record else None
            found += [get(change, envelope) for get in getters]
        if paths:
            found += [get(None, {head: values[i]}, None) for get, head, i in paths]
        return values + tuple(found) if pick is None else pick(values + tuple(found))

    return cells


def answer(
    batch: Sequence[Mapping[str, Any]],
    row: FastRow,
    *,
    ids: Sequence[str],
    datas: Sequence[Any],
    transform: Stage,
    budget: Budget,
    send: Callable[[Record], Record],
    response: Response,
    chunk: Chunk | None = None,
) -> int:
    """Answer every record of *batch* into *response*: the fast row's line when it fits, else the general way.
    Gives the bytes the records' data decode to (:func:`~pipeline.budget.decoded_size`), for the summary.

    *ids* and *datas* are the records' ids and ``data`` values, read once (a pass over the records misses the
    CPU's caches). The batch is worked out a chunk of :data:`~pipeline.chunks.CHUNK_RECORDS` at a time: by
    *chunk* (:func:`~pipeline.chunks.fast_chunks`, from the chunk's data) when it takes the chunk, else by the
    fast row, record by record. A chunk whose every record has its line goes into the response at once if the
    budget has room for it all; any other is answered record by record.

    *transform* is the stages' chain (for a record the fast row leaves), *send* re-ingests or fails a record
    the budget turned away (:func:`pipeline.reingest.to_target`, :func:`pipeline.reingest.fail_one`).
    """
    tally = [0, 0, 0]  # the Ok entries made here, their data bytes and their data chars
    bytes_in = 0
    of_data = getattr(row, "of_data", None)  # a row that needs only the data: the records are not read again
    try:
        for start in range(0, len(batch), CHUNK_RECORDS):
            end = start + CHUNK_RECORDS
            part_datas = datas[start:end]
            done = chunk(part_datas) if chunk is not None else None
            if done is not None:
                *done, size = done
                bytes_in += size
            else:
                done = _rows_of(part_datas, of_data) if of_data is not None else _rows_of(batch[start:end], row)
                bytes_in += decoded_size(part_datas)  # while the texts are in the caches
            counts = _all_at_once(ids[start:end], *done, budget=budget, entries=response.entries)
            if counts is not None:
                tally[:] = map(add, tally, counts)
            else:
                _one_by_one(
                    batch[start:end],
                    *done,
                    transform=transform,
                    budget=budget,
                    send=send,
                    response=response,
                    tally=tally,
                )
    finally:  # counted however the loop ends, so that a failed invocation's summary is right
        response.add_ok_counts(*tally)
    return bytes_in


def _one_by_one(
    part: Sequence[Mapping[str, Any]],
    values: list[Any],
    texts: list[str | None],
    *,
    transform: Stage,
    budget: Budget,
    send: Callable[[Record], Record],
    response: Response,
    tally: list[int],
) -> None:
    """Answer each record of *part* from its fast-row value (and its line's base64 text, if made): an ``Ok``
    entry if the budget has room, else the general way; *tally* gets the counts (see :func:`answer`), however
    this ends."""
    entries = response.entries
    append, take, admit, answered = entries.append, budget.take, budget.admit, response.add
    ok = data_bytes = data_chars = 0
    try:
        for rec, value, text in zip(part, values, texts, strict=True):
            if type(value) is bytes:
                if text is None:
                    text = b2a_base64(value, newline=False).decode()
                if take(len(text)):
                    append({"recordId": rec["recordId"], "result": OK, "data": text})
                    ok += 1
                    data_bytes += len(value)
                    data_chars += len(text)
                    continue
                found = _new(Record, (rec["recordId"], rec, value, OK, None, None, None))
            elif type(value) is tuple and type(value[0]) is bytes and value[1] is not None:  # line, partition keys
                line, keys = value
                text = b2a_base64(line, newline=False).decode()
                chars = len(text) + metadata_size(keys)
                if take(chars):
                    append(
                        {"recordId": rec["recordId"], "result": OK, "data": text, "metadata": {"partitionKeys": keys}}
                    )
                    ok += 1
                    data_bytes += len(line)
                    data_chars += chars
                    continue
                found = _new(Record, (rec["recordId"], rec, line, OK, None, keys, None))
            elif type(value) is Drop:
                found = _new(Record, (rec["recordId"], rec, None, DROPPED, value.reason, None, None))
            else:
                found = _one(transform((rec,)))
            answered(send(admit(found)))
    finally:
        tally[:] = map(add, tally, (ok, data_bytes, data_chars))


def _rows_of(part: Sequence[Any], row: Callable[[Any], Any]) -> tuple[list[Any], list[str | None]]:
    """Each record's fast-row value (None where it raised: the general way), and each line's base64 text if every
    record has one. *part* holds the records, or their data for a row's ``of_data``."""
    values = []
    for rec in part:
        try:
            values.append(row(rec))
        except Exception:  # the stages give the answer and its reason
            values.append(None)
    if set(map(type, values)) == _BYTES:
        return values, list(map(bytes.decode, map(_b2a, values)))
    return values, [None] * len(values)


def _all_at_once(
    ids: Sequence[str], values: list[Any], texts: list[str | None], *, budget: Budget, entries: list[dict[str, Any]]
) -> tuple[int, int, int] | None:
    """A chunk whose every record has its line, as ``Ok`` entries, if the budget takes them all; else None.

    *ids* are the chunk's record ids; *texts* the lines' base64 texts, None where a value is not a line. Gives
    what :func:`answer` counts: ``(records, data bytes, data chars)``.
    """
    if None in texts:
        return None
    sizes = list(map(len, texts))  # type: ignore[arg-type]  # no None: checked above
    if not budget.take_all(sizes):
        return None
    entries += [{"recordId": record_id, "result": OK, "data": text} for record_id, text in zip(ids, texts, strict=True)]
    return len(texts), sum(map(len, values)), sum(sizes)


def _one(records: Iterator[Record]) -> Record:
    return next(iter(records))
