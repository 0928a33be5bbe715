"""`promoter discover`: one discovery pass, the same one `promoter serve` runs before each
resync, for cron jobs and for seeing why a version was (not) proposed.

Expects the `promoter` group's context object (`ctx.obj.settings()`); the group registers it
with `main.add_command(discover)`.

Exit codes: 0 the pass ran (whether or not it proposed anything), 1 some proposal was refused
(the others were still made), 2 bad input (configuration).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from promoter.cli.errors import handle_errors

if TYPE_CHECKING:
    from promoter.promotion.autopropose import ProposalAttempt


@click.command("discover")
@click.option("--dry-run", is_flag=True,
              help="Say what would be proposed, and why the rest waits; write nothing.")
@click.pass_obj
@handle_errors
def discover(obj: Any, dry_run: bool) -> None:
    """Propose new complete model versions to the environments in promotion.autoPropose.

    The first environment gets the newest complete version in the model store (saved_model.pb
    and variables/, unchanged for settleSeconds); a later one gets what its upstream
    environment runs (healthy, with a cluster). Proposals still pass every gate.
    """
    from promoter.wiring import build_adapters, build_auto_proposer, build_service

    loaded = obj.settings()  # promoter.cli.Context
    adapters = build_adapters(loaded)
    proposer = build_auto_proposer(loaded, adapters=adapters,
                                   service=build_service(loaded, adapters=adapters))
    if not proposer.enabled:
        click.echo(f"no model lists environments in promotion.autoPropose ({loaded.path}); "
                   "nothing to discover")
        return
    attempts: tuple[ProposalAttempt, ...] = ()
    if dry_run:
        plan = proposer.plan()
        for proposal in plan.proposals:
            click.echo(f"would propose {proposal.model} v{proposal.version} to "
                       f"{proposal.environment}: {proposal.reason}")
    else:
        run = proposer.run()
        plan, attempts = run.plan, run.attempts
        for attempt in attempts:
            p, result = attempt.proposal, attempt.result
            if result is None:
                continue
            pull = (f"PR #{result.pull_request.number} {result.outcome}"
                    if result.pull_request else str(result.outcome))
            click.echo(f"proposed {p.model} v{p.version} to {p.environment} ({pull}): "
                       f"{p.reason}")
    for held in plan.held:
        version = f" v{held.version}" if held.version is not None else ""
        click.echo(f"waiting: {held.model}{version} for {held.environment}: {held.reason}")
    if not plan.proposals:
        click.echo("nothing to propose")
    failed = [a for a in attempts if a.error is not None]
    for attempt in failed:
        p = attempt.proposal
        click.echo(f"error: proposing {p.model} v{p.version} to {p.environment}: "
                   f"{attempt.error}", err=True)
    if failed:
        sys.exit(1)
