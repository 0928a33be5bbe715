"""The local model store: SavedModels in TensorFlow Serving's layout, `<root>/<model>/<version>/`.

A version is identified by its integer directory name and by its content digest
(`promoter.model_store.digest`, the same for every store). The values it returns
(`ModelVersion`, `StoredVersion`) are in `promoter.domain.model_versions`.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from promoter.domain.model_versions import (
    SAVED_MODEL_FILES,
    VARIABLES_DIR,
    ModelVersion,
    StoredVersion,
)
from promoter.errors import ModelStoreError
from promoter.model_store.digest import saved_model_digest, walk_files
from promoter.model_store.port import VersionNotFoundError

log = logging.getLogger(__name__)


class LocalModelStore:
    """A `ModelStore` over a local directory.

    Digests are cached per version directory on every file's (path, device, inode, ctime,
    size): the ctime changes on every write and every `utime`, so a same-size rewrite with its
    mtime restored is digested again. The evaluation verdict itself never rests on this
    cache: the worker loads a private copy whose digest is computed afresh.
    """

    def __init__(self, root: Path, *, completion_marker: str | None = None) -> None:
        """`completion_marker`: the name of a file an uploader writes into a version
        directory once the upload is done (`modelStore.completionMarker`); a complete
        version holding it is `sealed` and needs no settle time."""
        self.root = root
        self.completion_marker = completion_marker
        self._digests: dict[tuple[Path, tuple[tuple[str, int, int, int, int], ...]], str] = {}

    def list_versions(self, model: str) -> list[int]:
        base = self.root / model
        if not base.is_dir():
            return []
        return sorted(int(p.name) for p in base.iterdir() if p.is_dir()
                      and p.name.isascii() and p.name.isdigit())

    def scan_versions(self, model: str) -> list[StoredVersion]:
        base = self.root / model
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            log.warning("%s is a file, not a model directory: model %r has no versions here",
                        base, model)
            return []
        except OSError as exc:
            log.warning("cannot list the versions of %r in %s: %s", model, base,
                        exc.strerror or exc)
            return []
        found = []
        for entry in entries:
            version = version_number(entry.name)
            if version is None:
                log.debug("%s/%s is not a version number; ignored", base, entry.name)
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = True  # it exists but cannot be looked at: listed as unreadable below
            if not is_dir:
                log.warning("%s is not a directory; a version must be a SavedModel directory "
                            "(ignored)", entry.path)
                continue
            found.append(_scan_version(model, version, Path(entry.path),
                                       marker=self.completion_marker))
        found.sort(key=lambda v: v.version)
        return found

    def get(self, model: str, version: int) -> ModelVersion:
        path = self.root / model / str(version)
        if not path.is_dir():
            known = self.list_versions(model)
            hint = (f"known versions of {model!r}: {', '.join(map(str, known))}" if known
                    else f"the store at {self.root} has no model {model!r}")
            raise VersionNotFoundError(f"model {model!r} version {version} not found at {path}",
                                       fix=hint)
        require_saved_model(path)
        return ModelVersion(name=model, version=version, digest=self._digest(path),
                            uri=str(path))

    def local_path(self, version: ModelVersion) -> Path:
        """The version's directory in the store itself (not a copy)."""
        return Path(version.uri)

    def copy_version(self, version: ModelVersion, destination: Path) -> None:
        source = self.local_path(version)
        if not source.is_dir():
            raise VersionNotFoundError(
                f"model {version.name!r} version {version.version} not found at {source}",
                fix="restore the version in the store, or promote another")
        copy_saved_model(source, destination)

    def _digest(self, path: Path) -> str:
        stamp = tuple((rel, st.st_dev, st.st_ino, st.st_ctime_ns, st.st_size)
                      for rel, st in walk_files(path))
        key = (path, stamp)
        if key not in self._digests:
            self._digests[key] = saved_model_digest(path)
        return self._digests[key]


def version_number(name: str) -> int | None:
    """The version a directory name stands for, or None unless it is a canonical one.

    Only ASCII digits without leading zeros: `isdigit()` alone accepts `²`, which `int()`
    rejects, and `7` next to `007` would be two directories for one version.
    """
    if not (name.isascii() and name.isdigit()) or (len(name) > 1 and name.startswith("0")):
        return None
    return int(name)


def _scan_version(model: str, version: int, path: Path, *,
                  marker: str | None = None) -> StoredVersion:
    """Read one version directory's completeness and newest change; never raises OSError."""
    problems: list[str] = []

    def note(exc: OSError) -> None:
        where = exc.filename or path
        problems.append(f"cannot read {where}: {exc.strerror or exc}")

    newest = 0
    try:
        top = path.stat()
        newest = max(top.st_mtime_ns, top.st_ctime_ns)
        names = set(os.listdir(path))
        has_saved_model = any(name in names and (path / name).is_file()
                              for name in SAVED_MODEL_FILES)
        has_variables = VARIABLES_DIR in names and (path / VARIABLES_DIR).is_dir()
        sealed = marker is not None and marker in names and (path / marker).is_file()
    except OSError as exc:
        note(exc)
        log.warning("version %s of %r: %s", version, model, problems[-1])
        return StoredVersion(model, version, False, False, None, problems[-1])
    for dirpath, dirnames, filenames in os.walk(path, onerror=note):
        for name in (*dirnames, *filenames):
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)  # follows links: a link's target is what gets served
            except OSError as exc:
                note(exc)
                continue
            newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    problem = problems[0] if problems else None
    if problem is not None:
        log.warning("version %s of %r is incomplete: %s", version, model, problem)
    return StoredVersion(model, version, has_saved_model, has_variables,
                         datetime.fromtimestamp(newest / 1e9, UTC), problem,
                         sealed=sealed)


def require_saved_model(path: Path) -> None:
    """Raise ModelStoreError unless `path` is a SavedModel directory."""
    if not path.is_dir():
        raise ModelStoreError(f"{path} is not a directory",
                              fix="pass the directory that holds saved_model.pb")
    if not any((path / name).is_file() for name in SAVED_MODEL_FILES):
        raise ModelStoreError(
            f"{path} is not a SavedModel: it has no saved_model.pb",
            fix="export the model with tf.saved_model.save() or model.export() into this "
                "directory",
        )


def copy_saved_model(source: Path, destination: Path) -> None:
    """Copy the SavedModel directory's regular files (what `saved_model_digest` covers) into
    `destination`, which must not exist, creating it mode 0700.

    Symbolic links are copied as the bytes they point to, as the digest reads them. Raises
    ModelStoreError when the source cannot be read or `destination` exists (a copy never
    mixes with files already there)."""
    try:
        destination.mkdir(mode=0o700)
        for dirpath, _, _ in os.walk(source):
            rel_dir = Path(dirpath).relative_to(source)
            (destination / rel_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        for rel, _ in walk_files(source):
            target = destination / rel
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(source / rel, target)
    except OSError as exc:
        raise ModelStoreError(f"cannot copy {source} to {destination}: {exc.strerror or exc}",
                              fix="check the model store's permissions and free space, and "
                                  "that the destination does not exist yet") from exc
