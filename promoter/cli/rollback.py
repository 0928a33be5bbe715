"""`promoter rollback` and `promoter health`: restore an environment, read its rollout.

Both expect the `promoter` group's context object (`ctx.obj.settings()`); the group
registers them with `main.add_command(rollback)` and `main.add_command(health)`.

Exit codes: 0 done (rollback PR opened/merged; rollout healthy), 1 a refusal by git, the forge
or the cluster, or a rollout that is not healthy, 2 bad input.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

import click

from promoter.cli.errors import handle_errors

USER_ENV_VAR = "PROMOTER_USER"


def _parts(obj: Any, *, read_cluster: bool = True) -> tuple[Any, Any, Any]:
    """(rollback service, dry config, repository) for the settings in `obj`; `read_cluster`
    False leaves out the service's cluster reader (`health` connects with its own flags)."""
    from promoter.wiring import build_adapters, build_rollback_service, build_service

    loaded = obj.settings()
    adapters = build_adapters(loaded, read_cluster=read_cluster)
    _, dry = build_service(loaded, adapters=adapters).dry_config()
    return build_rollback_service(adapters), dry, adapters.repo


@click.command("rollback")
@click.option("--env", "environment", required=True, help="Environment to roll back.")
@click.option("--to", "to_version", type=int, default=None,
              help="Model version to restore [default: the previous deployment].")
@click.option("--reason", default="Rolled back on request.", show_default=True,
              help="Why; goes into the commit message and the PR.")
@click.option("--merge", is_flag=True,
              help="Merge the rollback PR now if the policy's rollback approvals are there "
                   "(exit 1 if not); otherwise `reconcile` merges it once they are.")
@click.option("--dry-run", is_flag=True, help="Only say which commit would be restored.")
@click.option("--as", "--user", "user", envvar=USER_ENV_VAR, default=None,
              help=f"Who asks for the rollback [default: ${USER_ENV_VAR} or your login]")
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
        click.echo(f"would roll back {rollbacks.plan(env, to_version=to_version).describe()}")
        return
    service = build_service(obj.settings(), adapters=build_adapters(obj.settings()))
    result = service.request_rollback(
        environment, to_version=to_version, reason=reason,
        author=user or os.environ.get(USER_ENV_VAR) or getpass.getuser())
    click.echo(f"{result.outcome} rollback PR #{result.pull_request.number}: "
               f"{result.plan.describe()}")
    click.echo(f"  commit {result.commit} on {env.proposal_branch}")
    if merge:
        outcome = service.reconcile_pull(result.pull_request.number)
        if outcome.state is not PromotionState.MERGED:
            why = "; ".join(g.description for g in outcome.gates) or outcome.note
            click.echo(f"  not merged: {why}", err=True)
            sys.exit(1)
        click.echo(f"  merged into {env.branch} as {outcome.merge_sha}")


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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
@handle_errors
def health(obj: Any, environment: str, commit: str | None, wait: bool,
           timeout_s: float | None, poll_s: float, reconcile: bool, kubeconfig: str | None,
           kube_context: str | None, as_json: bool) -> None:
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
    if as_json:
        click.echo(json.dumps(rollout_as_json(state), indent=2))
    else:
        click.echo(f"{env.name} {env.branch}@{commit[:12]}: {state.phase}: {state.reason}")
        if state.training is not None:  # reported only: the exit code is serving's
            click.echo(f"  training: {state.training.phase}: {state.training.reason}")
    if state.phase is not RolloutPhase.HEALTHY:
        sys.exit(1)
