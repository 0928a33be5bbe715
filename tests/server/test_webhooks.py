"""POST /webhooks/github over the ASGI app, with the recording fake service."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from promoter.server.json_depth import MAX_JSON_DEPTH
from promoter.server.signature import sign
from tests.server.support import (
    SECRET,
    WEBHOOKS,
    FakeService,
    as_promotion,
    body_of,
    example,
    signed_headers,
)

URL = "/webhooks/github"


def post(client: TestClient, event: str, payload: Any, *, delivery: str | None = None,
         **header_overrides: str) -> Any:
    body = payload if isinstance(payload, bytes) else body_of(payload)
    headers = {**signed_headers(body, event, delivery=delivery), **header_overrides}
    return client.post(URL, content=body, headers=headers)


def settle(app: FastAPI) -> None:
    assert app.state.parts.scheduler.wait_idle(5)


def test_promotion_event_schedules_a_reconcile_of_that_pull(
        client: TestClient, app: FastAPI, fake_service: FakeService) -> None:
    response = post(client, "pull_request",
                    as_promotion(example("pull_request", "synchronize"), number=7))
    assert response.status_code == 202
    assert response.json() == {"status": "scheduled", "reason": "pull_request synchronize on "
                               "PR #7", "jobs": ["pull #7"]}
    settle(app)
    assert fake_service.calls_of("reconcile_pull") == [7]


def test_every_example_payload_is_answered_without_error(client: TestClient) -> None:
    for event in ("pull_request", "pull_request_review", "push", "check_suite"):
        payloads = sorted((item for item in (WEBHOOKS / event).iterdir()
                           if item.name.endswith(".json")), key=lambda item: item.name)
        assert payloads, f"no packaged {event} examples"
        for path in payloads:
            response = post(client, event, json.loads(path.read_text()))
            assert response.status_code in (200, 202), (path.name, response.text)


@pytest.mark.parametrize("headers", [
    {},                                                          # no signature
    {"X-Hub-Signature-256": "sha256=" + "0" * 64},               # wrong
    {"X-Hub-Signature-256": sign(b"another secret", b"{}")},     # another secret
    {"X-Hub-Signature": "sha1=" + "0" * 40},                     # the legacy header only
])
def test_unsigned_or_badly_signed_deliveries_get_401(
        client: TestClient, app: FastAPI, fake_service: FakeService,
        headers: dict[str, str]) -> None:
    body = body_of(as_promotion(example("pull_request", "synchronize")))
    response = client.post(URL, content=body, headers={
        "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d-1", **headers})
    assert response.status_code == 401
    settle(app)
    assert fake_service.calls_of("reconcile_pull") == []


def test_wrong_algorithm_prefix_is_refused(client: TestClient) -> None:
    body = b"{}"
    good = sign(SECRET, body)
    response = client.post(URL, content=body, headers={
        "X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-2",
        "X-Hub-Signature-256": good.replace("sha256=", "sha512=")})
    assert response.status_code == 401


def test_signature_is_checked_before_the_body_is_parsed(client: TestClient) -> None:
    # Not JSON and not signed: the answer is about the signature, the body was never read.
    response = client.post(URL, content=b"{not json", headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-3"})
    assert response.status_code == 401


def test_redelivery_is_answered_but_not_processed_twice(
        client: TestClient, app: FastAPI, fake_service: FakeService) -> None:
    payload = as_promotion(example("pull_request_review", "submitted.with-organization"))
    first = post(client, "pull_request_review", payload, delivery="same-id")
    settle(app)
    again = post(client, "pull_request_review", payload, delivery="same-id")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["status"] == "duplicate"
    settle(app)
    assert fake_service.calls_of("reconcile_pull") == [7]


def test_ping(client: TestClient) -> None:
    response = post(client, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1})
    assert response.status_code == 200
    assert response.json()["status"] == "pong"


def test_malformed_json_is_400(client: TestClient) -> None:
    assert post(client, "push", b"{not json").status_code == 400
    assert post(client, "push", b"\xff\xfe").status_code == 400


def test_wrong_shape_is_400(client: TestClient) -> None:
    response = post(client, "pull_request", {"action": "opened", "pull_request": {},
                                             "repository": {"full_name":
                                                            "Codertocat/Hello-World"}})
    assert response.status_code == 400
    assert "pull_request.number" in response.json()["reason"]


def test_missing_delivery_id_is_400(client: TestClient) -> None:
    body = b"{}"
    response = client.post(URL, content=body, headers={
        "X-Hub-Signature-256": sign(SECRET, body), "X-GitHub-Event": "ping"})
    assert response.status_code == 400


def test_unknown_event_is_ignored(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="promoter.server.webhooks"):
        response = post(client, "issues", {"action": "opened", "repository": {
            "full_name": "Codertocat/Hello-World"}})
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert any("issues" in r.getMessage() for r in caplog.records)


def test_unknown_repository_is_ignored(
        client: TestClient, app: FastAPI, fake_service: FakeService,
        caplog: pytest.LogCaptureFixture) -> None:
    payload = as_promotion(example("pull_request", "synchronize"))
    payload["repository"]["full_name"] = "someone/else"
    with caplog.at_level("WARNING", logger="promoter.server.webhooks"):
        response = post(client, "pull_request", payload)
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert any("someone/else" in r.getMessage() for r in caplog.records)
    settle(app)
    assert fake_service.calls_of("reconcile_pull") == []


def test_push_to_an_environment_branch_reconciles_it_then_downstream(
        client: TestClient, app: FastAPI, fake_service: FakeService) -> None:
    fake_service.open = {"dev": 1, "staging": 2, "prod": 3}
    fake_service.branch_of = {1: "environments/dev", 2: "environments/staging",
                              3: "environments/prod"}
    payload = example("push", "with-new-branch")
    payload["ref"] = "refs/heads/environments/dev"
    assert post(client, "push", payload).status_code == 202
    settle(app)
    # dev, then staging (promotes from dev) -- not prod: its upstream did not change.
    assert fake_service.calls_of("reconcile_pull") == [1, 2]


def test_push_to_the_dry_branch_resyncs(client: TestClient, app: FastAPI,
                                        fake_service: FakeService) -> None:
    payload = example("push", "with-new-branch")
    payload["ref"] = "refs/heads/main"
    response = post(client, "push", payload)
    assert response.json()["jobs"] == ["resync"]
    settle(app)
    assert len(fake_service.calls_of("reconcile")) == 2  # at startup, and now


def test_the_service_keeps_working_after_bad_input_and_failing_jobs(
        client: TestClient, app: FastAPI, fake_service: FakeService) -> None:
    fake_service.failing = {66}
    post(client, "push", b"\x00garbage")
    post(client, "pull_request", [1, 2, 3])
    client.post(URL, content=b"x" * 1000, headers={"X-GitHub-Event": "push"})
    post(client, "pull_request", as_promotion(example("pull_request", "synchronize"),
                                              number=66))
    settle(app)
    response = post(client, "pull_request", as_promotion(example("pull_request", "synchronize"),
                                                         number=67))
    assert response.status_code == 202
    settle(app)
    assert fake_service.calls_of("reconcile_pull") == [66, 67]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_deliveries_while_not_running_are_refused_and_not_remembered(
        app: FastAPI, fake_service: FakeService) -> None:
    body = body_of(as_promotion(example("pull_request", "synchronize")))
    headers = signed_headers(body, "pull_request", delivery="during-shutdown")
    outside = TestClient(app)  # no `with`: the lifespan (and the scheduler) never started
    assert outside.post(URL, content=body, headers=headers).status_code == 503
    with TestClient(app) as client:  # after a start, GitHub's redelivery is processed
        assert client.post(URL, content=body, headers=headers).status_code == 202
        settle(app)
    assert fake_service.calls_of("reconcile_pull") == [7]


@pytest.fixture
def high_recursion_limit() -> Iterator[None]:
    """The interpreter's recursion limit raised well past 1,000, as a library can (celpy
    sets 2,500 when it is first used): the nesting limit must not depend on it. 10,000, not
    more: were the limit gone, `json.loads` would then parse 1,000 levels (and fail the test)
    without overflowing the C stack of the server's thread."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def value_depth(value: Any) -> int:
    """How deeply a parsed JSON value nests: a scalar 0, `[]` and `{}` 1."""
    if isinstance(value, list):
        return 1 + max(map(value_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(value_depth, value.values()), default=0)
    return 0


def nested_to(payload: dict[str, Any], depth: int) -> dict[str, Any]:
    """`payload` with a field of nested lists that makes the whole body nest `depth` deep."""
    padding: list[Any] = []
    for _ in range(depth - 2):  # the payload's object is one level, `[]` another
        padding = [padding]
    payload["padding"] = padding
    assert value_depth(payload) == depth
    return payload


@pytest.mark.usefixtures("high_recursion_limit")
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 30_000])
def test_a_signed_body_nested_too_deeply_is_400_and_the_server_goes_on(
        client: TestClient, app: FastAPI, fake_service: FakeService, depth: int) -> None:
    # Signed, so it passes the signature check and reaches the parser (it was a 500, and
    # 1,000 levels parsed where the recursion limit had been raised).
    for body in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        response = post(client, "pull_request", body)
        assert response.status_code == 400, response.text
        assert response.json() == {"status": "rejected",
                                   "reason": "the body's JSON nests too deeply"}
    # A real delivery one level past the limit, nested where routing never looks.
    deep = nested_to(as_promotion(example("pull_request", "synchronize"), number=9),
                     MAX_JSON_DEPTH + 1)
    assert post(client, "pull_request", deep).status_code == 400
    following = post(client, "pull_request",
                     as_promotion(example("pull_request", "synchronize"), number=8))
    assert following.status_code == 202
    settle(app)
    assert fake_service.calls_of("reconcile_pull") == [8]


@pytest.mark.usefixtures("high_recursion_limit")
def test_a_body_at_the_nesting_limit_is_accepted(
        client: TestClient, app: FastAPI, fake_service: FakeService) -> None:
    payload = nested_to(as_promotion(example("pull_request", "synchronize"), number=7),
                        MAX_JSON_DEPTH)
    response = post(client, "pull_request", payload)
    assert response.status_code == 202, response.text
    settle(app)
    assert fake_service.calls_of("reconcile_pull") == [7]


@pytest.mark.usefixtures("high_recursion_limit")
def test_brackets_inside_strings_do_not_count_toward_the_limit(
        client: TestClient, app: FastAPI, fake_service: FakeService) -> None:
    payload = as_promotion(example("pull_request", "synchronize"), number=7)
    # Strings a careless scanner would misread: an escaped quote before the brackets, a
    # string that ends in a backslash (its closing quote is not escaped), brackets of a
    # string that ends right before real ones.
    payload["pull_request"]["title"] = '\\"' + "[" * 1_000 + '"\\' + "{" * 1_000
    payload["pull_request"]["body"] = "\\"
    payload["notes"] = ["[" * 500 + "\\\\\\", ['"]]]]' * 100]]
    body = json.dumps(payload, ensure_ascii=False).encode()
    assert body.count(b"[") > MAX_JSON_DEPTH
    response = post(client, "pull_request", body)
    assert response.status_code == 202, response.text
    settle(app)
    assert fake_service.calls_of("reconcile_pull") == [7]


def test_the_packaged_github_examples_nest_well_under_the_limit() -> None:
    """What the limit's documentation says of GitHub's payloads: its documented examples
    nest six levels at most, far under the limit."""
    depths = [value_depth(json.loads(path.read_text()))
              for path in WEBHOOKS.rglob("*.json")]
    assert len(depths) >= 9
    assert max(depths) == 6


def test_an_api_body_nested_too_deeply_is_400(client: TestClient) -> None:
    # FastAPI parses the REST API's bodies (within their 64 KiB cap): 7,000 levels is past
    # any recursion limit a library in this process sets (celpy: 2,500), and a 400.
    nested = b'{"user":' * 7_000 + b'"rita"' + b"}" * 7_000
    api = client.post("/api/v1/promotions/7/approve", content=nested,
                      headers={"Content-Type": "application/json"})
    assert api.status_code == 400, api.text
