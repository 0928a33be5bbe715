"""The evaluation's model cache (`promoter.model_store.model_cache`): versions downloaded once
by digest from S3 (the real s3fs client against moto's server on loopback, every request
counted where it arrives), verified before they land and at every use, bounded by LRU
eviction that never removes an entry in use, safe under concurrent evaluations."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from promoter.config import load_settings
from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.domain.model_versions import ModelVersion
from promoter.errors import ConfigError, ModelStoreError
from promoter.model_store import LocalModelStore, saved_model_digest
from promoter.model_store.model_cache import CachedModelStore, ModelCache
from promoter.model_store.objects import ObjectModelStore
from promoter.model_store.port import DigestMismatchError
from promoter.wiring import build_evaluation_store
from tests.fixtures.object_stores import CountedS3
from tests.test_object_model_store import SAVED, upload

KEYS = sorted(SAVED)


def s3_version(counted: CountedS3, files: dict[str, bytes] = SAVED,
               version: int = 1) -> tuple[str, ObjectModelStore, ModelVersion]:
    bucket = counted.server.new_bucket()
    upload(counted.server, bucket, f"m/churn/{version}", files)
    store = ObjectModelStore(counted.server.url(bucket, "m"))
    return bucket, store, store.get("churn", version)


def modes(root: Path) -> set[int]:
    return {p.stat().st_mode & 0o777 for p in (root, *root.rglob("*"))}


def entry_of(cache: ModelCache, version: ModelVersion) -> Path:
    return cache.directory / "entries" / version.digest.removeprefix("sha256:")


def test_a_second_copy_of_a_version_reads_no_model_object_from_the_store(
        counted_s3: CountedS3, tmp_path: Path) -> None:
    bucket, store, version = s3_version(counted_s3)
    cache = ModelCache(tmp_path / "cache")
    cached = CachedModelStore(store, cache)
    counted_s3.requests.clear()
    cached.copy_version(version, tmp_path / "first")
    first = counted_s3.gets_under(bucket, "m/churn/1/")
    assert sorted(path.removeprefix(f"/{bucket}/m/churn/1/") for path in first) == KEYS
    counted_s3.requests.clear()
    cached.copy_version(version, tmp_path / "second")
    assert counted_s3.gets_under(bucket, "m/churn/1/") == []
    assert counted_s3.requests == []  # not even a listing: the pin names the bytes
    for copy in ("first", "second"):
        assert saved_model_digest(tmp_path / copy) == version.digest
        assert modes(tmp_path / copy) == {0o700, 0o600}  # the worker's private copies
    assert modes(entry_of(cache, version)) == {0o555, 0o444}


def test_a_second_evaluation_through_the_wiring_downloads_nothing(
        counted_s3: CountedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `promoter serve` and `reconcile` build: the evaluator over
    `build_evaluation_store` of an s3:// store, cache in $PROMOTER_CACHE_DIR/models. The
    worker is replaced (it needs TensorFlow): it is handed the directories and digests."""
    import promoter.evaluation
    from promoter.promotion.evaluator import SubprocessEvaluator

    bucket, store, candidate = s3_version(counted_s3, version=2)
    upload(counted_s3.server, bucket, "m/churn/1", {**SAVED, "saved_model.pb": b"graph 1"})
    baseline = store.get("churn", 1)
    monkeypatch.setenv("PROMOTER_CACHE_DIR", str(tmp_path / "cache"))
    evaluator = SubprocessEvaluator(build_evaluation_store(
        settings_with(tmp_path, f"  url: s3://{bucket}/m\n"), store))
    seen: list[tuple[str | None, str | None]] = []

    def worker(**kwargs: Any) -> str:
        seen.append((saved_model_digest(kwargs["candidate_dir"]), kwargs["baseline_digest"]))
        return "report"

    monkeypatch.setattr(promoter.evaluation, "evaluate_models", worker)
    gets = []
    for _ in range(2):
        counted_s3.requests.clear()
        evaluator.evaluate(candidate=candidate, baseline=baseline,
                           holdout=tmp_path / "holdout.csv", model=ModelSpec(name="churn"),
                           policy=EvaluationPolicy(), environment="dev")
        gets.append(len(counted_s3.gets_under(bucket, "m/churn/")))
    assert gets == [2 * len(SAVED), 0]
    assert seen == [(candidate.digest, baseline.digest)] * 2
    assert sorted(os.listdir(tmp_path / "cache" / "models" / "entries")) == sorted(
        v.digest.removeprefix("sha256:") for v in (candidate, baseline))


def test_a_tampered_cache_entry_is_detected_and_fetched_again(
        counted_s3: CountedS3, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bucket, store, version = s3_version(counted_s3)
    cache = ModelCache(tmp_path / "cache")
    cached = CachedModelStore(store, cache)
    cached.copy_version(version, tmp_path / "first")
    shard = entry_of(cache, version) / "variables" / "variables.data-00000-of-00001"
    shard.chmod(0o644)  # the owner can always do this: read-only is no protection alone
    shard.write_bytes(b"\x02" * 4096)  # same size: only the digest tells
    counted_s3.requests.clear()
    with caplog.at_level(logging.WARNING, "promoter.model_store.model_cache"):
        cached.copy_version(version, tmp_path / "second")
    assert "not its name" in caplog.text
    assert saved_model_digest(tmp_path / "second") == version.digest
    assert len(counted_s3.gets_under(bucket, "m/churn/1/")) == len(SAVED)  # refetched
    assert saved_model_digest(entry_of(cache, version)) == version.digest
    assert modes(entry_of(cache, version)) == {0o555, 0o444}


def test_an_extra_file_in_a_cache_entry_is_tampering_too(
        counted_s3: CountedS3, tmp_path: Path) -> None:
    _, store, version = s3_version(counted_s3)
    cache = ModelCache(tmp_path / "cache")
    cached = CachedModelStore(store, cache)
    cached.copy_version(version, tmp_path / "first")
    entry = entry_of(cache, version)
    entry.chmod(0o755)
    (entry / "assets" / "evil.txt").parent.chmod(0o755)
    (entry / "assets" / "evil.txt").write_text("not in the version")
    cached.copy_version(version, tmp_path / "second")
    assert not (tmp_path / "second" / "assets" / "evil.txt").exists()
    assert saved_model_digest(tmp_path / "second") == version.digest


def test_a_warm_entry_is_the_pinned_bytes_even_when_the_store_is_rewritten(
        counted_s3: CountedS3, tmp_path: Path) -> None:
    """The pin is the digest, and the entry is named by it and checked against it: a store
    object rewritten after the version was cached does not change what an evaluation of
    the pinned digest reads (the evaluation gate has compared the store's digest with the
    proposal's before it asks for a copy, and fails the gate on a rewrite)."""
    bucket, store, version = s3_version(counted_s3)
    cached = CachedModelStore(store, ModelCache(tmp_path / "cache"))
    cached.copy_version(version, tmp_path / "first")
    counted_s3.server.put(bucket, "m/churn/1/saved_model.pb", b"rewritten")
    cached.copy_version(version, tmp_path / "second")
    assert (tmp_path / "second" / "saved_model.pb").read_bytes() == SAVED["saved_model.pb"]


def test_a_version_rewritten_before_it_is_cached_is_refused_and_never_lands(
        counted_s3: CountedS3, tmp_path: Path) -> None:
    bucket, store, version = s3_version(counted_s3)
    counted_s3.server.put(bucket, "m/churn/1/saved_model.pb", b"rewritten")  # after get()
    cache = ModelCache(tmp_path / "cache")
    with pytest.raises(DigestMismatchError) as caught:
        CachedModelStore(store, cache).copy_version(version, tmp_path / "copy")
    assert version.digest in caught.value.message
    assert "not evaluated, not cached" in caught.value.message
    assert not (tmp_path / "copy").exists()
    assert os.listdir(cache.directory / "tmp") == []
    assert not (cache.directory / "entries").exists() or os.listdir(
        cache.directory / "entries") == []
    assert os.listdir(cache.directory / "locks") == []  # nor does its lock file stay


class FailingStore:
    """A local store whose downloads break half-way (a dropped connection)."""

    def __init__(self, store: LocalModelStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def copy_version(self, version: ModelVersion, destination: Path) -> None:
        destination.mkdir(mode=0o700)
        (destination / "saved_model.pb").write_bytes(b"gra")
        raise ModelStoreError("connection reset while downloading", fix="retry")


def local_versions(root: Path, count: int, size: int = 1000) -> LocalModelStore:
    for version in range(1, count + 1):
        path = root / "churn" / str(version)
        (path / "variables").mkdir(parents=True)
        (path / "saved_model.pb").write_bytes(bytes([version]) * size)
        (path / "variables" / "variables.index").write_bytes(b"i")
    return LocalModelStore(root)


def test_a_partial_download_never_lands(tmp_path: Path) -> None:
    store = local_versions(tmp_path / "store", 1)
    version = store.get("churn", 1)
    cache = ModelCache(tmp_path / "cache")
    with pytest.raises(ModelStoreError, match="connection reset"):
        cache.copy_out(FailingStore(store), version, tmp_path / "copy")  # type: ignore[arg-type]
    assert not entry_of(cache, version).exists()
    assert os.listdir(cache.directory / "tmp") == []
    cache.copy_out(store, version, tmp_path / "copy")  # and the next attempt works
    assert saved_model_digest(tmp_path / "copy") == version.digest


def test_the_least_recently_used_entry_is_evicted_first(tmp_path: Path) -> None:
    store = local_versions(tmp_path / "store", 3)
    one, two, three = (store.get("churn", v) for v in (1, 2, 3))
    cache = ModelCache(tmp_path / "cache", max_bytes=2 * 1001)  # two versions fit
    for index, version in enumerate((one, two, one, three)):
        cache.copy_out(store, version, tmp_path / f"copy-{index}")
    assert sorted(e.digest_hex for e in cache.entries()) == sorted(
        v.digest.removeprefix("sha256:") for v in (one, three))


def test_an_evicted_entry_takes_its_lock_file_with_it(tmp_path: Path) -> None:
    # 50 versions through a cache that holds two: lock files must not pile up one per
    # version ever evaluated.
    store = local_versions(tmp_path / "store", 50)
    cache = ModelCache(tmp_path / "cache", max_bytes=2 * 1001)
    for number in range(1, 51):
        cache.copy_out(store, store.get("churn", number), tmp_path / f"copy-{number}")
    assert sorted(os.listdir(cache.directory / "locks")) == sorted(
        e.digest_hex for e in cache.entries())
    assert len(cache.entries()) == 2


def test_a_lock_file_removed_while_another_waits_for_it_is_locked_again(
        tmp_path: Path) -> None:
    """The race that removing lock files opens: B opens the lock file and waits; A, holding
    it, removes it (evicting) and lets go; B now holds a file no longer in `locks/`, and C,
    opening the path, would create and lock a second one: two exclusive holders of one
    digest. B must see that and lock the file at the path again, so C finds it held."""
    cache = ModelCache(tmp_path / "cache")
    digest = "ab" * 32
    b_holds, b_may_go = threading.Event(), threading.Event()

    def b() -> None:
        with cache._locked(digest, exclusive=True) as held:
            assert held
            b_holds.set()
            b_may_go.wait(10)

    with cache._locked(digest, exclusive=True) as held:
        assert held
        waiter = threading.Thread(target=b)
        waiter.start()
        assert not b_holds.wait(0.5)  # B has opened the file and waits for it
        cache._remove_lock(digest)  # as eviction does, holding it
    assert b_holds.wait(10)
    try:
        with cache._locked(digest, exclusive=True, wait=False) as c_held:
            assert not c_held  # C finds the digest held by B
    finally:
        b_may_go.set()
        waiter.join(10)
    with cache._locked(digest, exclusive=True, wait=False) as c_held:
        assert c_held


def test_an_entry_in_use_is_never_evicted(tmp_path: Path) -> None:
    """An evaluation copying out of an entry holds its lock shared (here: held by the test,
    as another process would); eviction passes it by and takes it once it is free."""
    store = local_versions(tmp_path / "store", 3)
    one, two, three = (store.get("churn", v) for v in (1, 2, 3))
    cache = ModelCache(tmp_path / "cache", max_bytes=1001)  # one version fits
    cache.copy_out(store, one, tmp_path / "copy-1")
    with (cache.directory / "locks" / one.digest.removeprefix("sha256:")).open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        cache.copy_out(store, two, tmp_path / "copy-2")
        assert entry_of(cache, one).is_dir()  # in use: kept, though least recently used
        assert not entry_of(cache, two).exists()  # the bound holds for what is not in use
    cache.copy_out(store, three, tmp_path / "copy-3")
    assert [e.digest_hex for e in cache.entries()] == [three.digest.removeprefix("sha256:")]


def test_two_evaluations_of_one_version_at_once_download_it_once(
        counted_s3: CountedS3, tmp_path: Path) -> None:
    bucket, store, version = s3_version(counted_s3)
    cached = CachedModelStore(store, ModelCache(tmp_path / "cache"))
    counted_s3.requests.clear()
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def evaluate(index: int) -> None:
        start.wait()
        try:
            cached.copy_version(version, tmp_path / f"copy-{index}")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=evaluate, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(counted_s3.gets_under(bucket, "m/churn/1/")) == len(SAVED)
    for index in range(4):
        assert saved_model_digest(tmp_path / f"copy-{index}") == version.digest


def test_leftovers_of_a_killed_download_are_removed(tmp_path: Path) -> None:
    store = local_versions(tmp_path / "store", 1)
    version = store.get("churn", 1)
    cache = ModelCache(tmp_path / "cache")
    leftover = cache.directory / "tmp" / f"{'0' * 64}.abc123" / "version"
    leftover.mkdir(parents=True)
    (leftover / "saved_model.pb").write_bytes(b"half")
    leftover.chmod(0o555)
    cache.copy_out(store, version, tmp_path / "copy")
    assert os.listdir(cache.directory / "tmp") == []


def settings_with(tmp_path: Path, model_store: str) -> Any:
    """The example promoter.yaml with `modelStore:` replaced by `model_store`."""
    from tests.conftest import REPO_ROOT

    text = (REPO_ROOT / "promoter.yaml").read_text()
    head, _, rest = text.partition("modelStore:\n")
    tail = rest[rest.index("\n", rest.index("url:")) + 1:]
    root = tmp_path / "config"
    root.mkdir(parents=True)
    for sub in ("environments", "policies", "manifests"):
        os.symlink(REPO_ROOT / sub, root / sub)
    (root / "promoter.yaml").write_text(f"{head}modelStore:\n{model_store}{tail}")
    return load_settings(root / "promoter.yaml")


def test_the_bound_is_a_setting_and_a_local_store_is_never_cached(tmp_path: Path) -> None:
    store = LocalModelStore(tmp_path)
    evaluation_store = build_evaluation_store(
        settings_with(tmp_path, "  url: s3://models/m\n  evaluationCacheGiB: 0.5\n"), store)
    assert isinstance(evaluation_store, CachedModelStore)
    assert evaluation_store.cache.max_bytes == 1 << 29
    default = build_evaluation_store(settings_with(tmp_path / "b", "  url: s3://models/m\n"),
                                     store)
    assert isinstance(default, CachedModelStore)
    assert default.cache.max_bytes == 20 << 30
    assert build_evaluation_store(settings_with(tmp_path / "c", "  url: ./models\n"),
                                  store) is store
    assert build_evaluation_store(settings_with(
        tmp_path / "d", "  url: s3://models/m\n  evaluationCacheGiB: 0\n"), store) is store


def test_a_bad_bound_names_the_file_and_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_with(tmp_path, "  url: s3://models/m\n  evaluationCacheGiB: lots\n")
    assert caught.value.exit_code == 2
    assert "modelStore.evaluationCacheGiB" in str(caught.value)
    assert "promoter.yaml" in str(caught.value)


def test_an_existing_destination_is_refused_and_left_alone(tmp_path: Path) -> None:
    store = local_versions(tmp_path / "store", 1)
    version = store.get("churn", 1)
    cache = ModelCache(tmp_path / "cache")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("someone's")
    for _ in ("cold", "warm"):
        with pytest.raises(ModelStoreError, match="must not exist"):
            cache.copy_out(store, version, taken)
        assert (taken / "mine.txt").read_text() == "someone's"
    assert entry_of(cache, version).is_dir()  # the verified download is kept for next time


def test_a_digest_that_is_no_sha256_is_refused_before_any_path_is_made(
        tmp_path: Path) -> None:
    store = local_versions(tmp_path / "store", 1)
    version = store.get("churn", 1)
    cache = ModelCache(tmp_path / "cache")
    for bad in ("sha256:../../etc", "md5:" + "0" * 64, "sha256:" + "A" * 64):
        forged = ModelVersion(name="churn", version=1, digest=bad, uri=version.uri)
        with pytest.raises(ModelStoreError, match="is not a sha256: digest"):
            cache.copy_out(store, forged, tmp_path / "copy")
    assert not cache.directory.exists()


CHILD = """
import sys
from pathlib import Path
from promoter.domain.model_versions import ModelVersion
from promoter.model_store.model_cache import CachedModelStore, ModelCache
from promoter.model_store.objects import ObjectModelStore

url, digest, cache, dest = sys.argv[1:]
store = CachedModelStore(ObjectModelStore(url), ModelCache(Path(cache)))
sys.stdin.readline()  # start together
store.copy_version(ModelVersion(name="churn", version=1, digest=digest,
                                uri=url + "/churn/1"), Path(dest))
"""


def test_two_processes_evaluating_one_version_at_once_download_it_once(
        counted_s3: CountedS3, tmp_path: Path) -> None:
    """`promoter serve` and a `promoter reconcile` from a terminal share the cache: the
    per-digest lock is a file lock, so it holds between processes as between threads."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    files = {**SAVED, "variables/variables.data-00000-of-00001": os.urandom(8 << 20)}
    bucket, _, version = s3_version(counted_s3, files)
    counted_s3.requests.clear()
    children = [subprocess.Popen(
        [sys.executable, "-c", CHILD, counted_s3.server.url(bucket, "m"), version.digest,
         str(tmp_path / "cache"), str(tmp_path / f"copy-{index}")],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}) for index in range(2)]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    # One download: one GET per object (the 8 MiB shard is one ranged read of 64 MiB).
    assert sorted(counted_s3.gets_under(bucket, "m/churn/1/")) == sorted(
        f"/{bucket}/m/churn/1/{rel}" for rel in files)
    for index in range(2):
        assert saved_model_digest(tmp_path / f"copy-{index}") == version.digest


@pytest.mark.slow
def test_a_second_real_evaluation_from_s3_reads_no_model_object(
        counted_s3: CountedS3, demo_store: dict[int, Path], demo_model_spec: ModelSpec,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same through the real worker (TensorFlow scoring the demo's SavedModels, uploaded
    to the S3 server on loopback): the second evaluation of the same pair sends no GET for a
    model object, and both reports carry the digests the versions pin and the same verdict."""
    from promoter.demo_data import write_holdout_csv
    from promoter.promotion.evaluator import SubprocessEvaluator

    bucket = counted_s3.server.new_bucket()
    for number in (1, 2):
        root = demo_store[number]
        upload(counted_s3.server, bucket, f"m/churn/{number}",
               {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
                if p.is_file()})
    store = ObjectModelStore(counted_s3.server.url(bucket, "m"))
    baseline, candidate = store.get("churn", 1), store.get("churn", 2)
    assert candidate.digest == saved_model_digest(demo_store[2])  # one digest definition
    monkeypatch.setenv("PROMOTER_CACHE_DIR", str(tmp_path / "cache"))
    evaluator = SubprocessEvaluator(build_evaluation_store(
        settings_with(tmp_path, f"  url: s3://{bucket}/m\n"), store), shards=1)
    holdout = write_holdout_csv(tmp_path / "holdout.csv", 2000, seed=4)
    policy = EvaluationPolicy.model_validate(
        {"metrics": [{"name": "auc", "vsBaseline": {"maxRegression": 0.05}}]})
    gets, reports = [], []
    for _ in range(2):
        counted_s3.requests.clear()
        reports.append(evaluator.evaluate(candidate=candidate, baseline=baseline,
                                          holdout=holdout, model=demo_model_spec,
                                          policy=policy, environment="dev"))
        gets.append(len(counted_s3.gets_under(bucket, "m/churn/")))
    model_files = sum(1 for n in (1, 2) for p in demo_store[n].rglob("*") if p.is_file())
    assert gets == [model_files, 0]
    for report in reports:
        assert report.candidate.digest == candidate.digest
        assert report.baseline is not None
        assert report.baseline.digest == baseline.digest
        assert report.candidate.rows == 2000
    assert reports[0].passed == reports[1].passed
    assert reports[0].candidate.metrics == reports[1].candidate.metrics
