"""Issue #17's end-to-end test: a version uploaded to a (local) S3 server is discovered,
evaluated, merged, and its rendered init container, run as a process, fetches exactly the
bytes whose digest the environment branch pins.

Everything is the real thing wired as promoter.yaml says (`wiring`): the model store and the
holdout are on moto's S3 server on loopback, found through `AWS_ENDPOINT_URL`; discovery
proposes the version; the evaluation gate scores the demo's trained SavedModel in the
confined worker, from its private download and the holdout's verified copy in the cache; the
local forge merges. Then the init container of the Deployment on `environments/dev` is run as
its own process with the command and arguments the manifest gives it, its emptyDir mount
standing for a temporary directory. Slow: TensorFlow scores the model in a child process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from promoter.config.loader import load_settings
from promoter.model_store import saved_model_digest
from promoter.promotion import PromotionState
from promoter.wiring import build_adapters, build_auto_proposer, build_service
from tests.conftest import REPO_ROOT
from tests.fakes.scripted import ScriptedEvaluator
from tests.fixtures.object_stores import ObjectServer
from tests.promotion.world import World, git

pytestmark = pytest.mark.slow


def upload_tree(server: ObjectServer, bucket: str, prefix: str, root: Path) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        server.put(bucket, f"{prefix}/{path.relative_to(root).as_posix()}", path.read_bytes())


def file_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_init_container(pod: dict[str, Any], volume_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run the `fetch-model` init container of `pod` as a process: its command (the console
    script `promoter-fetch-model`, i.e. `python -m promoter.model_store.fetch`) with its
    args, the emptyDir it mounts standing for `volume_dir`, and the pod's credentials from
    the environment (in the cluster: the `<model>-model-store` secret or the service
    account)."""
    (fetch,) = pod["initContainers"]
    assert fetch["command"] == ["promoter-fetch-model"]
    (mount,) = fetch["volumeMounts"]
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume == {"name": mount["name"], "emptyDir": {}}
    args = [arg.replace(f"={mount['mountPath']}/", f"={volume_dir}/") for arg in fetch["args"]]
    return subprocess.run([sys.executable, "-m", "promoter.model_store.fetch", *args],
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_an_uploaded_version_is_discovered_evaluated_merged_and_served_verified(
        tmp_path: Path, s3_server: ObjectServer, demo_store: dict[int, Path],
        demo_holdouts: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOTER_CACHE_DIR", str(tmp_path / "cache"))
    bucket = s3_server.new_bucket()
    holdout = demo_holdouts["dev"].read_bytes()
    s3_server.put(bucket, "data/churn-holdout-dev.csv", holdout)
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    world.commit_dry_change(
        "promoter.yaml", "  url: ./models ",
        f"  url: s3://{bucket}/models\n  completionMarker: _COMPLETE\n ")
    world.commit_dry_change(
        "promoter.yaml", "    labelColumn: churned\n",
        "    labelColumn: churned\n    promotion:\n      autoPropose: [dev]\n")
    world.commit_dry_change("environments/dev.yaml", "gs://example-ml-models",
                            f"s3://{bucket}/models")
    world.commit_dry_change(
        "environments/dev.yaml", "holdout: data/{model}-holdout-dev.csv",
        f"holdout: s3://{bucket}/data/{{model}}-holdout-dev.csv\n"
        f"  holdoutDigest: sha256:{hashlib.sha256(holdout).hexdigest()}")

    # The training pipeline uploads v1, the completion marker last.
    upload_tree(s3_server, bucket, "models/churn/1", demo_store[1])
    s3_server.put(bucket, "models/churn/1/_COMPLETE", b"")
    uploaded = {**file_bytes(demo_store[1]), "_COMPLETE": b""}

    loaded = load_settings(world.root / "promoter.yaml")
    adapters = build_adapters(loaded)
    service = build_service(loaded, adapters=adapters)
    discovery = build_auto_proposer(loaded, adapters=adapters, service=service).run()
    (made,) = discovery.attempts
    assert made.error is None, made.error
    assert (made.proposal.environment, made.proposal.version) == ("dev", 1)
    (outcome,) = service.reconcile()
    assert outcome.state is PromotionState.MERGED, outcome
    assert outcome.evaluated
    report = service.evaluation_report(outcome.pull_number) or ""
    assert hashlib.sha256(holdout).hexdigest() in report

    pinned = world.metadata("environments/dev")["promoter"]["digest"]
    # The worker scored a private copy of the verified entry in the evaluation's model cache.
    entry = tmp_path / "cache" / "models" / "entries" / pinned.removeprefix("sha256:")
    assert saved_model_digest(entry) == pinned
    deployment = yaml.safe_load(git(world.root, "show",
                                    "environments/dev:serving/deployment.yaml"))
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["template"]["metadata"]["annotations"][
        "promoter.dev/model-digest"] == pinned
    volume_dir = tmp_path / "pod" / "verified-models"
    done = run_init_container(pod, volume_dir)
    assert done.returncode == 0, done.stderr
    assert f"{pinned} verified" in done.stderr
    served = volume_dir / "churn" / "1"
    assert saved_model_digest(served) == pinned
    assert file_bytes(served) == uploaded  # exactly the uploaded bytes, nothing else
    config = yaml.safe_load(git(world.root, "show",
                                "environments/dev:serving/configmap.yaml"))
    assert 'base_path: "/verified-models/churn"' in config["data"]["models.config"]

    # The object is rewritten after the merge: a pod starting now refuses to serve it.
    s3_server.put(bucket, "models/churn/1/variables/variables.index", b"rewritten")
    again = run_init_container(pod, tmp_path / "pod2" / "verified-models")
    assert again.returncode == 1
    assert "refusing to serve it" in again.stderr
    assert not (tmp_path / "pod2" / "verified-models" / "churn" / "1").exists()
