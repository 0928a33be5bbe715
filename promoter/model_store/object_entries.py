"""A version's objects as a listing describes them, the digest cache keyed by those listings,
and the download of the objects into a local directory.

Object stores have no directories: a version is the objects under `<model>/<version>/`, and
zero-byte `…/` placeholder objects are not files (the local digest covers regular files
only). What a listing says of an object (size and generation, or ETag and last-modified time)
is its stamp: the digest cache is keyed by every object's stamp, so a resync that lists the
same stamps reads nothing, and any rewritten object is read again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promoter.errors import ModelStoreError
from promoter.model_store import object_clients
from promoter.model_store.digest import read_chunks

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, order=True)
class ObjectEntry:
    """One object of a version, as the listing describes it."""

    rel: str
    """Key relative to the version (`variables/variables.index`)."""
    size: int
    stamp: str | None
    """What changes whenever the object is rewritten: its GCS generation, or its ETag with
    its last-modified time (S3); None when the store reports neither (never cached)."""
    path: str
    """The fsspec path (`bucket/key`)."""


class DigestCache:
    """Digests by the listing stamps of a version's objects; in memory, optionally on disk.

    Keys are sha256 over the store URL, the version and every object's (key, size, stamp),
    so a rewritten object, an added or a removed one is a different key. On disk one small
    file per key (written atomically, mode 0600 in a 0700 directory), so concurrent promoter
    processes share it without locks."""

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(url: str, entries: tuple[ObjectEntry, ...]) -> str | None:
        """The cache key of a listing; None when some object has no stamp."""
        if any(entry.stamp is None for entry in entries):
            return None
        hashed = hashlib.sha256(url.encode())
        for entry in entries:
            hashed.update(f"\0{len(entry.rel)}:{entry.rel}\0{entry.size}\0{entry.stamp}".encode())
        return hashed.hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            found = self._memory.get(key)
        if found is not None or self._directory is None:
            return found
        try:
            text = (self._directory / key).read_text().strip()
        except OSError:
            return None
        if re.fullmatch(r"sha256:[0-9a-f]{64}", text) is None:
            return None
        with self._lock:
            self._memory[key] = text
        return text

    def put(self, key: str, digest: str) -> None:
        with self._lock:
            self._memory[key] = digest
        if self._directory is None:
            return
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            partial = self._directory / f".{key}.{os.getpid()}.{threading.get_ident()}"
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(digest + "\n")
            os.replace(partial, self._directory / key)
        except OSError as exc:  # a cache that cannot be written costs a re-read, nothing else
            log.warning("cannot record a digest in %s: %s", self._directory,
                        exc.strerror or exc)


def download(filesystem: Any, url: str, entries: tuple[ObjectEntry, ...],
             destination: Path) -> None:
    """Write `entries` under `destination` (must not exist; directories mode 0700, files
    0600). Raises ModelStoreError when an object cannot be read or is not its listed size."""
    try:
        destination.mkdir(mode=0o700)
    except OSError as exc:
        raise ModelStoreError(f"cannot create {destination}: {exc.strerror or exc}",
                              fix="the destination must not exist yet") from exc
    for entry in entries:
        require_file_path(entry, url)
        target = destination / entry.rel
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            written = 0
            with os.fdopen(fd, "wb") as out, filesystem.open(
                    entry.path, "rb", block_size=object_clients.BLOCK_BYTES) as handle:
                for chunk in read_chunks(handle, object_clients.BLOCK_BYTES):
                    out.write(chunk)
                    written += len(chunk)
        except ModelStoreError:
            raise
        except OSError as exc:
            raise ModelStoreError(f"cannot download {url}/{entry.rel} to {target}: "
                                  f"{exc.strerror or exc}",
                                  fix="check the store's permissions and the free space "
                                      "where it is downloaded") from exc
        except Exception as exc:
            raise ModelStoreError(f"cannot download {url}/{entry.rel}: "
                                  f"{type(exc).__name__}: {exc}",
                                  fix="check the store's credentials and endpoint") from exc
        if written != entry.size:
            raise ModelStoreError(
                f"{url}/{entry.rel} changed while it was downloaded ({written} bytes, "
                f"{entry.size} listed)", fix="retry once nothing writes to the version")


def entry_of(path: str, rel: str, info: Mapping[str, Any]) -> ObjectEntry | None:
    """The object as a file of the version, or None for a `…/` directory placeholder (or
    no name at all)."""
    if not rel or is_placeholder(path, info):
        return None
    return ObjectEntry(rel=rel, size=int(info.get("size") or 0), stamp=listing_stamp(info),
                       path=path)


def is_placeholder(path: str, info: Mapping[str, Any]) -> bool:
    """A zero-byte `name/` object that consoles and some tools write for "folders"."""
    return path.endswith("/") or info.get("type") == "directory"


def listing_stamp(info: Mapping[str, Any]) -> str | None:
    """What changes on every rewrite of the object: GCS's generation is new on every write;
    S3's ETag is its content hash for a simple upload but the same for the same bytes, so the
    last-modified time comes with it (a rewrite and a restore between two listings then
    still differ)."""
    generation = info.get("generation")
    if generation:
        return f"generation:{generation}"
    etag = info.get("ETag") or info.get("etag")
    if etag:
        modified = info.get("LastModified") or info.get("updated") or info.get("mtime")
        return f"etag:{etag}:{modified}"
    return None


def require_file_path(entry: ObjectEntry, url: str) -> None:
    """Refuse a key that is no relative file path (`a//b`, `../x`, `/x`): it could not be
    downloaded where it belongs, or would be written outside the copy."""
    parts = entry.rel.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\\" in entry.rel or "\0" in entry.rel:
        raise ModelStoreError(f"{url}/ holds the object {entry.rel!r}, which is no file path",
                              fix="remove or rename that object: every key of a version must "
                                  "be a relative path such as variables/variables.index")

