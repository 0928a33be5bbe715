"""REST API tokens: the hashed tokens file, `promoter token`, and identity from the token."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from promoter.cli import main
from promoter.errors import ApiTokensFileError
from promoter.server import tokens as tokens_module
from promoter.server.tokens import ApiTokens, hash_token, load_api_tokens
from tests.server.support import RITA_TOKEN, SAM_TOKEN, FakeService, bearer

ENV = "$PROMOTER_API_TOKENS_FILE"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "api-tokens"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def load(path: Path) -> ApiTokens:
    return load_api_tokens(path, named_by=ENV)


# --- identity from the token, over the app ------------------------------------------------------


def test_two_tokens_act_as_two_users(client: TestClient, fake_service: FakeService) -> None:
    rita = client.post("/api/v1/promotions/7/approve", headers=bearer(RITA_TOKEN))
    sam = client.post("/api/v1/promotions/8/reject", json={}, headers=bearer(SAM_TOKEN))
    assert (rita.status_code, sam.status_code) == (200, 200)
    assert (rita.json()["user"], sam.json()["user"]) == ("rita", "sam")
    assert fake_service.calls_of("approve") == [(7, "rita", False), (8, "sam", True)]


def test_ritas_token_cannot_act_as_sam(client: TestClient, fake_service: FakeService) -> None:
    for action in ("approve", "reject"):
        response = client.post(f"/api/v1/promotions/7/{action}", json={"user": "sam"},
                               headers=bearer(RITA_TOKEN))
        assert response.status_code == 403
        assert response.json()["error"] == "this token belongs to rita; it cannot act as sam"
    assert fake_service.calls_of("approve") == []


def test_an_unknown_token_is_401_and_acts_as_no_one(client: TestClient,
                                                    fake_service: FakeService) -> None:
    for headers in ({}, bearer("x" * 43), bearer(RITA_TOKEN + "x"), bearer(RITA_TOKEN[:-1])):
        response = client.post("/api/v1/promotions/7/approve", json={"user": "rita"},
                               headers=headers)
        assert response.status_code == 401, headers
    assert fake_service.calls_of("approve") == []


# --- ApiTokens --------------------------------------------------------------------------------


def test_every_entry_is_compared_whichever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = ApiTokens.of({f"token-{i}-" + "x" * 32: f"user{i}" for i in range(5)})
    compared: list[int] = []
    real = tokens_module.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(1)
        return real(a, b)

    monkeypatch.setattr(tokens_module.hmac, "compare_digest", counting)
    for token, user in (("token-0-" + "x" * 32, "user0"), ("token-4-" + "x" * 32, "user4"),
                        ("unknown", None)):
        compared.clear()
        assert tokens.user_for(token) == user
        assert len(compared) == 5  # no early exit on the first match


# --- the tokens file --------------------------------------------------------------------------


def test_a_file_of_hashes_with_comments_rotation_crlf_and_bom(tmp_path: Path) -> None:
    old, new = "rita-old-" + "a" * 32, "rita-new-" + "b" * 32
    path = write(tmp_path, (
        "\ufeff# release managers\r\n"
        f"rita: {hash_token(old)}   # rotating: drop after 2026-02\r\n"
        "\r\n"
        f"rita:{hash_token(new).upper().replace('SHA256:', 'sha256:')}\r\n"
        f"  sam :  {hash_token(SAM_TOKEN)}\r\n").encode())
    tokens = load(path)
    assert len(tokens) == 3
    assert tokens.users == ("rita", "sam")
    assert (tokens.user_for(old), tokens.user_for(new), tokens.user_for(SAM_TOKEN)) == (
        "rita", "rita", "sam")
    assert tokens.user_for(hash_token(SAM_TOKEN)) is None  # a line of the file is no token


@pytest.mark.parametrize(("text", "message", "fix"), [
    ("rita sha256:abc\n", "line 1: expected `USER: sha256:<hex>`", "USER: sha256:"),
    ("# ok\n\n-rita: sha256:" + "0" * 64 + "\n", "line 3: the user name is not valid",
     "USER: sha256:"),
    (f"rita: {RITA_TOKEN}\n", "line 1: rita's value is not `sha256:<hex>`",
     "issue a new one with `promoter token new rita`"),
    ("rita: sha256:" + "0" * 63 + "\n", "line 1: rita's hash is not 64 hexadecimal digits",
     "promoter token hash"),
    ("rita: sha256:" + "g" * 64 + "\n", "rita's hash is not 64 hexadecimal digits", ""),
    (f"rita: {hash_token(RITA_TOKEN)}\nsam: {hash_token(RITA_TOKEN)}\n",
     "line 2: the same token as line 1", "`promoter token new sam`"),
    ("# nobody yet\n", "has no tokens", "or unset $PROMOTER_API_TOKENS_FILE"),
    (b"rita: \xff\n", "is not UTF-8 text", ""),
])
def test_bad_files_name_the_file_the_line_and_the_fix(
        tmp_path: Path, text: str | bytes, message: str, fix: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ApiTokensFileError) as caught:
        load(path)
    assert str(caught.value.message).startswith(f"{path}: ")
    assert message in caught.value.message
    assert fix in (caught.value.fix or "")
    assert caught.value.exit_code == 2
    assert RITA_TOKEN not in str(caught.value)  # a wrong line is never quoted back


def test_missing_file_and_mounted_secret_directory(tmp_path: Path) -> None:
    with pytest.raises(ApiTokensFileError, match="no such file") as missing:
        load(tmp_path / "nope")
    assert "promoter token new USER >>" in (missing.value.fix or "")
    with pytest.raises(ApiTokensFileError, match="is a directory") as directory:
        load(tmp_path)
    assert str(tmp_path / "api-tokens") in (directory.value.fix or "")


# --- promoter token ---------------------------------------------------------------------------


def test_token_new_writes_a_line_that_holds_no_token(tmp_path: Path) -> None:
    path = tmp_path / "api-tokens"
    plain: dict[str, str] = {}
    for user in ("rita", "sam"):
        result = CliRunner().invoke(main, ["token", "new", user])
        assert result.exit_code == 0, result.output
        line = result.stdout
        token = result.stderr.strip().splitlines()[-1]
        assert len(token) >= 43
        assert token not in line
        plain[user] = token
        with path.open("a") as file:
            file.write(line)
    stored = path.read_text()
    assert all(token not in stored for token in plain.values())
    assert stored.count("sha256:") == 2
    tokens = load(path)
    assert {user: tokens.user_for(token) for user, token in plain.items()} == {
        "rita": "rita", "sam": "sam"}


def test_token_hash_matches_sha256sum(tmp_path: Path) -> None:
    expected = "sha256:" + hashlib.sha256(RITA_TOKEN.encode()).hexdigest()
    result = CliRunner().invoke(main, ["token", "hash"], input=RITA_TOKEN + "\n")
    assert (result.exit_code, result.stdout) == (0, expected + "\n")
    line = CliRunner().invoke(main, ["token", "hash", "--user", "rita"], input=RITA_TOKEN)
    assert line.stdout == f"rita: {expected}\n"
    write(tmp_path, line.stdout)
    assert load(tmp_path / "api-tokens").user_for(RITA_TOKEN) == "rita"


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["token", "hash"], "short", "at least 32 are needed"),
    (["token", "hash"], "", "the token is empty"),
    (["token", "hash"], "has spaces " + "x" * 32, "spaces or control characters"),
    (["token", "hash", "--user", "bad user"], RITA_TOKEN, "not a valid user name"),
    (["token", "new", "rita;sam"], "", "not a valid user name"),
])
def test_token_commands_refuse_bad_input(args: list[str], stdin: str, message: str) -> None:
    result = CliRunner().invoke(main, args, input=stdin)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
