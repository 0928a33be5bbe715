"""A JSON nesting limit of promoter's own, checked before a webhook body is parsed.

`json.loads` recurses once per level of nesting, so without a limit of its own the only limit
is the interpreter's recursion limit: a deep body raised RecursionError, and where a library
had raised that limit (celpy sets 2,500 when it is first used) a 1,000-deep body parsed.
GitHub's payloads nest a few levels (its documented examples: six at most); `load_json`
refuses anything deeper than `MAX_JSON_DEPTH` (64) before `json.loads` sees it, whatever the
recursion limit is. The scan drops strings (escaped quotes and backslashes included) and
sums the brackets that remain, all in string operations that run in C
(`benchmarks/json_depth.py` measures it beside `json.loads`).
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

from promoter.errors import BadInputError

MAX_JSON_DEPTH = 64
"""Deepest nesting a webhook body may have: `[]` and `{}` are depth 1, `[[]]` 2, a scalar 0.
GitHub's documented example payloads nest six at most."""

# The brackets as steps of the depth, +1 and -1 as signed bytes; every other byte deleted.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_CHUNK = 1 << 16
"""Steps summed per C call: the scan of a body far past the limit stops within one chunk."""


class JsonTooDeepError(BadInputError):
    """A JSON document nests deeper than the limit; it was not parsed."""


def nesting_depth(text: str, *, stop_above: int | None = None) -> int:
    """The deepest nesting of the JSON document `text`: how many `[` and `{` are open at
    once at most, brackets inside strings (and after an unterminated string's quote) not
    counted. Exact for valid JSON; invalid JSON gets a number too, and `json.loads` then
    refuses it. With `stop_above`, returns once the depth exceeds it (at most one chunk of
    `_CHUNK` brackets later)."""
    # Escapes are read left to right, so dropping every `\\` pair leaves the backslash of
    # each other escape, and dropping `\"` then leaves only the quotes that open and close
    # strings: every other piece between them is outside strings. An unterminated string's
    # piece comes last, at an odd index, and is dropped with the strings.
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    structure = "".join(unescaped.split('"')[::2])
    # In UTF-8 the bytes of `[]{}` stand for those characters only, so translating the
    # encoded text keeps exactly the structure's brackets (in C, not a loop over characters).
    steps = memoryview(structure.encode("utf-8", "surrogatepass")
                       .translate(_STEPS, _NOT_BRACKETS)).cast("b")
    depth = deepest = 0
    for start in range(0, len(steps), _CHUNK):
        chunk = steps[start:start + _CHUNK]
        deepest = max(deepest, max(accumulate(chunk, initial=depth)))
        if stop_above is not None and deepest > stop_above:
            break
        depth += sum(chunk)
    return deepest


def load_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse `body` as `json.loads` does (UTF-8, -16 or -32, told apart as it tells them),
    after refusing it unparsed if it nests deeper than `max_depth`.

    Raises JsonTooDeepError for a body too deep, UnicodeDecodeError or json.JSONDecodeError
    for one that is not JSON.
    """
    text = body.decode(json.detect_encoding(body), "surrogatepass")
    depth = nesting_depth(text, stop_above=max_depth)
    if depth > max_depth:
        raise JsonTooDeepError(
            f"the JSON nests deeper than {max_depth} levels",
            fix=f"GitHub's payloads nest a few levels; send a body nesting at most "
                f"{max_depth}")
    return json.loads(text)
