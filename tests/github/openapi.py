"""Validate HTTP responses against GitHub's OpenAPI description (the subset packaged in
`promoter/schemas/github/github-subset.json`).

The fake GitHub server in `fake_server.py` records every response it sends; the tests pass
each one to `ResponseValidator.check`, which finds the operation by method and path, requires
the status code to be one the description documents for it, and validates the JSON body
against the documented schema (OpenAPI 3.0: `nullable` is translated to JSON Schema, `$ref`s
resolve inside the document).

`github-subset-extra.json` (beside this file) adds the operations the client calls that the
shared subset lacks, copied verbatim from the same description; they are merged in here.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from promoter.schemas import data_file

DESCRIPTION = data_file("github", "github-subset.json")
EXTRA = Path(__file__).with_name("github-subset-extra.json")
"""Operations (with the components only they use) missing from the packaged subset, e.g.
`GET /repos/{owner}/{repo}/commits/{ref}/statuses`, the one listing that says who created
each status."""
_URI = "urn:github-openapi"

UNDOCUMENTED_ERRORS: dict[tuple[str, str], frozenset[str]] = {
    # GitHub answers 422 "No commit found for SHA" for an unknown commit; the description only
    # lists 201 for this operation.
    ("post", "/repos/{owner}/{repo}/statuses/{sha}"): frozenset({"422"}),
    # GitHub answers 404 for the reviews of a pull request that does not exist; the
    # description only lists 200.
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"): frozenset({"404"}),
    # Only GitHub Apps may create check runs; a token gets 403 "You must authenticate via a
    # GitHub App." The description only lists 201.
    ("post", "/repos/{owner}/{repo}/check-runs"): frozenset({"403"}),
}
"""Error answers real GitHub gives that the description leaves out: allowed, and their body
must still be a `basic-error`."""


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    method: str
    path: str
    status: int
    body: bytes
    injected: bool = False
    """A fault the test injected (a 502, a rate limit): checked as a `basic-error` only."""


def _openapi_to_jsonschema(node: Any) -> Any:
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _raw_document() -> dict[str, Any]:
    """The shared subset with `EXTRA`'s paths and components added (the subset's own win, so
    the extra file stays harmless once the subset has them too)."""
    raw: dict[str, Any] = json.loads(DESCRIPTION.read_text())
    extra = json.loads(EXTRA.read_text())
    for template, item in extra["paths"].items():
        raw["paths"].setdefault(template, item)
    for kind, entries in extra["components"].items():
        for name, value in entries.items():
            raw["components"].setdefault(kind, {}).setdefault(name, value)
    return raw


@functools.cache
def _document() -> dict[str, Any]:
    raw = _raw_document()
    converted: dict[str, Any] = dict(raw)
    converted["components"] = dict(raw["components"])
    converted["components"]["schemas"] = _openapi_to_jsonschema(raw["components"]["schemas"])
    converted["paths"] = copy.deepcopy(raw["paths"])
    return converted


class ResponseValidator:
    """Checks responses against the description; `check` returns a list of problems."""

    def __init__(self) -> None:
        self._doc = _document()
        resource = Resource.from_contents(self._doc, default_specification=DRAFT7)
        self._registry: Registry[Any] = Registry().with_resource(_URI, resource)
        self._routes = []
        for template, item in self._doc["paths"].items():
            parts = template.split("/")
            pattern = ""
            for part in parts[1:]:
                if part in ("{branch}", "{ref}", "{basehead}", "{sha}"):
                    pattern += "/(.+?)"  # branch names hold slashes
                elif part.startswith("{"):
                    pattern += "/([^/]+)"
                else:
                    pattern += "/" + re.escape(part)
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            self._routes.append((re.compile(f"^{pattern}$"), literal, template, item))
        self._routes.sort(key=lambda r: -r[1])

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for regex, _, template, item in self._routes:
            if regex.match(path) and method.lower() in item:
                return template, item[method.lower()]
        return None

    def check(self, response: RecordedResponse) -> list[str]:
        where = f"{response.method} {response.path} -> {response.status}"
        found = self.operation(response.method, response.path)
        if found is None:
            return [f"{where}: no such operation in the description"]
        template, op = found
        code = str(response.status)
        if response.injected or code in UNDOCUMENTED_ERRORS.get(
                (response.method.lower(), template), frozenset()):
            return self._check_body(where, response.body,
                                    {"$ref": f"{_URI}#/components/schemas/basic-error"})
        documented = op["responses"].get(code)
        if documented is None:
            return [f"{where}: status {code} is not documented for {template} "
                    f"(documented: {sorted(op['responses'])})"]
        if "$ref" in documented:
            name = documented["$ref"].rsplit("/", 1)[1]
            documented = self._doc["components"]["responses"][name]
        content = documented.get("content", {}).get("application/json")
        if content is None or "schema" not in content:
            if response.body.strip():
                return [f"{where}: the description documents no body, got {response.body[:80]!r}"]
            return []
        pointer = _pointer(template, response.method.lower(), code)
        schema_ref = (f"{_URI}#/paths/{pointer}/content/application~1json/schema"
                      if "$ref" not in op["responses"][code]
                      else f"{_URI}#/components/responses/{name}/content/application~1json/schema")
        return self._check_body(where, response.body, {"$ref": schema_ref})

    def _check_body(self, where: str, body: bytes, schema: dict[str, Any]) -> list[str]:
        try:
            data = json.loads(body)
        except ValueError:
            return [f"{where}: body is not JSON: {body[:80]!r}"]
        validator = self._validator(json.dumps(schema))
        return [f"{where}: {'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message[:300]}"
                for e in validator.iter_errors(data)]


    @functools.lru_cache(maxsize=256)  # noqa: B019  # one validator per schema; lives as long
    def _validator(self, schema: str) -> Draft7Validator:
        return Draft7Validator(json.loads(schema), registry=self._registry)


@functools.cache
def shared_validator() -> ResponseValidator:
    """One validator for the whole test session (building one resolves the document)."""
    return ResponseValidator()


def _pointer(template: str, method: str, code: str) -> str:
    escaped = template.replace("~", "~0").replace("/", "~1")
    return f"{escaped}/{method}/responses/{code}"


def example(name: str, base_url: str) -> Any:
    """A documented example object (`components/examples/<name>`), with every
    `https://api.github.com` URL rebased on `base_url`."""
    raw = _raw_examples()[name]
    text = json.dumps(raw["value"]).replace("https://api.github.com", base_url)
    return json.loads(text)


@functools.cache
def _raw_examples() -> dict[str, Any]:
    return dict(_raw_document()["components"]["examples"])
