"""Object-store model stores: `s3://bucket/prefix` (AWS or any S3-compatible endpoint) and
`gs://bucket/prefix`, in TensorFlow Serving's layout `<prefix>/<model>/<version>/…`.

The clients are fsspec's `s3fs` (aiobotocore) and `gcsfs`, chosen over obstore (faster: about
2x reading a large object, 3x reading small ones, 15x to import, no dependencies) because
they take their credentials from the standard chains unchanged and both could be tested here
against real local servers; obstore's GCS store speaks the XML API, which no emulator on PyPI
serves, and it reads neither `STORAGE_EMULATOR_HOST` nor AWS profiles. The chains: botocore's
(`AWS_*` variables including `AWS_ENDPOINT_URL`/`AWS_ENDPOINT_URL_S3`, shared config and SSO
profiles, IRSA web identity, ECS and instance metadata) and google-auth's
(`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's, the metadata server); `STORAGE_EMULATOR_HOST`
points gcsfs at an emulator, which is then sent no credentials (as google-cloud-storage does).
Nothing here reads, keeps or logs a credential, and a URL carrying one is refused.

Object stores have no directories and no trustworthy mtimes, so:
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

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from promoter.domain.model_versions import (
    SAVED_MODEL_FILES,
    VARIABLES_DIR,
    ModelVersion,
    StoredVersion,
)
from promoter.errors import ModelStoreError
from promoter.model_store.digest import VersionDigest, read_chunks
from promoter.model_store.local import version_number
from promoter.model_store.port import VersionNotFoundError

log = logging.getLogger(__name__)

SCHEMES = ("s3", "gs")
"""URL schemes of object stores: `s3://` (AWS S3 or an S3-compatible endpoint) and `gs://`."""

BLOCK_BYTES = 64 << 20
"""Bytes per ranged read. Measured on loopback against moto (256 MiB object): 8 MiB blocks
read 80 MiB/s, 32 MiB 125, 64 MiB 215; memory stays about two blocks per open object."""

CONNECT_TIMEOUT_S = 10.0
"""Seconds to open a connection to the store before the attempt counts as failed."""
READ_TIMEOUT_S = 60.0
"""Seconds without a byte from the store before the attempt counts as failed: a 64 MiB
block needs at least 1.1 MB/s; a hung store never holds a resync or a pod start for ever."""
ATTEMPTS = 3
"""Attempts per S3 request (botocore's standard retry mode: throttling, 5xx, timeouts and
refused connections), with exponential backoff, before a ModelStoreError says what failed.
GCS: gcsfs's own 6 attempts, which it does not let a caller change."""
BODY_ATTEMPTS = 2
"""s3fs's own attempts around a request and the read of its body (a connection dropped
mid-object), each of them `ATTEMPTS` requests. So a hung store fails a read after at most
6 silent timeouts on S3 (6 attempts and backoff on GCS), about 6 minutes at the defaults:
never holds a resync or a pod start for ever."""

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class ObjectLocation:
    """Where a store's layout starts: `scheme://bucket/prefix` (prefix may be empty)."""

    scheme: str
    bucket: str
    prefix: str

    @property
    def root(self) -> str:
        """The fsspec path of the layout's root (`bucket/prefix`, no scheme)."""
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def url(self, *parts: str) -> str:
        """`scheme://bucket/prefix/part/…`, for messages and `ModelVersion.uri`."""
        return "/".join([f"{self.scheme}://{self.root}", *parts])


def is_object_store_url(url: str) -> bool:
    """True for `s3://…` and `gs://…`; everything else is a local path."""
    return urlsplit(url).scheme in SCHEMES


def parse_object_url(url: str) -> ObjectLocation:
    """Split `s3://bucket/prefix` or `gs://bucket/prefix`.

    Raises ModelStoreError for another scheme, a bad bucket name, and a URL with a user,
    password, query or fragment: fsspec would read `s3://KEY:SECRET@bucket` as credentials,
    and a credential must never be in promoter.yaml, a rendered manifest or a log."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ModelStoreError(f"{url!r} is not an object store URL",
                              fix="use s3://BUCKET/PREFIX or gs://BUCKET/PREFIX")
    if "@" in parts.netloc or parts.query or parts.fragment or ";" in parts.netloc:
        raise ModelStoreError(
            f"the model store URL {parts.scheme}://… carries credentials or options",
            fix="give only scheme://BUCKET/PREFIX; credentials come from the environment "
                "(AWS_* variables, an AWS profile or role; GOOGLE_APPLICATION_CREDENTIALS or "
                "the metadata server) and an S3-compatible endpoint from AWS_ENDPOINT_URL")
    bucket = parts.netloc
    if not _BUCKET.match(bucket):
        raise ModelStoreError(f"{url!r}: {bucket!r} is not a bucket name",
                              fix="bucket names are 3-63 lowercase letters, digits, '-', "
                                  "'.' and '_'")
    prefix = parts.path.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ModelStoreError(f"{url!r}: the prefix has an empty, '.' or '..' part",
                              fix="write the prefix as a/b/c")
    return ObjectLocation(parts.scheme, bucket, prefix)


def object_filesystem(scheme: str) -> Any:
    """An fsspec filesystem for `scheme` on the standard credential chains.

    Listings are never cached by fsspec (a version's objects change while it uploads, and
    promoter caches digests itself), and instances are not shared with other users of fsspec
    in the process. Every request has the timeouts and attempts above; a partial download
    never lands anywhere (`download` and the holdout cache check sizes, and writers rename
    only what they verified)."""
    if scheme == "s3":
        import s3fs  # lazily: aiobotocore is slow to import and local stores never need it

        s3 = s3fs.S3FileSystem(
            skip_instance_cache=True, use_listings_cache=False,
            config_kwargs={"connect_timeout": CONNECT_TIMEOUT_S,
                           "read_timeout": READ_TIMEOUT_S,
                           "retries": {"max_attempts": ATTEMPTS, "mode": "standard"}})
        s3.retries = BODY_ATTEMPTS  # s3fs's own attempts: an attribute, not an argument
        return s3
    if scheme == "gs":
        # gcsfs.core's filesystem, not the package's default export: that one probes every
        # bucket's type over gRPC first (for zonal buckets), which emulators do not serve.
        import aiohttp
        from gcsfs.core import GCSFileSystem

        token = "anon" if os.environ.get("STORAGE_EMULATOR_HOST") else None
        # gcsfs retries every request itself, 6 times with backoff up to 32 s (fixed in
        # gcsfs: its decorator binds the count when the class is defined).
        return GCSFileSystem(token=token, skip_instance_cache=True, use_listings_cache=False,
                             requests_timeout=aiohttp.ClientTimeout(
                                 sock_connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S))
    raise ModelStoreError(f"no object store client for {scheme}://",
                          fix=f"use one of {', '.join(s + '://' for s in SCHEMES)}")


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
            entry = _entry(path, rel, info)
            if entry is not None:
                by_version.setdefault(name, []).append(entry)
            elif slash or _is_placeholder(path, info):
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
            entry = _entry(path, path[len(base) + 1:], info)
            if entry is None:
                continue
            _require_file_path(entry, self.location.url(model, str(version)))
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
        with self._errors(url):
            for entry in entries:
                with self._fs.open(entry.path, "rb", block_size=BLOCK_BYTES) as handle:
                    digest.add(entry.rel, entry.size, read_chunks(handle, BLOCK_BYTES),
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
                fix=_credentials_fix(self.location.scheme)) from exc
        except Exception as exc:
            raise ModelStoreError(
                f"{url}: cannot read the store: {type(exc).__name__}: {exc}",
                fix=_credentials_fix(self.location.scheme)) from exc


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
        _require_file_path(entry, url)
        target = destination / entry.rel
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            written = 0
            with os.fdopen(fd, "wb") as out, filesystem.open(
                    entry.path, "rb", block_size=BLOCK_BYTES) as handle:
                for chunk in read_chunks(handle, BLOCK_BYTES):
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


def _entry(path: str, rel: str, info: Mapping[str, Any]) -> ObjectEntry | None:
    """The object as a file of the version, or None for a `…/` directory placeholder (or
    no name at all)."""
    if not rel or _is_placeholder(path, info):
        return None
    return ObjectEntry(rel=rel, size=int(info.get("size") or 0), stamp=_stamp(info),
                       path=path)


def _is_placeholder(path: str, info: Mapping[str, Any]) -> bool:
    """A zero-byte `name/` object that consoles and some tools write for "folders"."""
    return path.endswith("/") or info.get("type") == "directory"


def _stamp(info: Mapping[str, Any]) -> str | None:
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


def _require_file_path(entry: ObjectEntry, url: str) -> None:
    """Refuse a key that is no relative file path (`a//b`, `../x`, `/x`): it could not be
    downloaded where it belongs, or would be written outside the copy."""
    parts = entry.rel.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\\" in entry.rel or "\0" in entry.rel:
        raise ModelStoreError(f"{url}/ holds the object {entry.rel!r}, which is no file path",
                              fix="remove or rename that object: every key of a version must "
                                  "be a relative path such as variables/variables.index")


def _credentials_fix(scheme: str) -> str:
    if scheme == "s3":
        return ("check the credentials promoter runs with (AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the pod's role), AWS_ENDPOINT_URL for "
                "an S3-compatible store, and that they may list and read the bucket")
    return ("check the credentials promoter runs with (GOOGLE_APPLICATION_CREDENTIALS or the "
            "metadata server's service account; STORAGE_EMULATOR_HOST for an emulator) and "
            "that they may list and read the bucket")
