"""A DynamoDB export to S3, read from its manifests and checked before any item is transformed.

The layout, as DynamoDB writes it (``S3DataExport.Output`` in the DynamoDB developer guide)::

    [s3Prefix/]AWSDynamoDB/<ExportId>/manifest-summary.json   one JSON object: the export
    [s3Prefix/]AWSDynamoDB/<ExportId>/manifest-files.json     JSON Lines: one object per data file
    [s3Prefix/]AWSDynamoDB/<ExportId>/data/<name>.json.gz     a full export's data files
    [s3Prefix/]AWSDynamoDB/data/<name>.json.gz                an incremental export's data files

``manifest-summary.json`` holds ``exportArn``, ``exportTime``, ``tableArn``, ``itemCount``, ``outputFormat``
(``DYNAMODB_JSON`` or ``ION``) and, for incremental exports, ``exportType`` (``INCREMENTAL_EXPORT``; a full
export says ``FULL_EXPORT`` or nothing), ``exportFromTime``, ``exportToTime`` and ``outputView``
(``NEW_AND_OLD_IMAGES`` or ``NEW_IMAGE``). Each line of ``manifest-files.json`` holds ``itemCount``,
``md5Checksum`` (base64), ``etag`` and ``dataFileS3Key`` (the key from the bucket's root).

Data keys are resolved against the folder that holds ``AWSDynamoDB/``, not the bucket in the manifest, so an
export copied to another bucket, or downloaded to a folder, reads the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from ..sinks.storage import Folder, Store, open_store

__all__ = [
    "FULL",
    "INCREMENTAL",
    "VIEWS",
    "DataFile",
    "Export",
    "ExportError",
    "find_export",
    "read_export",
    "store_error",
    "store_reason",
]

FULL, INCREMENTAL = "FULL_EXPORT", "INCREMENTAL_EXPORT"
VIEWS = ("NEW_AND_OLD_IMAGES", "NEW_IMAGE")
_ANCHOR = "AWSDynamoDB/"
SUMMARY, FILES = "manifest-summary.json", "manifest-files.json"


class ExportError(ValueError):
    """The export cannot be backfilled as it is; the message says why and what to do."""


class DataFile(NamedTuple):
    """One data file of an export, as ``manifest-files.json`` lists it (``key`` relative to the export's root)."""

    key: str
    item_count: int
    md5: str | None
    size_hint: int = 0


class Export(NamedTuple):
    """One export: where it is, what it holds, and its data files."""

    root: str  # location (folder or s3://) of the folder holding AWSDynamoDB/
    folder: str  # the export's folder, relative to root: AWSDynamoDB/<ExportId>/
    export_id: str
    export_type: str  # FULL or INCREMENTAL
    table_arn: str
    table: str
    region: str
    export_micros: int  # exportTime (full) or exportToTime (incremental), microseconds since the epoch
    view: str  # the incremental export's view type (NEW_AND_OLD_IMAGES for a full export)
    item_count: int
    files: tuple[DataFile, ...]

    @property
    def incremental(self) -> bool:
        """True for an incremental export (changes), False for a full one (items)."""
        return self.export_type == INCREMENTAL


def store_error(exc: BaseException) -> str | None:
    """What went wrong with a store (a folder or S3), for a one-line message; None if *exc* is not that.

    >>> store_error(FileNotFoundError(2, "No such file")), store_error(KeyError("x"))
    ('FileNotFoundError', None)
    """
    if isinstance(exc, ExportError):
        return None
    if isinstance(exc, OSError):
        return type(exc).__name__
    if type(exc).__module__.startswith("boto3") and isinstance(exc.__context__, Exception):  # S3UploadFailedError
        return store_error(exc.__context__) or type(exc).__name__  # the outer type, not the context's
    if type(exc).__module__.startswith("botocore"):
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        return type(exc).__name__ if code in (None, type(exc).__name__) else f"{type(exc).__name__}: {code}"
    return None


def store_reason(exc: BaseException) -> str:
    """:func:`store_error`, else the exception's type (never its text, which may quote data).

    >>> store_reason(FileNotFoundError(2, "No such file")), store_reason(KeyError("x"))
    ('FileNotFoundError', 'KeyError')
    """
    return store_error(exc) or type(exc).__name__


def _micros(text: Any, name: str) -> int:
    """Microseconds since the epoch from the manifest's ISO 8601 times.

    >>> _micros("2020-11-04T07:28:34.028Z", "exportTime")
    1604474914028000
    """
    if type(text) is not str:
        raise ExportError(f"{SUMMARY} has no {name} time")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExportError(f"{SUMMARY}: {name} {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ExportError(f"{SUMMARY}: {name} {text!r} has no time zone")
    delta = moment - datetime.fromisoformat("1970-01-01T00:00:00+00:00")
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _split(location: str) -> tuple[str, str]:
    """(root, folder): the location above ``AWSDynamoDB/`` and the export folder below it.

    >>> _split("s3://bucket/exports/AWSDynamoDB/01234567890123-a1b2c3d4/")
    ('s3://bucket/exports/', 'AWSDynamoDB/01234567890123-a1b2c3d4/')
    >>> _split("/tmp/export/AWSDynamoDB/01234567890123-a1b2c3d4")
    ('/tmp/export/', 'AWSDynamoDB/01234567890123-a1b2c3d4/')
    """
    path = location.rstrip("/")
    parent, _, export_id = path.rpartition("/")
    root, _, anchor = parent.rpartition("/")
    if not export_id or not anchor:
        raise ExportError(f"{location}: not an export folder (…/AWSDynamoDB/<ExportId>/ holding {SUMMARY})")
    return (root + "/" if root else "./"), f"{anchor}/{export_id}/"


def find_export(location: str) -> tuple[str, str]:
    """(root, folder) of the export at *location*: its folder, or a folder holding exactly one export."""
    store = open_store(location)
    if _exists(store, SUMMARY):
        return _split(location)
    found = [k for k in store.listing(_ANCHOR) if k.endswith("/" + SUMMARY) and k.count("/") == 2]
    if len(found) == 1:
        return _split(location.rstrip("/") + "/" + found[0].rpartition("/")[0])
    if found:
        names = ", ".join(k.split("/")[1] for k in found[:5])
        raise ExportError(f"{location} holds {len(found)} exports ({names}): give the one to backfill")
    raise ExportError(f"{location}: no {SUMMARY} there (give the export's folder, …/AWSDynamoDB/<ExportId>/)")


def _exists(store: Store, key: str) -> bool:
    return key in set(store.listing(key))


def _get(store: Store, key: str) -> bytes:
    try:
        return store.get(key)
    except Exception as exc:
        raise ExportError(f"cannot read {key} ({type(exc).__name__}): is this a complete export?") from None


def _json(store: Store, key: str) -> Any:
    try:
        return json.loads(_get(store, key).decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{key} is not JSON ({exc})") from None


def _data_key(key: str, folder: str) -> str:
    """A ``dataFileS3Key`` relative to the export's root (the folder holding ``AWSDynamoDB/``)."""
    at = key.find(_ANCHOR)
    return key[at:] if at >= 0 else folder + key.lstrip("/")


def _files(store: Store, folder: str) -> Iterator[DataFile]:
    key = folder + FILES
    for number, line in enumerate(_get(store, key).decode("utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ExportError(f"{key} line {number} is not JSON ({exc.msg})") from None
        yield _data_file(doc, f"{key} line {number}", folder)


def _data_file(doc: Any, where: str, folder: str) -> DataFile:
    """One line of ``manifest-files.json``, each field of the type DynamoDB writes (*where* names the line)."""
    if type(doc) is not dict:
        raise ExportError(f"{where} is not a JSON object: the manifest is damaged")
    count, data_key, md5 = doc.get("itemCount"), doc.get("dataFileS3Key"), doc.get("md5Checksum")
    if count is None or type(data_key) is not str or not data_key:
        missing = "itemCount" if count is None else "dataFileS3Key (the data file's key, text)"
        raise ExportError(f"{where} has no {missing}: the manifest is damaged")
    _check_count(count, f"{where}: itemCount")
    if md5 is not None and type(md5) is not str:
        raise ExportError(f"{where}: md5Checksum is {_shown(md5)}, not text (a base64 MD5): the manifest is damaged")
    return DataFile(_data_key(data_key, folder), count, md5 or None)


def _check_count(count: Any, what: str) -> None:
    """An item count is a whole number, 0 or more (JSON's 200.5, "200" and true are not).

    >>> _check_count("200", "itemCount")
    Traceback (most recent call last):
    pipeline.backfill.manifest.ExportError: itemCount is "200" (text), not a whole number: the manifest is damaged
    """
    if type(count) is not int:
        raise ExportError(f"{what} is {_shown(count)}, not a whole number: the manifest is damaged")
    if count < 0:
        raise ExportError(f"{what} is {count}, negative: the manifest is damaged")


def _shown(value: Any) -> str:
    """A JSON value and its kind, for a message: ``"200" (text)``, ``200.5 (a decimal number)``."""
    kinds = {str: "text", float: "a decimal number", int: "a number", bool: "true or false", list: "a list"}
    return f"{json.dumps(value)[:40]} ({kinds.get(type(value), 'an object')})"


def read_export(location: str) -> Export:
    """Read and check an export's manifests: DynamoDB JSON, a known type and view, every data file present.

    Raises ExportError (a ValueError) naming what is wrong. Each file's item count and checksum are checked
    when it is read (see :func:`pipeline.backfill.transform.transform_file`).
    """
    try:
        root, folder = find_export(location)
        store = open_store(root)
        return _read(location, root, folder, store)
    except Exception as exc:  # the store itself: no such bucket, no permission, no such folder
        why = store_error(exc)
        if why is None:
            raise
        raise ExportError(f"cannot read the export at {location} ({why})") from exc  # the CLI says what to check


def _read(location: str, root: str, folder: str, store: Store) -> Export:
    summary = _json(store, folder + SUMMARY)
    if type(summary) is not dict:
        raise ExportError(f"{folder}{SUMMARY} is not a JSON object")
    output = summary.get("outputFormat", "DYNAMODB_JSON")
    if output != "DYNAMODB_JSON":
        raise ExportError(
            f"{location} is an {output} export; backfill reads DYNAMODB_JSON exports "
            "(export the table again with --export-format DYNAMODB_JSON)"
        )
    kind = summary.get("exportType") or FULL
    if kind not in (FULL, INCREMENTAL):
        raise ExportError(f"{SUMMARY}: exportType {kind!r} is not {FULL} or {INCREMENTAL}")
    view = summary.get("outputView") or summary.get("exportViewType") or "NEW_AND_OLD_IMAGES"
    view = "NEW_IMAGE" if view == "NEW_IMAGES" else view  # the API reference spells it both ways
    if view not in VIEWS:
        raise ExportError(f"{SUMMARY}: outputView {view!r} is not one of {', '.join(VIEWS)}")
    table_arn = summary.get("tableArn")
    if type(table_arn) is not str or ":table/" not in table_arn:
        raise ExportError(f"{SUMMARY} has no tableArn (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)")
    moment = summary.get("exportToTime") if kind == INCREMENTAL else summary.get("exportTime")
    micros = _micros(moment, "exportToTime" if kind == INCREMENTAL else "exportTime")
    files = tuple(_files(store, folder))
    _check_once(files)
    total = summary.get("itemCount")
    if total is not None:
        _check_count(total, f"{folder}{SUMMARY}: itemCount")
    listed = sum(f.item_count for f in files)
    if kind == FULL and total is not None and total != listed:
        raise ExportError(f"{FILES} lists {listed:,} items but {SUMMARY} says {total:,}: the manifests disagree")
    _check_present(store, files)
    export_arn = summary.get("exportArn")
    export_id = export_arn.rsplit("/", 1)[-1] if type(export_arn) is str else folder.rstrip("/").rsplit("/", 1)[-1]
    return Export(
        root=root,
        folder=folder,
        export_id=export_id,
        export_type=kind,
        table_arn=table_arn,
        table=table_arn.split(":table/", 1)[1].split("/", 1)[0],
        region=table_arn.split(":")[3],
        export_micros=micros,
        view=view,
        item_count=listed,
        files=files,
    )


def _check_once(files: tuple[DataFile, ...]) -> None:
    """No data file is listed twice (its items would be counted twice, and written once)."""
    seen: set[str] = set()
    for data in files:
        if data.key in seen:
            raise ExportError(
                f"{FILES} lists data file {data.key} twice: DynamoDB lists each once (remove the repeated line)"
            )
        seen.add(data.key)


def _check_present(store: Store, files: tuple[DataFile, ...]) -> None:
    """Every listed data file is there: one listing of their common folder, not a request per file."""
    if not files:
        return
    folders = {f.key.rpartition("/")[0] + "/" for f in files}
    present: set[str] = set()
    for prefix in sorted(folders):
        present.update(store.listing(prefix))
    missing = [f.key for f in files if f.key not in present]
    folder = next((key for key in missing if _is_folder(store, key, present)), None)
    if folder is not None:
        raise ExportError(f"data file {folder} listed in {FILES} is a folder: it should be a file of the export")
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ExportError(f"data file {missing[0]}{more} listed in {FILES} is missing: the export is incomplete")


def _is_folder(store: Store, key: str, present: set[str]) -> bool:
    """*key* names a folder: objects are under it, or (in a local folder) it is an empty folder."""
    inside = key + "/"
    return any(k.startswith(inside) for k in present) or (isinstance(store, Folder) and (store.root / key).is_dir())
