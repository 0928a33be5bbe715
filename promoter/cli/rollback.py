"""`promoter rollback` and `promoter health`: restore an environment, read its rollout.

Both expect the `promoter` group's context object (`ctx.obj.settings()`); the group
registers them with `main.add_command(rollback)` and `main.add_command(health)`.

Exit codes: 0 done (rollback PR opened/merged; rollout healthy), 1 a refusal by git, the forge
or the cluster (a rollback `--merge` could not merge, an unreachable cluster), or a rollout
that is not healthy, 2 bad input.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click

from promoter.cli.errors import handle_errors
from promoter.cli.output import emit, emit_error, reports
from promoter.cli.promotions import login, user_option


def _parts(obj: Any, *, read_cluster: bool = True) -> tuple[Any, Any, Any]:
    """(rollback service, dry config, repository) for the settings in `obj`; `read_cluster`
    False leaves out the service's cluster reader (`health` connects with its own flags)."""
    from promoter.wiring import build_adapters, build_rollback_service, build_service

    loaded = obj.settings()
    adapters = build_adapters(loaded, read_cluster=read_cluster)
    _, dry = build_service(loaded, adapters=adapters).dry_config()
    return build_rollback_service(adapters), dry, adapters.repo


@reports
@click.command("rollback")
@click.option("--env", "environment", required=True, help="Environment to roll back.")
@click.option("--to", "to_version", type=int, default=None,
              help="Model version to restore [default: the previous deployment].")
@click.option("--reason", default="Rolled back on request.", show_default=True,
              help="Why; goes into the commit message and the PR.")
@click.option("--merge", is_flag=True,
              help="Merge the rollback PR now if the policy's rollback approvals are there "
                   "(exit 1 if not); otherwise `reconcile` merges it once they are.")
@click.option("--dry-run", is_flag=True,
              help="Say which commit would be restored, on which branch; write nothing.")
@user_option("Who asks for the rollback.")
@click.pass_obj
@handle_errors
def rollback(obj: Any, environment: str, to_version: int | None, reason: str, merge: bool,
             dry_run: bool, user: str | None) -> None:
    """Open a PR restoring ENV's branch to an earlier hydrated commit (a revert, never a
    force-push)."""
    from promoter.promotion import PromotionState
    from promoter.wiring import build_adapters, build_service

    rollbacks, dry, _ = _parts(obj)
    env = dry.environment(environment)
    if dry_run:
        plan = rollbacks.plan(env, to_version=to_version)
        emit({"dryRun": True, **_plan_document(plan), "proposalBranch": env.proposal_branch},
             f"would roll back {plan.describe()}\n"
             f"  one commit on {env.proposal_branch} with the tree of {plan.target[:12]}, "
             f"and a rollback PR into {env.branch}; nothing was written")
        return
    service = build_service(obj.settings(), adapters=build_adapters(obj.settings()))
    result = service.request_rollback(environment, to_version=to_version, reason=reason,
                                      author=user or login())
    lines = [f"{result.outcome} rollback PR #{result.pull_request.number}: "
             f"{result.plan.describe()}",
             f"  commit {result.commit} on {env.proposal_branch}"]
    document: dict[str, Any] = {
        **_plan_document(result.plan), "outcome": str(result.outcome),
        "pullRequest": result.pull_request.number, "commit": result.commit,
        "merged": False, "mergeCommit": None}
    if not merge:
        emit(document, "\n".join(lines))
        return
    outcome = service.reconcile_pull(result.pull_request.number)
    if outcome.state is not PromotionState.MERGED:
        why = "; ".join(g.description for g in outcome.gates) or outcome.note or "not merged"
        emit(document, "\n".join(lines))
        emit_error(f"rollback PR #{result.pull_request.number} not merged: {why}",
                   fix="get the approvals the policy's rollback section asks for; "
                       "`promoter reconcile` merges it then", kind="NotMergedError")
        sys.exit(1)
    lines.append(f"  merged into {env.branch} as {outcome.merge_sha}")
    emit({**document, "merged": True, "mergeCommit": outcome.merge_sha}, "\n".join(lines))


def _plan_document(plan: Any) -> dict[str, Any]:
    now, then = plan.current_metadata.deployed, plan.target_metadata.deployed
    return {"environment": plan.environment, "branch": plan.branch,
            "current": {"commit": plan.current, "model": now.model, "version": now.version},
            "restores": {"commit": plan.target, "model": then.model,
                         "version": then.version}}


@reports
@click.command("health")
@click.option("--env", "environment", required=True, help="Environment to check.")
@click.option("--commit", default=None,
              help="Environment branch commit to check [default: the branch head].")
@click.option("--wait", is_flag=True, help="Wait until healthy, failed or out of time.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0, min_open=True), default=None,
              help="Seconds to wait [default: delivery.healthTimeoutSeconds].")
@click.option("--poll", "poll_s", type=click.FloatRange(0, min_open=True), default=5.0,
              show_default=True, help="Seconds between reads while waiting.")
@click.option("--reconcile", is_flag=True,
              help="Ask Flux/Argo CD to sync now before reading (annotation).")
@click.option("--kubeconfig", default=None, help="kubeconfig file [default: cluster.kubeconfig "
              "of promoter.yaml, else in-cluster, then $KUBECONFIG or ~/.kube/config].")
@click.option("--context", "kube_context", default=None,
              help="kubeconfig context [default: cluster.context of promoter.yaml].")
@click.pass_obj
@handle_errors
def health(obj: Any, environment: str, commit: str | None, wait: bool,
           timeout_s: float | None, poll_s: float, reconcile: bool, kubeconfig: str | None,
           kube_context: str | None) -> None:
    """Say whether ENV's branch head (or COMMIT) is applied and healthy in the cluster of
    promoter.yaml's `cluster:` section (--kubeconfig and --context override it)."""
    from promoter.cluster import RolloutPhase, wait_for_rollout
    from promoter.errors import BadInputError
    from promoter.plain_text import rollout_as_json
    from promoter.wiring import connect_cluster

    _, dry, repo = _parts(obj, read_cluster=False)
    env = dry.environment(environment)
    if commit is None:
        commit = repo.branch_head(env.branch)
        if commit is None:
            raise BadInputError(f"{env.branch} does not exist yet",
                                fix=f"promote a version to {env.name} first")
    with connect_cluster(obj.settings(), kubeconfig=kubeconfig,
                         context=kube_context) as reader:
        if reconcile:
            reader.request_reconcile(env, requested_at=datetime.now(UTC).isoformat())
        if wait:
            limit = timeout_s if timeout_s is not None else env.delivery.health_timeout_seconds
            state = wait_for_rollout(reader, env, commit=commit, timeout_s=limit,
                                     poll_s=poll_s)
        else:
            state = reader.rollout_state(env, commit=commit)
    text = f"{env.name} {env.branch}@{commit[:12]}: {state.phase}: {state.reason}"
    if state.training is not None:  # reported only: the exit code is serving's
        text += f"\n  training: {state.training.phase}: {state.training.reason}"
    emit(rollout_as_json(state), text)
    if state.phase is not RolloutPhase.HEALTHY:
        sys.exit(1)
