"""Structured log lines: JSON, with promotion fields, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from promoter.server.logs import log_context, make_handler
from promoter.server.signature import sign
from tests.server.support import (
    RITA_TOKEN,
    SECRET,
    FakeService,
    as_promotion,
    bearer,
    body_of,
    example,
)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = make_handler(stream=stream, json_lines=None,
                           secrets=[SECRET.decode()])  # StringIO is not a TTY: JSON
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_about_a_promotion_carry_its_fields(
        log_stream: io.StringIO, client: TestClient, app: FastAPI,
        fake_service: FakeService) -> None:
    fake_service.branch_of = {7: "environments/staging"}
    body = body_of(as_promotion(example("pull_request", "synchronize"), env="staging"))
    client.post("/webhooks/github", content=body, headers={
        "X-Hub-Signature-256": sign(SECRET, body), "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "delivery-1"})
    assert app.state.parts.scheduler.wait_idle(5)
    records = lines(log_stream)
    scheduled = next(r for r in records if "scheduled" in str(r["message"]))
    assert scheduled["delivery"] == "delivery-1"
    assert scheduled["event"] == "pull_request"
    assert scheduled["pr"] == 7
    service_line = next(r for r in records if r["message"] == "reconciling PR #7")
    assert service_line["pr"] == 7  # set by the scheduler around the job
    assert service_line["branch"] == "environments/staging"
    outcome = next(r for r in records if str(r["message"]).startswith("PR #7 churn v3"))
    assert outcome == {**outcome, "environment": "staging", "pr": 7, "promotion": "churn v3",
                       "level": "info"}


def test_secrets_never_reach_the_log(log_stream: io.StringIO, client: TestClient) -> None:
    body = b'{"zen": "x"}'
    # A forged delivery signed with a guess, a wrong token, a right one, and an accident.
    client.post("/webhooks/github", content=body, headers={
        "X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "d"})
    client.post("/webhooks/github", content=body, headers={
        "X-Hub-Signature-256": sign(SECRET, body), "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "e"})
    client.post("/api/v1/promotions/1/approve", headers=bearer("wrong"))
    client.post("/api/v1/promotions/1/approve", headers=bearer(RITA_TOKEN))
    # The server knows API tokens only as hashes, so it cannot redact one: it must never log
    # one in the first place (as `promoter serve` configures it: only the secret redacted).
    assert RITA_TOKEN not in log_stream.getvalue()
    assert "rita approved PR #1 over the API" in log_stream.getvalue()
    logging.getLogger("promoter.test").error("oops, dumped %s", SECRET.decode())
    try:
        raise RuntimeError(f"secret {SECRET.decode()}")
    except RuntimeError:
        logging.getLogger("promoter.test").exception("failure")
    text = log_stream.getvalue()
    assert SECRET.decode() not in text
    assert "[redacted]" in text


def test_text_format_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    handler = make_handler(stream=stream)
    logger = logging.getLogger("promoter.test.tty")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        with log_context(environment="prod", pr=3):
            logger.info("merged")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "INFO promoter.test.tty: merged [environment=prod pr=3]\n"
