"""A data file's output lines by object, kept in files on the worker's disk until the file is known to be whole.

Whether a data file is whole is known only at its end (:mod:`pipeline.backfill.source`), and nothing of a damaged
file may be written; its rows can be gigabytes. So :func:`pipeline.backfill.transform.transform_file` puts them
here: up to 16 MiB of lines in memory, then appended to a file per object in a temporary folder, and each object
is written from its file once the data file has passed its checks.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Spool"]

_HELD_BYTES = 16 << 20  # the lines kept in memory, of all objects, before they go to their files
_BLOCK = 1 << 20  # read and compressed at a time


class Spool:
    """Lines by object prefix, kept in memory up to 16 MiB in all, then appended to one file each under *folder*.

    >>> import tempfile
    >>> spool = Spool(Path(tempfile.mkdtemp()))
    >>> spool.add("data/a/", b"1\\n"); spool.add("data/b/", b"2\\n"); spool.add("data/a/", b"3\\n")
    >>> [(prefix, path.read_bytes(), lines) for prefix, path, lines in spool.files(gzip=False)]
    [('data/a/', b'1\\n3\\n', 2), ('data/b/', b'2\\n', 1)]
    """

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder
        self._held: dict[str, list[bytes]] = {}  # per object, in the order each first had a line
        self._held_bytes = 0
        self._lines: dict[str, int] = {}  # per object, those already in its file

    def __bool__(self) -> bool:
        return bool(self._held)

    def add(self, prefix: str, line: bytes) -> None:
        """One line of the object under *prefix*."""
        held = self._held.get(prefix)
        if held is None:
            held = self._held[prefix] = []
            self._lines[prefix] = 0
        held.append(line)
        self._held_bytes += len(line)
        if self._held_bytes >= _HELD_BYTES:
            self._flush()

    def files(self, *, gzip: bool) -> Iterator[tuple[str, Path, int]]:
        """Each object's prefix, the file holding its body (gzip-compressed if *gzip*, with no time in its header,
        so a re-run writes the same bytes), and its number of lines; in the order the objects first had a line."""
        self._flush()
        for number, prefix in enumerate(self._held):
            path = self._path(number)
            yield prefix, _gzipped(path) if gzip else path, self._lines[prefix]

    def _path(self, number: int) -> Path:
        return self._folder / str(number)

    def _flush(self) -> None:
        """Every object's lines held in memory, appended to its file."""
        for number, (prefix, held) in enumerate(self._held.items()):
            if held:
                with self._path(number).open("ab") as file:
                    file.writelines(held)
                self._lines[prefix] += len(held)
                held.clear()
        self._held_bytes = 0


def _gzipped(path: Path) -> Path:
    """The file compressed, a block at a time, into the bytes ``gzip.compress(body, mtime=0)`` gives (zlib's
    own gzip header, as that function writes it): what the objects were before they were spooled."""
    compressed = path.with_suffix(".gz")
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip's header and trailer
    with path.open("rb") as plain, compressed.open("wb") as out:
        while block := plain.read(_BLOCK):
            out.write(packer.compress(block))
        out.write(packer.flush())
    path.unlink()
    return compressed
