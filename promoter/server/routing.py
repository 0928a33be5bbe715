"""From a verified GitHub webhook to the reconciles it calls for: pure functions, no I/O.

Promoter's proposal branch is always `<environment branch>-next` (and an environment branch
never ends in `-next`), so a payload says by itself which environment it is about: the
webhook route needs neither git nor the forge to answer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

PROPOSAL_SUFFIX = "-next"
OWN_STATUS_PREFIX = "promoter/"


class TriggerKind(enum.StrEnum):
    PULL = "pull"
    """Reconcile one promotion pull request."""
    ENVIRONMENT = "environment"
    """Reconcile the open promotion of one environment branch (and, with `cascade`, those of
    the environments promoting from it: their upstream gate depends on it)."""
    ALL = "all"
    """Resync every open promotion (the dry source changed)."""


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: TriggerKind
    branch: str | None = None
    """Environment branch (never the `-next` one) for PULL and ENVIRONMENT."""
    number: int | None = None
    """Pull request number for PULL."""
    cascade: bool = False


@dataclass(frozen=True, slots=True)
class Routing:
    triggers: tuple[Trigger, ...]
    reason: str
    """Why: what was recognised, or why nothing is scheduled."""


class MalformedPayloadError(ValueError):
    """The payload is valid JSON but not the shape GitHub documents for its event."""


HANDLED_EVENTS = ("pull_request", "pull_request_review", "push", "check_run", "check_suite",
                  "status")


def repository_name(payload: Any) -> str | None:
    """`owner/name` of the repository a payload is about, or None (e.g. an org-level ping)."""
    if not isinstance(payload, dict):
        return None
    repo = payload.get("repository")
    if isinstance(repo, dict) and isinstance(repo.get("full_name"), str):
        return str(repo["full_name"])
    return None


def route(event: str, payload: Any, *, dry_branch: str) -> Routing:
    """The reconciles that `event` with `payload` calls for; raises MalformedPayloadError."""
    if not isinstance(payload, dict):
        raise MalformedPayloadError("the payload is not a JSON object")
    handler = _HANDLERS.get(event)
    if handler is None:
        return Routing((), f"event {event!r} is not one promoter reacts to")
    return handler(payload, dry_branch)


def _field(obj: Any, *path: str, kind: type | tuple[type, ...] = str,
           optional: bool = False, at: str = "") -> Any:
    """`obj[path[0]][path[1]]...` checked to be a `kind`; `at` prefixes the path in errors."""
    value = obj
    for i, key in enumerate(path):
        if not isinstance(value, dict) or key not in value or value[key] is None:
            if optional:
                return None
            raise MalformedPayloadError(f"the payload has no {at}{'.'.join(path[:i + 1])}")
        value = value[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedPayloadError(f"{at}{'.'.join(path)} has an unexpected type")
    return value


def _pull_trigger(pull: Any, where: str,
                  at: str = "pull_request.") -> tuple[Trigger | None, str]:
    number = _field(pull, "number", kind=int, at=at)
    base = _field(pull, "base", "ref", at=at)
    head = _field(pull, "head", "ref", at=at)
    state = _field(pull, "state", optional=True, at=at)
    if head != base + PROPOSAL_SUFFIX:
        return None, f"PR #{number} is not a promotion ({head} -> {base})"
    if state is not None and state != "open":
        return None, f"PR #{number} is {state}"
    return Trigger(TriggerKind.PULL, branch=base, number=number), f"{where} on PR #{number}"


def _on_pull_request(payload: dict[str, Any], dry_branch: str) -> Routing:
    action = _field(payload, "action")
    pull = _field(payload, "pull_request", kind=dict)
    if action == "closed":
        # A merge moves the environment branch; its push event does the follow-up.
        return Routing((), f"PR #{_field(pull, 'number', kind=int)} closed")
    trigger, reason = _pull_trigger(pull, f"pull_request {action}")
    return Routing((trigger,) if trigger else (), reason)


def _on_review(payload: dict[str, Any], dry_branch: str) -> Routing:
    action = _field(payload, "action")
    trigger, reason = _pull_trigger(_field(payload, "pull_request", kind=dict),
                                    f"review {action}")
    return Routing((trigger,) if trigger else (), reason)


def _on_push(payload: dict[str, Any], dry_branch: str) -> Routing:
    ref = _field(payload, "ref")
    if not ref.startswith("refs/heads/"):
        return Routing((), f"push to {ref}, not a branch")
    branch = ref.removeprefix("refs/heads/")
    if _field(payload, "deleted", kind=bool, optional=True):
        return Routing((), f"branch {branch} deleted")
    if branch == dry_branch:
        return Routing((Trigger(TriggerKind.ALL),), f"push to the dry branch {branch}")
    if branch.endswith(PROPOSAL_SUFFIX):
        env_branch = branch.removesuffix(PROPOSAL_SUFFIX)
        return Routing((Trigger(TriggerKind.ENVIRONMENT, branch=env_branch),),
                       f"push to the proposal branch {branch}")
    return Routing((Trigger(TriggerKind.ENVIRONMENT, branch=branch, cascade=True),),
                   f"push to {branch}")


def _from_checks(pulls: Any, head_branch: str | None, what: str) -> Routing:
    if not isinstance(pulls, list):
        raise MalformedPayloadError(f"{what}.pull_requests is not a list")
    triggers: list[Trigger] = []
    for pull in pulls:
        trigger, _ = _pull_trigger(pull, what, at=f"{what}.pull_requests[].")
        if trigger is not None:
            triggers.append(trigger)
    if not triggers and head_branch and head_branch.endswith(PROPOSAL_SUFFIX):
        triggers.append(Trigger(TriggerKind.ENVIRONMENT,
                                branch=head_branch.removesuffix(PROPOSAL_SUFFIX)))
    if not triggers:
        return Routing((), f"{what} is not about a promotion (branch {head_branch})")
    return Routing(tuple(triggers), f"{what} completed on {head_branch}")


def _on_check_suite(payload: dict[str, Any], dry_branch: str) -> Routing:
    action = _field(payload, "action")
    suite = _field(payload, "check_suite", kind=dict)
    if action != "completed":
        return Routing((), f"check_suite {action}: gates change only when checks complete")
    return _from_checks(suite.get("pull_requests", []),
                        _field(suite, "head_branch", optional=True), "check_suite")


def _on_check_run(payload: dict[str, Any], dry_branch: str) -> Routing:
    action = _field(payload, "action")
    run = _field(payload, "check_run", kind=dict)
    if action != "completed":
        return Routing((), f"check_run {action}: gates change only when checks complete")
    head_branch = _field(run, "check_suite", "head_branch", optional=True)
    return _from_checks(run.get("pull_requests", []), head_branch, "check_run")


def _on_status(payload: dict[str, Any], dry_branch: str) -> Routing:
    context = _field(payload, "context")
    if context.startswith(OWN_STATUS_PREFIX):
        return Routing((), f"status {context} is promoter's own")
    branches = _field(payload, "branches", kind=list)
    triggers = []
    for entry in branches:
        name = _field(entry, "name")
        if name.endswith(PROPOSAL_SUFFIX):
            triggers.append(Trigger(TriggerKind.ENVIRONMENT,
                                    branch=name.removesuffix(PROPOSAL_SUFFIX)))
    if not triggers:
        return Routing((), f"status {context} is not on a proposal branch")
    return Routing(tuple(triggers), f"status {context}")


_HANDLERS = {
    "pull_request": _on_pull_request,
    "pull_request_review": _on_review,
    "push": _on_push,
    "check_suite": _on_check_suite,
    "check_run": _on_check_run,
    "status": _on_status,
}
