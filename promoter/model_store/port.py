"""The model-store port: what promoter needs from wherever SavedModels are kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from promoter.domain.model_versions import ModelVersion, StoredVersion
from promoter.errors import ModelStoreError


class VersionNotFoundError(ModelStoreError):
    """The store has no such model version (nothing at its path or under its prefix)."""


class DigestMismatchError(ModelStoreError):
    """The bytes at the store are not those of the digest the promotion pinned: they were
    rewritten after promoter evaluated them, or another store was named. Never evaluated,
    cached or served."""

    exit_code = 1


class ModelStore(Protocol):
    """Port to wherever SavedModels are kept: a local directory, `gs://` or `s3://`.

    Every implementation computes the same digest for the same bytes
    (`promoter.model_store.digest`), so a version copied between stores keeps its digest.
    """

    def list_versions(self, model: str) -> list[int]:
        """Return the model's versions in ascending order; [] if the model is unknown."""
        ...

    def scan_versions(self, model: str) -> list[StoredVersion]:
        """Every version directory of `model` with what discovery judges it by, ascending.

        Never raises for a bad entry, because one stray upload must not stop discovery of
        every other model: a name that is not a canonical version number (`tmp-upload`,
        `007`) is skipped with a debug log line; an unreadable directory, or a file where a
        version directory should be, is logged and listed as incomplete or skipped. [] when
        the model is unknown or its directory unreadable (logged).
        """
        ...

    def get(self, model: str, version: int) -> ModelVersion:
        """Return the version with its digest. Raises ModelStoreError if it is missing or is
        not a SavedModel directory."""
        ...

    def copy_version(self, version: ModelVersion, destination: Path) -> None:
        """Write the files of `version` into `destination`, which must not exist (it is
        created mode 0700, as every directory under it).

        What was written is not checked against `version.digest` here: the caller digests
        the copy, because only the copy's digest says what a reader of the copy reads (an
        object rewritten during the download changes it). Raises ModelStoreError when the
        version cannot be read."""
        ...


@dataclass(frozen=True, slots=True)
class LocatedHoldout:
    """A holdout as an evaluation reads it: a local file and the digest of its bytes."""

    path: Path
    """The local file: the configured one, or the verified copy in the cache."""
    digest: str | None
    """`sha256:` of the file as it is now; None for a local file that cannot be read (and
    is not pinned): the evaluator then reports the missing file with its fix."""
    source: str
    """Where it comes from, for messages: the configured path or the object's URL."""


class HoldoutSource(Protocol):
    """Port to where holdouts are kept: local files, or objects fetched into a cache."""

    def locate(self, holdout: str, *, digest: str | None = None,
               pinned_by: str = "the pinned digest") -> LocatedHoldout:
        """The local file of `holdout` (a configured path or an `s3://`/`gs://` URL) with
        its digest. With `digest`, raises HoldoutError unless the bytes are exactly those,
        naming `pinned_by` (the setting that pins it) and both digests."""
        ...
