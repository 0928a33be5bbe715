"""Credentials and the PyGithub client for `GitHubForge`.

Secrets are read from an environment variable or a file named in promoter.yaml, at the moment
the client is built; they are never stored in the configuration, a repr, a log line or an
error message (errors name the variable or file, never the value).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter.config.schema import GitHubAuthSpec, GitHubSpec
from promoter.errors import ConfigError

if TYPE_CHECKING:
    import github

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the client retries 5xx answers and rate limits; tests make the waits tiny."""

    total: int = 5
    """Retries per request, after which the error reaches the caller."""
    backoff_factor: float = 0.5
    """urllib3 exponential backoff: factor * 2**(retry - 1) seconds between tries."""
    secondary_rate_wait: float = 60.0
    """Seconds to wait after a secondary rate limit without a Retry-After header."""
    max_rate_limit_wait: float | None = 900.0
    """Give up (and resume at the next reconcile) rather than wait longer than this."""
    timeout: int = 30
    """Seconds per HTTP request."""


class _Secret:
    """A string that never shows itself in a repr or str."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


def read_secret(*, env: str | None, file: str | None, environ: Mapping[str, str],
                resolve: Callable[[str], Path], config_file: str, field: str) -> _Secret:
    """The secret from `env` (a variable name) or `file`; ConfigError naming where it is
    missing, never showing a value."""
    if env is not None:
        value = environ.get(env, "").strip()
        if not value:
            raise ConfigError(config_file, f"environment variable {env} is not set or empty",
                              field=f"{field}Env", fix=f"export {env} before running promoter")
        return _Secret(value)
    assert file is not None  # the schema requires one of them
    path = resolve(file)
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(config_file, f"cannot read {path}: {exc.strerror}",
                          field=f"{field}File", fix="check the path and its permissions"
                          ) from None
    if not value:
        raise ConfigError(config_file, f"{path} is empty", field=f"{field}File")
    return _Secret(value)


def build_auth(spec: GitHubAuthSpec, *, environ: Mapping[str, str],
               resolve: Callable[[str], Path], config_file: str) -> github.Auth.Auth:
    """PyGithub auth for `spec`: a token, or a GitHub App installation.

    For an App, PyGithub signs an RS256 JWT with the private key, exchanges it for an
    installation token (`POST /app/installations/{id}/access_tokens`) and refreshes that token
    before it expires.
    """
    from github import Auth

    prefix = "forge.github.auth."
    if spec.type == "token":
        token = read_secret(env=spec.token_env, file=spec.token_file, environ=environ,
                            resolve=resolve, config_file=config_file, field=prefix + "token")
        return Auth.Token(token.reveal())
    key = read_secret(env=spec.private_key_env, file=spec.private_key_file, environ=environ,
                      resolve=resolve, config_file=config_file, field=prefix + "privateKey")
    if "PRIVATE KEY" not in key.reveal():
        raise ConfigError(config_file, "the GitHub App private key is not a PEM key",
                          field=prefix + ("privateKeyEnv" if spec.private_key_env
                                          else "privateKeyFile"),
                          fix="use the .pem file GitHub generated for the App")
    assert spec.app_id is not None
    assert spec.installation_id is not None
    app = Auth.AppAuth(spec.app_id, key.reveal())
    return Auth.AppInstallationAuth(app, spec.installation_id)


MARKER_KEY_MIN_CHARS = 32
"""An explicit marker key shorter than this is refused: it could be guessed."""
_MARKER_KEY_DERIVATION = b"promoter/pull-request-marker-key/v1"


def marker_key(spec: GitHubSpec, *, environ: Mapping[str, str],
               resolve: Callable[[str], Path], config_file: str) -> bytes:
    """The key `GitHubForge` signs its pull-request markers with (HMAC-SHA256).

    `markerKeyEnv` / `markerKeyFile` when given. Otherwise (App auth; the schema requires a
    key with a token) HMAC-SHA256 of a fixed label under the App's private key: only promoter
    holds that key (GitHub keeps only the public half) and it does not change when
    installation tokens are refreshed, and the derived key reveals nothing of it. A token is
    never used: tokens expire or are rotated, and every open marker would stop verifying.
    Rotating the App key (or the marker key) does that too: open promotions then halt until
    proposed again.
    """
    field = "forge.github.markerKey"
    if spec.marker_key_env is not None or spec.marker_key_file is not None:
        key = read_secret(env=spec.marker_key_env, file=spec.marker_key_file,
                          environ=environ, resolve=resolve, config_file=config_file,
                          field=field)
        if len(key.reveal()) < MARKER_KEY_MIN_CHARS:
            raise ConfigError(config_file, f"the marker key is shorter than "
                              f"{MARKER_KEY_MIN_CHARS} characters",
                              field=field + ("Env" if spec.marker_key_env else "File"),
                              fix="use a random key: openssl rand -hex 32")
        return key.reveal().encode()
    auth = spec.auth
    if auth.type != "app":
        raise ConfigError(config_file, "token auth needs a marker key",
                          field=field + "Env", fix="set markerKeyEnv or markerKeyFile")
    private = read_secret(env=auth.private_key_env, file=auth.private_key_file,
                          environ=environ, resolve=resolve, config_file=config_file,
                          field="forge.github.auth.privateKey")
    return hmac.new(private.reveal().encode(), _MARKER_KEY_DERIVATION, hashlib.sha256).digest()


def build_client(spec: GitHubSpec, auth: github.Auth.Auth, *,
                 retry: RetryPolicy | None = None) -> github.Github:
    """A PyGithub client for `spec.base_url` (github.com or GitHub Enterprise Server).

    `lazy=True`: objects are not fetched until a field is read, which saves calls and makes
    team lookups use `/orgs/{org}/teams/{slug}/...`. No throttling between requests (promoter
    makes few); retries follow `retry` (see `PromoterRetry`).
    """
    from github import Github

    policy = retry or RetryPolicy()
    kwargs: dict[str, Any] = {
        "base_url": spec.base_url, "auth": auth, "lazy": True, "timeout": policy.timeout,
        "retry": make_retry(policy), "seconds_between_requests": None,
        "seconds_between_writes": None,
    }
    return Github(**kwargs)


def make_retry(policy: RetryPolicy) -> Any:
    """A `GithubRetry` that retries 5xx and rate limits, but never re-sends a POST after a 5xx.

    PyGithub's default retries POST too; a POST that failed with a 5xx may still have been
    done (a comment created), and sending it again would duplicate it. A rate-limited POST
    (403/429) was not done and is retried. The next reconcile resumes what a failed POST
    left undone: every create looks before it creates.
    """
    from github.GithubRetry import GithubRetry

    class PromoterRetry(GithubRetry):
        def is_retry(self, method: str, status_code: int,
                     has_retry_after: bool = False) -> bool:
            if method.upper() == "POST" and status_code >= 500:
                return False
            return bool(super().is_retry(method, status_code, has_retry_after))

    return PromoterRetry(
        total=policy.total, backoff_factor=policy.backoff_factor,
        secondary_rate_wait=policy.secondary_rate_wait,
        max_rate_limit_wait=policy.max_rate_limit_wait,
        status_forcelist=[*range(500, 600), 429],
    )


def git_credentials(auth: github.Auth.Auth) -> Callable[[], tuple[str, str]]:
    """(user, password) for HTTPS git pushes with the same identity as the API client.

    For an App that is the current installation token, which PyGithub refreshes before it
    expires; GitHub accepts any user name with a token, `x-access-token` by convention.
    """

    def credentials() -> tuple[str, str]:
        token = getattr(auth, "token", None)
        if not isinstance(token, str) or not token:
            raise ConfigError("promoter.yaml", "this GitHub auth cannot push over HTTPS",
                              field="forge.github.auth.type")
        return "x-access-token", token

    return credentials
