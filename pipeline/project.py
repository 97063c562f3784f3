"""Stage 4: each change's typed DynamoDB image -> a row: ``{column name: typed value or None}``.

Only the attributes the columns ask for are looked up; nothing is converted yet (the encoder does that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .columns import Column, parse_columns
from .records import Record, RecordError, Stage, Step, fused

__all__ = ["IMAGES", "NOTE_PRESENCE", "ColumnPresence", "note_presence", "pick_image", "project"]

Image = Mapping[str, Any]
IMAGES = ("auto", "new", "old", "keys")
_IMAGE_KEYS = {"new": "NewImage", "old": "OldImage", "keys": "Keys"}
#: The name of :func:`note_presence`'s step (the plan notes presence itself, once a line is made).
NOTE_PRESENCE = "note_presence"


def pick_image(image: str) -> Callable[[Mapping[str, Any]], Image]:
    """The function choosing a change's image: ``auto`` is NewImage, else OldImage, else Keys.

    >>> change = {"dynamodb": {"Keys": {"id": {"N": "1"}}, "OldImage": {"id": {"N": "1"}, "v": {"S": "x"}}}}
    >>> pick_image("auto")(change), pick_image("new")(change)
    ({'id': {'N': '1'}, 'v': {'S': 'x'}}, {})
    """
    if image not in IMAGES:
        raise ValueError(f"unknown image {image!r} (known: {', '.join(IMAGES)})")
    if image == "auto":

        def auto(change: Mapping[str, Any]) -> Image:
            ddb = change["dynamodb"]
            image = ddb.get("NewImage")
            if image is None:
                image = ddb.get("OldImage")
            return ddb["Keys"] if image is None else image

        return auto
    key = _IMAGE_KEYS[image]
    return lambda change: change["dynamodb"].get(key) or {}


def project(columns: str | Iterable[str | Column] | None, image: str = "auto") -> Stage:
    """Turn each change into a row of typed cells; ``columns=None`` keeps the whole image (for JSON Lines).

    >>> change = {"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"N": "1"}},
    ...           "NewImage": {"id": {"N": "1"}, "city": {"S": "Zürich"}, "big": {"S": "unused"}}}}
    >>> [r.value for r in project("id, city, event=@eventName, missing")([change])]
    [({'id': {'N': '1'}, 'city': {'S': 'Zürich'}, 'event': {'S': 'INSERT'}, 'missing': None},)]
    """
    choose = pick_image(image)
    if columns is None:

        def whole(changes: tuple[Mapping[str, Any], ...]) -> tuple[Image, ...]:
            return tuple([_checked(choose(c)) for c in changes])

        return fused([Step("project", whole)])

    chosen = parse_columns(columns)
    getters = tuple((c.name, c.attribute, c.get) for c in chosen)
    if all(c.attribute is not None for c in chosen):  # attributes only: one C-level pass over the image
        names, attributes = tuple(c.name for c in chosen), tuple(c.attribute for c in chosen)

        def plain(changes: tuple[Mapping[str, Any], ...]) -> tuple[dict[str, Any], ...]:
            if len(changes) == 1:
                return (dict(zip(names, map(choose(changes[0]).get, attributes), strict=True)),)
            return tuple([dict(zip(names, map(choose(c).get, attributes), strict=True)) for c in changes])

        return fused([Step("project", plain)])

    def rows(changes: tuple[Mapping[str, Any], ...], rec: Record) -> tuple[dict[str, Any], ...]:
        out = []
        for change in changes:
            image_ = choose(change)
            out.append(
                {
                    name: image_.get(attribute) if attribute is not None else get(change, image_, rec)
                    for name, attribute, get in getters
                }
            )
        return tuple(out)

    return fused([Step("project", rows, "record")])


def _checked(image: Any) -> Image:
    if type(image) is not dict:
        raise RecordError("image is not an object")
    return image


class ColumnPresence:
    """Which attribute columns have had a value (NULL counts) in the rows seen since :meth:`reset`.

    Made once per handler and reset per invocation: columns that never match (a typo in ``PIPELINE_COLUMNS``)
    are then reported instead of silently writing empty cells. Once every column has been seen, nothing more
    is looked at, so the cost is a few dict lookups per row at the start of an invocation.

    >>> presence = ColumnPresence(["id", "amountt"])
    >>> presence.see(({"id": {"N": "1"}, "amountt": None},) * 100)
    >>> presence.never_seen()
    ['amountt']
    """

    __slots__ = ("changes", "names", "unseen")

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        self.unseen: set[str] = set(self.names)
        self.changes = 0

    def __repr__(self) -> str:
        return f"ColumnPresence(unseen={sorted(self.unseen)}, changes={self.changes})"

    def reset(self) -> None:
        """Start again (a new invocation)."""
        self.unseen = set(self.names)
        self.changes = 0

    def see(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Note the rows of one record (call it only while :attr:`unseen` is not empty)."""
        unseen = self.unseen
        for row in rows:
            self.changes += 1
            for name in [n for n in unseen if row.get(n) is not None]:
                unseen.discard(name)

    def see_columns(self, columns: Mapping[str, Sequence[Any]], rows: int) -> None:
        """Note *rows* rows given column by column (each column's values, one per row), as :meth:`see` would.

        >>> presence = ColumnPresence(["id", "gone"])
        >>> presence.see_columns({"id": [None, {"N": "1"}], "gone": [None, None]}, 2)
        >>> presence
        ColumnPresence(unseen=['gone'], changes=2)
        """
        self.changes += rows
        for name in [n for n in self.unseen if n in columns and columns[n].count(None) < rows]:
            self.unseen.discard(name)

    def never_seen(self, least_changes: int = 100) -> list[str]:
        """The columns no row had, in configured order, if at least *least_changes* rows were seen."""
        if not self.unseen or self.changes < least_changes:
            return []
        return [n for n in self.names if n in self.unseen]

    @classmethod
    def for_columns(cls, columns: Iterable[Column] | None) -> ColumnPresence | None:
        """Presence of the attribute columns among *columns* (``@``-fields always have a value); None if none."""
        names = [c.name for c in columns or () if not c.spec.startswith("@")]
        return cls(names) if names else None


def note_presence(presence: ColumnPresence) -> Stage:
    """A stage after :func:`project` noting which columns have values; records pass through unchanged.

    >>> presence = ColumnPresence(["id"])
    >>> [r.result for r in note_presence(presence)([Record("a", {}, ({"id": {"N": "1"}},))])], presence.unseen
    (['Ok'], set())
    """

    def look(rows: tuple[Mapping[str, Any], ...]) -> tuple[Mapping[str, Any], ...]:
        if presence.unseen:  # once every column has been seen, nothing more is looked at
            presence.see(rows)
        return rows

    return fused([Step(NOTE_PRESENCE, look)])  # a step: it fuses with project and encode
