"""Model versions as promoter names them: which SavedModel, and which bytes.

A version is identified by its integer directory name and by a content digest: the digest is
what promoter records in every environment branch, so "the same version" always means the
same bytes. Rendering, discovery and the gates read these values; only the store
(`promoter.model_store`) reads the files behind them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
"""A SavedModel directory holds one of these graph files ..."""
VARIABLES_DIR = "variables"
"""... and this directory of weights; `StoredVersion` reports which of them it saw."""


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
    """Where the version lives: a local directory, or `gs://…`/`s3://…` for an object
    store (no trailing slash)."""


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A version directory as the store lists it, before anyone trusts it.

    Uploads are not atomic (a SavedModel is many files), so discovery proposes a version only
    once it is `complete` and nothing in it changed for a while; these are the facts it
    judges by.
    """

    model: str
    version: int
    has_saved_model: bool
    """`saved_model.pb` (or `saved_model.pbtxt`) is a file in the directory."""
    has_variables: bool
    """`variables/` is a directory in it (in an object store: objects exist under it)."""
    last_changed: datetime | None
    """Newest change of the directory or anything under it (UTC). Local: the later of each
    entry's mtime and ctime, since copies that keep timestamps (`cp -p`, `rsync -a`,
    `gsutil`) write old mtimes while the upload is still running. Object store: when
    promoter first saw the version's objects as they are now (names, sizes, generations or
    ETags), by its own clock, since object timestamps are the start of a multipart upload
    and come from another clock. None when it could not be read."""
    problem: str | None = None
    """Why the directory could not be read completely; such a version is never complete."""
    sealed: bool = False
    """The store's completion marker (`modelStore.completionMarker`) is in the version: the
    uploader said it is done, so a complete version needs no settle time."""

    @property
    def complete(self) -> bool:
        """Has a SavedModel graph and its variables, and could be read completely."""
        return self.has_saved_model and self.has_variables and self.problem is None

    def missing(self) -> str | None:
        """What keeps it from being complete, in words; None when it is complete."""
        if self.problem is not None:
            return self.problem
        absent = [name for name, present in (("saved_model.pb", self.has_saved_model),
                                             (f"{VARIABLES_DIR}/", self.has_variables))
                  if not present]
        return f"no {' and no '.join(absent)}" if absent else None
