"""`promoter serve`: run the promotion service over HTTP (webhooks, REST API, metrics).

Secrets come from environment variables named in promoter.yaml (`service:`), never from
arguments: a command line is visible to every user of the machine (`ps`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

import click

from promoter.errors import BadInputError, PromoterError

_GITHUB_URL = re.compile(
    r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"(?P<name>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$")


def github_repository(url: str) -> str | None:
    """`owner/name` of a github.com repository URL, or None for anything else."""
    match = _GITHUB_URL.match(url)
    return match.group("name") if match else None


@click.command("serve")
@click.option("--host", help="Address to listen on [default: service.host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535),
              help="TCP port [default: service.port, 8080].")
@click.option("--webhook-secret-env", metavar="VAR",
              help="Environment variable with the GitHub webhook secret "
                   "[default: service.webhookSecretEnv, PROMOTER_WEBHOOK_SECRET].")
@click.option("--api-token-env", metavar="VAR",
              help="Environment variable with the bearer token for approve/reject "
                   "[default: service.apiTokenEnv, PROMOTER_API_TOKEN]; unset: they are off.")
@click.option("--repository", metavar="OWNER/NAME",
              help="Only act on webhooks of this repository [default: service.repository, "
                   "or the GitHub repository.url, or any].")
@click.option("--resync-interval", type=click.FloatRange(1.0), metavar="SECONDS",
              help="Reconcile every open promotion this often [default: 300].")
@click.option("--workers", type=click.IntRange(1, 64), help="Reconcile threads [default: 4].")
@click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default="auto",
              show_default=True, help="auto: JSON lines unless stderr is a terminal.")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every HTTP request (uvicorn's access log).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None,
          webhook_secret_env: str | None, api_token_env: str | None, repository: str | None,
          resync_interval: float | None, workers: int | None, log_format: str,
          access_log: bool) -> None:
    """Serve GitHub webhooks, the REST API (/api/v1, docs at /docs), /healthz, /readyz and
    /metrics; reconcile promotions in the background and every --resync-interval."""
    try:
        _serve(ctx.obj, host=host, port=port, webhook_secret_env=webhook_secret_env,
               api_token_env=api_token_env, repository=repository,
               resync_interval=resync_interval, workers=workers, log_format=log_format,
               access_log=access_log)
    except PromoterError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


def _serve(obj: Any, *, host: str | None, port: int | None, webhook_secret_env: str | None,
           api_token_env: str | None, repository: str | None, resync_interval: float | None,
           workers: int | None, log_format: str, access_log: bool) -> None:
    import uvicorn  # lazily: `promoter --help` stays fast

    from promoter.server import build_app
    from promoter.server.logs import configure_logging
    from promoter.server.metrics import ServerMetrics
    from promoter.wiring import (
        build_adapters,
        build_auto_proposer,
        build_service,
        instrument_adapters,
    )

    loaded = obj.settings()  # promoter.cli.Context
    spec = loaded.settings.service
    secret_env = webhook_secret_env or spec.webhook_secret_env
    secret = os.environ.get(secret_env, "")
    if not secret:
        raise BadInputError(
            f"no webhook secret: ${secret_env} is not set",
            fix=f"export {secret_env}=<the secret configured on the GitHub webhook>")
    token_env = api_token_env or spec.api_token_env
    token = os.environ.get(token_env) or None

    root = logging.getLogger()
    configure_logging(level=min(root.level or logging.INFO, logging.INFO),
                      json_lines=None if log_format == "auto" else log_format == "json",
                      secrets=[s for s in (secret, token) if s])
    log = logging.getLogger("promoter.serve")
    if token is None:
        log.warning("$%s is not set: approve/reject over HTTP are off", token_env)

    # One registry for the app and the adapters: /metrics shows forge calls and rollouts too.
    metrics = ServerMetrics()
    adapters = instrument_adapters(build_adapters(loaded), metrics)
    service = build_service(loaded, adapters=adapters)
    # New versions flow in without a person where promoter.yaml says so (autoPropose).
    proposer = build_auto_proposer(loaded, adapters=adapters, service=service)
    app = build_app(
        service, metrics=metrics, discover=proposer.run if proposer.enabled else None,
        webhook_secret=secret.encode(), api_token=token,
        repository=repository or spec.repository
        or github_repository(loaded.settings.repository.url),
        dry_branch=loaded.settings.repository.dry_branch,
        workers=workers or spec.workers,
        resync_interval_s=resync_interval or spec.resync_interval_seconds)
    uvicorn.run(app, host=host or spec.host, port=spec.port if port is None else port,
                log_config=None, access_log=access_log, timeout_graceful_shutdown=30)
