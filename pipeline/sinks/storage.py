"""Where objects go and come from: a local folder or an S3 bucket (with an optional base prefix), one interface.

The local runner writes Firehose's output here, redrive reads error objects from here and writes results back,
and the tests read everything back through the same three calls: ``put``, ``listing`` and ``get`` (``open`` reads
an object as a stream: the backfill's data files).
boto3 is imported only when an ``s3://`` store is opened (through :func:`pipeline.reingest.client_for`).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from ..reingest import client_for

__all__ = ["Folder", "S3Prefix", "Store", "check_s3_url", "open_store", "region"]


class Store(Protocol):
    """A place holding objects by key ('/'-separated, relative to the store's root)."""

    def put(self, key: str, body: bytes) -> None:
        """Write one object."""

    def put_file(self, key: str, path: Path) -> None:
        """Write one object from a local file (whole or not at all, as ``put``): for objects too large to hold."""

    def listing(self, prefix: str = "") -> Iterator[str]:
        """The keys under *prefix*, in sorted order."""

    def get(self, key: str) -> bytes:
        """Read one object."""

    def open(self, key: str) -> IO[bytes]:
        """Read one object as a stream (``read(n)``, ``close()``): for objects too large to hold."""


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
        self._put(key, lambda partial: partial.write_bytes(body))

    def put_file(self, key: str, path: Path) -> None:
        self._put(key, lambda partial: shutil.copyfile(path, partial))

    def _path(self, key: str) -> Path:
        """The file of *key*; ValueError for a key that S3 takes but a folder cannot hold under its root (a
        partition key's value may make one: ``..``, or one starting with ``/``)."""
        if key.startswith("/") or {".", ".."} & set(key.split("/")):
            raise ValueError(
                f"object key {key!r} would lead outside the folder {str(self.root)!r}: S3 keeps such a key as it "
                "is, a folder cannot (is a partition key's value '..'?)"
            )
        return self.root / key

    def _put(self, key: str, fill: Callable[[Path], object]) -> None:
        """*fill* writes a hidden partial file beside the object, which then takes the object's name at once."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        fill(partial)
        partial.replace(path)

    def listing(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return iter(())
        found = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return iter(sorted(k for k in found if k.startswith(prefix) and not Path(k).name.startswith(".")))

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open(self, key: str) -> IO[bytes]:
        return self._path(key).open("rb")


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

    def check_reachable(self) -> None:
        """Raise what S3 says of a bucket that is not there or cannot be reached (no connection, no credentials),
        before any work is done for it. A refusal to list is let through: writing may still be allowed."""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.base, MaxKeys=1)
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") not in _MAY_STILL_WRITE:
                raise

    def put_file(self, key: str, path: Path) -> None:
        # boto3's managed upload: one PutObject, or a multipart upload above 8 MB (no 5 GB limit), which S3
        # shows only once it is complete
        self.client.upload_file(str(path), self.bucket, self.base + key)

    def listing(self, prefix: str = "") -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.base + prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.base) :]

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.base + key)["Body"].read()

    def open(self, key: str) -> IO[bytes]:
        body: IO[bytes] = self.client.get_object(Bucket=self.bucket, Key=self.base + key)["Body"]
        return body


_MAY_STILL_WRITE = ("AccessDenied", "AllAccessDisabled")  # s3:ListBucket refused, s3:PutObject maybe not


def check_s3_url(url: str) -> tuple[str, str]:
    """The bucket and the key prefix of ``s3://bucket[/prefix]``; ValueError saying why if the bucket name is
    not one S3 allows (general purpose bucket naming rules).

    >>> check_s3_url("s3://my-bucket/data/2026/")
    ('my-bucket', 'data/2026/')
    >>> check_s3_url("s3://My_Bucket/")
    Traceback (most recent call last):
    ValueError: 's3://My_Bucket/': bucket name 'My_Bucket' may hold only lower-case letters, digits, dots and hyphens
    """
    if not url.startswith("s3://"):
        raise ValueError(f"{url!r} is not an s3:// URL: give s3://bucket/prefix/")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    why = _bucket_problem(bucket)
    if why:
        raise ValueError(f"{url!r}: {why}")
    return bucket, prefix


def _bucket_problem(bucket: str) -> str | None:
    if not bucket:
        return "no bucket name: give s3://bucket/prefix/"
    name = f"bucket name {bucket!r}"
    if not 3 <= len(bucket) <= 63:
        return f"{name} has {len(bucket)} character{'s' * (len(bucket) != 1)}; bucket names have 3 to 63"
    if not re.fullmatch(r"[a-z0-9.-]+", bucket):
        return f"{name} may hold only lower-case letters, digits, dots and hyphens"
    if not (bucket[0].isalnum() and bucket[-1].isalnum()):
        return f"{name} must begin and end with a letter or a digit"
    if ".." in bucket:
        return f"{name} has two dots in a row"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket):
        return f"{name} is an IP address, which S3 does not allow"
    reserved = [prefix for prefix in _RESERVED_PREFIXES if bucket.startswith(prefix)]
    if reserved:
        return f"{name} begins with {reserved[0]!r}, which S3 keeps out of bucket names"
    return None


#: Beginnings S3's naming rules keep out of bucket names. (Its reserved endings, such as -s3alias, name access
#: point aliases and directory buckets, which work where a bucket name does: they are let through.)
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")


def open_store(location: str) -> Folder | S3Prefix:
    """The store for ``s3://bucket[/base/]`` or a local folder path.

    >>> open_store("s3://my-bucket/exports/cities/")
    S3Prefix('s3://my-bucket/exports/cities/')
    >>> open_store("out/local")
    Folder('out/local')
    """
    if location.startswith("s3://"):
        bucket, base = check_s3_url(location)
        if base and not base.endswith("/"):
            base += "/"
        return S3Prefix(bucket, base)
    if "://" in location:
        raise ValueError(f"{location!r} is neither a folder nor an s3:// location")
    return Folder(location)
