"""`promoter flux` and `promoter argo`: write the Flux or Argo CD objects for every environment.

The commands read the dry source from the working tree (like `promoter render`), generate
everything in memory, and only then write: on any error nothing is written. They expect the
`promoter` group's context object (`ctx.obj.settings()`); the group registers them with
`main.add_command(flux)` and `main.add_command(argo)`.

The URL the cluster clones: `--repo-url`, else promoter.yaml's `repository.url` when it is a
URL, else the URL of the repository's `origin` remote (a local clone: what `git clone`
would clone again), per environment overridden by `delivery.repositoryUrl`. A local
repository without an `origin` (the demo's) needs `--repo-url`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import click

from promoter.cli.errors import handle_errors
from promoter.errors import BadInputError

_OUT = click.Path(file_okay=False, path_type=Path)


def _generate(obj: Any, out: Path, repo_url: str | None, tool: str) -> None:
    from promoter.companion import generate_argo, generate_flux
    from promoter.config.loader import DirectorySource, load_dry_config

    loaded = obj.settings()
    dry = load_dry_config(DirectorySource(loaded.base_dir), loaded.settings)
    default_url = repo_url or _repository_url(loaded)
    if default_url is None:
        missing = [env.name for env in dry.environments.values()
                   if not env.delivery.repository_url]
        if missing:
            configured = loaded.settings.repository.url
            path = loaded.resolve(configured)
            raise BadInputError(
                f"the cluster needs a git URL to clone, and there is none: repository.url in "
                f"{loaded.path} is the local path {configured!r} and {path} has no `origin` "
                "remote with a URL",
                fix="pass --repo-url https://github.com/<org>/<repo>.git (or add the remote: "
                    "`git remote add origin URL`), or set delivery.repositoryUrl in "
                    + ", ".join(f"environments/{name}.yaml" for name in missing))
    generate = generate_flux if tool == "flux" else generate_argo
    result = generate(dry.environments.values(), repository_url=default_url)
    for path, data in result.files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    click.echo(f"wrote {len(result.files)} files to {out} ({result.digest()})")
    for note in result.notes:
        click.echo(f"note: {note}")


def _is_remote(url: str) -> bool:
    return "://" in url or url.startswith("git@")


def _repository_url(loaded: Any) -> str | None:
    """promoter.yaml's repository.url when it is a URL, else the local repository's `origin`
    remote when that is one; None otherwise."""
    configured = loaded.settings.repository.url
    if _is_remote(configured):
        return str(configured)
    try:
        done = subprocess.run(["git", "-C", str(loaded.resolve(configured)), "remote",
                               "get-url", "origin"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    url = done.stdout.strip()
    return url if done.returncode == 0 and _is_remote(url) else None


_repo_url_option = click.option(
    "--repo-url", metavar="URL",
    help="Git URL the cluster clones [default: repository.url in promoter.yaml if it is a "
         "URL, else the repository's `origin` remote; per environment: "
         "delivery.repositoryUrl].")


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
    """Write an Argo CD Application per environment and the argocd-cm training health checks."""
    _generate(obj, out, repo_url, "argo")
