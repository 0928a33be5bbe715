"""A training job that is queued, failed or suspended never fails the serving rollout or rolls
serving back: the promotion service's rollout check over the real `kubernetes` client and the
fake API server, on a real repository where dev runs v2 after v1 (so a rollback is possible).
`promoter status` and `promoter health` report training's state on its own."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from promoter.cli import main
from promoter.cli.rollback import health
from promoter.cluster import RolloutPhase, TrainingPhase
from promoter.cluster.kubernetes import KubernetesClusterReader
from promoter.config.loader import load_settings
from promoter.domain.pull_requests import StatusState
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService
from promoter.promotion.rollback import RollbackService
from promoter.wiring import build_app
from tests.cluster.fake_api import FakeKubernetesApi
from tests.cluster.objects import (
    ARGO_TRAINING,
    FLUX_TRAINING,
    synced_application,
)
from tests.fixtures.git import run_git
from tests.promotion.world import World
from tests.rollback.conftest import dev_target, flux_reports
from tests.rollback.test_cli import Obj, _kubeconfig
from tests.server.support import SECRET

with warnings.catch_warnings():
    # As in tests/server/conftest.py: Starlette 1.x asks for the `httpx2` fork at import time.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient


def _service(world: World, reader: KubernetesClusterReader) -> PromotionService:
    repo = LocalGitRepository(world.root)
    return PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=repo, forge=world.forge,
        store=LocalModelStore(world.root / "models"), evaluator=world.evaluator,
        cluster=reader, rollbacks=RollbackService(repo=repo, forge=world.forge))


def _check_no_rollback(world: World, api: FakeKubernetesApi, expected: TrainingPhase) -> None:
    head = run_git(world.root, "rev-parse", "environments/dev")
    with KubernetesClusterReader.for_host(api.url, request_timeout_s=5) as reader:
        service = _service(world, reader)
        checks = [c for c in service.check_rollouts() if c.environment == "dev"]
    (check,) = checks
    assert check.state is not None
    assert check.state.phase is RolloutPhase.HEALTHY
    assert check.state.training is not None
    assert check.state.training.phase is expected
    assert check.rollback is None
    assert check.error is None
    # Nothing was restored: dev still runs v2 at the same commit, and no rollback PR exists.
    assert run_git(world.root, "rev-parse", "environments/dev") == head
    assert world.metadata("environments/dev")["promoter"]["version"] == 2
    assert world.forge.find_open_pull_request(head="environments/dev-next",
                                              base="environments/dev") is None
    statuses = {s.context: s.state for s in world.forge.list_statuses(head)}
    assert statuses["promoter/rollout"] is StatusState.SUCCESS


def _run_jobsets(world: World) -> None:
    """dev trains with a JobSet (training.kind) from now on, in the dry source promoter reads."""
    world.commit_dry_change("environments/dev.yaml", "  enabled: true",
                            "  enabled: true\n  kind: JobSet")
    assert world.service.dry_config()[1].environment("dev").training.kind == "JobSet"


FLUX_PHASES = {"queued past the timeout": TrainingPhase.FAILED,
               "failed": TrainingPhase.FAILED,
               "suspended by Kueue": TrainingPhase.PROGRESSING,
               "no TFJob CRD in the cluster": TrainingPhase.FAILED,
               "JobSet queued past the timeout": TrainingPhase.FAILED,
               "JobSet failed": TrainingPhase.FAILED,
               "JobSet suspended by Kueue": TrainingPhase.PROGRESSING,
               "no JobSet CRD in the cluster": TrainingPhase.FAILED}


@pytest.mark.parametrize("case", list(FLUX_TRAINING))
def test_flux_training_trouble_rolls_nothing_back(case: str, world_at: Callable[..., World],
                                                  api: FakeKubernetesApi) -> None:
    world = world_at(1, 2)
    if "JobSet" in case:
        _run_jobsets(world)
    flux_reports(world, api, training=case)
    _check_no_rollback(world, api, FLUX_PHASES[case])


@pytest.mark.parametrize("case", list(ARGO_TRAINING))
def test_argo_training_trouble_rolls_nothing_back(case: str, world_at: Callable[..., World],
                                                  api: FakeKubernetesApi) -> None:
    world = world_at(1, 2)
    world.commit_dry_change("environments/dev.yaml", "policy: dev\n",
                            "policy: dev\ndelivery:\n  tool: argo\n")
    if "JobSet" in case:
        _run_jobsets(world)
    head = run_git(world.root, "rev-parse", "environments/dev")
    target = dev_target(world)
    assert target.tool == "argo"
    assert target.training is not None
    health_status, message = ARGO_TRAINING[case]
    api.put(target.application, synced_application(head, health="Healthy"))
    api.put(target.training, synced_application(head, health=health_status, message=message,
                                                name=target.training.name))
    _check_no_rollback(world, api, TrainingPhase.FAILED if health_status == "Degraded"
                       else TrainingPhase.PROGRESSING)


def test_a_failed_serving_rollout_is_still_rolled_back(world_at: Callable[..., World],
                                                       api: FakeKubernetesApi) -> None:
    """The split takes nothing away: serving's own failure rolls back as before."""
    world = world_at(1, 2)
    flux_reports(world, api, serving_failed=True)
    with KubernetesClusterReader.for_host(api.url, request_timeout_s=5) as reader:
        (check,) = [c for c in _service(world, reader).check_rollouts()
                    if c.environment == "dev"]
    assert check.state is not None
    assert check.state.phase is RolloutPhase.FAILED
    assert check.rollback is not None
    assert world.metadata("environments/dev")["promoter"]["version"] == 1


def _with_cluster(world: World, kubeconfig: Path) -> None:
    settings = world.root / "promoter.yaml"
    settings.write_text(settings.read_text() + f"cluster:\n  kubeconfig: {kubeconfig}\n")


@pytest.mark.parametrize("case", ["failed", "JobSet failed"])
def test_status_and_health_report_training_on_its_own(case: str,
                                                      world_at: Callable[..., World],
                                                      api: FakeKubernetesApi,
                                                      tmp_path: Path) -> None:
    world = world_at(1, 2)
    if "JobSet" in case:
        _run_jobsets(world)
    flux_reports(world, api, training=case)
    config = _kubeconfig(tmp_path / "kubeconfig", api.url)

    result = CliRunner().invoke(health, ["--env", "dev", "--kubeconfig", str(config)],
                                obj=Obj(world.root))
    assert result.exit_code == 0, result.output  # serving is healthy: training is reported
    assert ": healthy: Kustomization promoter-dev applied" in result.output
    assert "  training: failed: Kustomization promoter-dev-training: Ready=False " \
           "(HealthCheckFailed)" in result.output

    _with_cluster(world, config)
    runner = CliRunner()
    text = runner.invoke(main, ["--config", str(world.root / "promoter.yaml"), "status"])
    assert text.exit_code == 0, text.output
    assert "rollout: healthy: Kustomization promoter-dev applied" in text.output
    assert "training: failed: Kustomization promoter-dev-training" in text.output
    as_json = runner.invoke(main, ["--config", str(world.root / "promoter.yaml"), "status",
                                   "--json"])
    assert as_json.exit_code == 0, as_json.output
    dev = json.loads(as_json.output)["environments"][0]
    assert dev["rollout"]["phase"] == "healthy"
    assert dev["rollout"]["training"]["phase"] == "failed"
    assert "status: 'Failed'" in dev["rollout"]["training"]["reason"]
    # staging and prod have no branch yet: nothing to read.
    assert [e["rollout"] for e in json.loads(as_json.output)["environments"][1:]] == [None,
                                                                                      None]


def test_the_api_reports_training_on_its_own(world_at: Callable[..., World],
                                             api: FakeKubernetesApi) -> None:
    """GET /api/v1/environments?rollouts=true answers what `promoter status` shows: serving
    healthy, training (a failed JobSet) failed beside it. Without the parameter the API does
    not call the cluster."""
    world = world_at(1, 2)
    _run_jobsets(world)
    head = flux_reports(world, api, training="JobSet failed")
    with KubernetesClusterReader.for_host(api.url, request_timeout_s=5) as reader:
        app = build_app(_service(world, reader), webhook_secret=SECRET,
                        resync_interval_s=None)
        with TestClient(app) as client:
            assert app.state.parts.scheduler.wait_idle(30)  # the resync at start is done
            plain = client.get("/api/v1/environments/dev")
            assert plain.status_code == 200, plain.text
            assert plain.json()["rollout"] is None
            audited = len(api.audit)
            assert client.get("/api/v1/environments").json()["environments"][0][
                "rollout"] is None
            assert len(api.audit) == audited, "a plain request reads no cluster"
            answer = client.get("/api/v1/environments/dev", params={"rollouts": "true"})
            assert answer.status_code == 200, answer.text
            rollout = answer.json()["rollout"]
            listed = client.get("/api/v1/environments?rollouts=true").json()["environments"]
    assert rollout["phase"] == "healthy"
    assert rollout["commit"] == head
    assert rollout["training"]["phase"] == "failed"
    assert "JobSet/ml-dev/churn-train-v2 status: 'Failed'" in rollout["training"]["reason"]
    assert listed[0]["rollout"] == rollout
    assert [e["rollout"] for e in listed[1:]] == [None, None]  # no branch yet
    # Nothing was rolled back by the resync either.
    assert run_git(world.root, "rev-parse", "environments/dev") == head
