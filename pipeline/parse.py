"""Stages 1 to 3: the base64 text Firehose sends -> the record's bytes -> the DynamoDB change record(s) they
hold; keep only the chosen event types.

Accepted, detected per record by shape:

* a *Kinesis Data Streams for DynamoDB* record (``eventName``, ``tableName``, ``dynamodb.Keys`` ...,
  ``ApproximateCreationDateTime`` in milliseconds or microseconds);
* a *DynamoDB Streams* record (``eventVersion``, ``eventSourceARN``, ``dynamodb.SequenceNumber`` ...,
  ``ApproximateCreationDateTime`` in seconds);
* a payload ``{"Records": [...]}`` of either (several changes in one Firehose record);
* a top-level JSON array of either: how EventBridge Pipes passes a batch from a DynamoDB stream to a target
  without a batch API. Into Firehose a pipe writes one stream record per Firehose record (the batch goes
  through ``PutRecordBatch``), which is the plain DynamoDB Streams record above; the array is accepted too so
  that a pipe's documented example event, or a batch re-sent as one record, still parses.

A UTF-8 byte-order mark is tolerated. Anything else is ``ProcessingFailed`` with the reason.

Two paths, one answer. The standard library path (:func:`stdlib_changes`, :func:`strict_loads`) is the judge.
The msgspec path, the default, pushes the projection down into the parser: the columns, partition keys and
image are known when the pipeline is built, so :func:`reads_for` works out what each change must yield
(``eventName``, the image the columns read and in it only the attributes they name, the fields the
``@``-columns use) and :func:`msgspec_changes` builds msgspec ``Struct`` types for it once, skipping the rest.
It accepts a payload only when the standard library path would accept it with the same values: whatever
msgspec refuses (malformed JSON, a wrong type, a lone surrogate escape, a number out of its range ...) is
handed to the standard library path, whose answer, value or reason, is the one given; text that msgspec would
skip unread is still checked to be UTF-8.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Collection, Iterable, Iterator
from operator import attrgetter
from typing import Any, Literal, NamedTuple

from .columns import Column, attribute_of
from .fields import FIELD_READS
from .records import Drop, Record, RecordError, Stage, per_record

try:  # a runtime dependency; without it (an environment that cannot load it) the standard library path runs
    import msgspec

    MSGSPEC_LOADED = True
except ImportError:  # exercised by the fallback test, in a subprocess
    msgspec = None
    MSGSPEC_LOADED = False

__all__ = [
    "DEFAULT_PARSER",
    "EVENT_NAMES",
    "MSGSPEC_LOADED",
    "NOT_SELECTED",
    "PARSERS",
    "Change",
    "Reads",
    "b64decode",
    "changes_in",
    "check_change",
    "decode",
    "event_names",
    "image_struct",
    "json_body",
    "keep_events",
    "msgspec_changes",
    "msgspec_whole",
    "parse",
    "payload_type",
    "reads_for",
    "renamable",
    "resolve_parser",
    "stdlib_changes",
    "strict_b64decode",
    "strict_loads",
]

# -- Stage 1: base64 --------------------------------------------------------------------------------------------


def strict_b64decode(data: Any) -> bytes:
    """The bytes of base64 *data* (text; standard alphabet, padded, no whitespace), by the standard library.

    >>> strict_b64decode("aGk=")
    b'hi'
    >>> strict_b64decode("h!")
    Traceback (most recent call last):
    pipeline.records.RecordError: data is not valid base64 (Only base64 data is allowed)
    """
    if type(data) is not str:
        raise RecordError("record has no base64 'data' text")
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordError(f"data is not valid base64 ({exc})") from None


def b64decode(data: Any) -> bytes:
    """:func:`strict_b64decode`, by msgspec when it loads: the same bytes, the same reasons.

    msgspec accepts a subset of what ``binascii``'s strict mode does, with the same bytes (a property test checks
    it); whatever msgspec refuses goes to :func:`strict_b64decode`, whose answer is the one given.

    >>> b64decode("aGk="), b64decode("AAAA=")  # the second is binascii's to accept
    (b'hi', b'\\x00\\x00\\x00')
    """
    if msgspec is not None and type(data) is str:  # msgspec's base64 decoder is about twice as fast as binascii's
        try:
            return msgspec.convert(data, bytes)
        except Exception:  # the standard library's answer, value or reason, is the one given
            pass
    return strict_b64decode(data)


_decode = per_record(b64decode, "decode")


def decode(records: Iterable[Any]) -> Iterator[Record]:
    """Decode each Firehose record's base64 ``data`` into bytes; invalid base64 -> ``ProcessingFailed``.

    >>> [(r.result, r.value or r.reason) for r in decode([{"recordId": "1", "data": "aGk="},
    ...                                                    {"recordId": "2", "data": "h!"}])]
    [('Ok', b'hi'), ('ProcessingFailed', 'decode: data is not valid base64 (Only base64 data is allowed)')]
    """
    return _decode(records)


decode.steps = _decode.steps  # type: ignore[attr-defined]  # so that make_handler fuses it with the next stages


# -- Stages 2 and 3: JSON change records ------------------------------------------------------------------------

EVENT_NAMES = frozenset({"INSERT", "MODIFY", "REMOVE"})
PARSERS = ("msgspec", "stdlib")
Change = dict[str, Any]
_BOM = b"\xef\xbb\xbf"
_NO_CHANGES = Drop("no change records in payload")
#: What a record whose changes are all of event types not kept is answered: ``Dropped`` with this reason.
NOT_SELECTED = Drop("event type not selected")
_OPEN_BRACE = ord("{")
Changes = Callable[[bytes], Any]
#: The parser when none is named: msgspec when it loads. (Tests switch it to run everything on both paths.)
DEFAULT_PARSER = "msgspec" if MSGSPEC_LOADED else "stdlib"


def _refuse_constant(name: str) -> Any:
    raise RecordError(f"not valid JSON ({name} is not a JSON number)")


def _int(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:  # longer than int's digit limit: out of range, read as infinity like 1e400
        return float(text)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_int)
# The common case at C speed: a document with no space around it and integers within int's digit limit, read by
# the scanner alone (no parse_int call per integer, no Python-level decode()). Anything else is read again by
# _DECODER, whose answer, value or error, is the one given.
_SCAN = json.JSONDecoder(parse_constant=_refuse_constant).scan_once


def strict_loads(data: bytes) -> Any:
    """JSON from UTF-8 bytes, by the rules every parser here follows.

    UTF-8 only (``json.loads`` would also take UTF-16 and UTF-32); ``NaN`` and ``Infinity`` are refused; a number
    beyond a float's range, or an integer too long for ``int``, is read as infinity (the fields that use numbers
    then refuse it), never an error of the parse.

    >>> strict_loads('{"n": 1e400, "s": "Zürich"}'.encode())
    {'n': inf, 's': 'Zürich'}
    >>> strict_loads("{}".encode("utf-16"))
    Traceback (most recent call last):
    UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte
    >>> strict_loads(b"[NaN]")
    Traceback (most recent call last):
    pipeline.records.RecordError: not valid JSON (NaN is not a JSON number)
    """
    text = data.decode("utf-8")
    try:
        doc, end = _SCAN(text, 0)
        if end == len(text):
            return doc
    except Exception:  # _DECODER gives the answer and its reason
        pass
    return _DECODER.decode(text)


def check_change(doc: Any, where: str = "") -> Change:
    """Return *doc* if it is a DynamoDB change record, else raise RecordError saying what is missing.

    >>> check_change({"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "1"}}}})["eventName"]
    'INSERT'
    >>> check_change({"eventName": "UPSERT", "dynamodb": {"Keys": {}}})
    Traceback (most recent call last):
    pipeline.records.RecordError: not a DynamoDB change record: eventName is not INSERT, MODIFY or REMOVE
    """
    if type(doc) is not dict:
        raise RecordError(f"not a DynamoDB change record: {where}is not a JSON object")
    if doc.get("eventName") not in EVENT_NAMES:
        raise RecordError(f"not a DynamoDB change record: {where}eventName is not INSERT, MODIFY or REMOVE")
    ddb = doc.get("dynamodb")
    if type(ddb) is not dict or type(ddb.get("Keys")) is not dict:
        raise RecordError(f"not a DynamoDB change record: {where}has no dynamodb.Keys object")
    for image in ("NewImage", "OldImage"):
        if image in ddb and type(ddb[image]) is not dict:
            raise RecordError(f"not a DynamoDB change record: {where}dynamodb.{image} is not an object")
    return doc


def changes_in(doc: Any) -> tuple[Change, ...] | Drop:
    """The change records in a parsed payload: one change, ``{"Records": [...]}`` of them, or a JSON array of them.

    >>> changes_in({"Records": []})
    Drop(reason='no change records in payload')
    """
    if type(doc) is dict:
        if "dynamodb" in doc or "eventName" in doc:
            return (check_change(doc),)
        inner = doc.get("Records")
        if type(inner) is list:
            if not inner:
                return _NO_CHANGES
            return tuple([check_change(c, f"Records[{i}] ") for i, c in enumerate(inner)])
        raise RecordError("not a DynamoDB change record: has neither 'dynamodb' nor a 'Records' list")
    if type(doc) is list:  # a batch as a JSON array, as EventBridge Pipes hands one to a target
        if not doc:
            return _NO_CHANGES
        return tuple([check_change(c, f"[{i}] ") for i, c in enumerate(doc)])
    raise RecordError(f"not a DynamoDB change record: JSON {type(doc).__name__}, not an object")


def stdlib_changes(payload: Any) -> tuple[Change, ...] | Drop:
    """The standard library path: a record's bytes -> its change records (whole), or a Drop; RecordError if none.

    >>> stdlib_changes(b'{"eventName": "REMOVE", "dynamodb": {"Keys": {}}}')
    ({'eventName': 'REMOVE', 'dynamodb': {'Keys': {}}},)
    """
    if type(payload) is not bytes:
        raise RecordError("expects bytes (run decode first)")
    if payload.startswith(_BOM):
        payload = payload[3:]
    return changes_in(strict_loads(payload))


def resolve_parser(parser: str | None) -> str:
    """*parser*, or the default (msgspec when it loads, else stdlib) for None; an unknown name is refused.

    >>> resolve_parser("stdlib")
    'stdlib'
    """
    chosen = DEFAULT_PARSER if parser is None else parser
    if chosen not in PARSERS:
        raise ValueError(f"unknown parser {chosen!r} (known: {', '.join(PARSERS)})")
    return chosen


def parse(*, parser: str | None = None, reads: Any = None) -> Stage:
    """Parse each record's bytes into a tuple of change records.

    *parser* is ``msgspec`` (the default when it loads) or ``stdlib``; both give the same result and reason
    for every record. *reads* (a :class:`Reads`) narrows what msgspec decodes to what the
    pipeline's other stages read: the changes then hold only that (see :func:`msgspec_changes`).

    >>> change = b'{"eventName": "REMOVE", "dynamodb": {"Keys": {"id": {"N": "7"}}}}'
    >>> parsed = list(parse()([
    ...     {"recordId": "1", "data": change},
    ...     {"recordId": "2", "data": b'{"Records": [' + change + b',' + change + b']}'},
    ...     {"recordId": "3", "data": b'[' + change + b']'},
    ...     {"recordId": "4", "data": b'Hello World'},
    ... ]))
    >>> [len(r.value) for r in parsed[:3]], parsed[0].value[0]["eventName"]
    ([1, 2, 1], 'REMOVE')
    >>> parsed[3].result, parsed[3].reason  # doctest: +ELLIPSIS
    ('ProcessingFailed', 'parse: not valid JSON ...')
    """
    if resolve_parser(parser) == "stdlib":
        return per_record(stdlib_changes, "parse")
    return per_record(
        msgspec_whole(stdlib_changes, changes_in) if reads is None else msgspec_changes(reads, stdlib_changes), "parse"
    )


def keep_events(names: Collection[str] = EVENT_NAMES) -> Stage:
    """Keep changes whose ``eventName`` is in *names*; a record left with no change is ``Dropped``.

    >>> changes = [{"eventName": e, "dynamodb": {"Keys": {}}} for e in ("INSERT", "REMOVE")]
    >>> [r.result for r in keep_events({"INSERT"})(changes)]
    ['Ok', 'Dropped']
    >>> keep_events({"UPSERT"})
    Traceback (most recent call last):
    ValueError: unknown event names: ['UPSERT'] (known: INSERT, MODIFY, REMOVE)
    """
    wanted = event_names(names)
    if wanted == EVENT_NAMES:
        return per_record(lambda changes: changes, "keep_events")

    def keep(changes: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...] | Drop:
        if len(changes) == 1:
            return changes if changes[0]["eventName"] in wanted else NOT_SELECTED
        kept = tuple([c for c in changes if c["eventName"] in wanted])
        return kept or NOT_SELECTED

    return per_record(keep, "keep_events")


def event_names(names: Collection[str]) -> frozenset[str]:
    """*names* checked to be event names (at least one), frozen.

    >>> sorted(event_names(["REMOVE", "INSERT"]))
    ['INSERT', 'REMOVE']
    """
    if isinstance(names, str):
        raise TypeError("keep_events takes a collection of event names, not one string")
    wanted = frozenset(names)
    unknown = wanted - EVENT_NAMES
    if unknown:
        raise ValueError(f"unknown event names: {sorted(unknown)} (known: {', '.join(sorted(EVENT_NAMES))})")
    if not wanted:
        raise ValueError("no event names given")
    return wanted


# --- projection pushdown: msgspec decodes only what the configuration reads ---------------------------------


class Reads(NamedTuple):
    """What a pipeline reads from each change; the parser may leave the rest undecoded."""

    image: str = "auto"  #: which image the columns read: auto, new, old or keys (see ``project.pick_image``)
    attributes: frozenset[str] | None = None  #: the attributes of that image read; None: the whole image
    fields: frozenset[str] = frozenset()  #: top-level fields of the change, besides eventName and dynamodb
    dynamodb: frozenset[str] = frozenset()  #: fields of ``dynamodb``, besides Keys and the images


def reads_for(columns: Iterable[Column] | None, specs: Iterable[str] = (), image: str = "auto") -> Reads:
    """What *columns* (None: the whole image) and the extra column *specs* (partition keys) read.

    >>> from pipeline.columns import parse_columns
    >>> reads_for(parse_columns("id, city=address.city, @eventName, at=@approximateCreationDateTime"), ["@tableName"])
    Reads(image='auto', attributes=frozenset({...}), fields=frozenset({...}),
          dynamodb=frozenset({'ApproximateCreationDateTime'}))
    >>> sorted(_.attributes), sorted(_.fields)
    (['address', 'id'], ['eventSourceARN', 'tableName'])
    """
    attributes: set[str] | None = None if columns is None else set()
    fields: set[str] = set()
    dynamodb: set[str] = set()
    for spec in [*(c.spec for c in columns or ()), *specs]:
        head = attribute_of(spec)
        if head is None:
            top, ddb = FIELD_READS[spec[1:]]
            fields |= top
            dynamodb |= ddb
        elif attributes is not None:
            attributes.add(head)
    return Reads(image, None if attributes is None else frozenset(attributes), frozenset(fields), frozenset(dynamodb))


def json_body(data: bytes) -> bytes:
    """A payload's JSON text for msgspec: the byte-order mark cut, checked to be UTF-8 (msgspec may skip text unread).

    >>> json_body(b"\\xef\\xbb\\xbf{}")
    b'{}'
    """
    body = data[3:] if data.startswith(_BOM) else data
    if not body.isascii():
        body.decode()  # UTF-8 only, also in what msgspec skips unread
    return body


def msgspec_whole(judge: Changes, changes_in: Callable[[Any], Any]) -> Changes:
    """The parse function that decodes whole changes with msgspec; *judge* answers what msgspec refuses.

    *changes_in* finds and checks the change records in the decoded payload, as on the standard library path.

    >>> from pipeline.parse import changes_in, stdlib_changes
    >>> msgspec_whole(stdlib_changes, changes_in)(b'{"eventName": "INSERT", "dynamodb": {"Keys": {}}, "n": 1}')
    ({'eventName': 'INSERT', 'dynamodb': {'Keys': {}}, 'n': 1},)
    """
    decode = msgspec.json.Decoder().decode

    def changes(data: bytes) -> Any:
        try:
            doc = decode(json_body(data))
        except Exception:  # the standard library path gives the answer, reason and all
            return judge(data)
        return changes_in(doc)

    return changes


def _fields(names: list[str]) -> Callable[[Any], dict[str, Any]]:
    """A function giving ``{name: struct.name}`` for *names* (identifiers), with as little work as possible."""
    if not names:
        return lambda _struct: {}
    if len(names) == 1:
        [name] = names
        return lambda struct: {name: getattr(struct, name)}
    get = attrgetter(*names)
    return lambda struct: dict(zip(names, get(struct), strict=True))


if msgspec is not None:

    class Mapped(msgspec.Struct, gc=False):
        """A decoded struct that answers ``s[name]`` and ``s.get(name)`` like the dict it stands for.

        The ``@``-field getters (:data:`pipeline.fields.FIELDS`) read a change and its ``dynamodb`` this way,
        so they work on the decoded structs as on the standard library's dicts: a field that is not declared,
        or absent from the record, is None.
        """

        def __getitem__(self, name: str) -> Any:
            return getattr(self, name)

        def get(self, name: str, default: Any = None) -> Any:
            value = getattr(self, name, default)
            return default if value is msgspec.UNSET else value


def _struct(name: str, fields: list[tuple[str, Any, Any]], rename: dict[str, str] | None = None) -> Any:
    return msgspec.defstruct(name, fields, rename=rename, bases=(Mapped,), gc=False)  # decoded JSON has no cycles


def renamable(name: str) -> bool:
    """Whether msgspec can decode an attribute of this name into a struct field (its ``rename`` takes no ``"``,
    backslash or control character); an image with other names is decoded whole.

    >>> renamable("order id"), renamable('a"b'), renamable("a\\b")
    (True, False, False)
    """
    return '"' not in name and "\\" not in name and not any(char < " " for char in name)


def image_struct(names: Iterable[str]) -> Any:
    """A msgspec type for an image that decodes the attributes *names* (in that order) and skips the others.

    The fields are ``a0``, ``a1`` ... (attribute names need not be identifiers); an absent attribute is None.

    >>> import msgspec
    >>> image = msgspec.json.decode(b'{"b": {"N": "2"}, "skip": {"S": "x"}}', type=image_struct(["a", "b"]))
    >>> msgspec.structs.astuple(image)
    (None, {'N': '2'})
    """
    renamed = {f"a{i}": name for i, name in enumerate(names)}
    return _struct("Image", [(field, Any, None) for field in renamed], renamed)


def payload_type(reads: Reads, image: Any, fallback: Any = None) -> Any:
    """The msgspec type of a payload: one change, or ``{"Records": [...]}`` of them, with only what *reads* names.

    *image* is the type of the image the columns read; the other images are only checked to be objects. With
    ``auto``, NewImage is read when present, else OldImage, else Keys: those two are decoded as *fallback*
    (default: *image*). One change decodes with ``eventName`` and ``dynamodb`` set and ``Records`` unset; a
    ``{"Records": [...]}`` payload the other way round.
    """
    skipped = _struct("Skipped", [])
    fallback = image if fallback is None else fallback
    keys, new, old = {
        "auto": (fallback, image, fallback),
        "new": (skipped, image, skipped),
        "old": (skipped, skipped, image),
        "keys": (image, skipped, skipped),
    }[reads.image]
    unset = msgspec.UNSET
    dynamodb = _struct(
        "DynamoDB",
        [
            ("Keys", keys, msgspec.NODEFAULT),
            ("NewImage", new | msgspec.UnsetType, unset),
            ("OldImage", old | msgspec.UnsetType, unset),
            *((name, Any, None) for name in sorted(reads.dynamodb)),
        ],
    )
    top = [(name, Any, None) for name in sorted(reads.fields)]
    event_name = Literal["INSERT", "MODIFY", "REMOVE"]
    change = _struct(
        "Change", [("eventName", event_name, msgspec.NODEFAULT), ("dynamodb", dynamodb, msgspec.NODEFAULT), *top]
    )
    return _struct(
        "Payload",
        [
            ("eventName", event_name | msgspec.UnsetType, unset),
            ("dynamodb", dynamodb | msgspec.UnsetType, unset),
            ("Records", list[change] | msgspec.UnsetType, unset),
            *top,
        ],
    )


def msgspec_changes(reads: Reads, judge: Changes) -> Changes:
    """The per-record parse function for *reads*: bytes -> a tuple of (pruned) change dicts, or a Drop.

    *judge* is the standard library's parse function: any payload msgspec does not take goes to it.
    The changes hold only what *reads* names (the chosen image under its own key, an attribute that is
    absent as None): what the other stages look up is what they would find in the whole change.

    >>> from pipeline.parse import stdlib_changes
    >>> fast = msgspec_changes(Reads("auto", frozenset({"id"})), stdlib_changes)
    >>> fast(b'{"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"N": "1"}},'
    ...      b' "NewImage": {"id": {"N": "1"}, "big": {"S": "not decoded"}}}}')
    ({'eventName': 'INSERT', 'dynamodb': {'NewImage': {'id': {'N': '1'}}}},)
    >>> fast(b'{"eventName": "UPSERT", "dynamodb": {"Keys": {}}}')  # the standard library's reason
    Traceback (most recent call last):
    pipeline.records.RecordError: not a DynamoDB change record: eventName is not INSERT, MODIFY or REMOVE
    """
    unset = msgspec.UNSET
    whole = reads.attributes is None or not all(map(renamable, reads.attributes))  # the image decoded whole
    raw_type = msgspec.Raw
    if whole:  # the image written is decoded; with auto, OldImage and Keys stay msgspec.Raw until one is chosen
        image_type: Any = dict[str, Any]
        fallback: Any = msgspec.Raw
        whole_dict = msgspec.json.Decoder(dict[str, Any]).decode
        as_dict: Callable[[Any], dict[str, Any]] = lambda image: (  # noqa: E731
            image if type(image) is dict else whole_dict(image)
        )
    else:
        names = sorted(reads.attributes)
        image_type = fallback = image_struct(names)
        astuple = msgspec.structs.astuple
        as_dict = lambda image: dict(zip(names, astuple(image), strict=True))  # noqa: E731
    decode = msgspec.json.Decoder(payload_type(reads, image_type, fallback)).decode
    ddb_fields, top_fields = _fields(sorted(reads.dynamodb)), _fields(sorted(reads.fields))
    choice = reads.image
    key = "OldImage" if choice == "old" else "NewImage"

    def pruned(c: Any) -> dict[str, Any]:
        d = c.dynamodb
        if whole:  # each image must be an object, as check_change requires
            for raw in (d.Keys, d.NewImage, d.OldImage):
                if type(raw) is raw_type and memoryview(raw)[0] != _OPEN_BRACE:
                    raise ValueError("an image is not an object")
        ddb = ddb_fields(d)
        if choice == "auto":
            if d.NewImage is not unset:
                ddb["NewImage"] = as_dict(d.NewImage)
            elif d.OldImage is not unset:
                ddb["OldImage"] = as_dict(d.OldImage)
            else:
                ddb["Keys"] = as_dict(d.Keys)
        elif choice == "keys":
            ddb["Keys"] = as_dict(d.Keys)
        else:
            image = getattr(d, key)
            if image is not unset:
                ddb[key] = as_dict(image)
        out = {"eventName": c.eventName, "dynamodb": ddb}
        out.update(top_fields(c))
        return out

    def changes(data: bytes) -> Any:
        try:
            doc = decode(json_body(data))
            if doc.dynamodb is not unset and doc.eventName is not unset:
                return (pruned(doc),)
            if doc.dynamodb is unset and doc.eventName is unset and doc.Records:
                return tuple([pruned(c) for c in doc.Records])
        except Exception:
            pass
        return judge(data)

    return changes
