"""`--dry-run` on propose, reconcile, rollback and discover: it says what would be written and
writes nothing: every byte of the repository (objects, refs, forge database, verdicts) is
left as it was; reconcile still evaluates."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from promoter.cli.dry_run import dry_run_reconcile
from promoter.config.loader import load_settings
from promoter.domain.pull_requests import PullRequestState
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import Signature
from promoter.model_store import LocalModelStore
from promoter.promotion.verdicts import DirectoryVerdictStore
from promoter.wiring import Adapters, build_service
from tests.cli.conftest import invoke
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.test_interrupted_writes import CommitCluster
from tests.promotion.world import World, git


def _snapshot(world: World) -> dict[str, str]:
    """Every file of the repository (objects, refs, the forge's database, stored verdicts)
    by its sha256: a dry run must leave each byte as it was."""
    return {str(p.relative_to(world.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(world.root.rglob("*")) if p.is_file()}


def test_propose_dry_run_writes_nothing_and_says_what_it_would(cli_world: World) -> None:
    cli_world.promote("dev", 1)
    before = _snapshot(cli_world)
    result = invoke(cli_world, "propose", "--env", "dev", "--model", "churn", "--version",
                    "2", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("dry run: propose would open a PR: promote churn v2 (")
    assert "one commit on environments/dev-next, on top of environments/dev@" in result.stdout
    assert "changes: serving/configmap.yaml" in result.stdout
    assert _snapshot(cli_world) == before
    real = invoke(cli_world, "propose", "--env", "dev", "--model", "churn", "--version", "2",
                  "--as", "mia", "-o", "json")
    document = json.loads(real.stdout)
    again = json.loads(invoke(cli_world, "propose", "--env", "dev", "--model", "churn",
                              "--version", "2", "--dry-run", "--as", "mia", "-o",
                              "json").stdout)
    assert (again["action"], again["pullRequest"]) == ("unchanged",
                                                       document["pullRequest"]["number"])
    # Another proposer becomes an author of the PR: a new commit names them both.
    after = _snapshot(cli_world)
    other = json.loads(invoke(cli_world, "propose", "--env", "dev", "--model", "churn",
                              "--version", "2", "--dry-run", "--as", "sam", "-o",
                              "json").stdout)
    assert (other["action"], other["writesCommit"]) == ("update", True)
    assert _snapshot(cli_world) == after
    real = invoke(cli_world, "propose", "--env", "dev", "--model", "churn", "--version", "2",
                  "--as", "sam", "-o", "json")
    assert json.loads(real.stdout)["outcome"] == "updated"


def test_propose_dry_run_refuses_a_foreign_push_without_commenting(cli_world: World) -> None:
    first = cli_world.service.propose(environment="dev", model="churn", version=1,
                                      author="mia")
    assert first.pull_request is not None
    git(cli_world.root, "branch", "-f", "environments/dev-next", "main")  # a person's push
    before = _snapshot(cli_world)
    result = invoke(cli_world, "propose", "--env", "dev", "--model", "churn", "--version",
                    "2", "--dry-run", "--as", "mia")
    assert result.exit_code == 2
    assert "someone else pushed to the proposal branch" in result.stderr
    assert _snapshot(cli_world) == before  # the real propose comments on the PR; not this


def test_propose_dry_run_refuses_what_propose_refuses(cli_world: World) -> None:
    result = invoke(cli_world, "propose", "--env", "staging", "--model", "churn",
                    "--version", "1", "--dry-run")
    assert result.exit_code == 2
    assert "nothing is deployed in dev" in result.stderr


def test_propose_dry_run_of_a_deployed_version(cli_world: World) -> None:
    cli_world.promote("dev", 1)
    result = invoke(cli_world, "propose", "--env", "dev", "--model", "churn", "--version",
                    "1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dev already runs churn v1; propose would write nothing" in result.stdout


def test_reconcile_dry_run_evaluates_and_writes_nothing(cli_world: World,
                                                        evaluator: ScriptedEvaluator) -> None:
    cli_world.service.propose(environment="dev", model="churn", version=1, author="mia")
    before = _snapshot(cli_world)
    calls = len(evaluator.calls)
    result = invoke(cli_world, "reconcile", "--dry-run")
    assert result.exit_code == 0, result.output
    assert len(evaluator.calls) == calls + 1  # it evaluated
    out = result.stdout
    assert out.startswith("dry run: gates judged (evaluations ran); nothing was written\n")
    assert "PR #1 churn v1 -> dev: ready" in out
    assert "note: dry run: every gate passes; reconcile would merge it now" in out
    assert "would write:" in out
    assert "merge PR #1: into environments/dev at head" in out
    assert "promoter/evaluation success: Evaluation passed (v1)" in out
    assert _snapshot(cli_world) == before
    # The real reconcile then does what the dry run said.
    real = invoke(cli_world, "reconcile")
    assert "PR #1 churn v1 -> dev: merged" in real.stdout


def test_reconcile_dry_run_as_json(cli_world: World) -> None:
    cli_world.service.propose(environment="dev", model="churn", version=3, author="mia")
    result = invoke(cli_world, "reconcile", "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dryRun"] is True
    assert document["promotions"][0]["phase"] == "blocked"
    assert {w["operation"] for w in document["wouldWrite"]} == {"set_status",
                                                                "upsert_comment"}


def _move_environment(world: World, env: str) -> None:
    """Someone commits to environments/<env>: its open promotion must be re-proposed."""
    repo = LocalGitRepository(world.root)
    head = git(world.root, "rev-parse", f"environments/{env}")
    files = {p: repo.read_file(head, p) or b"" for p in repo.list_files(head)}
    moved = repo.create_commit(files={**files, "NOTES.md": b"hand edit\n"}, parents=[head],
                               message="hand edit", author=Signature("eve", "eve@example.com"))
    git(world.root, "update-ref", f"refs/heads/environments/{env}", moved)


def _plan(outcomes: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(o["pullRequest"], o["environment"], o["version"],
             "merged" if o["note"] == "dry run: every gate passes; reconcile would merge it now"
             else o["phase"], [(g["context"], g["state"]) for g in o["gates"]])
            for o in outcomes]


def test_reconcile_dry_run_reports_the_whole_plan_and_reconcile_does_it(
        cli_world: World) -> None:
    """A promotion whose environment moved is re-proposed (a new commit), judged and merged;
    the next one is judged after that merge (its upstream no longer runs its version:
    blocked); a third fails its evaluation. The dry run says all of it, leaves every byte as
    it was, and the real reconcile then does exactly that."""
    cli_world.promote("dev", 1)
    cli_world.promote("staging", 1)
    cli_world.promote("dev", 2)
    cli_world.service.propose(environment="staging", model="churn", version=2, author="mia")
    cli_world.service.propose(environment="prod", model="churn", version=1, author="mia")
    cli_world.service.propose(environment="dev", model="churn", version=3, author="mia")
    _move_environment(cli_world, "staging")
    before = _snapshot(cli_world)
    result = invoke(cli_world, "reconcile", "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.output
    assert _snapshot(cli_world) == before
    document = json.loads(result.stdout)
    planned = _plan(document["promotions"])
    writes = [(w["operation"], w["target"]) for w in document["wouldWrite"]]
    # staging: the re-proposal is written, its PR moved to it, judged, and merged.
    assert ("update_branch", "environments/staging-next") in writes
    assert ("merge", f"PR #{_pr(planned, 'staging')}") in writes
    assert [w[0] for w in writes].count("create_commit") == 1  # the re-proposal only
    assert {p[1]: p[3] for p in planned} == {"prod": "blocked", "staging": "merged",
                                             "dev": "blocked"}
    prod = next(o for o in document["promotions"] if o["environment"] == "prod")
    assert {"context": "promoter/upstream", "state": "failure",
            "description": "staging runs churn v2, not churn v1"} in prod["gates"]
    text = invoke(cli_world, "reconcile", "--dry-run")
    assert "note: dry run: would write" not in text.stdout
    assert "create_commit " in text.stdout
    assert _snapshot(cli_world) == before

    real = invoke(cli_world, "reconcile", "-o", "json")
    assert real.exit_code == 0, real.output
    assert _plan(json.loads(real.stdout)["promotions"]) == [
        (n, e, v, "merged" if s == "merged" else s, g) for n, e, v, s, g in planned]
    assert git(cli_world.root, "log", "-1", "--format=%s", "environments/staging^2") == (
        "Hydrate churn v2 for staging")


def _pr(planned: list[tuple[Any, ...]], env: str) -> int:
    return int(next(p[0] for p in planned if p[1] == env))


def test_reconcile_dry_run_plans_the_rollback_of_a_failed_rollout(cli_world: World) -> None:
    """With a cluster, reconcile first reads rollouts back: a failed one closes the open
    promotion as superseded, opens the rollback PR and merges it. The dry run plans all of
    that (a new PR, numbered as the local forge would number it) and writes none of it; the
    real reconcile then does it."""
    root = cli_world.root
    cluster = CommitCluster()
    loaded = load_settings(root / "promoter.yaml")
    adapters = Adapters(repo=LocalGitRepository(root), forge=cli_world.forge,
                        store=LocalModelStore(root / "models"), cluster=cluster,
                        verdicts=DirectoryVerdictStore(root / ".git" / "promoter" / "verdicts"))
    cli_world.promote("dev", 1)
    cli_world.promote("dev", 2)
    cli_world.service.propose(environment="dev", model="churn", version=3, author="mia")
    cluster.failing.add(git(root, "rev-parse", "environments/dev"))
    before = _snapshot(cli_world)
    outcomes, writes = dry_run_reconcile(loaded, adapters=adapters)
    assert _snapshot(cli_world) == before
    ops = [(w.operation, w.target) for w in writes]
    assert [op for op, _ in ops] == ["set_status", "close", "create_commit", "update_branch",
                                     "open_pull_request", "merge", "request_reconcile"]
    assert writes[0].detail.startswith("promoter/rollout failure")
    assert ops[1] == ("close", "PR #3")
    assert ops[4] == ("open_pull_request", "environments/dev-next -> environments/dev")
    assert ops[5] == ("merge", "PR #4")
    assert ops[6][0] == "request_reconcile"  # the rollback's merge asks for the sync, too
    assert outcomes == []  # the promotion was superseded before the PRs were listed

    build_service(loaded, adapters=adapters).reconcile()
    assert cli_world.metadata("environments/dev")["promoter"]["version"] == 1
    assert cli_world.forge.get_pull_request(3).state is PullRequestState.CLOSED
    rollback = cli_world.forge.get_pull_request(4)
    assert (rollback.state, "rollback" in rollback.labels) == (PullRequestState.MERGED, True)


def test_rollback_dry_run_names_the_commit_and_writes_nothing(cli_world: World) -> None:
    cli_world.promote("dev", 1)
    cli_world.promote("dev", 2)
    before = _snapshot(cli_world)
    result = invoke(cli_world, "rollback", "--env", "dev", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("would roll back dev: churn v2 -> churn v1 (restores ")
    assert "one commit on environments/dev-next" in result.stdout
    assert _snapshot(cli_world) == before


def test_discover_dry_run_as_json(cli_world: World) -> None:
    cli_world.commit_dry_change(
        "promoter.yaml", "    labelColumn: churned\n",
        "    labelColumn: churned\n    promotion:\n      autoPropose: [dev]\n"
        "      settleSeconds: 0\n")
    before = _snapshot(cli_world)
    result = invoke(cli_world, "discover", "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dryRun"] is True
    assert [(p["environment"], p["version"]) for p in document["proposals"]] == [("dev", 3)]
    assert _snapshot(cli_world) == before
