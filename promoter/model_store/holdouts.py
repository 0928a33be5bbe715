"""Holdout files: where an evaluation finds them, fetched from an object store into a local
cache named by their digest, and pinned by digest.

An evaluation reads a local file (the worker parses it, hashes it as it reads, and the verdict
is keyed on that hash). `Holdouts.locate` is what the evaluation gate and `promoter evaluate`
call: a local path is used where it is; for a holdout at `s3://…` or `gs://…` the file is
downloaded once per object generation (ETag and last-modified time on S3), hashed while it is
written, and kept at `<cache>/blobs/<sha256 hex>/<its name>`: the path names the bytes, the
original name keeps the suffix by which its format is recognised, and a blob is never
rewritten in place (a rewritten object is a new download into another path). Either way the
file handed on is digested as it is on disk, and a pinned digest (`evaluation.holdoutDigest`)
refuses any other bytes before they reach an evaluation, naming the file, both digests and
the fix.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from promoter.errors import HoldoutError, ModelStoreError
from promoter.model_store.digest import read_chunks
from promoter.model_store.object_clients import (
    BLOCK_BYTES,
    is_object_store_url,
    object_filesystem,
    parse_object_url,
)
from promoter.model_store.object_entries import listing_stamp
from promoter.model_store.port import LocatedHoldout

_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")


class Holdouts:
    """A `HoldoutSource`: local paths as they are, objects through a cache."""

    def __init__(self, *, resolve: Callable[[str], Path], cache_dir: Path,
                 filesystem: Callable[[str], Any] = object_filesystem) -> None:
        """`resolve` turns a configured local path into a file (relative to promoter.yaml
        for environments, to the working directory for `promoter evaluate`); `cache_dir`
        holds the fetched objects (created 0700 on first use)."""
        self._resolve = resolve
        self._cache = HoldoutCache(cache_dir, filesystem=filesystem)

    def locate(self, holdout: str, *, digest: str | None = None,
               pinned_by: str = "the pinned digest") -> LocatedHoldout:
        """The local file of `holdout` (a path or an `s3://`/`gs://` URL) and its digest.

        With `digest`, raises HoldoutError unless the bytes are exactly those; the message
        names `pinned_by` (e.g. `evaluation.holdoutDigest in environments/prod.yaml`). Raises
        HoldoutError for an object that cannot be fetched."""
        _require_format(digest, pinned_by)
        if is_object_store_url(holdout):
            path = self._cache.fetch(holdout, digest=digest, pinned_by=pinned_by)
        else:
            path = self._resolve(holdout)
        found = file_digest(path)
        if found is None and digest is not None:
            raise HoldoutError(f"cannot read the holdout {path}, which {pinned_by} pins",
                               fix="check evaluation.holdout in the environment file")
        if found is not None:
            _require(found, digest, holdout if is_object_store_url(holdout) else str(path),
                     pinned_by)
        return LocatedHoldout(path=path, digest=found, source=holdout)


def file_digest(path: Path) -> str | None:
    """`sha256:<hex>` of the file, as the worker reports what it read; None if unreadable."""
    try:
        hashed = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                hashed.update(chunk)
    except OSError:
        return None
    return f"sha256:{hashed.hexdigest()}"


class HoldoutCache:
    """A directory only promoter writes (0700), holding fetched holdouts by digest."""

    def __init__(self, directory: Path, *,
                 filesystem: Callable[[str], Any] = object_filesystem) -> None:
        """`filesystem(scheme)` makes the client (default: the model store's, on the
        standard credential chains)."""
        self.directory = directory
        self._filesystem = filesystem

    def fetch(self, url: str, *, digest: str | None = None,
              pinned_by: str = "the pinned digest") -> Path:
        """The local copy of the holdout object at `url`, downloaded unless the cache holds
        the object's current generation.

        Raises HoldoutError when the object is missing or unreadable, or is not `digest`
        (when given: then nothing is cached; `pinned_by` says who pinned it)."""
        _require_format(digest, pinned_by)
        try:
            location = parse_object_url(url)
        except ModelStoreError as exc:
            raise HoldoutError(exc.message, fix=exc.fix) from exc
        name = PurePosixPath(location.prefix).name
        if not location.prefix or not name:
            raise HoldoutError(f"{url!r} names a bucket, not a holdout file",
                               fix="give the object's full URL, e.g. s3://data/churn.csv")
        fs = self._filesystem(location.scheme)
        info = self._info(fs, location.root, url)
        stamp = listing_stamp(info)  # None: download every time
        index = self.directory / "index" / hashlib.sha256(
            f"{url}\0{info.get('size')}\0{stamp}".encode()).hexdigest()
        known = _read_digest(index) if stamp is not None else None
        if known is not None:
            blob = self._blob(known, name)
            if blob.is_file() and blob.stat().st_size == info.get("size"):
                _require(known, digest, url, pinned_by)
                return blob
        found, partial = self._download(fs, location.root, url, int(info.get("size") or 0))
        try:
            _require(found, digest, url, pinned_by)
            blob = self._blob(found, name)
            blob.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.replace(partial, blob)
        finally:
            partial.unlink(missing_ok=True)
        index.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        index.write_text(found + "\n")
        return blob

    def _blob(self, digest: str, name: str) -> Path:
        return self.directory / "blobs" / digest.removeprefix("sha256:") / name

    @staticmethod
    def _info(fs: Any, path: str, url: str) -> dict[str, Any]:
        try:
            info = dict(fs.info(path))
        except FileNotFoundError as exc:
            raise HoldoutError(f"no holdout at {url}",
                               fix="check evaluation.holdout in the environment file") from exc
        except Exception as exc:  # the clients' own types, as in objects.py
            raise HoldoutError(f"cannot read {url}: {type(exc).__name__}: {exc}",
                               fix="check the credentials and endpoint promoter runs with"
                               ) from exc
        if info.get("type") == "directory":
            raise HoldoutError(f"{url} is a prefix, not a file",
                               fix="name one holdout file (CSV or TFRecord)")
        return info

    def _download(self, fs: Any, path: str, url: str, size: int) -> tuple[str, Path]:
        """Download into a temporary file in the cache, hashing as it is written."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, partial_name = tempfile.mkstemp(prefix=".holdout-", dir=self.directory)
        partial = Path(partial_name)
        hashed = hashlib.sha256()
        written = 0
        try:
            with os.fdopen(fd, "wb") as out, fs.open(path, "rb", block_size=BLOCK_BYTES) as src:
                for chunk in read_chunks(src, BLOCK_BYTES):
                    hashed.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
        except Exception as exc:
            partial.unlink(missing_ok=True)
            raise HoldoutError(f"cannot download {url}: {type(exc).__name__}: {exc}",
                               fix="check the credentials, the endpoint and the free space "
                                   f"in {self.directory}") from exc
        if written != size:
            partial.unlink(missing_ok=True)
            raise HoldoutError(f"{url} changed while it was downloaded",
                               fix="retry once nothing writes to it any more")
        return f"sha256:{hashed.hexdigest()}", partial


def _read_digest(index: Path) -> str | None:
    try:
        text = index.read_text().strip()
    except OSError:
        return None
    return text if _DIGEST.match(text) else None


def _require_format(digest: str | None, pinned_by: str) -> None:
    if digest is not None and not _DIGEST.match(digest):
        raise HoldoutError(f"{pinned_by}: {digest!r} is not a sha256: digest",
                           fix="pin the holdout as sha256: and 64 lowercase hex digits "
                               "(`sha256sum FILE`)")


def _require(found: str, pinned: str | None, where: str, pinned_by: str) -> None:
    if pinned is not None and found != pinned:
        raise HoldoutError(
            f"the holdout {where} has digest {found}, but {pinned_by} pins {pinned}: "
            "refusing to evaluate on other rows than the pinned ones",
            fix=f"restore the pinned holdout at {where}; or, if the new rows are meant, set "
                f"{pinned_by} to {found} (a reviewed change)")
