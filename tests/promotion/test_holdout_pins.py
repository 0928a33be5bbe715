"""The evaluation gate's holdout: fetched from an object store into promoter's verified cache
(only that copy reaches the evaluator), and pinned by `evaluation.holdoutDigest` so that a
holdout changed behind the gate's back is refused, naming the file, both digests and the fix.
Against moto's S3 on loopback and a local file; the evaluator is scripted (it digests what it
is handed, as the worker does)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from promoter.config import DirectorySource, load_dry_config, load_settings
from promoter.domain.pull_requests import StatusState
from promoter.errors import ConfigError
from promoter.model_store.holdouts import Holdouts
from promoter.promotion import PromotionState
from tests.fakes.scripted import ScriptedEvaluator
from tests.fixtures.object_stores import ObjectServer
from tests.promotion.world import World, git

CSV = b"x,churned\n1,0\n0,1\n"
HOLDOUT = "holdout: data/{model}-holdout-dev.csv"


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = World(tmp_path / "world", ScriptedEvaluator())
    world.service = world.build(holdouts=Holdouts(resolve=lambda p: world.root / p,
                                                  cache_dir=tmp_path / "cache" / "holdouts"))
    return world


def reconcile_dev(world: World) -> tuple[PromotionState, str, str]:
    """Propose v1 to dev and reconcile: the state, the evaluation status's description and
    the report comment."""
    result = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    outcome = world.service.reconcile_pull(result.pull_request.number)
    gate = next(g for g in outcome.gates if g.context == "promoter/evaluation")
    report = world.service.evaluation_report(result.pull_request.number) or ""
    return outcome.state, gate.description if gate.state is StatusState.FAILURE else "", report


def test_a_holdout_in_s3_is_scored_from_its_verified_copy_in_the_cache(
        world: World, s3_server: ObjectServer, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    s3_server.put(bucket, "data/churn-holdout-dev.csv", CSV)
    world.commit_dry_change("environments/dev.yaml", HOLDOUT,
                            f"holdout: s3://{bucket}/data/{{model}}-holdout-dev.csv\n"
                            f"  holdoutDigest: {digest_of(CSV)}")
    state, _, _ = reconcile_dev(world)
    assert state is PromotionState.MERGED
    ((_, _, scored),) = world.evaluator.calls
    blobs = tmp_path / "cache" / "holdouts" / "blobs"
    assert scored == blobs / digest_of(CSV).removeprefix("sha256:") / "churn-holdout-dev.csv"
    assert scored.read_bytes() == CSV


def test_a_changed_holdout_object_is_refused_with_both_digests_and_the_fix(
        world: World, s3_server: ObjectServer) -> None:
    """The object was rewritten after its digest was pinned (a person, or a pipeline that
    re-exported it): nothing is scored, and the report says what to do."""
    bucket = s3_server.new_bucket()
    changed = CSV + b"1,1\n"
    s3_server.put(bucket, "data/churn-holdout-dev.csv", changed)
    url = f"s3://{bucket}/data/churn-holdout-dev.csv"
    world.commit_dry_change("environments/dev.yaml", HOLDOUT,
                            f"holdout: s3://{bucket}/data/{{model}}-holdout-dev.csv\n"
                            f"  holdoutDigest: {digest_of(CSV)}")
    state, description, report = reconcile_dev(world)
    assert state is PromotionState.BLOCKED
    assert world.evaluator.calls == []
    assert description.startswith(f"evaluation could not run: the holdout {url} has digest")
    assert (f"the holdout {url} has digest {digest_of(changed)}, but evaluation.holdoutDigest "
            f"in environments/dev.yaml pins {digest_of(CSV)}") in report
    assert (f"set evaluation.holdoutDigest in environments/dev.yaml to {digest_of(changed)}"
            in report)
    assert not git(world.root, "ls-tree", "environments/dev", "hydrator.metadata")


def test_a_pinned_local_holdout_that_was_replaced_is_refused(world: World) -> None:
    holdout = world.root / "data" / "churn-holdout-dev.csv"
    pinned = digest_of(holdout.read_bytes())
    world.commit_dry_change("environments/dev.yaml", HOLDOUT,
                            f"{HOLDOUT}\n  holdoutDigest: {pinned}")
    holdout.write_bytes(b"x,churned\n1,1\n")  # easier rows, swapped in before the gate ran
    state, _, report = reconcile_dev(world)
    assert state is PromotionState.BLOCKED
    assert world.evaluator.calls == []
    assert f"the holdout {holdout} has digest {digest_of(holdout.read_bytes())}" in report
    assert f"pins {pinned}" in report


def test_pins_per_model_and_malformed_pins(tmp_path: Path) -> None:
    world = World(tmp_path / "w", ScriptedEvaluator())
    world.commit_dry_change("environments/dev.yaml", HOLDOUT,
                            f"{HOLDOUT}\n  holdoutDigest: {{churn: {digest_of(CSV)}}}")
    loaded = load_settings(world.root / "promoter.yaml")
    evaluation = load_dry_config(DirectorySource(world.root),
                                 loaded.settings).environment("dev").evaluation
    assert evaluation.pinned_digest("churn") == digest_of(CSV)
    assert evaluation.pinned_digest("other") is None
    world.commit_dry_change("environments/dev.yaml", f"{{churn: {digest_of(CSV)}}}",
                            "md5:0123")
    with pytest.raises(ConfigError) as caught:
        load_dry_config(DirectorySource(world.root), loaded.settings)
    assert str(caught.value).startswith(
        "environments/dev.yaml: evaluation.holdoutDigest: ")
    assert "'md5:0123' is not 'sha256:' and 64 lowercase hex digits" in str(caught.value)
