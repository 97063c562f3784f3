"""Projection pushdown: decode only what a configuration reads from each change, with msgspec.

The columns, partition keys and image are known when the pipeline is built, so the parser needs only a few
fields of each change: ``eventName``, the image the columns read (and in it only the attributes they name)
and the fields the ``@``-columns use. :func:`reads_for` works that out once; :func:`msgspec_changes` builds
msgspec ``Struct`` types from it and returns the per-record parse function, which skips everything else.

One parser, one answer: the msgspec path accepts a payload only when the standard library path would accept
it with the same values. Whatever msgspec refuses (malformed JSON, a wrong type, a lone surrogate escape it
does not take, a number out of its range ...) is handed to the standard library path, whose answer, value
or reason, is the one given; text that msgspec would skip unread is still checked to be UTF-8.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any, Literal, NamedTuple

try:
    import msgspec
except ImportError:  # the standard library path runs instead (see pipeline.parse)
    msgspec = None

from .columns import Column, attribute_of
from .fields import FIELD_READS
from .records import Drop

__all__ = ["Reads", "msgspec_changes", "msgspec_whole", "reads_for"]

Changes = Callable[[bytes], Any]
_BOM = b"\xef\xbb\xbf"
_NO_CHANGES = Drop("no change records in payload")
_OPEN_BRACE = ord("{")


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


def _utf8(data: bytes) -> bytes:
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
            doc = decode(_utf8(data))
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


def _struct(name: str, fields: list[tuple[str, Any, Any]], rename: dict[str, str] | None = None) -> Any:
    return msgspec.defstruct(name, fields, rename=rename, gc=False)  # decoded JSON holds no cycles


def _payload_type(reads: Reads, image: Any) -> Any:
    """The msgspec type of a payload: one change, or ``{"Records": [...]}`` of them, with only what *reads* names.

    *image* is the type of the image the columns read; the other images are only checked to be objects.
    """
    skipped = _struct("Skipped", [])
    keys, new, old = {
        "auto": (image, image, image),
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
    whole = reads.attributes is None
    raw_type = msgspec.Raw
    if whole:  # kept undecoded (msgspec.Raw) until the image to write is chosen: the others are only checked
        image_type: Any = msgspec.Raw
        as_dict: Callable[[Any], dict[str, Any]] = msgspec.json.Decoder(dict[str, Any]).decode
    else:
        names = sorted(reads.attributes)
        renamed = {f"a{i}": name for i, name in enumerate(names)}
        image_type = _struct("Image", [(field, Any, None) for field in renamed], renamed)
        astuple = msgspec.structs.astuple
        as_dict = lambda image: dict(zip(names, astuple(image), strict=True))  # noqa: E731
    decode = msgspec.json.Decoder(_payload_type(reads, image_type)).decode
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
            doc = decode(_utf8(data))
            if doc.dynamodb is not unset and doc.eventName is not unset:
                return (pruned(doc),)
            if doc.dynamodb is unset and doc.eventName is unset and doc.Records:
                return tuple([pruned(c) for c in doc.Records])
        except Exception:
            pass
        return judge(data)

    return changes
