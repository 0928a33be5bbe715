"""The `promoter` command line: parses arguments, calls the service, formats its answers.

Exit codes: 0 success, 1 a gate failed or an operation was refused by the forge or git,
2 bad input (configuration, model, holdout, arguments). Only this package prints.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from promoter import __version__
from promoter.cli.api_tokens import token
from promoter.cli.companion import argo, flux
from promoter.cli.discover import discover
from promoter.cli.errors import handle_errors
from promoter.cli.evaluate import evaluate
from promoter.cli.rollback import health, rollback
from promoter.cli.serve import serve
from promoter.config.loader import (
    DirectorySource,
    LoadedSettings,
    find_settings_file,
    load_dry_config,
    load_settings,
)
from promoter.plain_text import format_proposal, format_reconcile, format_status

USER_ENV_VAR = "PROMOTER_USER"


class Context:
    """What every command shares: the chosen promoter.yaml, loaded on first use."""

    def __init__(self, config: str | None) -> None:
        self.config_path = find_settings_file(config)
        self._loaded: LoadedSettings | None = None

    def settings(self) -> LoadedSettings:
        if self._loaded is None:
            self._loaded = load_settings(self.config_path)
        return self._loaded


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", metavar="FILE",
              help="promoter.yaml to use [default: $PROMOTER_CONFIG or ./promoter.yaml]")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.version_option(__version__, prog_name="promoter")
@click.pass_context
def main(ctx: click.Context, config: str | None, verbose: int) -> None:
    """Promote TensorFlow models through GitOps environments, with proof at every step."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config)


for command in (evaluate, flux, argo, rollback, health, serve, token, discover):
    main.add_command(command)


@main.command()
@pass_context
@handle_errors
def validate(ctx: Context) -> None:
    """Check promoter.yaml, environments/, policies/ and manifests/ in the working tree.

    Renders every model for every environment (the store's newest version number, or 1 when
    it has none, with a probe digest) and validates every object as `render` and `propose`
    do.
    """
    from promoter.promotion.hydrate import hydrate_version, probe_version
    from promoter.wiring import build_store

    loaded = ctx.settings()
    dry = load_dry_config(DirectorySource(loaded.base_dir), loaded.settings)
    click.echo(f"{loaded.path}: ok ({len(loaded.settings.models)} model(s))")
    for env in dry.environments.values():
        source = f" <- {env.promotes_from}" if env.promotes_from else " (first)"
        click.echo(f"environments/{env.name}.yaml: ok (branch {env.branch}{source}, "
                   f"policy {env.policy})")
        for model in loaded.settings.models:
            holdout = loaded.resolve(env.evaluation.holdout.format(model=model.name))
            if not holdout.is_file():
                click.echo(f"  warning: holdout for {model.name} not found at {holdout}",
                           err=True)
    for name in dry.policies:
        click.echo(f"policies/{name}.yaml: ok")
    store = build_store(loaded)
    for env in dry.environments.values():
        for model in dry.model_settings(loaded.settings).models:
            versions = store.list_versions(model.name)
            probe = probe_version(model.name, versions[-1] if versions else 1)
            rendered = hydrate_version(dry, loaded.settings, environment=env, model=model,
                                       version=probe).manifests
            which = f"v{probe.version}" if versions else "probe v1: the store has none"
            click.echo(f"manifests/: ok for {env.name} ({model.name} {which}; "
                       f"{len(rendered.files)} files)")
    click.echo(f"manifests/: ok ({len(dry.templates)} template(s))")


@main.command()
@click.option("--env", "environment", required=True, help="Environment to render for.")
@click.option("--model", required=True, help="Model name (see promoter.yaml).")
@click.option("--version", "version", required=True, type=int, help="Model version.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write the files here instead of printing them.")
@pass_context
@handle_errors
def render(ctx: Context, environment: str, model: str, version: int, out: Path | None) -> None:
    """Render the Kubernetes manifests of MODEL VERSION for ENV from the working tree.

    Everything is rendered in memory first: on any error nothing is written.
    """
    from promoter.promotion.hydrate import hydrate
    from promoter.wiring import build_store

    loaded = ctx.settings()
    dry = load_dry_config(DirectorySource(loaded.base_dir), loaded.settings)
    rendered = hydrate(dry, loaded.settings, build_store(loaded), environment=environment,
                       model=model, version=version, config_file=str(loaded.path)).manifests
    if out is None:
        for path, data in sorted(rendered.files.items()):
            click.echo(f"---\n# Source: {path}")
            click.echo(data.decode().removeprefix("---\n"), nl=False)
        return
    for path, data in sorted(rendered.files.items()):
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    click.echo(f"wrote {len(rendered.files)} files to {out} ({rendered.digest()})")


def _user_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--as", "--user", "user", envvar=USER_ENV_VAR, default=None,
                        help=help_text + f" [default: ${USER_ENV_VAR} or your login]")


@main.command()
@click.option("--env", "environment", required=True, help="Environment to promote to.")
@click.option("--model", required=True, help="Model name (see promoter.yaml).")
@click.option("--version", "version", required=True, type=int, help="Model version.")
@_user_option("Who proposes; they cannot approve their own promotion.")
@pass_context
@handle_errors
def propose(ctx: Context, environment: str, model: str, version: int,
            user: str | None) -> None:
    """Hydrate MODEL VERSION for ENV onto <env>-next and open (or update) its PR."""
    from promoter.wiring import build_service

    result = build_service(ctx.settings()).propose(
        environment=environment, model=model, version=version, author=user or _login())
    click.echo(format_proposal(result))


@main.command()
@pass_context
@handle_errors
def reconcile(ctx: Context) -> None:
    """Run every open promotion's gates, publish them, and merge what passes."""
    from promoter.wiring import build_service

    outcomes = build_service(ctx.settings()).reconcile()
    click.echo(format_reconcile(outcomes))


@main.command()
@click.argument("pull", type=int)
@_user_option("Release manager who approves.")
@click.option("--reject", is_flag=True, help="Request changes instead of approving.")
@pass_context
@handle_errors
def approve(ctx: Context, pull: int, user: str | None, reject: bool) -> None:
    """Approve promotion PR number PULL on the local forge (as a release manager)."""
    from promoter.wiring import build_service

    review = build_service(ctx.settings()).approve(pull, user=user or _login(), reject=reject)
    verb = "requested changes on" if reject else "approved"
    click.echo(f"{review.user} {verb} PR #{pull} at {review.commit_sha[:12]}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
@handle_errors
def status(ctx: Context, as_json: bool) -> None:
    """Show, per environment, the deployed model, the open promotion and, with a `cluster:`
    in promoter.yaml, the rollout (serving) and training's state beside it."""
    from promoter.wiring import build_service

    environments = build_service(ctx.settings()).status(rollouts=True)
    if as_json:  # the document GET /api/v1/environments answers, plus each rollout
        from promoter.plain_text import rollout_as_json
        from promoter.server.answers import EnvironmentsAnswer

        document = EnvironmentsAnswer.of(environments).as_json()
        listed = document["environments"]
        assert isinstance(listed, list)
        for env, out in zip(environments, listed, strict=True):
            out["rollout"] = (rollout_as_json(env.rollout) if env.rollout
                              else {"error": env.rollout_error} if env.rollout_error
                              else None)
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(format_status(environments))


@main.command()
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("promoter-demo"), show_default=True,
              help="Where to build the demo (replaced if it exists).")
@handle_errors
def demo(workdir: Path) -> None:
    """Promote a model dev -> staging -> prod on the embedded forge, step by step."""
    from promoter.demo import run_demo

    run_demo(workdir.resolve(), echo=click.echo)


def _login() -> str:
    return os.environ.get(USER_ENV_VAR) or getpass.getuser()
