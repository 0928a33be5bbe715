"""Typed errors a user can hit.

Every error carries the message the user sees; where there is a fix, the message says it.
The CLI maps `PromoterError.exit_code` to the process exit status, so bad input exits 2
and nothing else exits 2.
"""

from __future__ import annotations


class PromoterError(Exception):
    """Base class of every error promoter raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message}\n  fix: {self.fix}"
        return self.message


class BadInputError(PromoterError):
    """The user gave promoter something it cannot use. Nothing was written."""

    exit_code = 2


class ConfigError(BadInputError):
    """A configuration file is missing, unparsable or invalid.

    `location` is `<file>: <field path>` so the message points at the exact spot.
    """

    def __init__(self, file: str, message: str, *, field: str | None = None,
                 fix: str | None = None) -> None:
        self.file = file
        self.field = field
        where = f"{file}: {field}" if field else file
        super().__init__(f"{where}: {message}", fix=fix)


class ApiTokensFileError(ConfigError):
    """The REST API's tokens file is missing, unreadable or has a bad line.

    `promoter serve` refuses to start (exit 2) rather than run with fewer tokens than the
    operator wrote down: a half-read file would lock out some release managers silently.
    """


class ModelStoreError(BadInputError):
    """A model or version is missing from the store, or is not a SavedModel."""


class HoldoutError(BadInputError):
    """A holdout set cannot be read or does not match the model's signature."""


class ModelLoadError(BadInputError):
    """A SavedModel could not be loaded or scored (crash, hang, bad signature)."""


class RenderError(BadInputError):
    """A manifest template cannot be rendered (unknown variable, bad YAML)."""


class InvalidManifestError(RenderError):
    """A rendered Kubernetes object would be refused by the API server, or breaks a rule
    promotion relies on (its schema, an unknown kind, an empty image, a quoted port).

    Raised before anything is written, and located for the person who must edit the
    template: `template` (`manifests/serving/service.yaml`, plus the document number when the
    file holds several), the object (`kind`, `name`) and the `field` path inside it. The
    message reads `<template>: <kind> <name>: <field>: <problem>`; `fix` says what to change.
    """

    def __init__(self, *, template: str, kind: str, name: str, field: str, problem: str,
                 fix: str | None = None) -> None:
        self.template = template
        self.kind = kind
        self.name = name
        self.field = field
        self.problem = problem
        super().__init__(f"{template}: {kind} {name}: {field}: {problem}", fix=fix)


class PromotionError(BadInputError):
    """A promotion request is not allowed (e.g. version not deployed upstream)."""


class GitError(PromoterError):
    """A git operation failed; the repository is left as it was."""


class RepositoryNotFoundError(GitError, BadInputError):
    """The configured GitOps repository does not exist or is not a git repository.

    Bad input, not a refusal: nothing was tried, and the fix is in promoter.yaml
    (`repository.url`) or on disk.
    """

    exit_code = 2


class ConcurrentUpdateError(GitError):
    """A branch moved while promoter was writing it; nothing was overwritten.

    Promoter compares-and-swaps every ref it writes. Re-run the command: it starts from the
    branch as it is now.
    """


class ForgeError(PromoterError):
    """The forge (local or GitHub) refused or failed a request."""


class ForgeIdentityError(ForgeError):
    """The forge records promoter's writes under another login than the configured identity.

    Promoter trusts only statuses its own identity created; with the wrong identity it would
    never see its own again. Set `forge.github.identity` to the login of its credentials.
    """


class ForgeDatabaseCorruptError(ForgeError, BadInputError):
    """The local forge's SQLite file is not a database, or a damaged one.

    Bad input: the file promoter was pointed at cannot be used as it is, and retrying will
    not help; the fix says what to move away.
    """

    exit_code = 2


class UntrustedPullRequestError(ForgeError):
    """A pull request's promoter marker is missing or its signature does not verify.

    The marker records who proposed the promotion and which head promoter wrote; anyone with
    write access can edit a description, so an unverifiable marker is never believed and the
    promotion halts. Close the pull request and propose again.
    """


class PullRequestNotFoundError(ForgeError, BadInputError):
    """No pull request with that number exists."""

    exit_code = 2


class StaleHeadError(ForgeError):
    """The pull request's head is no longer the commit promoter evaluated; nothing merged."""


class NotMergeableError(ForgeError):
    """The pull request cannot be merged as it is (closed, or its base moved)."""


class ApprovalError(BadInputError):
    """An approval was refused (not an approver, or the author approving their own PR)."""
