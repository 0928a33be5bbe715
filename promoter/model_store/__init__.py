"""Model stores: SavedModels in TensorFlow Serving's layout, `<root>/<model>/<version>/`.

A version is identified by its integer directory name and by a content digest: the digest is
what promoter records in every environment branch, so "the same version" always means the
same bytes. `ModelStore` is the port (`port.py`); `LocalModelStore` keeps versions in a local
directory, `ObjectModelStore` (`objects.py`, imported only where an object store is used: the
evaluation worker imports this package and must stay small) in `gs://` or `s3://`. Both feed
the one digest definition in `digest.py`. The values they return (`ModelVersion`,
`StoredVersion`) are in `promoter.domain.model_versions`.
"""

from __future__ import annotations

from promoter.model_store.digest import VersionDigest, saved_model_digest
from promoter.model_store.local import (
    LocalModelStore,
    copy_saved_model,
    require_saved_model,
    version_number,
)
from promoter.model_store.port import (
    HoldoutSource,
    LocatedHoldout,
    ModelStore,
    VersionNotFoundError,
)

__all__ = [
    "HoldoutSource",
    "LocalModelStore",
    "LocatedHoldout",
    "ModelStore",
    "VersionDigest",
    "VersionNotFoundError",
    "copy_saved_model",
    "require_saved_model",
    "saved_model_digest",
    "version_number",
]
