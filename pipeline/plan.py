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

Partition keys and the Iceberg format are not in the plan (:func:`fast_rows` gives None): those handlers
run the stages on the whole batch.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from .budget import Budget
from .columns import Column, attribute_of
from .config import Config
from .decode import b64decode
from .encode import encode, line_encoder
from .parse import EVENT_NAMES, MSGSPEC_LOADED, image_struct, json_body, payload_type, reads_for
from .project import ColumnPresence
from .records import DROPPED, OK, Drop, Record, Stage, Step
from .response import Response

if MSGSPEC_LOADED:
    import msgspec

__all__ = ["FastRow", "answer", "fast_rows"]

#: A Firehose record -> its output line (bytes), a Drop, or None: "take the general way".
FastRow = Callable[[Mapping[str, Any]], Any]
_new = tuple.__new__
_NOT_SELECTED = Drop("event type not selected")
_NOTE_PRESENCE = "note_presence"


def fast_rows(
    config: Config, steps: Sequence[Step], *, parser: str, presence: ColumnPresence | None = None
) -> FastRow | None:
    """The fast row for *config*, or None if the plan does not cover it (partition keys, Iceberg).

    *steps* are the per-record steps of ``stages(config, parser=parser, presence=presence)``, in order, for
    the cases the plan runs them directly.

    >>> from pipeline.app import stages
    >>> config = Config.from_env({"PIPELINE_COLUMNS": "id, city"})
    >>> row = fast_rows(config, [], parser="msgspec")
    >>> row({"recordId": "1", "data": "eyJldmVudE5hbWUiOiJJTlNFUlQiLCJkeW5hbW9kYiI6eyJLZXlzIjp7fX19"})  # no image
    b',\\n'
    """
    if config.partition_keys or config.format == "iceberg":
        return None
    if parser == "msgspec" and config.columns is not None:
        return _struct_row(config, presence)
    if any(kind not in {"value", "record"} for _, _, kind in steps):
        return None
    return _steps_row(tuple(steps), presence)


def _steps_row(steps: tuple[Step, ...], presence: ColumnPresence | None) -> FastRow:
    """The stages' per-record functions called one after the other, without an envelope.

    The rows are shown to *presence* only once the line is made: a record that fails goes the general way,
    whose stages note it, and must not be noted twice.
    """
    noting = tuple(name == _NOTE_PRESENCE for name, _, _ in steps)

    def row(rec: Mapping[str, Any]) -> Any:
        value: Any = rec["data"]
        envelope = noted = None
        for (_, fn, kind), note in zip(steps, noting, strict=True):
            if note:
                noted = value
            elif kind == "value":
                value = fn(value)
            else:  # "record": the function reads the record's id and source (the @-fields)
                if envelope is None:
                    envelope = _new(Record, (rec["recordId"], rec, None, OK, None, None, None))
                value = fn(value, envelope)
            if type(value) is Drop:
                return value
        if noted is not None and presence is not None and presence.unseen:
            presence.see(noted)
        return value

    return row


def _struct_row(config: Config, presence: ColumnPresence | None) -> FastRow:
    """msgspec decodes each payload into structs holding the columns' attributes in column order."""
    columns = config.columns
    assert columns is not None
    heads: list[str] = []  # the attributes the columns read, in the order they first appear
    for c in columns:
        head = _head(c)
        if head is not None and head not in heads:
            heads.append(head)
    image_type = image_struct(heads)
    decode = msgspec.json.Decoder(payload_type(reads_for(columns, (), config.image), image_type)).decode
    astuple, unset, empty = msgspec.structs.astuple, msgspec.UNSET, image_type()
    plain = [c.attribute for c in columns] == heads  # each column one attribute, each attribute once, in order
    cells_of = _cells_of(columns, heads, astuple) if not plain else None
    wanted = None if config.events == EVENT_NAMES else config.events
    choice = config.image
    names = tuple(c.name for c in columns)
    line = line_encoder(config.format, config.null)
    if line is None:  # jsonl: the encode stage's own function, on the row as a dict
        lines = encode(config.format, null=config.null).steps[0].fn  # type: ignore[attr-defined]

        def line(cells: Iterable[Any]) -> bytes:
            return lines((dict(zip(names, cells, strict=True)),))

    def row(rec: Mapping[str, Any]) -> Any:
        change = decode(json_body(b64decode(rec["data"])))
        ddb = change.dynamodb
        if ddb is unset or change.eventName is unset:  # {"Records": [...]}, or not a change: the general way
            return None
        if wanted is not None and change.eventName not in wanted:
            return _NOT_SELECTED
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
        cells = astuple(image) if cells_of is None else cells_of(change, image, rec)
        out = line(cells)
        if presence is not None and presence.unseen:  # as note_presence does, for the first rows
            presence.see((dict(zip(names, cells, strict=True)),))
        return out

    return row


def _head(column: Column) -> str | None:
    """The attribute a column reads (the head of its path), None for an @-field."""
    return column.attribute if column.attribute is not None else attribute_of(column.spec)


def _cells_of(columns: Sequence[Column], heads: list[str], astuple: Any) -> Callable[..., list[Any]]:
    """The function giving a row's cells from ``(change, image struct, Firehose record)``, column by column."""
    getters: list[tuple[int, Any]] = []
    for c in columns:
        head = _head(c)
        if head is None:  # an @-field: its getter reads the change (a Mapped struct) and the record
            getters.append((-1, _field_getter(c.get)))
        elif c.attribute is not None:
            getters.append((heads.index(head), None))
        else:  # a path in an attribute: the column's own getter, on that attribute alone
            getters.append((heads.index(head), _path_getter(c.get, head, heads.index(head))))

    def cells(change: Any, image: Any, rec: Mapping[str, Any]) -> list[Any]:
        values = astuple(image)
        envelope = _new(Record, (rec["recordId"], rec, None, OK, None, None, None))
        return [values[i] if get is None else get(values, change, envelope) for i, get in getters]

    return cells


def _field_getter(get: Any) -> Callable[..., Any]:
    return lambda _values, change, envelope: get(change, None, envelope)


def _path_getter(get: Any, head: str, index: int) -> Callable[..., Any]:
    return lambda values, change, envelope: get(change, {head: values[index]}, envelope)


def answer(
    batch: Sequence[Mapping[str, Any]],
    row: FastRow,
    *,
    transform: Stage,
    budget: Budget,
    send: Callable[[Record], Record],
    response: Response,
) -> None:
    """Answer every record of *batch* into *response*: the fast row's line when it fits, else the general way.

    *transform* is the stages' chain (for a record the fast row leaves), *send* re-ingests or fails a record
    the budget turned away (:func:`pipeline.reingest.to_target`, :func:`pipeline.reingest.fail_one`).
    """
    entries = response.entries
    append, take, admit, add = entries.append, budget.take, budget.admit, response.add
    ok = data_bytes = data_chars = 0
    try:
        for rec in batch:
            try:
                value = row(rec)
            except Exception:  # the stages give the answer and its reason
                value = None
            if type(value) is bytes:
                text = b2a_base64(value, newline=False).decode()
                if take(len(text)):
                    append({"recordId": rec["recordId"], "result": OK, "data": text})
                    ok += 1
                    data_bytes += len(value)
                    data_chars += len(text)
                    continue
                found = _new(Record, (rec["recordId"], rec, value, OK, None, None, None))
            elif type(value) is Drop:
                found = _new(Record, (rec["recordId"], rec, None, DROPPED, value.reason, None, None))
            else:
                found = _one(transform((rec,)))
            add(send(admit(found)))
    finally:  # counted however the loop ends, so that a failed invocation's summary is right
        response.add_ok_counts(ok, data_bytes, data_chars)


def _one(records: Iterator[Record]) -> Record:
    return next(iter(records))
