"""Object-store model stores: `s3://bucket/prefix` (AWS or any S3-compatible endpoint) and
`gs://bucket/prefix`, in TensorFlow Serving's layout `<prefix>/<model>/<version>/…`.

The clients and URLs are in `object_clients.py`, listings, the digest cache and downloads in
`object_entries.py`; this module is the `ModelStore` over them. Object stores have no
directories and no trustworthy mtimes, so:
- a version is the objects under `<model>/<version>/`; zero-byte `…/` placeholder objects are
  not files (the local digest covers regular files only);
- the digest is `digest.VersionDigest` over the objects in key order, as for a directory, and
  is cached on what the listing says of every object (size and generation, or ETag and
  last-modified time): a resync lists, finds the same stamps and reads nothing; any rewritten
  object changes its stamp and the digest is computed again. The cache may also live on disk
  (`DigestCache`), shared by the CLI's processes; a wrong entry there cannot put other bytes
  behind a verdict or into a pod (the evaluator digests its download, the pod's fetcher its
  copy), it can only make those checks fail;
- discovery's settle time runs from when this process first saw a version's objects as they
  are now (`StoredVersion.last_changed`), by its own clock, since an object's timestamp is the
  start of a multipart upload and comes from the store's clock; or not at all once the
  optional completion marker object is there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from promoter.domain.model_versions import (
    SAVED_MODEL_FILES,
    VARIABLES_DIR,
    ModelVersion,
    StoredVersion,
)
from promoter.errors import ModelStoreError
from promoter.model_store import object_clients
from promoter.model_store.digest import VersionDigest, read_chunks
from promoter.model_store.local import version_number
from promoter.model_store.object_clients import (
    SCHEMES,
    ObjectLocation,
    credentials_fix,
    is_object_store_url,
    object_filesystem,
    parse_object_url,
)
from promoter.model_store.object_entries import (
    DigestCache,
    ObjectEntry,
    download,
    entry_of,
    is_placeholder,
    require_file_path,
)
from promoter.model_store.port import VersionNotFoundError

__all__ = [  # the object-store names other modules import from here
    "SCHEMES",
    "DigestCache",
    "ObjectEntry",
    "ObjectLocation",
    "ObjectModelStore",
    "download",
    "is_object_store_url",
    "object_filesystem",
    "parse_object_url",
]

log = logging.getLogger(__name__)


class ObjectModelStore:
    """A `ModelStore` over `s3://` or `gs://` (see the module docstring)."""

    def __init__(self, url: str, *, filesystem: Any | None = None,
                 digest_cache: DigestCache | None = None,
                 completion_marker: str | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """`filesystem`: an fsspec filesystem for the URL's scheme (default: the standard
        one, `object_filesystem`); `completion_marker`: an object name (`_COMPLETE`) whose
        presence in a version says its upload is done; `clock` dates first sightings."""
        self.location = parse_object_url(url)
        self.url = self.location.url()
        self.completion_marker = completion_marker
        self._fs = filesystem if filesystem is not None else object_filesystem(
            self.location.scheme)
        self._digests = digest_cache if digest_cache is not None else DigestCache()
        self._clock = clock
        self._sightings: dict[tuple[str, int], tuple[tuple[ObjectEntry, ...], datetime]] = {}
        self._lock = threading.Lock()

    # --- the port -------------------------------------------------------------------------

    def list_versions(self, model: str) -> list[int]:
        return [v for v in self._version_names(model) if v is not None]

    def scan_versions(self, model: str) -> list[StoredVersion]:
        base = self._path(model)
        try:
            with self._errors(self.location.url(model)):
                listing = self._find(base)
        except ModelStoreError as exc:
            log.warning("cannot list the versions of %r: %s", model, exc.message)
            return []
        by_version: dict[str, list[ObjectEntry]] = {}
        objects_not_versions = set()
        for path, info in listing.items():
            name, slash, rel = path[len(base) + 1:].partition("/")
            entry = entry_of(path, rel, info)
            if entry is not None:
                by_version.setdefault(name, []).append(entry)
            elif slash or is_placeholder(path, info):
                by_version.setdefault(name, [])  # `3/` or `3/variables/`: exists, no files
            else:
                objects_not_versions.add(name)
        for name in sorted(objects_not_versions - set(by_version)):
            if version_number(name) is not None:
                log.warning("%s is an object, not a version: a version is the objects under "
                            "%s/ (ignored)", self.location.url(model, name), name)
        found = []
        for name, entries in sorted(by_version.items()):
            version = version_number(name)
            if version is None:
                log.debug("%s is not a version number; ignored", self.location.url(model, name))
                continue
            found.append(self._stored(model, version, tuple(sorted(entries))))
        found.sort(key=lambda v: v.version)
        return found

    def get(self, model: str, version: int) -> ModelVersion:
        url = self.location.url(model, str(version))
        entries = self._entries(model, version)
        if not entries:
            known = self.list_versions(model)
            hint = (f"known versions of {model!r}: {', '.join(map(str, known))}" if known
                    else f"the store at {self.url} has no model {model!r} (or its bucket "
                         "does not exist: check modelStore.url)")
            raise VersionNotFoundError(
                f"model {model!r} version {version} not found at {url}/", fix=hint)
        names = {entry.rel for entry in entries}
        if not any(name in names for name in SAVED_MODEL_FILES):
            raise ModelStoreError(
                f"{url}/ is not a SavedModel: it has no saved_model.pb",
                fix="upload the whole SavedModel directory (saved_model.pb and variables/) "
                    "under this prefix")
        return ModelVersion(name=model, version=version,
                            digest=self._digest(model, version, entries), uri=url)

    def copy_version(self, version: ModelVersion, destination: Path) -> None:
        url = self.location.url(version.name, str(version.version))
        entries = self._entries(version.name, version.version)
        if not entries:
            raise VersionNotFoundError(
                f"model {version.name!r} version {version.version} not found at {url}/",
                fix="restore the version in the store, or promote another")
        download(self._fs, url, entries, destination)

    # --- internals ------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join([self.location.root, *parts])

    def _find(self, path: str) -> dict[str, Mapping[str, Any]]:
        """Every object under `path/` (recursively), by fsspec path."""
        try:
            found = self._fs.find(path + "/", detail=True)
        except FileNotFoundError:
            return {}
        return {name: info for name, info in found.items() if name.startswith(path + "/")}

    def _version_names(self, model: str) -> list[int | None]:
        """The version numbers of the model's `<n>/` prefixes (None for other names), by one
        delimited listing: no object of any version is listed."""
        base = self._path(model)
        try:
            with self._errors(self.location.url(model)):
                try:
                    listed = self._fs.ls(base + "/", detail=True)
                except FileNotFoundError:
                    return []
        except ModelStoreError as exc:
            log.warning("cannot list the versions of %r: %s", model, exc.message)
            return []
        versions = {version_number(info["name"].rstrip("/").rsplit("/", 1)[-1])
                    for info in listed if info.get("type") == "directory"}
        return sorted(versions, key=lambda v: -1 if v is None else v)

    def _entries(self, model: str, version: int) -> tuple[ObjectEntry, ...]:
        """The version's objects in digest order; raises ModelStoreError when the store
        cannot be read or a key cannot be a file path."""
        base = self._path(model, str(version))
        with self._errors(self.location.url(model, str(version))):
            listing = self._find(base)
        entries = []
        for path, info in listing.items():
            entry = entry_of(path, path[len(base) + 1:], info)
            if entry is None:
                continue
            require_file_path(entry, self.location.url(model, str(version)))
            entries.append(entry)
        return tuple(sorted(entries))

    def _digest(self, model: str, version: int, entries: tuple[ObjectEntry, ...]) -> str:
        """The digest of the listed objects: from the cache when every stamp is the one it
        was computed for; else read (and cached only if a second listing after reading shows
        the same objects, so a version rewritten meanwhile is never cached)."""
        url = self.location.url(model, str(version))
        key = DigestCache.key(url, entries)
        if key is not None:
            cached = self._digests.get(key)
            if cached is not None:
                return cached
        digest = VersionDigest()
        block = object_clients.BLOCK_BYTES
        with self._errors(url):
            for entry in entries:
                with self._fs.open(entry.path, "rb", block_size=block) as handle:
                    digest.add(entry.rel, entry.size, read_chunks(handle, block),
                               where=f"{url}/{entry.rel}")
        result = digest.hexdigest()
        if self._entries(model, version) != entries:
            raise ModelStoreError(f"{url}/ changed while it was digested",
                                  fix="retry once nothing writes to the version any more")
        if key is not None:
            self._digests.put(key, result)
        return result

    def _stored(self, model: str, version: int,
                entries: tuple[ObjectEntry, ...]) -> StoredVersion:
        names = {entry.rel for entry in entries}
        has_saved_model = any(name in names for name in SAVED_MODEL_FILES)
        has_variables = any(name.startswith(VARIABLES_DIR + "/") for name in names)
        sealed = self.completion_marker is not None and self.completion_marker in names
        now = self._clock()
        with self._lock:
            seen = self._sightings.get((model, version))
            if seen is None or seen[0] != entries:
                seen = (entries, now)
                self._sightings[(model, version)] = seen
        return StoredVersion(model, version, has_saved_model, has_variables, seen[1],
                             sealed=sealed)

    @contextmanager
    def _errors(self, url: str) -> Iterator[None]:
        """Turn a client's failure into a ModelStoreError naming the URL and a fix.

        fsspec's backends raise OSError subclasses for most failures, but botocore, aiohttp
        and google-auth raise their own types (missing credentials, a refused connection),
        so everything but promoter's own errors is caught at this boundary. The message is
        the exception's type and text: the clients never put secrets in them."""
        try:
            yield
        except ModelStoreError:
            raise
        except FileNotFoundError as exc:
            raise ModelStoreError(f"{url}: not found ({exc})",
                                  fix="check the bucket and prefix of modelStore.url") from exc
        except PermissionError as exc:
            raise ModelStoreError(
                f"{url}: access denied ({exc})",
                fix=credentials_fix(self.location.scheme)) from exc
        except Exception as exc:
            raise ModelStoreError(
                f"{url}: cannot read the store: {type(exc).__name__}: {exc}",
                fix=credentials_fix(self.location.scheme)) from exc

