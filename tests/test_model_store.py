"""The local model store: TF Serving layout, deterministic content digests, clear errors."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from datetime import UTC, datetime
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
    (tmp_path / "churn" / "\u00b2").mkdir()  # '²' is a digit to str.isdigit, not to int()
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


# --- scan_versions: what discovery judges a version directory by ----------------------------


def test_scan_lists_canonical_versions_with_completeness(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake_saved_model(tmp_path / "churn" / "1")
    fake_saved_model(tmp_path / "churn" / "10")
    (tmp_path / "churn" / "2").mkdir()
    (tmp_path / "churn" / "2" / "saved_model.pb").write_bytes(b"half")  # variables/ to come
    for odd in ("tmp-upload", "007", "3.partial", "\u00b2", "-4"):
        (tmp_path / "churn" / odd).mkdir()
    with caplog.at_level(logging.DEBUG, logger="promoter.model_store"):
        scanned = LocalModelStore(tmp_path).scan_versions("churn")
    assert [(v.version, v.has_saved_model, v.has_variables, v.complete) for v in scanned] == [
        (1, True, True, True), (2, True, False, False), (10, True, True, True)]
    assert scanned[1].missing() == "no variables/"
    assert "churn/007 is not a version number; ignored" in caplog.text
    assert all(r.levelno == logging.DEBUG for r in caplog.records)
    assert LocalModelStore(tmp_path).scan_versions("unknown") == []


def test_scan_sees_the_newest_change_anywhere_in_the_version(tmp_path: Path) -> None:
    path = fake_saved_model(tmp_path / "churn" / "1")
    store = LocalModelStore(tmp_path)
    first = store.scan_versions("churn")[0].last_changed
    assert first is not None
    assert abs((datetime.now(UTC) - first).total_seconds()) < 60
    time.sleep(0.02)
    (path / "variables" / "variables.data-00000-of-00001").write_bytes(b"more bytes")
    second = store.scan_versions("churn")[0].last_changed
    assert second is not None
    assert second > first


def test_scan_is_not_fooled_by_preserved_old_timestamps(tmp_path: Path) -> None:
    """`cp -p` and `rsync -a` write old mtimes while the copy still runs: ctime says when."""
    path = fake_saved_model(tmp_path / "churn" / "1")
    old = datetime(2001, 1, 1, tzinfo=UTC).timestamp()
    for item in [path, *path.rglob("*")]:
        os.utime(item, (old, old))
    changed = LocalModelStore(tmp_path).scan_versions("churn")[0].last_changed
    assert changed is not None
    assert changed.year > 2001


def test_scan_logs_and_survives_files_and_unreadable_entries(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    base = tmp_path / "churn"
    fake_saved_model(base / "1")
    (base / "5").write_bytes(b"a file where a version directory should be")
    (base / "6").symlink_to("6")  # a link loop: cannot be read at all
    fake_saved_model(base / "8")
    (base / "8" / "variables" / "shard").symlink_to(base / "missing")  # dangling
    with caplog.at_level(logging.WARNING, logger="promoter.model_store"):
        scanned = LocalModelStore(tmp_path).scan_versions("churn")
    assert [(v.version, v.complete) for v in scanned] == [(1, True), (6, False), (8, False)]
    assert "Too many levels of symbolic links" in (scanned[1].problem or "")
    assert scanned[1].last_changed is None
    assert "variables/shard" in (scanned[2].problem or "")
    assert f"{base / '5'} is not a directory" in caplog.text
    assert "version 6 of 'churn'" in caplog.text
    assert "version 8 of 'churn' is incomplete" in caplog.text


def test_scan_of_a_model_that_is_a_file_logs_and_lists_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "churn").write_bytes(b"not a directory")
    with caplog.at_level(logging.WARNING, logger="promoter.model_store"):
        assert LocalModelStore(tmp_path).scan_versions("churn") == []
    assert "is a file, not a model directory" in caplog.text


def test_scan_of_an_unreadable_model_directory_logs_and_lists_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_saved_model(tmp_path / "churn" / "1")

    def denied(path: object) -> object:
        # chmod 000 does not stop root (these tests may run as root): refuse like the kernel.
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "scandir", denied)
    with caplog.at_level(logging.WARNING, logger="promoter.model_store"):
        assert LocalModelStore(tmp_path).scan_versions("churn") == []
    assert "cannot list the versions of 'churn'" in caplog.text
    assert "Permission denied" in caplog.text


def test_scan_of_an_unreadable_version_directory(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = fake_saved_model(tmp_path / "churn" / "1")
    real_scandir = os.scandir

    def denied(where: object) -> object:
        # chmod 000 does not stop root (these tests may run as root): refuse like the kernel.
        if Path(str(where)) == path:
            raise PermissionError(13, "Permission denied", str(where))
        return real_scandir(where)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", denied)
    [version] = LocalModelStore(tmp_path).scan_versions("churn")
    assert not version.complete
    assert "Permission denied" in (version.problem or "")


def test_a_private_copy_has_the_same_digest_and_its_own_bytes(tmp_path: Path) -> None:
    from promoter.model_store import copy_saved_model, saved_model_digest

    source = tmp_path / "store" / "churn" / "1"
    (source / "variables").mkdir(parents=True)
    (source / "assets").mkdir()
    (source / "saved_model.pb").write_bytes(b"graph")
    (source / "variables" / "variables.index").write_bytes(b"index")
    copy = tmp_path / "private" / "candidate"
    copy.parent.mkdir()
    copy_saved_model(source, copy)
    assert saved_model_digest(copy) == saved_model_digest(source)
    assert (copy / "assets").is_dir()
    assert copy.stat().st_mode & 0o777 == 0o700
    (source / "saved_model.pb").write_bytes(b"swapped")  # the store changes afterwards...
    assert (copy / "saved_model.pb").read_bytes() == b"graph"  # ...the copy does not


def test_a_completion_marker_seals_a_local_version(tmp_path: Path) -> None:
    fake_saved_model(tmp_path / "churn" / "1")
    fake_saved_model(tmp_path / "churn" / "2")
    (tmp_path / "churn" / "2" / "_COMPLETE").write_bytes(b"")
    (tmp_path / "churn" / "1" / "variables" / "_COMPLETE").write_bytes(b"")  # not at the top
    sealed = {v.version: v.sealed for v in
              LocalModelStore(tmp_path, completion_marker="_COMPLETE").scan_versions("churn")}
    assert sealed == {1: False, 2: True}
    assert not any(v.sealed for v in LocalModelStore(tmp_path).scan_versions("churn"))
