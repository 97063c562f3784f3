"""Where objects go and come from: a local folder or an S3 bucket (with an optional base prefix), one interface.

The local runner writes Firehose's output here, redrive reads error objects from here and writes results back,
and the tests read everything back through the same three calls: ``put``, ``listing`` and ``get``.
boto3 is imported only when an ``s3://`` store is opened (through :func:`pipeline.reingest.client_for`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from ..reingest import client_for

__all__ = ["Folder", "S3Prefix", "Store", "open_store", "region"]


class Store(Protocol):
    """A place holding objects by key ('/'-separated, relative to the store's root)."""

    def put(self, key: str, body: bytes) -> None:
        """Write one object."""

    def listing(self, prefix: str = "") -> Iterator[str]:
        """The keys under *prefix*, in sorted order."""

    def get(self, key: str) -> bytes:
        """Read one object."""


def region() -> str:
    """The AWS region from the environment (``AWS_REGION``, then ``AWS_DEFAULT_REGION``), else us-east-1."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


class Folder:
    """Objects as files under a local folder; a write is atomic (a reader never sees half an object).

    >>> import tempfile
    >>> store = Folder(tempfile.mkdtemp())
    >>> store.put("a/b/one.csv", b"1,2\\n")
    >>> list(store.listing()), store.get("a/b/one.csv")
    (['a/b/one.csv'], b'1,2\\n')
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Folder({str(self.root)!r})"

    def put(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        partial.write_bytes(body)
        partial.replace(path)

    def listing(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return iter(())
        found = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return iter(sorted(k for k in found if k.startswith(prefix) and not Path(k).name.startswith(".")))

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


class S3Prefix:
    """Objects in an S3 bucket under a base prefix, through a boto3 client (honouring ``AWS_ENDPOINT_URL``)."""

    def __init__(self, bucket: str, base: str = "", client: Any = None) -> None:
        if not bucket:
            raise ValueError("an s3:// location needs a bucket name")
        self.bucket, self.base = bucket, base
        self._client = client

    def __repr__(self) -> str:
        return f"S3Prefix('s3://{self.bucket}/{self.base}')"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client_for("s3", region())
        return self._client

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.base + key, Body=body)

    def listing(self, prefix: str = "") -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.base + prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.base) :]

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.base + key)["Body"].read()


def open_store(location: str) -> Folder | S3Prefix:
    """The store for ``s3://bucket[/base/]`` or a local folder path.

    >>> open_store("s3://my-bucket/exports/cities/")
    S3Prefix('s3://my-bucket/exports/cities/')
    >>> open_store("out/local")
    Folder('out/local')
    """
    if location.startswith("s3://"):
        bucket, _, base = location[len("s3://") :].partition("/")
        if base and not base.endswith("/"):
            base += "/"
        return S3Prefix(bucket, base)
    if "://" in location:
        raise ValueError(f"{location!r} is neither a folder nor an s3:// location")
    return Folder(location)
