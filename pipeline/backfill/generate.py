"""A realistic DynamoDB export of the generated ``orders`` table, for tests, demos and benchmarks.

Written as DynamoDB writes one (see :mod:`pipeline.backfill.manifest`): ``manifest-summary.json``,
``manifest-files.json`` with each file's item count, base64 MD5 and ETag, gzip data files named like real
ones (empty ones too, as for empty partitions), and ``_started``. Items are those of ``generate-event``,
awkward values included (commas, quotes, newlines, 38-digit numbers, sets, binary). The same arguments give
the same bytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from ..sinks.storage import open_store
from ..tools.generate import ACCOUNT, REGION, TABLE, order_item
from .manifest import FILES, SUMMARY, VIEWS

__all__ = ["EXPORT_MS", "generate_export"]

EXPORT_MS = 1_767_312_000_000  # 2026-01-02T00:00:00Z
_WINDOW_US = 3_600_000_000  # an incremental export's window: the hour before its end


def _iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _incremental_line(rng: random.Random, i: int, micros: int, view: str, awkward: float) -> dict[str, Any]:
    key = {"id": {"S": f"order-{i:08d}"}}
    new = order_item(rng, key["id"]["S"], rng.random() < awkward)
    old = {**new, "status": {"S": "NEW"}}
    kind = rng.choices(("INSERT", "MODIFY", "REMOVE"), (5, 3, 2))[0]
    doc: dict[str, Any] = {"Metadata": {"WriteTimestampMicros": {"N": str(micros)}}, "Keys": key}
    if kind != "REMOVE":
        doc["NewImage"] = new
    if view == "NEW_AND_OLD_IMAGES" and kind != "INSERT":
        doc["OldImage"] = old
    return doc


def _lines(items: int, *, incremental: bool, view: str, awkward: float, seed: int, end_us: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    step = max(1, _WINDOW_US // max(items, 1))
    for i in range(items):
        if incremental:
            yield _dumps(_incremental_line(rng, i, end_us - _WINDOW_US + i * step, view, awkward))
        else:
            yield _dumps({"Item": order_item(rng, f"order-{i:08d}", rng.random() < awkward)})


def generate_export(
    location: str,
    items: int,
    files: int,
    *,
    incremental: bool = False,
    view: str = "NEW_AND_OLD_IMAGES",
    awkward: float = 0.1,
    seed: int = 0,
    export_ms: int = EXPORT_MS,
) -> str:
    """Write an export of *items* items (or changes) in *files* data files under *location*; its folder.

    >>> import tempfile
    >>> from pipeline.backfill.manifest import read_export
    >>> export = read_export(generate_export(tempfile.mkdtemp(), 30, 4))
    >>> export.table, export.item_count, len(export.files), export.export_id
    ('orders', 30, 4, '01767312000000-00000000')
    """
    if items < 0 or files < 1:
        raise ValueError("--items must be 0 or more and --files at least 1")
    if view not in VIEWS:
        raise ValueError(f"view {view!r} is not one of {', '.join(VIEWS)}")
    store = open_store(location)
    export_id = f"{export_ms:014d}-{seed:08x}"
    folder = f"AWSDynamoDB/{export_id}/"
    data = "AWSDynamoDB/data/" if incremental else folder + "data/"  # incremental exports share one data folder
    rng = random.Random(f"{seed}-names")
    lines = _lines(items, incremental=incremental, view=view, awkward=awkward, seed=seed, end_us=export_ms * 1000)
    manifest, billed = [], 0
    each, extra = divmod(items, files)
    for number in range(files):
        count = each + (1 if number < extra else 0)
        text = b"".join(next(lines) + b"\n" for _ in range(count))
        body = gzip.compress(text, compresslevel=6, mtime=0)
        name = base64.b32encode(rng.randbytes(16)).decode().lower().rstrip("=")[:26]
        key = f"{data}{name}.json.gz"
        store.put(key, body)
        billed += len(text)
        digest = hashlib.md5(body)
        manifest.append(
            {
                "itemCount": count,
                "md5Checksum": base64.b64encode(digest.digest()).decode(),
                "etag": digest.hexdigest(),
                "dataFileS3Key": key,
            }
        )
    table_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
    summary: dict[str, Any] = {
        "version": "2023-08-01" if incremental else "2020-06-30",
        "exportArn": f"{table_arn}/export/{export_id}",
        "startTime": _iso(export_ms + 60_000),
        "endTime": _iso(export_ms + 360_000),
        "tableArn": table_arn,
        "tableId": "12345a12-abcd-123a-ab12-1234abc12345",
        "exportTime": _iso(export_ms),
        "s3Bucket": "local-exports",
        "s3Prefix": None,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": folder + FILES,
        "billedSizeBytes": billed,
        "itemCount": items,
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "INCREMENTAL_EXPORT" if incremental else "FULL_EXPORT",
    }
    if incremental:
        summary |= {
            "exportFromTime": _iso(export_ms - _WINDOW_US // 1000),
            "exportToTime": _iso(export_ms),
            "outputView": view,
        }
    store.put(folder + FILES, b"".join(_dumps(entry) + b"\n" for entry in manifest))
    store.put(folder + SUMMARY, json.dumps(summary, indent=2).encode())
    store.put(folder + "_started", b"")
    return location.rstrip("/") + "/" + folder
