"""The `ModelStore` contract, written against the port only: every store implementation
(a local directory, S3 through moto's server, GCS through gcp-storage-emulator; both servers on
loopback, read by the real clients; and both object stores through the evaluation's model
cache, which is what the evaluator is given) gets a harness here and passes the same tests.
The digest is the store-independent definition (`saved_model_digest`), so a version copied
between stores keeps its digest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from promoter.errors import ModelStoreError
from promoter.model_store import LocalModelStore, ModelStore, saved_model_digest
from promoter.model_store.model_cache import CachedModelStore, ModelCache
from promoter.model_store.objects import ObjectModelStore
from tests.fixtures.object_stores import ObjectServer


@dataclass
class StoreHarness:
    store: ModelStore
    put: Callable[[str, int, dict[str, bytes]], None]
    """Write a version's files (relative path -> bytes) into the store."""


def _local(root: Path) -> StoreHarness:
    def put(model: str, version: int, files: dict[str, bytes]) -> None:
        for rel, data in files.items():
            path = root / model / str(version) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    root.mkdir(parents=True, exist_ok=True)
    return StoreHarness(store=LocalModelStore(root), put=put)


def _objects(server: ObjectServer) -> StoreHarness:
    """An object store under a two-level prefix, written by the server's own client."""
    bucket = server.new_bucket()

    def put(model: str, version: int, files: dict[str, bytes]) -> None:
        for rel, data in files.items():
            server.put(bucket, f"team/models/{model}/{version}/{rel}", data)
    return StoreHarness(store=ObjectModelStore(server.url(bucket, "team/models")), put=put)


@pytest.fixture(params=["local", "s3", "gcs", "s3-cached", "gcs-cached"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> StoreHarness:
    if request.param == "local":
        return _local(tmp_path / "store")
    scheme, cached, _ = request.param.partition("-cached")
    if cached:
        objects = _objects(request.getfixturevalue(f"{scheme}_server"))
        return StoreHarness(CachedModelStore(objects.store, ModelCache(tmp_path / "cache")),
                            objects.put)
    server: ObjectServer = request.getfixturevalue(f"{request.param}_server")
    return _objects(server)


SAVED = {"saved_model.pb": b"graph", "variables/variables.index": b"index",
         "variables/variables.data-00000-of-00001": b"\x00" * 64}


def test_versions_are_listed_in_order(harness: StoreHarness) -> None:
    for version in (10, 2, 1):
        harness.put("churn", version, SAVED)
    assert harness.store.list_versions("churn") == [1, 2, 10]
    assert harness.store.list_versions("absent") == []


def test_a_version_has_the_store_independent_digest(harness: StoreHarness,
                                                    tmp_path: Path) -> None:
    harness.put("churn", 1, SAVED)
    version = harness.store.get("churn", 1)
    assert (version.name, version.version) == ("churn", 1)
    assert version.digest.startswith("sha256:")
    copy = tmp_path / "elsewhere"
    harness.store.copy_version(version, copy)
    assert saved_model_digest(copy) == version.digest  # the same bytes, the same digest
    assert harness.store.get("churn", 1).digest == version.digest  # stable on re-reading


def test_changed_bytes_change_the_digest(harness: StoreHarness) -> None:
    harness.put("churn", 1, SAVED)
    before = harness.store.get("churn", 1).digest
    harness.put("churn", 1, {"variables/variables.index": b"INDEX"})
    assert harness.store.get("churn", 1).digest != before


def test_a_copy_holds_exactly_the_version_privately(harness: StoreHarness,
                                                     tmp_path: Path) -> None:
    harness.put("churn", 1, SAVED)
    path = tmp_path / "copy"
    harness.store.copy_version(harness.store.get("churn", 1), path)
    found = {p.relative_to(path).as_posix(): p.read_bytes()
             for p in path.rglob("*") if p.is_file()}
    assert found == SAVED
    assert all(p.stat().st_mode & 0o077 == 0 for p in (path, *path.rglob("*")) if p.is_dir())


def test_a_copy_never_writes_into_an_existing_directory(harness: StoreHarness,
                                                        tmp_path: Path) -> None:
    harness.put("churn", 1, SAVED)
    (tmp_path / "taken").mkdir()
    with pytest.raises(ModelStoreError):
        harness.store.copy_version(harness.store.get("churn", 1), tmp_path / "taken")


def test_an_unknown_version_is_a_store_error_naming_the_known_ones(
        harness: StoreHarness) -> None:
    harness.put("churn", 1, SAVED)
    with pytest.raises(ModelStoreError, match="version 7") as caught:
        harness.store.get("churn", 7)
    assert "1" in (caught.value.fix or "")
    assert caught.value.exit_code == 2


def test_a_directory_that_is_no_saved_model_is_refused(harness: StoreHarness) -> None:
    harness.put("churn", 1, {"variables/variables.index": b"index"})
    with pytest.raises(ModelStoreError):
        harness.store.get("churn", 1)


def test_other_models_and_stray_names_are_not_versions(harness: StoreHarness) -> None:
    harness.put("churn", 1, SAVED)
    harness.put("churn2", 5, SAVED)  # a model whose name starts with another's
    harness.put("churn", 7, {"variables/variables.index": b"index"})  # uploading
    assert harness.store.list_versions("churn") == [1, 7]
    scanned = {v.version: v for v in harness.store.scan_versions("churn")}
    assert sorted(scanned) == [1, 7]
    assert scanned[1].complete
    assert not scanned[7].complete
    assert scanned[7].missing() == "no saved_model.pb"
    assert harness.store.scan_versions("absent") == []
