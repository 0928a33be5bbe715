"""Each event GitHub sends, from its documented examples, to the reconciles it schedules."""

from __future__ import annotations

from typing import Any

import pytest

from promoter.server.routing import (
    MalformedPayloadError,
    Routing,
    Trigger,
    TriggerKind,
    repository_name,
    route,
)
from tests.server.support import as_promotion, example

DEV = "environments/dev"


def routed(event: str, payload: Any) -> Routing:
    return route(event, payload, dry_branch="main")


@pytest.mark.parametrize("name", ["opened.with-organization", "synchronize"])
def test_pull_request_on_a_proposal_reconciles_that_pull(name: str) -> None:
    payload = as_promotion(example("pull_request", name), env="prod", number=12)
    assert routed("pull_request", payload).triggers == (
        Trigger(TriggerKind.PULL, branch="environments/prod", number=12),)


def test_pull_request_that_is_not_a_promotion_is_ignored() -> None:
    routing = routed("pull_request", example("pull_request", "synchronize"))
    assert routing.triggers == ()
    assert "not a promotion" in routing.reason


def test_closed_pull_request_is_left_to_the_push_that_follows() -> None:
    payload = as_promotion(example("pull_request", "closed.with-organization"))
    routing = routed("pull_request", payload)
    assert routing.triggers == ()
    assert "closed" in routing.reason


@pytest.mark.parametrize("name", ["submitted.with-organization", "dismissed"])
def test_review_reconciles_the_pull(name: str) -> None:
    payload = as_promotion(example("pull_request_review", name), env="staging", number=3)
    assert routed("pull_request_review", payload).triggers == (
        Trigger(TriggerKind.PULL, branch="environments/staging", number=3),)


def test_review_on_a_closed_pull_is_ignored() -> None:
    payload = as_promotion(example("pull_request_review", "submitted.with-organization"))
    payload["pull_request"]["state"] = "closed"
    assert routed("pull_request_review", payload).triggers == ()


def test_push_to_the_dry_branch_resyncs_everything() -> None:
    payload = example("push", "with-new-branch")  # refs/heads/master
    assert route("push", payload, dry_branch="master").triggers == (Trigger(TriggerKind.ALL),)


def test_push_to_an_environment_branch_reconciles_it_and_downstream() -> None:
    payload = example("push", "with-new-branch")
    payload["ref"] = f"refs/heads/{DEV}"
    assert routed("push", payload).triggers == (
        Trigger(TriggerKind.ENVIRONMENT, branch=DEV, cascade=True),)


def test_push_to_a_proposal_branch_reconciles_its_environment() -> None:
    payload = example("push", "with-new-branch")
    payload["ref"] = f"refs/heads/{DEV}-next"
    assert routed("push", payload).triggers == (Trigger(TriggerKind.ENVIRONMENT, branch=DEV),)


def test_tag_push_and_branch_deletion_are_ignored() -> None:
    assert routed("push", example("push", "with-organization")).triggers == ()  # a tag
    payload = example("push", "with-new-branch")
    payload["deleted"] = True
    assert routed("push", payload).triggers == ()


def test_check_suite_completed_on_a_promotion() -> None:
    payload = example("check_suite", "completed.with-organization")
    payload["check_suite"]["pull_requests"] = [
        {"number": 4, "head": {"ref": f"{DEV}-next", "sha": "a"}, "base": {"ref": DEV}}]
    assert routed("check_suite", payload).triggers == (
        Trigger(TriggerKind.PULL, branch=DEV, number=4),)


def test_check_suite_on_a_proposal_branch_without_pull_list() -> None:
    payload = example("check_suite", "completed.with-organization")
    payload["check_suite"]["head_branch"] = f"{DEV}-next"
    assert routed("check_suite", payload).triggers == (
        Trigger(TriggerKind.ENVIRONMENT, branch=DEV),)


def test_check_suite_requested_and_unrelated_are_ignored() -> None:
    assert routed("check_suite", example("check_suite", "requested")).triggers == ()
    assert routed("check_suite",
                  example("check_suite", "completed.with-organization")).triggers == ()


def test_check_run_completed() -> None:
    payload = {"action": "completed", "check_run": {
        "pull_requests": [{"number": 9, "head": {"ref": f"{DEV}-next"}, "base": {"ref": DEV}}],
        "check_suite": {"head_branch": f"{DEV}-next"}}}
    assert routed("check_run", payload).triggers == (
        Trigger(TriggerKind.PULL, branch=DEV, number=9),)
    payload["action"] = "created"
    assert routed("check_run", payload).triggers == ()


def test_status_on_a_proposal_branch_but_not_promoters_own() -> None:
    payload = {"context": "ci/tests", "state": "success", "sha": "a" * 40,
               "branches": [{"name": f"{DEV}-next"}, {"name": "main"}]}
    assert routed("status", payload).triggers == (Trigger(TriggerKind.ENVIRONMENT, branch=DEV),)
    payload["context"] = "promoter/evaluation"
    assert routed("status", payload).triggers == ()


def test_unknown_event_is_ignored_with_a_reason() -> None:
    routing = routed("issues", {"action": "opened"})
    assert routing.triggers == ()
    assert "issues" in routing.reason


@pytest.mark.parametrize(("event", "payload"), [
    ("pull_request", []),
    ("pull_request", {"action": "opened"}),
    ("pull_request", {"action": "opened", "pull_request": {"number": "7"}}),
    ("pull_request", {"action": "opened", "pull_request": {"number": True}}),
    ("push", {"ref": 42}),
    ("status", {"context": "ci", "branches": "main"}),
    ("check_suite", {"action": "completed", "check_suite": {"pull_requests": {}}}),
])
def test_malformed_payloads_raise_a_clear_error(event: str, payload: Any) -> None:
    with pytest.raises(MalformedPayloadError):
        routed(event, payload)


def test_repository_name() -> None:
    assert repository_name(example("push", "with-new-branch")) == "Codertocat/Hello-World"
    assert repository_name({"zen": "ping"}) is None
    assert repository_name([1]) is None
