"""`promoter serve`: run the promotion service over HTTP (webhooks, REST API, metrics).

This module only parses the command line; `promoter.wiring.build_server` composes what runs.
Secrets come from environment variables named in promoter.yaml (`service:`) or from files,
never from arguments: a command line is visible to every user of the machine (`ps`). The REST
API's tokens are a file of hashes (`$PROMOTER_API_TOKENS_FILE` or `service.apiTokensFile`),
each token giving one user; see `promoter.server.tokens`.
"""

from __future__ import annotations

import sys

import click

from promoter.errors import BadInputError, PromoterError


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
    from promoter.wiring import ServeOptions, build_server

    try:
        if legacy_token_env:
            raise BadInputError(
                "--api-token-env is no longer an option: one shared API token approved as "
                "whichever user the request named",
                fix="drop the option, give each release manager a token of their own "
                    "(`promoter token new USER >> api-tokens`) and point "
                    "$PROMOTER_API_TOKENS_FILE at that file")
        options = ServeOptions(host=host, port=port, webhook_secret_env=webhook_secret_env,
                               repository=repository, resync_interval_s=resync_interval,
                               workers=workers, log_format=log_format, access_log=access_log)
        build_server(ctx.obj.settings(), options).run()  # ctx.obj: promoter.cli.Context
    except PromoterError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
