"""Holdouts in object stores: fetched into a local cache named by their digest, downloaded once
per object generation, and refused when they are not the pinned bytes (moto's S3 and
gcp-storage-emulator's GCS on loopback)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from promoter.errors import HoldoutError
from promoter.model_store.holdouts import HoldoutCache
from promoter.model_store.object_clients import object_filesystem
from tests.fixtures.object_stores import ObjectServer
from tests.test_object_model_store import CountingFilesystem

CSV = b"churned,calls\n1,7\n0,2\n"


@pytest.fixture(params=["s3", "gcs"])
def server(request: pytest.FixtureRequest) -> ObjectServer:
    found: ObjectServer = request.getfixturevalue(f"{request.param}_server")
    return found


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def test_a_holdout_is_fetched_once_per_generation_into_a_path_named_by_its_digest(
        server: ObjectServer, tmp_path: Path) -> None:
    bucket = server.new_bucket()
    server.put(bucket, "data/churn-holdout.csv", CSV)
    opened: list[str] = []

    def filesystem(scheme: str) -> Any:
        fs = CountingFilesystem(object_filesystem(scheme))
        fs.opened = opened
        return fs

    cache = HoldoutCache(tmp_path / "holdouts", filesystem=filesystem)
    url = f"{server.url(bucket)}/data/churn-holdout.csv"
    path = cache.fetch(url, digest=digest_of(CSV))
    assert path.read_bytes() == CSV
    assert path.name == "churn-holdout.csv"  # the suffix tells the format
    assert path.parent.name == digest_of(CSV).removeprefix("sha256:")
    assert cache.fetch(url) == path
    assert len(opened) == 1  # the second fetch only looked at the object's generation
    server.put(bucket, "data/churn-holdout.csv", CSV + b"1,9\n")
    changed = cache.fetch(url)
    assert changed != path
    assert changed.read_bytes() == CSV + b"1,9\n"
    assert path.read_bytes() == CSV  # a blob is never rewritten in place
    assert (tmp_path / "holdouts").stat().st_mode & 0o077 == 0


def test_a_holdout_that_is_not_the_pinned_one_is_refused(s3_server: ObjectServer,
                                                          tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    s3_server.put(bucket, "data/h.csv", CSV.replace(b"7", b"8"))
    cache = HoldoutCache(tmp_path / "holdouts")
    with pytest.raises(HoldoutError, match=f"but the pinned digest pins {digest_of(CSV)}"):
        cache.fetch(f"s3://{bucket}/data/h.csv", digest=digest_of(CSV))
    assert not (tmp_path / "holdouts" / "blobs").exists()
    assert list((tmp_path / "holdouts").iterdir()) == []  # no partial download left


@pytest.mark.parametrize(("key", "problem"), [("missing.csv", "no holdout at"),
                                              ("", "names a bucket")])
def test_a_missing_holdout_is_a_holdout_error(s3_server: ObjectServer, tmp_path: Path,
                                              key: str, problem: str) -> None:
    bucket = s3_server.new_bucket()
    with pytest.raises(HoldoutError, match=problem):
        HoldoutCache(tmp_path / "holdouts").fetch(f"s3://{bucket}/{key}")
