"""Stage 4: each change's typed DynamoDB image -> a row: ``{column name: typed value or None}``.

Only the attributes the columns ask for are looked up; nothing is converted yet (the encoder does that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .columns import Column, parse_columns
from .records import Record, RecordError, Stage, Step, fused

__all__ = ["IMAGES", "pick_image", "project"]

Image = Mapping[str, Any]
IMAGES = ("auto", "new", "old", "keys")
_IMAGE_KEYS = {"new": "NewImage", "old": "OldImage", "keys": "Keys"}


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
