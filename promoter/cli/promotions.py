"""`promoter propose`, `reconcile`, `approve` and `status`: the promotion service's verbs.

Each expects the `promoter` group's context object (`obj.settings()`); the group registers
them. Exit codes:

- `propose`: 0 proposed (or nothing to propose), 1 git or the forge refused, 2 bad input
  (a version not deployed upstream, an unknown environment, a foreign push).
- `reconcile`: 0 every open promotion was judged, whatever the verdicts (blocked and waiting
  promotions are results); 1 git or the forge refused an operation for some promotion (a
  refused merge), or with `--exit-code` some promotion is blocked; 2 bad input.
- `approve`: 0 recorded, 2 refused (not an approver, the author) or no such PR.
- `status`: 0, or 2 for bad input (an unknown `--env` or `--model`).
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from promoter.cli.errors import handle_errors
from promoter.cli.output import emit, emit_error, reports, style
from promoter.cli.progress import progress_for
from promoter.errors import BadInputError
from promoter.plain_text import format_proposal, format_reconcile, format_status

if TYPE_CHECKING:
    from promoter.promotion.results import EnvironmentStatus, ReconcileOutcome

USER_ENV_VAR = "PROMOTER_USER"


def login() -> str:
    """Who runs promoter, when `--as` is not given."""
    return os.environ.get(USER_ENV_VAR) or getpass.getuser()


def user_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--as", "--user", "user", envvar=USER_ENV_VAR, default=None,
                        help=help_text + f" [default: ${USER_ENV_VAR} or your login]")


@reports
@click.command()
@click.option("--env", "environment", required=True, help="Environment to promote to.")
@click.option("--model", required=True, help="Model name (see promoter.yaml).")
@click.option("--version", "version", required=True, type=int, help="Model version.")
@user_option("Who proposes; they cannot approve their own promotion.")
@click.option("--dry-run", is_flag=True,
              help="Say what would be committed and which PR opened or updated; write "
                   "nothing.")
@click.pass_obj
@handle_errors
def propose(obj: Any, environment: str, model: str, version: int, user: str | None,
            dry_run: bool) -> None:
    """Hydrate MODEL VERSION for ENV onto <env>-next and open (or update) its PR."""
    from promoter.cli.documents import proposal_document
    from promoter.wiring import build_adapters, build_service

    if dry_run:
        from promoter.cli.plans import describe_plan, plan_document

        loaded = obj.settings()
        service = build_service(loaded, adapters=build_adapters(loaded, read_cluster=False))
        plan = service.plan_proposal(environment=environment, model=model, version=version,
                                     author=user or login())
        emit(plan_document(plan), describe_plan(plan))
        return
    result = build_service(obj.settings()).propose(
        environment=environment, model=model, version=version, author=user or login())
    emit(proposal_document(result), lambda: format_proposal(result, style()))


@reports
@click.command()
@click.option("--exit-code", is_flag=True,
              help="Exit 1 when a promotion is blocked (a gate failed), not only when git or "
                   "the forge refused something.")
@click.option("--dry-run", is_flag=True,
              help="Judge every open promotion (evaluations still run) and say what would "
                   "be published and merged; write nothing.")
@click.pass_obj
@handle_errors
def reconcile(obj: Any, exit_code: bool, dry_run: bool) -> None:
    """Run every open promotion's gates, publish them, and merge what passes.

    Blocked and waiting promotions are results, reported with exit status 0 (1 with
    --exit-code when one is blocked); a merge or write that git or the forge refused exits 1.
    """
    from promoter.cli.documents import reconcile_document
    from promoter.promotion.results import PromotionState

    with progress_for() as progress:
        progress.stage("reconciling open promotions (evaluating those whose inputs changed)")
        if dry_run:
            from promoter.cli.dry_run import dry_run_reconcile

            outcomes, writes = dry_run_reconcile(obj.settings())
        else:
            from promoter.wiring import build_service

            outcomes, writes = build_service(obj.settings()).reconcile(), None
        progress.done()
    document = reconcile_document(outcomes)
    text = lambda: format_reconcile(outcomes, style())  # noqa: E731
    if writes is not None:
        document = {"dryRun": True, **document, "wouldWrite": [w.document() for w in writes]}
        text = _dry_run_text(outcomes, writes)
    emit(document, text)
    failed = [o for o in outcomes if o.error is not None]
    for outcome in failed:
        assert outcome.error is not None
        emit_error(f"PR #{outcome.pull_number} ({outcome.environment}): "
                   f"{outcome.error.message}", fix=outcome.error.fix,
                   kind="ReconcileError", exit_code=outcome.error.exit_code,
                   extra={"pullRequest": outcome.pull_number})
    if failed:
        sys.exit(max(o.error.exit_code for o in failed if o.error is not None))
    blocked = [o for o in outcomes if o.state is PromotionState.BLOCKED]
    if exit_code and blocked:
        emit_error("blocked: " + ", ".join(f"PR #{o.pull_number} ({o.environment})"
                                           for o in blocked) + " (--exit-code)",
                   fix="see each promotion's failing gate above; a new proposal is judged "
                       "again", kind="BlockedPromotion", exit_code=1)
        sys.exit(1)


def _dry_run_text(outcomes: list[ReconcileOutcome], writes: list[Any]) -> Callable[[], str]:
    def text() -> str:
        lines = ["dry run: gates judged (evaluations ran); nothing was written",
                 format_reconcile(outcomes, style())]
        if writes:
            lines.append("would write:")
            lines.extend(f"  {w.describe()}" for w in writes)
        else:
            lines.append("would write nothing")
        return "\n".join(lines)

    return text


@reports
@click.command()
@click.argument("pull", type=int)
@user_option("Release manager who approves.")
@click.option("--reject", is_flag=True, help="Request changes instead of approving.")
@click.pass_obj
@handle_errors
def approve(obj: Any, pull: int, user: str | None, reject: bool) -> None:
    """Approve promotion PR number PULL on the local forge (as a release manager)."""
    from promoter.server.answers import ReviewAnswer
    from promoter.wiring import build_service

    review = build_service(obj.settings()).approve(pull, user=user or login(), reject=reject)
    verb = "requested changes on" if reject else "approved"
    emit(ReviewAnswer.of(pull, review).as_json(),
         f"{review.user} {verb} PR #{pull} at {review.commit_sha[:12]}")


@reports
@click.command()
@click.option("--env", "environments", multiple=True, metavar="ENV",
              help="Only this environment (repeat for several).")
@click.option("--model", "models", multiple=True, metavar="MODEL",
              help="Only environments that run or are offered this model (repeat for "
                   "several).")
@click.pass_obj
@handle_errors
def status(obj: Any, environments: tuple[str, ...], models: tuple[str, ...]) -> None:
    """Show, per environment, the deployed model, the open promotion and, with a `cluster:`
    in promoter.yaml, the rollout (serving) and training's state beside it."""
    from promoter.plain_text import rollout_as_json
    from promoter.server.answers import EnvironmentsAnswer
    from promoter.wiring import build_service

    loaded = obj.settings()
    everything = build_service(loaded).status(rollouts=True)
    shown = _filtered(everything, environments, models,
                      known_models=[m.name for m in loaded.settings.models])
    # The document GET /api/v1/environments answers, for the environments shown, plus each
    # rollout as the cluster reads it.
    document = EnvironmentsAnswer.of(shown).as_json()
    listed = document["environments"]
    assert isinstance(listed, list)
    for env, out in zip(shown, listed, strict=True):
        out["rollout"] = (rollout_as_json(env.rollout) if env.rollout
                          else {"error": env.rollout_error} if env.rollout_error else None)
    emit(document, lambda: format_status(shown, style()) or "no environment matches")


def _filtered(statuses: list[EnvironmentStatus], environments: tuple[str, ...],
              models: tuple[str, ...], *, known_models: list[str]) -> list[EnvironmentStatus]:
    names = [s.environment for s in statuses]
    for name in environments:
        if name not in names:
            raise BadInputError(f"--env {name}: no environment named {name!r}",
                                fix=f"use one of: {', '.join(names)}")
    for name in models:
        if name not in known_models:
            raise BadInputError(f"--model {name}: no model named {name!r} in promoter.yaml",
                                fix=f"use one of: {', '.join(known_models)}")
    shown = [s for s in statuses if not environments or s.environment in environments]
    if models:
        shown = [s for s in shown
                 if (s.deployed is not None and s.deployed.model in models)
                 or (s.proposed is not None and s.proposed.model in models)]
    return shown


__all__ = ["approve", "login", "propose", "reconcile", "status", "user_option"]
