"""Object-store model stores against real local servers (moto's S3, gcp-storage-emulator's
GCS) with the real clients: the digest across stores, its cache, discovery without mtimes, the
private download, and what never reaches a log or a config file. The contract every store
passes is in tests/contract/test_model_store_contract.py."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from promoter.config import load_settings
from promoter.config.schema import ModelSpec
from promoter.errors import ConfigError, ModelStoreError
from promoter.model_store import LocalModelStore, saved_model_digest
from promoter.model_store.objects import (
    DigestCache,
    ObjectModelStore,
    object_filesystem,
    parse_object_url,
)
from promoter.promotion.discovery import EnvironmentFacts, plan_proposals
from promoter.wiring import build_store
from tests.fakes.clock import ManualClock
from tests.fixtures.object_stores import SECRET, ObjectServer

SAVED = {"saved_model.pb": b"graph", "variables/variables.index": b"index",
         "variables/variables.data-00000-of-00001": b"\x01" * 4096,
         "assets/vocab.txt": b"a\nb\n"}


@pytest.fixture(params=["s3", "gcs"])
def server(request: pytest.FixtureRequest) -> ObjectServer:
    found: ObjectServer = request.getfixturevalue(f"{request.param}_server")
    return found


class CountingFilesystem:
    """The real fsspec filesystem, counting the objects opened (each open is a read)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.opened: list[str] = []

    def open(self, path: str, *args: Any, **kwargs: Any) -> Any:
        self.opened.append(path)
        return self.inner.open(path, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def upload(server: ObjectServer, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        server.put(bucket, f"{prefix}/{rel}", data)


def counting_store(server: ObjectServer, bucket: str, **kwargs: Any
                   ) -> tuple[ObjectModelStore, CountingFilesystem]:
    fs = CountingFilesystem(object_filesystem(server.scheme))
    return ObjectModelStore(server.url(bucket, "m"), filesystem=fs, **kwargs), fs


# --- the digest ------------------------------------------------------------------------------


def test_a_version_copied_from_local_disk_keeps_its_digest(server: ObjectServer,
                                                           tmp_path: Path) -> None:
    local = tmp_path / "store" / "churn" / "4"
    for rel, data in SAVED.items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
    local_version = LocalModelStore(tmp_path / "store").get("churn", 4)
    bucket = server.new_bucket()
    server.put(bucket, "m/churn/4/variables/", b"")  # a console's "folder": not a file
    for path in sorted(local.rglob("*")):
        if path.is_file():
            server.put(bucket, f"m/churn/4/{path.relative_to(local).as_posix()}",
                       path.read_bytes())
    remote = ObjectModelStore(server.url(bucket, "m")).get("churn", 4)
    assert remote.digest == local_version.digest
    assert remote.uri == f"{server.url(bucket, 'm')}/churn/4"


def test_a_version_read_in_many_ranged_reads_has_the_local_digest(
        server: ObjectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both servers serve ranged reads as the clients make them (a large shard is read in
    `BLOCK_BYTES` blocks): with 64 KiB blocks a 300 kB shard takes five, and the digest and
    the downloaded copy are still the local ones."""
    import promoter.model_store.object_clients as objects

    monkeypatch.setattr(objects, "BLOCK_BYTES", 64 << 10)
    shard = bytes(range(256)) * 1200
    files = {**SAVED, "variables/variables.data-00000-of-00001": shard}
    local = tmp_path / "store" / "churn" / "1"
    for rel, data in files.items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
    bucket = server.new_bucket()
    upload(server, bucket, "m/churn/1", files)
    store = ObjectModelStore(server.url(bucket, "m"))
    version = store.get("churn", 1)
    assert version.digest == saved_model_digest(local)
    store.copy_version(version, tmp_path / "copy")
    assert (tmp_path / "copy" / "variables" / "variables.data-00000-of-00001").read_bytes() \
        == shard


def test_a_resync_reads_no_object_and_a_rewritten_one_is_read_again(
        server: ObjectServer, tmp_path: Path) -> None:
    bucket = server.new_bucket()
    upload(server, bucket, "m/churn/1", SAVED)
    store, fs = counting_store(server, bucket)
    first = store.get("churn", 1)
    assert len(fs.opened) == len(SAVED)
    assert store.get("churn", 1).digest == first.digest
    assert len(fs.opened) == len(SAVED)  # listed only: the stamps are the same
    server.put(bucket, "m/churn/1/variables/variables.index", b"INDEX")  # same size
    changed = store.get("churn", 1)
    assert changed.digest != first.digest
    assert len(fs.opened) == 2 * len(SAVED)
    server.put(bucket, "m/churn/1/variables/variables.index", b"index")  # and back
    assert store.get("churn", 1).digest == first.digest


def test_the_digest_cache_on_disk_serves_a_new_process(server: ObjectServer,
                                                       tmp_path: Path) -> None:
    bucket = server.new_bucket()
    upload(server, bucket, "m/churn/1", SAVED)
    before, _ = counting_store(server, bucket, digest_cache=DigestCache(tmp_path / "digests"))
    digest = before.get("churn", 1).digest
    after, fs = counting_store(server, bucket, digest_cache=DigestCache(tmp_path / "digests"))
    assert after.get("churn", 1).digest == digest
    assert fs.opened == []
    entries = list((tmp_path / "digests").iterdir())
    assert len(entries) == 1
    assert entries[0].stat().st_mode & 0o077 == 0
    assert (tmp_path / "digests").stat().st_mode & 0o077 == 0


def test_an_object_rewritten_while_it_is_digested_is_an_error_not_a_cached_digest(
        s3_server: ObjectServer) -> None:
    bucket = s3_server.new_bucket()
    upload(s3_server, bucket, "m/churn/1", SAVED)

    class Rewriting(CountingFilesystem):
        def open(self, path: str, *args: Any, **kwargs: Any) -> Any:
            if not self.opened:
                s3_server.put(bucket, "m/churn/1/saved_model.pb", b"GRAPH")
            return super().open(path, *args, **kwargs)

    fs = Rewriting(object_filesystem("s3"))
    store = ObjectModelStore(s3_server.url(bucket, "m"), filesystem=fs)
    with pytest.raises(ModelStoreError, match="changed while it was digested"):
        store.get("churn", 1)
    assert len(fs.opened) == len(SAVED)
    store.get("churn", 1)  # nothing changes now: digested afresh, nothing was cached
    assert len(fs.opened) == 2 * len(SAVED)


# --- discovery -------------------------------------------------------------------------------


def proposals(store: ObjectModelStore, now: datetime) -> list[int]:
    model = ModelSpec.model_validate({"name": "churn",
                                      "promotion": {"autoPropose": ["dev"],
                                                    "settleSeconds": 60}})
    plan = plan_proposals(models=[model], environments=[EnvironmentFacts("dev", None, None)],
                          store={"churn": store.scan_versions("churn")}, now=now)
    return [p.version for p in plan.proposals]


def test_discovery_waits_the_settle_time_from_the_last_change_it_saw(
        server: ObjectServer) -> None:
    bucket = server.new_bucket()
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = ObjectModelStore(server.url(bucket, "m"), clock=clock)
    upload(server, bucket, "m/churn/2", {"saved_model.pb": b"graph"})
    assert proposals(store, clock.now) == []  # no variables/ yet
    upload(server, bucket, "m/churn/2", {"variables/variables.index": b"index"})
    clock.now += timedelta(seconds=30)
    assert proposals(store, clock.now) == []  # complete, but seen so only now
    clock.now += timedelta(seconds=59)
    assert proposals(store, clock.now) == []
    upload(server, bucket, "m/churn/2", {"variables/variables.data-00000-of-00001": b"d"})
    clock.now += timedelta(seconds=30)
    assert proposals(store, clock.now) == []  # another shard: the wait starts again
    clock.now += timedelta(seconds=60)
    assert proposals(store, clock.now) == [2]


def test_a_completion_marker_ends_the_wait(server: ObjectServer) -> None:
    bucket = server.new_bucket()
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = ObjectModelStore(server.url(bucket, "m"), clock=clock,
                             completion_marker="_COMPLETE")
    upload(server, bucket, "m/churn/3", SAVED)
    assert proposals(store, clock.now) == []
    server.put(bucket, "m/churn/3/_COMPLETE", b"")
    assert proposals(store, clock.now) == [3]
    server.put(bucket, "m/churn/4/_COMPLETE", b"")  # a marker alone is no SavedModel
    assert proposals(store, clock.now) == [3]


# --- the private copy ------------------------------------------------------------------------


def test_the_evaluation_copy_is_private_and_has_the_digest(server: ObjectServer,
                                                           tmp_path: Path) -> None:
    bucket = server.new_bucket()
    upload(server, bucket, "m/churn/1", SAVED)
    store = ObjectModelStore(server.url(bucket, "m"))
    version = store.get("churn", 1)
    store.copy_version(version, tmp_path / "copy")
    assert saved_model_digest(tmp_path / "copy") == version.digest
    modes = {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777
             for p in (tmp_path / "copy", *(tmp_path / "copy").rglob("*"))}
    assert set(modes.values()) <= {0o700, 0o600}, modes


def test_a_key_that_is_no_file_path_is_refused(s3_server: ObjectServer,
                                               tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    upload(s3_server, bucket, "m/churn/1", SAVED)
    s3_server.put(bucket, "m/churn/1/variables/../../escape", b"x")
    store = ObjectModelStore(s3_server.url(bucket, "m"))
    with pytest.raises(ModelStoreError, match="no file path"):
        store.get("churn", 1)
    assert not (tmp_path / "escape").exists()


# --- configuration and credentials -------------------------------------------------------------


@pytest.mark.parametrize("url", ["s3://AKIAEXAMPLE:hunter2@models/prefix",
                                 "gs://models/prefix?access_token=hunter2",
                                 "s3://models/prefix#hunter2"])
def test_a_url_with_credentials_is_refused_without_repeating_them(url: str) -> None:
    with pytest.raises(ModelStoreError, match="credentials or options") as caught:
        parse_object_url(url)
    assert "hunter2" not in str(caught.value)


def test_the_secret_key_reaches_no_log_line(s3_server: ObjectServer, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    bucket = s3_server.new_bucket()
    upload(s3_server, bucket, "m/churn/1", SAVED)
    with caplog.at_level(logging.DEBUG):
        store = ObjectModelStore(s3_server.url(bucket, "m"))
        store.copy_version(store.get("churn", 1), tmp_path / "copy")
        store.scan_versions("churn")
    assert caplog.records  # botocore and s3fs did log, at debug level
    assert SECRET not in caplog.text


def test_an_unreachable_endpoint_is_a_store_error_with_a_fix(
        s3_server: ObjectServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, retries=1)
    store = ObjectModelStore("s3://models-absent/m", filesystem=fs)
    with pytest.raises(ModelStoreError) as caught:
        store.get("churn", 1)
    assert "s3://models-absent/m/churn/1" in caught.value.message
    assert "AWS_ENDPOINT_URL" in (caught.value.fix or "")
    assert store.scan_versions("churn") == []  # discovery logs it and goes on


@pytest.fixture
def hung_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[int]]]:
    """A loopback server that accepts every connection, reads the request and never
    answers: a store that hangs. Yields its URL and the count of connections it took."""
    import promoter.model_store.object_clients as objects

    monkeypatch.setattr(objects, "CONNECT_TIMEOUT_S", 0.5)
    monkeypatch.setattr(objects, "READ_TIMEOUT_S", 0.5)
    monkeypatch.setattr(objects, "ATTEMPTS", 2)
    monkeypatch.setattr(objects, "BODY_ATTEMPTS", 1)  # gcsfs: always its own 6 (about 37 s)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[int] = []
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            held.append(connection)  # kept open, never answered

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        server.close()


def test_a_store_that_hangs_times_out_and_is_retried_then_fails_with_a_fix(
        server: ObjectServer, hung_store: tuple[str, list[int]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With promoter's own client settings (object_filesystem), not a test's: every request
    has a timeout, and a failed one is tried again before the error."""
    url, accepted = hung_store
    monkeypatch.setenv("AWS_ENDPOINT_URL" if server.scheme == "s3" else "STORAGE_EMULATOR_HOST",
                       url)
    store = ObjectModelStore(f"{server.scheme}://models-hung/m")
    started = time.monotonic()
    with pytest.raises(ModelStoreError) as caught:
        store.get("churn", 1)
    assert time.monotonic() - started < 60
    assert len(accepted) >= 2, caught.value.message  # retried
    assert f"{server.scheme}://models-hung/m/churn/1" in caught.value.message
    assert "timeout" in caught.value.message.lower()


def settings_with_store(tmp_path: Path, store: str) -> Path:
    path = tmp_path / "promoter.yaml"
    path.write_text(f"modelStore:\n{store}\nmodels: [{{name: churn}}]\nenvironments: [dev]\n")
    return path


def test_promoter_yaml_names_an_object_store_and_its_marker(
        s3_server: ObjectServer, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    upload(s3_server, bucket, "m/churn/1", SAVED)
    loaded = load_settings(settings_with_store(
        tmp_path, f"  url: s3://{bucket}/m\n  completionMarker: _COMPLETE"))
    store = build_store(loaded, environ={"PROMOTER_CACHE_DIR": str(tmp_path / "cache")})
    assert isinstance(store, ObjectModelStore)
    assert store.completion_marker == "_COMPLETE"
    store.get("churn", 1)
    assert len(list((tmp_path / "cache" / "digests").iterdir())) == 1


@pytest.mark.parametrize(("store", "problem"), [
    ("  url: s3://KEY:SECRET@bucket/m", "credentials or options"),
    ("  url: ftp://bucket/m", "not a model store URL"),
])
def test_promoter_yaml_with_an_unusable_store_url_is_a_config_error(
        tmp_path: Path, store: str, problem: str) -> None:
    loaded = load_settings(settings_with_store(tmp_path, store))
    with pytest.raises(ConfigError, match=problem) as caught:
        build_store(loaded, environ={})
    assert caught.value.field == "modelStore.url"
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize("store", ["  url: s3://bucket/m\n  secretAccessKey: abc",
                                   "  url: s3://bucket/m\n  completionMarker: variables",
                                   "  url: s3://bucket/m\n  completionMarker: a/b"])
def test_promoter_yaml_takes_no_credential_and_no_odd_marker(tmp_path: Path,
                                                             store: str) -> None:
    with pytest.raises(ConfigError, match="modelStore"):
        load_settings(settings_with_store(tmp_path, store))


@pytest.mark.parametrize("uri", ["s3://AKIAEXAMPLE:hunter2@models", "gs://models/p?token=x",
                                 "s3://models/p#x"])
def test_a_model_base_uri_with_credentials_is_refused(uri: str) -> None:
    from pydantic import ValidationError

    from promoter.config.schema import ServingSpec

    with pytest.raises(ValidationError, match="must not carry credentials"):
        ServingSpec.model_validate({"modelBaseUri": uri})
    assert ServingSpec.model_validate({"modelBaseUri": "s3://models/p",
                                       "fetchImage": "r.example/fetch:1"}).model_base_uri


# --- evaluation --------------------------------------------------------------------------------


def test_the_evaluator_scores_a_private_download_and_reports_its_digest(
        server: ObjectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluator's copy step with an object store: both models are downloaded into its
    0700 directory and digested there; the worker (replaced here: it needs TensorFlow) is
    given those directories and those digests, never the store's say-so."""
    import promoter.evaluation
    from promoter.config.schema import EvaluationPolicy
    from promoter.promotion.evaluator import SubprocessEvaluator

    bucket = server.new_bucket()
    upload(server, bucket, "m/churn/1", SAVED)
    upload(server, bucket, "m/churn/2", {**SAVED, "saved_model.pb": b"graph 2"})
    store = ObjectModelStore(server.url(bucket, "m"))
    candidate, baseline = store.get("churn", 2), store.get("churn", 1)
    server.put(bucket, "m/churn/2/saved_model.pb", b"GRAPH 2")  # rewritten after get()
    seen: dict[str, Any] = {}

    def worker(**kwargs: Any) -> str:
        for name in ("candidate", "baseline"):
            path = kwargs[f"{name}_dir"]
            seen[name] = (saved_model_digest(path), kwargs[f"{name}_digest"],
                          path.parent.stat().st_mode & 0o777)
        return "report"

    monkeypatch.setattr(promoter.evaluation, "evaluate_models", worker)
    report = SubprocessEvaluator(store).evaluate(
        candidate=candidate, baseline=baseline, holdout=tmp_path / "holdout.csv",
        model=ModelSpec(name="churn"), policy=EvaluationPolicy(), environment="dev")
    assert report == "report"
    read, reported, mode = seen["candidate"]
    assert read == reported != candidate.digest  # the gate then voids the verdict
    assert mode == 0o700
    assert seen["baseline"][:2] == (baseline.digest, baseline.digest)
