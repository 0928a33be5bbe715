"""`promoter flux` and `promoter argo`: write the Flux or Argo CD objects for every environment.

The commands read the dry source from the working tree (like `promoter render`), generate
everything in memory, and only then write: on any error nothing is written. They expect the
`promoter` group's context object (`ctx.obj.settings()`); the group registers them with
`main.add_command(flux)` and `main.add_command(argo)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from promoter.cli.errors import handle_errors

_OUT = click.Path(file_okay=False, path_type=Path)


def _generate(obj: Any, out: Path, repo_url: str | None, tool: str) -> None:
    from promoter.companion import generate_argo, generate_flux
    from promoter.config.loader import DirectorySource, load_dry_config

    loaded = obj.settings()
    dry = load_dry_config(DirectorySource(loaded.base_dir), loaded.settings)
    default_url = repo_url or loaded.settings.repository.url
    generate = generate_flux if tool == "flux" else generate_argo
    result = generate(dry.environments.values(), repository_url=default_url)
    for path, data in result.files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    click.echo(f"wrote {len(result.files)} files to {out} ({result.digest()})")
    for note in result.notes:
        click.echo(f"note: {note}")


_repo_url_option = click.option(
    "--repo-url", metavar="URL",
    help="Git URL the cluster clones [default: repository.url in promoter.yaml; "
         "per environment: delivery.repositoryUrl].")


@click.command("flux")
@click.option("--out", required=True, type=_OUT, help="Directory to write the objects to.")
@_repo_url_option
@click.pass_obj
@handle_errors
def flux(obj: Any, out: Path, repo_url: str | None) -> None:
    """Write Flux GitRepository, Kustomization, Receiver, Provider and Alert per environment."""
    _generate(obj, out, repo_url, "flux")


@click.command("argo")
@click.option("--out", required=True, type=_OUT, help="Directory to write the objects to.")
@_repo_url_option
@click.pass_obj
@handle_errors
def argo(obj: Any, out: Path, repo_url: str | None) -> None:
    """Write an Argo CD Application per environment and the argocd-cm TFJob health check."""
    _generate(obj, out, repo_url, "argo")
