"""Firehose dynamic partitioning: ``metadata.partitionKeys`` computed from each change.

A key spec is ``name=column-spec``, optionally ending in ``|strftime`` to format a timestamp (an ``@``-time
field, an ISO 8601 string attribute, or an epoch number attribute in s, ms or µs), e.g.
``day=@approximateCreationDateTime|%Y-%m-%d``. Times are formatted in UTC (a time without an offset is taken
as UTC), so one moment always lands in one partition.

One rule for every key, whatever its value comes from (an ``@``-field, an attribute, a formatted time): the
value must be non-empty UTF-8 text (:func:`pipeline.values.check_partition_value`), else the record is
``ProcessingFailed``; a format that can only give empty text is refused when the key is parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .attributes import to_text
from .columns import parse_column, split_specs
from .fields import TIMES, epoch_millis
from .project import pick_image
from .records import Record, RecordError, Stage, Step, fused
from .values import always_empty, check_partition_value, is_number, is_utf8, label

__all__ = ["STRFTIME_CODES", "PartitionKey", "check_strftime", "parse_partition_keys", "with_partition_keys"]

Typed = Mapping[str, Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The strftime codes the C standard and Python's documentation define (and ISO 8601's %G %u %V), which every
#: platform formats; others (%Q, %-d, %s ...) are left as they are or differ between platforms.
STRFTIME_CODES = "aAwdbBmyYHIpMSfzZjUWcxXGuV%"


def check_strftime(fmt: str) -> str:
    """*fmt* if it is a strftime format for a partition key: at least one code, each a portable one.

    The configuration checks every ``|format`` with this, so the handler and ``athena-ddl`` refuse the same.

    >>> check_strftime("%Y-%m-%d")
    '%Y-%m-%d'
    >>> check_strftime("%Y-%Q")
    Traceback (most recent call last):
    ValueError: %Q in '%Y-%Q' is not a strftime code (use %Y %m %d %H %M %S, see Python's strftime codes)
    """
    codes = []
    pieces = iter(fmt)
    for char in pieces:
        if char == "%":
            code = next(pieces, "")
            if code not in STRFTIME_CODES or not code:
                shown = f"%{code}" if code else "a lone % at the end"
                raise ValueError(
                    f"{shown} in {fmt!r} is not a strftime code (use %Y %m %d %H %M %S, see Python's strftime codes)"
                )
            codes.append(code)
    if not [c for c in codes if c != "%"]:
        raise ValueError(f"{fmt!r} is not a strftime format: it has no code such as %Y or %d")
    return fmt


class PartitionKey:
    """One ``name=spec[|strftime]`` partition key."""

    __slots__ = ("_by_second", "column", "fmt", "millis", "name")

    def __init__(self, text: str) -> None:
        parts = split_specs(text, "=")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise ValueError(f"partition key {text!r} is not name=spec")
        name, spec = parts
        if not is_utf8(text):
            raise ValueError(f"partition key {label(name)} is not UTF-8 text")
        pieces = split_specs(spec, "|")
        if len(pieces) > 2 or not pieces[0]:
            raise ValueError(f"partition key {text!r} is not name=spec or name=spec|format")
        self.name = name
        self.column = parse_column(pieces[0])
        self.fmt = pieces[1] if len(pieces) == 2 else None
        if self.fmt is not None:
            try:
                check_strftime(self.fmt)
            except ValueError as exc:
                raise ValueError(f"partition key {text!r}: {exc}") from None
            if always_empty(self.fmt):  # portable codes can still give nothing (%p in some locales)
                raise ValueError(f"partition key {text!r}: {self.fmt!r} gives empty text for every time")
        # An @-time formatted by strftime is taken as epoch milliseconds, not as the ISO text of its column.
        self.millis = TIMES.get(self.column.spec[1:]) if self.fmt and self.column.spec.startswith("@") else None
        # A format without %f gives one text per second: formatted once per second seen, not once per record.
        self._by_second: dict[int, str] | None = (
            {} if self.millis is not None and "%f" not in (self.fmt or "") else None
        )

    def __repr__(self) -> str:
        fmt = f"|{self.fmt}" if self.fmt else ""
        return f"PartitionKey('{self.name}={self.column.spec}{fmt}')"

    def value(self, change: Mapping[str, Any], image: Mapping[str, Any], rec: Record) -> str:
        """This key's value for one change: non-empty UTF-8 text, else RecordError naming the key."""
        if self.millis is not None:
            millis = self.millis(change, rec)
            cache = self._by_second
            if cache is not None and type(millis) is int:
                text = cache.get(millis // 1000)
                if text is None:
                    text = _from_millis(millis, self.name).strftime(self.fmt)
                    if len(cache) < 4096:
                        cache[millis // 1000] = text
            else:
                text = _from_millis(millis, self.name).strftime(self.fmt)
        else:
            typed = self.column.get(change, image, rec)
            if typed is None or "NULL" in typed:
                raise RecordError(f"partition key {self.name!r} has no value")
            if self.fmt is not None:
                text = _moment(typed, self.name).strftime(self.fmt)
            else:
                try:
                    text = to_text(typed)
                except RecordError as exc:
                    raise RecordError(f"partition key {self.name!r}: {exc}") from None
        return check_partition_value(text, self.name)


def _moment(typed: Typed, name: str) -> datetime:
    if "S" in typed and type(typed["S"]) is str:
        try:
            moment = datetime.fromisoformat(typed["S"])
        except ValueError:
            raise RecordError(f"partition key {name!r}: not an ISO 8601 time") from None
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)  # partitions are in UTC
    if "N" in typed and type(typed["N"]) is str:
        if not is_number(typed["N"]):  # float() would take 'NaN', ' 1 ' and '1_000'
            raise RecordError(f"partition key {name!r}: N value is not a number")
        number = float(typed["N"])
        return _from_millis(epoch_millis(number, f"partition key {name!r}"), name)
    raise RecordError(f"partition key {name!r}: not a time (S or N)")


def _from_millis(millis: int | None, name: str) -> datetime:
    if millis is None:
        raise RecordError(f"partition key {name!r} has no value")
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise RecordError(f"partition key {name!r}: time out of range") from None


def parse_partition_keys(specs: str | Iterable[str | PartitionKey]) -> tuple[PartitionKey, ...]:
    """Parse ``name=spec[|format],...``; names must be unique.

    >>> parse_partition_keys("day=@approximateCreationDateTime|%Y-%m-%d, table=@tableName")
    (PartitionKey('day=@approximateCreationDateTime|%Y-%m-%d'), PartitionKey('table=@tableName'))
    """
    items = split_specs(specs) if isinstance(specs, str) else list(specs)
    keys = tuple(item if isinstance(item, PartitionKey) else PartitionKey(item) for item in items if item)
    names = [k.name for k in keys]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate partition key names in {names}")
    return keys


def with_partition_keys(specs: str | Iterable[str | PartitionKey], image: str = "auto") -> Stage:
    """Attach ``partition_keys`` to each record; changes in one record must agree on them.

    >>> change = {"eventName": "INSERT", "dynamodb": {"ApproximateCreationDateTime": 1480642020,
    ...           "Keys": {"id": {"N": "1"}}, "NewImage": {"id": {"N": "1"}, "ts": {"S": "2024-02-29T10:00:00Z"}}}}
    >>> [r.partition_keys for r in with_partition_keys("day=@approximateCreationDateTime|%Y-%m-%d, "
    ...                                                 "month=ts|%Y-%m, id=id")([change])]
    [{'day': '2016-12-02', 'month': '2024-02', 'id': '1'}]
    """
    keys = parse_partition_keys(specs)
    if not keys:
        raise ValueError("no partition keys given")
    choose = pick_image(image)

    def attach(changes: tuple[Mapping[str, Any], ...], rec: Record) -> dict[str, str] | None:
        found: dict[str, str] | None = None
        for change in changes:
            image_ = choose(change)
            these = {k.name: k.value(change, image_, rec) for k in keys}
            if found is not None and these != found:
                raise RecordError("changes in one record have different partition keys")
            found = these
        return found

    return fused([Step("partition_keys", attach, "keys")])
