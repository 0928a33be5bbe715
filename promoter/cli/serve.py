"""`promoter serve`: run the promotion service over HTTP (webhooks, REST API, metrics).

Secrets come from environment variables named in promoter.yaml (`service:`) or from files,
never from arguments: a command line is visible to every user of the machine (`ps`). The REST
API's tokens are a file of hashes (`$PROMOTER_API_TOKENS_FILE` or `service.apiTokensFile`),
each token giving one user; see `promoter.server.tokens`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from promoter.errors import BadInputError, PromoterError

if TYPE_CHECKING:
    from promoter.config.loader import LoadedSettings
    from promoter.server.tokens import ApiTokens

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
@click.option("--api-token-env", "legacy_token_env", metavar="VAR", hidden=True,
              help="Removed (one shared token): refused, with the fix.")
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
          webhook_secret_env: str | None, legacy_token_env: str | None,
          repository: str | None, resync_interval: float | None, workers: int | None,
          log_format: str, access_log: bool) -> None:
    """Serve GitHub webhooks, the REST API (/api/v1, docs at /docs), /healthz, /readyz and
    /metrics; reconcile promotions in the background and every --resync-interval.

    Approve/reject over HTTP need a tokens file ($PROMOTER_API_TOKENS_FILE or
    service.apiTokensFile; `promoter token new USER` writes its lines); without one they
    are off."""
    try:
        if legacy_token_env:
            raise BadInputError(
                "--api-token-env is no longer an option: one shared API token approved as "
                "whichever user the request named",
                fix="drop the option, give each release manager a token of their own "
                    "(`promoter token new USER >> api-tokens`) and point "
                    "$PROMOTER_API_TOKENS_FILE at that file")
        _serve(ctx.obj, host=host, port=port, webhook_secret_env=webhook_secret_env,
               repository=repository,
               resync_interval=resync_interval, workers=workers, log_format=log_format,
               access_log=access_log)
    except PromoterError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


def _serve(obj: Any, *, host: str | None, port: int | None, webhook_secret_env: str | None,
           repository: str | None, resync_interval: float | None, workers: int | None,
           log_format: str, access_log: bool) -> None:
    import uvicorn  # lazily: `promoter --help` stays fast

    from promoter.server import build_app
    from promoter.server.logs import configure_logging
    from promoter.server.metrics import ServerMetrics
    from promoter.server.tokens import TOKENS_FILE_ENV
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
    tokens = _api_tokens(loaded)

    root = logging.getLogger()
    configure_logging(level=min(root.level or logging.INFO, logging.INFO),
                      json_lines=None if log_format == "auto" else log_format == "json",
                      secrets=[secret])
    log = logging.getLogger("promoter.serve")
    if tokens is None:
        log.warning("no API tokens file ($%s, service.apiTokensFile): approve/reject over "
                    "HTTP are off", TOKENS_FILE_ENV)
    else:  # who, not where: the file's path and contents stay out of the logs
        log.info("approve/reject over HTTP: %d token(s) for %s", len(tokens),
                 ", ".join(tokens.users))

    # One registry for the app and the adapters: /metrics shows forge calls and rollouts too.
    metrics = ServerMetrics()
    adapters = instrument_adapters(build_adapters(loaded), metrics)
    service = build_service(loaded, adapters=adapters)
    # New versions flow in without a person where promoter.yaml says so (autoPropose).
    proposer = build_auto_proposer(loaded, adapters=adapters, service=service)
    app = build_app(
        service, metrics=metrics, discover=proposer.run if proposer.enabled else None,
        webhook_secret=secret.encode(), api_tokens=tokens,
        repository=repository or spec.repository
        or github_repository(loaded.settings.repository.url),
        dry_branch=loaded.settings.repository.dry_branch,
        workers=workers or spec.workers,
        resync_interval_s=resync_interval or spec.resync_interval_seconds)
    uvicorn.run(app, host=host or spec.host, port=spec.port if port is None else port,
                log_config=None, access_log=access_log, timeout_graceful_shutdown=30)


def _api_tokens(loaded: LoadedSettings) -> ApiTokens | None:
    """The REST API's tokens: from `$PROMOTER_API_TOKENS_FILE`, else `service.apiTokensFile`,
    else none (approvals over HTTP off). Refuses the old single shared token outright: it let
    its holder approve as any name, and quietly ignoring it would leave an operator believing
    approvals over HTTP still work."""
    from promoter.server.tokens import TOKENS_FILE_ENV, load_api_tokens

    spec = loaded.settings.service
    if os.environ.get(spec.api_token_env):
        raise BadInputError(
            f"${spec.api_token_env} is set, but one shared API token is no longer accepted: "
            "it approved as whichever user the request named",
            fix=f"give each release manager a token of their own (`promoter token new USER "
                f">> api-tokens`), point ${TOKENS_FILE_ENV} (or service.apiTokensFile) at that "
                f"file, and unset {spec.api_token_env}")
    from_env = os.environ.get(TOKENS_FILE_ENV)
    if from_env:
        return load_api_tokens(Path(from_env).expanduser(), named_by=f"${TOKENS_FILE_ENV}")
    if spec.api_tokens_file:
        return load_api_tokens(loaded.resolve(spec.api_tokens_file),
                               named_by="service.apiTokensFile")
    return None
