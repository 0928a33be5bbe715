"""The response validator itself: it must reject what GitHub would never send."""

from __future__ import annotations

import json

from tests.github.openapi import RecordedResponse, example, shared_validator

BASE = "http://127.0.0.1:1"


def _check(method: str, path: str, status: int, body: object) -> list[str]:
    return shared_validator().check(RecordedResponse(method, path, status,
                                                     json.dumps(body).encode()))


def test_documented_status_and_body_pass() -> None:
    body = example("pull-request-merge-result-response-if-merge-was-successful", BASE)
    assert _check("PUT", "/repos/o/r/pulls/1/merge", 200, body) == []
    assert _check("PUT", "/repos/o/r/pulls/1/merge", 409, {"message": "Head moved"}) == []
    assert _check("GET", "/repos/o/r/branches/env/prod/protection/required_status_checks",
                  404, {"message": "Branch not protected"}) == []


def test_undocumented_status_is_rejected() -> None:
    problems = _check("PUT", "/repos/o/r/pulls/1/merge", 422 + 1, {"message": "x"})
    assert problems
    assert "not documented" in problems[0]


def test_body_missing_a_required_field_is_rejected() -> None:
    body = example("issue-comment", BASE)
    del body["user"]
    problems = _check("PATCH", "/repos/o/r/issues/comments/5", 200, body)
    assert any("'user' is a required property" in p for p in problems)


def test_nullable_fields_follow_the_description() -> None:
    body = example("status", BASE)
    body["description"] = None  # nullable in the description
    assert _check("POST", "/repos/o/r/statuses/abc", 201, body) == []
    body["context"] = None  # not nullable
    assert _check("POST", "/repos/o/r/statuses/abc", 201, body)


def test_unknown_operation_is_rejected() -> None:
    assert _check("DELETE", "/repos/o/r/pulls/1", 204, {})
