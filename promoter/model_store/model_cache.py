"""The evaluation's model cache: verified copies of model versions, named by their digest.

An evaluation needs the candidate and the baseline on local disk. From an object store that
used to be a download of every byte for every evaluation; `ModelCache` keeps each version
downloaded once, at `<cache>/entries/<sha256 hex>/`, and `CachedModelStore` hands the
evaluator private copies made from it. The rules, each for a reason:

- **Keyed by the pinned digest, verified before it lands.** A version is downloaded into a
  temporary directory inside the cache (`tmp/`, same filesystem), digested there with the
  one digest definition (`digest.py`), and renamed into `entries/` only if it has the digest
  the caller pinned (`ModelVersion.digest`): a partial download, or one of bytes rewritten
  in the store since they were pinned, never lands (`DigestMismatchError`). The name is the
  digest, so an entry holds those bytes or is corrupt; a store whose object is later
  rewritten does not make a warm entry wrong: the pin names bytes, and the entry is them.
- **Re-verified at each use, at no extra read.** The private copy has to read every byte of
  the entry anyway, so it is digested as it is copied; an entry that is not its name (edited
  on disk, a bit flipped) is logged, removed, and downloaded again once, verified as above.
  Entries are also read-only (files 0444, directories 0555, under a 0700 cache), which
  stops accidents but not their owner: protection alone could not be trusted, the digest
  can.
- **Locks, so concurrent evaluations neither corrupt nor evict what is in use.** Each digest
  has a lock file (`locks/<hex>`, `flock`, which also separates threads: each use opens its
  own descriptor). Copying out of an entry holds it shared; downloading, replacing or evicting
  one holds it exclusive. Two evaluations of a digest not yet cached: the first downloads,
  the second waits for its lock and then copies the verified entry. A lock file goes with its
  entry (and a digest that never landed loses its lock file at the next eviction), removed
  only by a holder of its exclusive lock; whoever locked a file that was meanwhile removed
  or replaced sees that its descriptor is no longer the file at that path and locks again,
  so two holders can never lock two different files of one digest.
- **Bounded, least recently used first.** After each use, entries not in use are removed,
  oldest use first (an entry's mtime, set at each use), until the entries fit `max_bytes`;
  an entry in use is skipped (its lock is held), so the cache may exceed the bound while
  larger evaluations run, never after.

The worker still reads only its private copy (0700 directories, 0600 files), never the cache.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from promoter.domain.model_versions import ModelVersion, StoredVersion
from promoter.errors import ModelStoreError
from promoter.model_store.digest import VersionDigest, read_chunks, saved_model_digest, walk_files
from promoter.model_store.port import DigestMismatchError, ModelStore

log = logging.getLogger(__name__)

GIB = 1 << 30
DEFAULT_MAX_BYTES = 20 * GIB
"""The default bound (`modelStore.evaluationCacheGiB: 20`): a candidate and a baseline of
up to 10 GB each, or many smaller versions."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached version, as eviction sees it."""

    digest_hex: str
    size: int
    """Bytes of its files."""
    last_used_ns: int
    """The entry's mtime, set at each use."""


class ModelCache:
    """Verified versions by digest in `directory` (see the module docstring)."""

    def __init__(self, directory: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def copy_out(self, store: ModelStore, version: ModelVersion, destination: Path) -> None:
        """Write the bytes of `version.digest` into `destination` (must not exist; 0700
        directories, 0600 files), from the cache, downloading them from `store` first when
        the cache lacks them or holds other bytes under their name.

        Raises DigestMismatchError when the store's bytes are not `version.digest` (nothing
        is cached then), ModelStoreError when the store or the cache cannot be read or
        written."""
        hex_digest = _hex(version)
        entry = self._entry(hex_digest)
        try:
            with self._locked(hex_digest, exclusive=False):
                cached = entry.is_dir()
                if cached and self._copy_checked(entry, version, destination):
                    _touch(entry)
                    return
            with self._locked(hex_digest, exclusive=True):
                # Another evaluation may have fetched it while this one waited for the lock;
                # an entry just found corrupt is fetched again without a second look.
                if not cached and entry.is_dir() and self._copy_checked(entry, version,
                                                                        destination):
                    _touch(entry)
                    return
                self._fetch(store, version, entry)
                if not self._copy_checked(entry, version, destination):
                    raise ModelStoreError(
                        f"the cached copy of {version.uri} changed while it was copied",
                        fix=f"check what else writes to {self.directory}")
                _touch(entry)
        finally:
            self.evict()

    def entries(self) -> list[CacheEntry]:
        """The cached versions, least recently used first."""
        found = []
        try:
            names = os.listdir(self.directory / "entries")
        except FileNotFoundError:
            return []
        for name in names:
            path = self.directory / "entries" / name
            try:
                used = path.stat().st_mtime_ns
                size = sum(st.st_size for _, st in walk_files(path))
            except OSError:
                continue  # removed meanwhile
            found.append(CacheEntry(name, size, used))
        found.sort(key=lambda item: (item.last_used_ns, item.digest_hex))
        return found

    def evict(self) -> None:
        """Remove entries not in use, least recently used first, until the rest fit
        `max_bytes`. Never raises: a cache that cannot be trimmed costs disk, not an
        evaluation (it is logged)."""
        self._remove_leftovers()
        cached = self.entries()
        total = sum(item.size for item in cached)
        for item in cached:
            if total <= self.max_bytes:
                return
            try:
                with self._locked(item.digest_hex, exclusive=True, wait=False) as held:
                    if not held:
                        continue  # in use: skipped, never evicted
                    self._remove_entry(self._entry(item.digest_hex))
                    self._remove_lock(item.digest_hex)
            except (OSError, ModelStoreError) as exc:
                log.warning("cannot evict %s from the model cache: %s", item.digest_hex, exc)
                continue
            total -= item.size
            log.info("evicted sha256:%s (%d bytes) from the model cache", item.digest_hex,
                     item.size)
        if total > self.max_bytes:
            log.warning("the model cache in %s holds %d bytes in use, over its bound of %d "
                        "(modelStore.evaluationCacheGiB)", self.directory, total,
                        self.max_bytes)

    # --- internals ----------------------------------------------------------------------------

    def _entry(self, hex_digest: str) -> Path:
        return self.directory / "entries" / hex_digest

    def _copy_checked(self, entry: Path, version: ModelVersion, destination: Path) -> bool:
        """Copy `entry` into `destination`, digesting as it copies; False (and nothing at
        `destination`) when the entry is not `version.digest`, for the caller to replace."""
        found = copy_digested(entry, destination)
        if found == version.digest:
            return True
        remove_tree(destination)
        log.warning("the model cache entry %s holds %s, not its name: fetching %s again",
                    entry, found, version.uri)
        return False

    def _fetch(self, store: ModelStore, version: ModelVersion, entry: Path) -> None:
        """Download `version` into `tmp/`, verify it and rename it to `entry` (the caller
        holds the digest's exclusive lock). Whatever was at `entry` is replaced."""
        hex_digest = entry.name
        tmp = self.directory / "tmp"
        tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
        for leftover in tmp.glob(f"{hex_digest}.*"):
            remove_tree(leftover)  # a download killed half-way: this lock is ours
        work = Path(tempfile.mkdtemp(prefix=f"{hex_digest}.", dir=tmp))
        try:
            partial = work / "version"
            store.copy_version(version, partial)
            found = saved_model_digest(partial)
            if found != version.digest:
                raise DigestMismatchError(
                    f"{version.uri} has digest {found}, but the evaluation pins "
                    f"{version.digest}: not evaluated, not cached",
                    fix="the store's copy changed after it was proposed: restore the proposed "
                        "bytes, or propose the version again")
            make_read_only(partial)
            if entry.exists():
                self._remove_entry(entry)
            entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.rename(partial, entry)
        except OSError as exc:
            raise ModelStoreError(f"cannot cache {version.uri} in {self.directory}: "
                                  f"{exc.strerror or exc}",
                                  fix="check the free space and permissions of "
                                      "$PROMOTER_CACHE_DIR") from exc
        finally:
            remove_tree(work)

    def _remove_idle_locks(self) -> None:
        """Remove the lock files of digests without an entry (a download refused or failed)
        that nobody holds."""
        try:
            names = os.listdir(self.directory / "locks")
        except FileNotFoundError:
            return
        for name in names:
            if self._entry(name).exists():
                continue
            try:
                with self._locked(name, exclusive=True, wait=False) as held:
                    if held and not self._entry(name).exists():
                        self._remove_lock(name)
            except (OSError, ModelStoreError) as exc:
                log.warning("cannot remove the lock of %s from the model cache: %s", name, exc)

    def _remove_lock(self, hex_digest: str) -> None:
        """Unlink a digest's lock file; the caller holds it exclusive (see `_locked`)."""
        with suppress(FileNotFoundError):
            os.unlink(self.directory / "locks" / hex_digest)

    def _remove_leftovers(self) -> None:
        """Remove what killed processes left in `tmp/` (a digest's lock free means no
        download or eviction of it is running), and idle lock files."""
        self._remove_idle_locks()
        try:
            leftovers = sorted(os.listdir(self.directory / "tmp"))
        except FileNotFoundError:
            return
        for name in leftovers:
            hex_digest = name.partition(".")[0]
            try:
                with self._locked(hex_digest, exclusive=True, wait=False) as held:
                    if held:
                        remove_tree(self.directory / "tmp" / name)
            except (OSError, ModelStoreError) as exc:
                log.warning("cannot remove %s from the model cache: %s", name, exc)

    def _remove_entry(self, entry: Path) -> None:
        """Rename the entry away first, so no reader sees it half-removed."""
        tmp = self.directory / "tmp"
        tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
        doomed = Path(tempfile.mkdtemp(prefix=f"{entry.name}.evicted-", dir=tmp))
        os.rename(entry, doomed / "version")
        remove_tree(doomed)

    @contextmanager
    def _locked(self, hex_digest: str, *, exclusive: bool,
                wait: bool = True) -> Iterator[bool]:
        """Hold the digest's lock; yields False instead of waiting when `wait` is False and
        another holds it. The lock is the file at `locks/<hex>` when it is taken: a file
        unlinked (or replaced) by another holder before this one got it is let go and the
        path opened again."""
        while True:
            handle = self._open_lock(hex_digest)
            try:
                operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
                try:
                    fcntl.flock(handle, operation if wait else operation | fcntl.LOCK_NB)
                except BlockingIOError:  # only without LOCK_NB's wait: another holds it
                    yield False
                    return
                if self._still_the_lock(handle, hex_digest):
                    yield True
                    return
            finally:
                handle.close()  # releases the lock

    def _open_lock(self, hex_digest: str) -> IO[bytes]:
        locks = self.directory / "locks"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            locks.mkdir(mode=0o700, exist_ok=True)
            return open(locks / hex_digest, "ab")  # the caller closes it
        except OSError as exc:
            raise ModelStoreError(f"cannot use the model cache in {self.directory}: "
                                  f"{exc.strerror or exc}",
                                  fix="check the permissions of $PROMOTER_CACHE_DIR") from exc

    def _still_the_lock(self, handle: IO[bytes], hex_digest: str) -> bool:
        try:
            at_path = os.stat(self.directory / "locks" / hex_digest)
        except FileNotFoundError:
            return False
        held = os.fstat(handle.fileno())
        return (held.st_dev, held.st_ino) == (at_path.st_dev, at_path.st_ino)


class CachedModelStore:
    """A `ModelStore` whose `copy_version` goes through a `ModelCache`; everything else is
    `store`'s. What the evaluator is given for an object store."""

    def __init__(self, store: ModelStore, cache: ModelCache) -> None:
        self._store = store
        self.cache = cache

    def list_versions(self, model: str) -> list[int]:
        return self._store.list_versions(model)

    def scan_versions(self, model: str) -> list[StoredVersion]:
        return self._store.scan_versions(model)

    def get(self, model: str, version: int) -> ModelVersion:
        return self._store.get(model, version)

    def copy_version(self, version: ModelVersion, destination: Path) -> None:
        """As the port says, except that the copy is verified: it has `version.digest`, or
        DigestMismatchError is raised and nothing is written."""
        self.cache.copy_out(self._store, version, destination)


def copy_digested(source: Path, destination: Path) -> str:
    """Copy the regular files of `source` (as `saved_model_digest` sees them) into
    `destination` (must not exist; directories 0700, files 0600) and return the digest of
    the bytes copied, computed as they are read: one read of every byte."""
    digest = VersionDigest()
    try:
        destination.mkdir(mode=0o700)
    except OSError as exc:
        raise ModelStoreError(f"cannot create {destination}: {exc.strerror or exc}",
                              fix="the destination must not exist yet") from exc
    try:
        for rel, st in walk_files(source):
            target = destination / rel
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with (source / rel).open("rb") as src, os.fdopen(fd, "wb") as out:
                digest.add(rel, st.st_size, _written(src, out), where=str(source / rel))
    except OSError as exc:
        remove_tree(destination)
        raise ModelStoreError(f"cannot copy {source} to {destination}: {exc.strerror or exc}",
                              fix="check the free space and permissions of both") from exc
    except ModelStoreError:
        remove_tree(destination)
        raise
    return digest.hexdigest()


def _written(src: IO[bytes], out: IO[bytes]) -> Iterator[bytes]:
    """The chunks of `src`, each written to `out` as it is handed on."""
    for chunk in read_chunks(src):
        out.write(chunk)
        yield chunk


def make_read_only(path: Path) -> None:
    """Directories 0555, files 0444, so nothing rewrites verified bytes by accident."""
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)


def remove_tree(path: Path) -> None:
    """Remove a directory, read-only or not, or a file in its place; nothing if absent."""
    if not path.is_dir() or path.is_symlink():
        path.unlink(missing_ok=True)
        return
    for dirpath, _, _ in os.walk(path):
        os.chmod(dirpath, stat.S_IRWXU)
    shutil.rmtree(path)


def _hex(version: ModelVersion) -> str:
    hex_digest = version.digest.removeprefix("sha256:")
    if len(hex_digest) != 64 or not all(c in "0123456789abcdef" for c in hex_digest) \
            or not version.digest.startswith("sha256:"):
        raise ModelStoreError(f"{version.uri}: {version.digest!r} is not a sha256: digest",
                              fix="pin versions by sha256: and 64 lowercase hex digits")
    return hex_digest


def _touch(entry: Path) -> None:
    """Mark the entry used now (its mtime orders eviction)."""
    now = time.time_ns()  # not the filesystem's coarser clock: uses moments apart must order
    try:
        os.utime(entry, ns=(now, now))
    except OSError as exc:
        log.warning("cannot mark %s used: %s", entry, exc.strerror or exc)
