"""The model store: SavedModels in TensorFlow Serving's layout, `<root>/<model>/<version>/`.

A version is identified by its integer directory name and by a content digest: the digest is what
promoter records in every environment branch, so "the same version" always means the same bytes.
Only a local directory is implemented; `ModelStore` is the port a `gs://` or `s3://` store will
implement (download to a local cache in `local_path`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from promoter.errors import ModelStoreError

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable version of a model in the store."""

    name: str
    """Model name, the store's first directory level."""
    version: int
    """TensorFlow Serving version number (the directory name)."""
    digest: str
    """`sha256:<hex>` over the SavedModel directory's relative paths and bytes."""
    uri: str
    """Where the version lives (a local path for now)."""


class ModelStore(Protocol):
    """Port to wherever SavedModels are kept."""

    def list_versions(self, model: str) -> list[int]:
        """Return the model's versions in ascending order; [] if the model is unknown."""
        ...

    def get(self, model: str, version: int) -> ModelVersion:
        """Return the version with its digest. Raises ModelStoreError if it is missing or is
        not a SavedModel directory."""
        ...

    def local_path(self, version: ModelVersion) -> Path:
        """Return a local directory holding exactly the SavedModel of `version`."""
        ...


class LocalModelStore:
    """A `ModelStore` over a local directory. Digests are cached per (path, mtime, size) set."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._digests: dict[tuple[Path, tuple[tuple[str, int, int], ...]], str] = {}

    def list_versions(self, model: str) -> list[int]:
        base = self.root / model
        if not base.is_dir():
            return []
        return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())

    def get(self, model: str, version: int) -> ModelVersion:
        path = self.root / model / str(version)
        if not path.is_dir():
            known = self.list_versions(model)
            hint = (f"known versions of {model!r}: {', '.join(map(str, known))}" if known
                    else f"the store at {self.root} has no model {model!r}")
            raise ModelStoreError(f"model {model!r} version {version} not found at {path}",
                                  fix=hint)
        require_saved_model(path)
        return ModelVersion(name=model, version=version, digest=self._digest(path),
                            uri=str(path))

    def local_path(self, version: ModelVersion) -> Path:
        return Path(version.uri)

    def _digest(self, path: Path) -> str:
        stamp = tuple((rel, st.st_mtime_ns, st.st_size) for rel, st in _walk_stats(path))
        key = (path, stamp)
        if key not in self._digests:
            self._digests[key] = saved_model_digest(path)
        return self._digests[key]


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


def saved_model_digest(path: Path) -> str:
    """Digest a SavedModel directory: sha256 over sorted (relative path, size, bytes).

    Paths use '/' and are length-prefixed, so renaming a file or moving bytes between files
    changes the digest, and the result is the same on every machine.
    """
    digest = hashlib.sha256()
    for rel, _ in _walk_stats(path):
        data_path = path / rel
        digest.update(f"{len(rel)}:{rel}\0".encode())
        digest.update(f"{data_path.stat().st_size}\0".encode())
        with data_path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _walk_stats(path: Path) -> list[tuple[str, os.stat_result]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            found.append((full.relative_to(path).as_posix(), full.stat()))
    found.sort(key=lambda item: item[0])
    return found
