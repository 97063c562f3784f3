"""One stored data file read as a stream: its items a line at a time, its checksums and sizes counted on the way.

DynamoDB writes at least one data file per partition, and a partition holds up to 10 GB, so a data file can be
far larger than a worker's memory. :func:`pipeline.backfill.transform.transform_file` reads it through
:class:`ItemStream`: what it holds at a time is a buffer of the file, never the file. Whether the file is whole is
known only at its end, so nothing is written before (the rows wait on disk: :mod:`pipeline.backfill.spool`); the
checks then say what is wrong with it (:meth:`ItemStream.problem`), as they did when the file was read at once.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import IO

from .manifest import store_reason

__all__ = ["ItemStream"]

_BUFFER = 1 << 18  # bytes read from the store at a time
_GZIP_MAGIC = b"\x1f\x8b"


class _Counted(io.RawIOBase):
    """A raw stream over the stored object that hashes and counts what goes through it, and keeps the error
    reading it raised (a store's, as opposed to one of gzip's)."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self._stream = stream
        self.md5 = hashlib.md5()
        self.size = 0
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._stream.read(len(buffer))
        except Exception as exc:
            self.error = exc
            raise
        n = len(data)
        buffer[:n] = data
        self.md5.update(data)
        self.size += n
        return n


class ItemStream:
    """The items of one data file (gzip or plain JSON lines, told by its first bytes), read as a stream.

    :meth:`lines` gives each line that is not blank, without its line break, and counts them (``items``); once
    they are read, :meth:`problem` says whether the file is to be refused, as a one-line reason.

    >>> data = ItemStream(io.BytesIO(gzip.compress(b'{"a": 1}\\n\\n{"b": 2}\\n', mtime=0)))
    >>> list(data.lines()), data.items, data.bytes_read, data.problem(None)
    ([b'{"a": 1}', b'{"b": 2}'], 2, 19, None)
    >>> data = ItemStream(io.BytesIO(gzip.compress(b'{"a": 1}\\n', mtime=0)[:-4]))  # its last bytes lost
    >>> list(data.lines())
    Traceback (most recent call last):
    EOFError: Compressed file ended before the end-of-stream marker was reached
    >>> data.problem(None)
    'not a readable gzip file (EOFError): truncated or damaged?'
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._raw = _Counted(stream)
        self._buffered = io.BufferedReader(self._raw, _BUFFER)
        self.gzip = False
        self.items = 0
        self.bytes_read = 0  # uncompressed
        self.error: Exception | None = None  # what ended the reading early: the store's or gzip's

    @property
    def bytes_in(self) -> int:
        """The bytes of the stored object read so far (all of them, once :meth:`problem` has been asked)."""
        return self._raw.size

    def lines(self) -> Iterator[bytes]:
        """Each line that is not blank, without its ``\\n``; raises what reading the file raised (kept in
        ``error`` too, for a caller whose consumer swallowed it)."""
        try:
            self.gzip = self._buffered.peek(len(_GZIP_MAGIC))[: len(_GZIP_MAGIC)] == _GZIP_MAGIC
            source: IO[bytes] = gzip.GzipFile(fileobj=self._buffered) if self.gzip else self._buffered
            rest = b""  # the start of a line the last block cut
            while block := source.read(_BUFFER):  # a block at a time, split at C speed: no Python call per line
                self.bytes_read += len(block)
                lines = (rest + block).split(b"\n")
                rest = lines.pop()
                yield from self._items(lines)
            yield from self._items([rest])
        except Exception as exc:
            self.error = exc
            raise

    def _items(self, lines: list[bytes]) -> list[bytes]:
        """The lines that are not blank (as ``bytes.strip`` tells), counted."""
        kept = list(filter(None, lines))
        if any(map(bytes.isspace, kept)):
            kept = [line for line in kept if not line.isspace()]
        self.items += len(kept)
        return kept

    def problem(self, md5: str | None, reopen: Callable[[], IO[bytes]] | None = None) -> str | None:
        """Why the file is to be refused, or None: it could not be read, its checksum is not *md5* (the
        manifest's base64 MD5), it is not whole gzip.

        The documentation shows ``md5Checksum`` but not what it covers: the object as stored (the .gz) is checked,
        and its uncompressed content is accepted too. That one is worked out only when the other does not match,
        by reading the file again through *reopen* (none: not accepted).
        """
        if self._raw.error is None:
            self._drain()
        if self._raw.error is not None:
            return f"cannot read it ({store_reason(self._raw.error)})"
        if md5 is not None:
            digest = base64.b64encode(self._raw.md5.digest()).decode()
            whole_gzip = self.gzip and self.error is None
            if digest != md5 and not (whole_gzip and reopen is not None and _uncompressed_md5(reopen) == md5):
                return f"checksum mismatch: md5 {digest}, manifest-files.json says {md5} (damaged or replaced?)"
        if self.error is not None:
            if isinstance(self.error, (OSError, EOFError, zlib.error)):
                name = "zlib.error" if isinstance(self.error, zlib.error) else type(self.error).__name__
                return f"not a readable gzip file ({name}): truncated or damaged?"
            return f"cannot read it ({type(self.error).__name__})"
        return None

    def _drain(self) -> None:
        """Read the rest of the stored object (what a reading that stopped early left), for its checksum."""
        try:
            while self._buffered.read(_BUFFER):
                pass
        except Exception:  # kept in _raw.error
            pass


def _uncompressed_md5(reopen: Callable[[], IO[bytes]]) -> str | None:
    """The base64 MD5 of the gzip object's content, read again from the store; None if it cannot be."""
    digest = hashlib.md5()
    try:
        with closing(reopen()) as stream, gzip.GzipFile(fileobj=stream) as plain:
            while block := plain.read(_BUFFER):
                digest.update(block)
    except Exception:  # read or decompressed the first time: gone or changed since, so it does not match
        return None
    return base64.b64encode(digest.digest()).decode()
