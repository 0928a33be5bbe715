from __future__ import annotations

import pytest

from promoter.server.signature import sign, verify

# GitHub's documented test vector (docs: "Validating webhook deliveries").
VECTOR_SECRET = b"It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_HEADER = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_test_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_BODY) == VECTOR_HEADER
    assert verify(VECTOR_SECRET, VECTOR_BODY, VECTOR_HEADER)


@pytest.mark.parametrize("header", [
    None,
    "",
    "sha256=",
    "sha256=" + "0" * 64,
    VECTOR_HEADER.replace("sha256=", "sha1="),          # another algorithm: never accepted
    VECTOR_HEADER.replace("sha256=", ""),               # no algorithm prefix
    VECTOR_HEADER.replace("sha256=", "SHA256="),
    VECTOR_HEADER[:-1],                                  # truncated
    VECTOR_HEADER + "00",
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1\u00e9",
])
def test_bad_headers_are_refused(header: str | None) -> None:
    assert not verify(VECTOR_SECRET, VECTOR_BODY, header)


def test_signature_covers_the_exact_bytes() -> None:
    header = sign(VECTOR_SECRET, VECTOR_BODY)
    assert not verify(VECTOR_SECRET, VECTOR_BODY + b" ", header)
    assert not verify(b"another secret", VECTOR_BODY, header)


def test_an_empty_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="empty webhook secret"):
        verify(b"", VECTOR_BODY, VECTOR_HEADER)
