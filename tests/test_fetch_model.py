"""`promoter-fetch-model`, the serving pods' init container: copies exactly the pinned version
and refuses any other bytes (against moto's S3 and gcp-storage-emulator's GCS on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from promoter.model_store import LocalModelStore, saved_model_digest
from promoter.model_store.fetch import DigestMismatchError, fetch_version, main
from promoter.model_store.objects import ObjectModelStore
from tests.conftest import REPO_ROOT
from tests.fixtures.object_stores import ObjectServer
from tests.test_object_model_store import SAVED, CountingFilesystem, upload


@pytest.fixture(params=["s3", "gcs"])
def server(request: pytest.FixtureRequest) -> ObjectServer:
    found: ObjectServer = request.getfixturevalue(f"{request.param}_server")
    return found


def stored_version(server: ObjectServer) -> tuple[str, str, str]:
    """A bucket holding churn v3; returns (bucket, the model base path, its digest)."""
    bucket = server.new_bucket()
    upload(server, bucket, "m/churn/3", SAVED)
    digest = ObjectModelStore(server.url(bucket, "m")).get("churn", 3).digest
    return bucket, server.url(bucket, "m/churn"), digest


def test_the_pinned_version_is_copied_verified_and_read_only(
        server: ObjectServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, base, digest = stored_version(server)
    into = tmp_path / "verified-models" / "churn"
    assert main(["--from", base, "--version", "3", "--digest", digest,
                 "--into", str(into)]) == 0
    assert saved_model_digest(into / "3") == digest
    assert sorted(p.name for p in into.iterdir()) == ["3"]  # nothing else, no partial copy
    modes = {p.stat().st_mode & 0o777 for p in (into / "3").rglob("*")}
    assert modes == {0o444, 0o555}
    assert f"{digest} verified" in capsys.readouterr().err


def test_a_tampered_object_is_refused_and_nothing_is_left_to_serve(
        server: ObjectServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bucket, base, digest = stored_version(server)
    server.put(bucket, "m/churn/3/variables/variables.index", b"INDEX")  # after evaluation
    into = tmp_path / "verified-models" / "churn"
    assert main(["--from", base, "--version", "3", "--digest", digest,
                 "--into", str(into)]) == 1
    err = capsys.readouterr().err
    assert "refusing to serve it" in err
    assert digest in err
    assert list(into.iterdir()) == []


def test_an_extra_object_is_tampering_too(s3_server: ObjectServer, tmp_path: Path) -> None:
    bucket, base, digest = stored_version(s3_server)
    s3_server.put(bucket, "m/churn/3/assets/extra.txt", b"planted")
    with pytest.raises(DigestMismatchError):
        fetch_version(base, 3, digest=digest, into=tmp_path / "into")


def test_a_restarted_pod_keeps_its_verified_copy_and_replaces_a_bad_one(
        s3_server: ObjectServer, tmp_path: Path) -> None:
    bucket, base, digest = stored_version(s3_server)
    into = tmp_path / "into"
    fetch_version(base, 3, digest=digest, into=into)
    fs = CountingFilesystem(ObjectModelStore(s3_server.url(bucket, "m"))._fs)
    counted = ObjectModelStore(s3_server.url(bucket, "m"), filesystem=fs)
    assert fetch_version(base, 3, digest=digest, into=into, store=counted) == into / "3"
    assert fs.opened == []  # verified on disk, not downloaded again
    os.chmod(into / "3", 0o755)
    os.chmod(into / "3" / "saved_model.pb", 0o644)
    (into / "3" / "saved_model.pb").write_bytes(b"changed in the pod")
    fetch_version(base, 3, digest=digest, into=into, store=counted)
    assert saved_model_digest(into / "3") == digest
    assert len(fs.opened) == len(SAVED)


def test_a_local_store_path_with_nothing_mounted_says_what_to_mount(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    digest = "sha256:" + "0" * 64
    assert main(["--from", str(tmp_path / "models" / "churn"), "--version", "3",
                 "--digest", digest, "--into", str(tmp_path / "into")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err
    assert "serving.modelBaseUri" in err


def test_a_mounted_local_store_works_like_an_object_store(tmp_path: Path) -> None:
    version = tmp_path / "models" / "churn" / "3"
    for rel, data in SAVED.items():
        (version / rel).parent.mkdir(parents=True, exist_ok=True)
        (version / rel).write_bytes(data)
    digest = LocalModelStore(tmp_path / "models").get("churn", 3).digest
    path = fetch_version(str(tmp_path / "models" / "churn"), 3, digest=digest,
                         into=tmp_path / "into")
    assert saved_model_digest(path) == digest


@pytest.mark.parametrize("argv", [["--digest", "sha256:abc"], ["--digest", "md5:" + "0" * 64],
                                  ["--from", "churn"]])
def test_bad_arguments_exit_2(tmp_path: Path, argv: list[str],
                              capsys: pytest.CaptureFixture[str]) -> None:
    args = {"--from": "s3://models/churn", "--version": "3",
            "--digest": "sha256:" + "0" * 64, "--into": str(tmp_path)}
    args.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    assert main([item for pair in args.items() for item in pair]) == 2
    assert "fix:" in capsys.readouterr().err


NOT_IN_THE_FETCH_IMAGE = (
    "tensorflow", "keras", "numpy", "numba", "pydantic", "yaml", "jsonschema", "git",
    "github", "jwt", "kubernetes", "kubernetes_validate", "fastapi", "starlette", "uvicorn",
    "prometheus_client", "cronsim", "click")
"""promoter's dependencies that the Dockerfile's `fetch` target does not install."""

PROBE = f"""\
import runpy, sys
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in {NOT_IN_THE_FETCH_IMAGE!r}:
            raise ModuleNotFoundError(f'No module named {{name!r}}', name=name)
sys.meta_path.insert(0, NotInstalled())
sys.argv = ['promoter-fetch-model', *sys.argv[1:]]
runpy.run_module('promoter.model_store.fetch', run_name='__main__')
"""


@pytest.mark.parametrize(("case", "status", "said"), [
    ("pinned", 0, "verified"),
    ("tampered", 1, "refusing to serve it"),
    ("missing", 2, "not found"),
])
def test_the_command_runs_alone_as_in_its_slim_image(
        server: ObjectServer, tmp_path: Path, case: str, status: int, said: str) -> None:
    """As the init container runs it: a process of its own, credentials and endpoint from
    the environment only, with none of promoter's other dependencies importable (the fetch
    image has no TensorFlow, pydantic or numpy)."""
    bucket, base, digest = stored_version(server)
    if case == "tampered":
        server.put(bucket, "m/churn/3/saved_model.pb", b"GRAPH")
    elif case == "missing":
        for rel in SAVED:
            server.delete(bucket, f"m/churn/3/{rel}")
    into = tmp_path / "verified-models" / "churn"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--from", base, "--version", "3", "--digest", digest,
         "--into", str(into)],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == status, done.stderr
    assert said in done.stderr
    assert "Traceback" not in done.stderr
    served = sorted(p.name for p in into.iterdir()) if into.exists() else []
    assert served == (["3"] if status == 0 else [])
