"""The webhook's JSON nesting limit: the depth scan, and the refusal before parsing."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promoter.errors import BadInputError
from promoter.server.json_depth import (
    MAX_JSON_DEPTH,
    JsonTooDeepError,
    load_json,
    nesting_depth,
)


def value_depth(value: Any) -> int:
    """How deeply a parsed JSON value nests, computed from the value: a scalar 0."""
    if isinstance(value, list):
        return 1 + max(map(value_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(value_depth, value.values()), default=0)
    return 0


@pytest.fixture
def high_recursion_limit() -> Iterator[None]:
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize(("text", "depth"), [
    ("1", 0),
    ('"x"', 0),
    ("[]", 1),
    ("{}", 1),
    ("[[]]", 2),
    ("[[], [[]], []]", 3),
    ('{"a": [{}], "b": 1}', 3),
    ('"[[[{{{"', 0),                     # brackets in a string
    (r'"\"[[["', 0),                     # after an escaped quote: still the string
    (r'["\\", [1]]', 2),                 # a string that is one backslash; the quote closes it
    (r'["\\\"]]]", [[]]]', 3),           # backslash, escaped quote, brackets: all string
    (r'{"\\": {"\\\\": []}}', 3),        # keys ending in backslashes
    ('["\\u005b\\u005b", []]', 2),       # `[` spelled as a \u escape is string, not structure
    ('["é[", {"ü": ["x"]}]', 3),         # non-ASCII beside brackets
    ("[[[[[", 5),                        # unclosed: json.loads refuses it
    ('["[[[[', 1),                       # an unterminated string's brackets are not counted
])
def test_depth_of_documents(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_the_scan_stops_once_past_the_limit() -> None:
    text = "[" * 300_000 + "]" * 300_000
    assert nesting_depth(text) == 300_000
    # Past the limit after the first chunk of brackets: the rest is not summed.
    assert 64 < nesting_depth(text, stop_above=64) <= 1 << 16


@pytest.mark.usefixtures("high_recursion_limit")
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 9_000])
def test_a_body_deeper_than_the_limit_is_refused_whatever_the_recursion_limit(
        depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    json.loads(body)  # the parser alone would take it: the recursion limit is 10,000
    with pytest.raises(JsonTooDeepError) as refused:
        load_json(body)
    assert isinstance(refused.value, BadInputError)
    assert str(MAX_JSON_DEPTH) in refused.value.message
    assert refused.value.fix


def test_a_body_at_the_limit_parses() -> None:
    body = b'{"a":' * (MAX_JSON_DEPTH - 1) + b"[]" + b"}" * (MAX_JSON_DEPTH - 1)
    assert value_depth(load_json(body)) == MAX_JSON_DEPTH


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_bodies_in_every_encoding_json_loads_takes_parse_alike(encoding: str) -> None:
    # In UTF-16 a character such as U+5B5B is the bytes of `[[`: the scan reads the decoded
    # text, never the bytes.
    document = {"title": "\u5b5b\u5d5d\u7b7b", "list": [[1]]}
    body = json.dumps(document, ensure_ascii=False).encode(encoding)
    assert load_json(body) == json.loads(body) == document
    deep = ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)).encode(encoding)
    with pytest.raises(JsonTooDeepError):
        load_json(deep)


@pytest.mark.parametrize("body", [b"\xff\xfe\xfd", b"[1,", b'{"a": "unterminated'])
def test_what_is_not_json_fails_as_json_loads_fails(body: bytes) -> None:
    with pytest.raises((UnicodeDecodeError, json.JSONDecodeError)):
        json.loads(body)
    with pytest.raises((UnicodeDecodeError, json.JSONDecodeError)):
        load_json(body)


# Text a careless scanner misreads: quotes, backslashes and brackets, escaped or not.
_tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\ ,:ab\u00e9\u5b5b\n\t')) |
                       st.characters(), max_size=20)
_scalars = st.none() | st.booleans() | st.integers() | \
    st.floats(allow_nan=False, allow_infinity=False) | _tricky_text


def _wrapped(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(_tricky_text, children, max_size=4)


def _deepened(value: Any, levels: int) -> Any:
    for _ in range(levels):
        value = [value]
    return value


_documents = st.builds(_deepened, st.recursive(_scalars, _wrapped, max_leaves=30),
                       st.integers(min_value=0, max_value=80))


@settings(max_examples=300, deadline=None)
@given(document=_documents, ensure_ascii=st.booleans(), indent=st.none() | st.integers(0, 2))
def test_the_scan_agrees_with_the_depth_json_loads_builds(
        document: Any, ensure_ascii: bool, indent: int | None) -> None:
    text = json.dumps(document, ensure_ascii=ensure_ascii, indent=indent)
    assert nesting_depth(text) == value_depth(json.loads(text))
