"""The local model store: TF Serving layout, deterministic content digests, clear errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from promoter.errors import ModelStoreError
from promoter.model_store import LocalModelStore, saved_model_digest


def fake_saved_model(path: Path, payload: bytes = b"graph") -> Path:
    """A directory with SavedModel's file layout (content is opaque to the store)."""
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(payload)
    (path / "variables" / "variables.index").write_bytes(b"index")
    (path / "variables" / "variables.data-00000-of-00001").write_bytes(b"data")
    return path


def test_lists_integer_versions_in_order(tmp_path: Path) -> None:
    for v in (10, 2, 1):
        fake_saved_model(tmp_path / "churn" / str(v))
    (tmp_path / "churn" / "tmp-upload").mkdir()
    store = LocalModelStore(tmp_path)
    assert store.list_versions("churn") == [1, 2, 10]
    assert store.list_versions("unknown") == []


def test_digest_is_deterministic_and_content_addressed(tmp_path: Path) -> None:
    a = fake_saved_model(tmp_path / "a")
    b = fake_saved_model(tmp_path / "b")
    assert saved_model_digest(a) == saved_model_digest(b)
    assert saved_model_digest(a).startswith("sha256:")
    (b / "variables" / "variables.data-00000-of-00001").write_bytes(b"datb")
    assert saved_model_digest(a) != saved_model_digest(b)


def test_digest_changes_when_a_file_is_renamed(tmp_path: Path) -> None:
    a = fake_saved_model(tmp_path / "a")
    before = saved_model_digest(a)
    (a / "variables" / "variables.index").rename(a / "variables" / "variables.idx")
    assert saved_model_digest(a) != before


def test_digest_matches_documented_recipe(tmp_path: Path) -> None:
    path = tmp_path / "m"
    path.mkdir()
    (path / "saved_model.pb").write_bytes(b"xyz")
    expected = hashlib.sha256(b"14:saved_model.pb\x003\x00xyz").hexdigest()
    assert saved_model_digest(path) == f"sha256:{expected}"


def test_get_returns_version_with_digest(tmp_path: Path) -> None:
    fake_saved_model(tmp_path / "churn" / "3")
    version = LocalModelStore(tmp_path).get("churn", 3)
    assert (version.name, version.version) == ("churn", 3)
    assert version.digest == saved_model_digest(tmp_path / "churn" / "3")


def test_missing_version_lists_known_versions(tmp_path: Path) -> None:
    fake_saved_model(tmp_path / "churn" / "1")
    with pytest.raises(ModelStoreError) as info:
        LocalModelStore(tmp_path).get("churn", 7)
    assert "version 7 not found" in str(info.value)
    assert "known versions of 'churn': 1" in str(info.value)
    assert info.value.exit_code == 2


def test_directory_without_saved_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "churn" / "1").mkdir(parents=True)
    (tmp_path / "churn" / "1" / "model.h5").write_bytes(b"keras")
    with pytest.raises(ModelStoreError, match="not a SavedModel"):
        LocalModelStore(tmp_path).get("churn", 1)


def test_digest_cache_notices_changed_files(tmp_path: Path) -> None:
    path = fake_saved_model(tmp_path / "churn" / "1")
    store = LocalModelStore(tmp_path)
    first = store.get("churn", 1).digest
    (path / "saved_model.pb").write_bytes(b"a different graph")
    assert store.get("churn", 1).digest != first
