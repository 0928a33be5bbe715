"""The content digest of a model version, defined once for every store.

`sha256` over each regular file of the SavedModel directory in sorted order of its relative
path (`/`-separated, compared as Python strings): `<len(path)>:<path>\\0`, then `<size>\\0`,
then the bytes. Paths are length-prefixed, so renaming a file or moving bytes between files
changes the digest. A local directory and an object store feed the same `VersionDigest`, which
is what makes a version copied between stores keep its digest: the digest promoter pins in
every environment branch names bytes, not a place.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from promoter.errors import ModelStoreError

CHUNK_BYTES = 1 << 20
"""Read size of the local digest: constant memory whatever the size of a variables shard."""


class VersionDigest:
    """Builds the digest from files fed in sorted path order, each with its size and bytes.

    The size is the one the caller listed (a stat, an object listing); reading a different
    number of bytes means the file changed while it was read, which is an error rather than a
    digest of bytes nobody can name.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._last: str | None = None

    def add(self, rel: str, size: int, chunks: Iterable[bytes], *, where: str) -> None:
        """Feed one file. `where` names it in errors (a path or a URL).

        Raises ValueError when `rel` is not after the previous file (a programming error:
        the order is part of the definition) and ModelStoreError when the bytes read are
        not `size` bytes long."""
        if self._last is not None and rel <= self._last:
            raise ValueError(f"files must be added in sorted order: {rel!r} after {self._last!r}")
        self._last = rel
        self._hash.update(f"{len(rel)}:{rel}\0".encode())
        self._hash.update(f"{size}\0".encode())
        read = 0
        for chunk in chunks:
            read += len(chunk)
            self._hash.update(chunk)
        if read != size:
            raise ModelStoreError(
                f"{where} changed while it was read ({read} bytes read, {size} listed)",
                fix="retry once nothing writes to the version any more (uploads are not "
                    "atomic: wait until they finish)")

    def hexdigest(self) -> str:
        """`sha256:<64 hex digits>`."""
        return f"sha256:{self._hash.hexdigest()}"


def saved_model_digest(path: Path) -> str:
    """Digest a SavedModel directory on local disk (see the module docstring).

    Symbolic links to files are read through, as TF Serving would read them."""
    digest = VersionDigest()
    for rel, st in walk_files(path):
        data_path = path / rel
        with data_path.open("rb") as handle:
            digest.add(rel, st.st_size, read_chunks(handle), where=str(data_path))
    return digest.hexdigest()


def walk_files(path: Path) -> list[tuple[str, os.stat_result]]:
    """Every file under `path` as (relative POSIX path, stat), in digest order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            found.append((full.relative_to(path).as_posix(), full.stat()))
    found.sort(key=lambda item: item[0])
    return found


class Readable(Protocol):
    """An open binary file: local, or an object store's (fsspec's) file object."""

    def read(self, size: int = -1, /) -> bytes: ...


def read_chunks(handle: Readable, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes of an open binary file, `size` at a time."""
    while chunk := handle.read(size):
        yield chunk
