"""The `promoter` command line: parses arguments, calls the service, formats its answers.

Exit codes (README, "Exit codes", has the table per command): 0 the command did its work and
reported the result, whatever the result (a blocked promotion is a result); 1 a verdict the
command exists to give was no (`evaluate`'s gate failed, `health` not healthy, `reconcile
--exit-code` with a blocked promotion), or git, the forge or the cluster refused or failed an
operation (a refused merge); 2 bad input (configuration, repository, forge database, model,
holdout, arguments), with the fix. Only this package prints.

Global options (`--config`, `-o`/`--json`, `-v`) go before or after the subcommand; see
`promoter.cli.output`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from promoter import __version__
from promoter.cli.api_tokens import token
from promoter.cli.audit import dora, history
from promoter.cli.companion import argo, flux
from promoter.cli.discover import discover
from promoter.cli.errors import handle_errors
from promoter.cli.evaluate import evaluate
from promoter.cli.output import (
    FORMAT_KEY,
    REPORTS_ATTRIBUTE,
    VERBOSITY_KEY,
    Format,
    add_global_options,
    config_option,
    configure_logging,
    emit,
    emit_error,
    format_options,
    is_structured,
    reports,
    requested_format,
    verbosity_option,
)
from promoter.cli.progress import progress_for
from promoter.cli.promotions import approve, propose, reconcile, status
from promoter.cli.rollback import health, rollback
from promoter.cli.serve import serve
from promoter.config.loader import (
    DirectorySource,
    LoadedSettings,
    find_settings_file,
    load_dry_config,
    load_settings,
)
from promoter.errors import BadInputError

__all__ = ["Context", "main"]


class Context:
    """What every command shares: the chosen promoter.yaml, loaded on first use.

    The file is chosen when it is first needed, so a `--config` given after the subcommand
    (`use_config`) counts as much as one given before it."""

    def __init__(self, config: str | None) -> None:
        self._explicit = config
        self._loaded: LoadedSettings | None = None

    @property
    def config_path(self) -> Path:
        return find_settings_file(self._explicit)

    def use_config(self, config: str) -> None:
        self._explicit = config
        self._loaded = None

    def settings(self) -> LoadedSettings:
        if self._loaded is None:
            self._loaded = load_settings(self.config_path)
        return self._loaded


class PromoterGroup(click.Group):
    """The `promoter` group: usage errors (an unknown option, a missing argument) are
    reported like every other error, so a `-o json` caller gets JSON on stderr for those
    too, and with exit status 2."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False,
                                  **extra)
        except click.ClickException as exc:
            fmt = requested_format(argv)
            if fmt is Format.TEXT:
                exc.show()
            else:
                with click.Context(self) as ctx:
                    ctx.meta[FORMAT_KEY] = fmt.value
                    emit_error(exc.format_message(), kind=type(exc).__name__,
                               exit_code=exc.exit_code,
                               fix="see `promoter --help` and `promoter COMMAND --help`")
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=PromoterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="promoter")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Promote TensorFlow models through GitOps environments, with proof at every step.

    Global options (--config, -o/--json, -v) may come before or after the subcommand.
    """
    configure_logging(ctx.meta.get(VERBOSITY_KEY, 0))
    ctx.obj = Context(ctx.meta.get("promoter.config"))
    command = main.get_command(ctx, ctx.invoked_subcommand or "")
    if is_structured() and command is not None and not getattr(command, REPORTS_ATTRIBUTE,
                                                               False):
        emit_error(f"promoter {ctx.invoked_subcommand} has no -o json or -o yaml: it does not "
                   "answer with a report", kind="UsageError", exit_code=2,
                   fix="drop -o; the commands with one are listed in `promoter --help`")
        ctx.exit(2)


main.params.extend([config_option(), *format_options(), verbosity_option()])


@reports
@main.command()
@click.pass_obj
@handle_errors
def validate(obj: Context) -> None:
    """Check promoter.yaml, environments/, policies/ and manifests/ in the working tree.

    Renders every model for every environment (the store's newest version number, or 1 when
    it has none, with a probe digest) and validates every object as `render` and `propose`
    do.
    """
    from promoter.promotion.hydrate import hydrate_version, probe_version
    from promoter.wiring import build_store

    loaded = obj.settings()
    dry = load_dry_config(DirectorySource(loaded.base_dir), loaded.settings)
    lines = [f"{loaded.path}: ok ({len(loaded.settings.models)} model(s))"]
    warnings: list[str] = []
    environments = []
    for env in dry.environments.values():
        source = f" <- {env.promotes_from}" if env.promotes_from else " (first)"
        lines.append(f"environments/{env.name}.yaml: ok (branch {env.branch}{source}, "
                     f"policy {env.policy})")
        environments.append({"name": env.name, "file": f"environments/{env.name}.yaml",
                             "branch": env.branch, "promotesFrom": env.promotes_from,
                             "policy": env.policy})
        for model in loaded.settings.models:
            holdout = loaded.resolve(env.evaluation.holdout.format(model=model.name))
            if not holdout.is_file():
                warnings.append(f"holdout for {model.name} not found at {holdout}")
                if not is_structured():
                    click.echo(f"  warning: {warnings[-1]}", err=True)
    lines.extend(f"policies/{name}.yaml: ok" for name in dry.policies)
    store = build_store(loaded)
    rendered_docs = []
    for env in dry.environments.values():
        for model in dry.model_settings(loaded.settings).models:
            versions = store.list_versions(model.name)
            probe = probe_version(model.name, versions[-1] if versions else 1)
            rendered = hydrate_version(dry, loaded.settings, environment=env, model=model,
                                       version=probe).manifests
            which = f"v{probe.version}" if versions else "probe v1: the store has none"
            lines.append(f"manifests/: ok for {env.name} ({model.name} {which}; "
                         f"{len(rendered.files)} files)")
            rendered_docs.append({"environment": env.name, "model": model.name,
                                  "version": probe.version, "probe": not versions,
                                  "files": len(rendered.files)})
    lines.append(f"manifests/: ok ({len(dry.templates)} template(s))")
    emit({"valid": True, "config": str(loaded.path), "models": len(loaded.settings.models),
          "environments": environments, "policies": sorted(dry.policies),
          "templates": len(dry.templates), "rendered": rendered_docs, "warnings": warnings},
         "\n".join(lines))


@main.command()
@click.option("--env", "environment", required=True, help="Environment to render for.")
@click.option("--model", required=True, help="Model name (see promoter.yaml).")
@click.option("--version", "version", required=True, type=int, help="Model version.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write the files here instead of printing them.")
@click.pass_obj
@handle_errors
def render(obj: Context, environment: str, model: str, version: int, out: Path | None) -> None:
    """Render the Kubernetes manifests of MODEL VERSION for ENV from the working tree.

    Everything is rendered in memory first: on any error nothing is written.
    """
    from promoter.promotion.hydrate import hydrate
    from promoter.wiring import build_store

    loaded = obj.settings()
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


@main.command()
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("promoter-demo"), show_default=True,
              help="Where to build the demo (replaced if it exists).")
@handle_errors
def demo(workdir: Path) -> None:
    """Promote a model dev -> staging -> prod on the embedded forge, step by step."""
    from promoter.cli.output import style
    from promoter.demo import run_demo

    if workdir.exists() and not workdir.is_dir():
        raise BadInputError(f"{workdir} is a file", fix="pass --workdir with a directory")
    with progress_for() as progress:
        run_demo(workdir.resolve(), echo=progress.echo, progress=progress.stage,
                 style=style())


for command in (propose, reconcile, approve, status, evaluate, flux, argo, rollback, health,
                serve, token, discover, history, dora):
    main.add_command(command)
add_global_options(main)
