"""The substitution engine: parse a template as YAML first, then replace variables in the tree.

Why structural: substituting text before parsing would let a value (an image name, a path, a
proto text with quotes and newlines) change the YAML's structure. Here the template is parsed
with a safe loader, and `${...}` is replaced inside the parsed strings, so a value can only ever
become a value.

Rules, for every string scalar in a template (mapping values, list items and mapping keys):

- An **unquoted** scalar that is exactly `${var.path}` is replaced by the variable's typed value:
  an int stays an int, a mapping becomes a mapping (`resources: ${serving.resources}`).
- Anywhere else (`${...}` inside a longer string, or in a quoted or block scalar) the value is
  interpolated as text. Quoting is how a template asks for a string:
  `app.kubernetes.io/version: "${model.version}"` gives `"3"`, where the unquoted form gives 3.
  Mapping keys are always text.
- A mapping value or list item that is exactly `${var}` with no value (None, e.g.
  `training.activeDeadlineSeconds` when unset) is omitted, key and all: optional fields need no
  conditional syntax. Interpolating a missing value into text is an error.
- `$${` writes a literal `${`; any other `$` is left alone (shell commands keep `$HOME`).
- `${a.b.c}` may also reach into a mapping variable: `${serving.resources.requests}`.

Errors are `RenderError`s naming the template, the YAML path and, for an unknown variable,
the known ones. Flow collections (`{a: b}`, `[a, b]`) cannot hold unquoted `${...}`, because
`{` and `}` are YAML flow indicators: write templates in block style.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from collections.abc import Mapping
from typing import Any

import yaml

from promoter.errors import RenderError
from promoter.render.objects import document_location, format_path

Variables = Mapping[str, Any]
"""Variable name (dotted, e.g. `serving.image`) to value: str, int, bool, None, dict or list."""

_NAME = r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*"
_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
"""`$${` (escape), `${...}` (a placeholder) or an unclosed `${`, in that order of preference."""
_WHOLE = re.compile(r"\$\{\s*(" + _NAME + r")\s*\}")
_VALID_NAME = re.compile(r"\s*(" + _NAME + r")\s*")

_OMIT = object()
"""Returned by the substitution of a whole-value variable that has no value: drop the item."""


class _TextStr(str):
    """A string scalar the template quoted (or wrote as a block): substitute as text only."""

    __slots__ = ()


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader that remembers quoted strings and rejects duplicate mapping keys.

    PyYAML keeps the last of two equal keys silently; in a template that hides a mistake
    (two `labels:` blocks), so it is an error here.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node,
                                                                             yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _construct_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    value = loader.construct_scalar(node)
    if node.style in {"'", '"', "|", ">"} and "${" in value:
        return _TextStr(value)
    return value


_TemplateLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def parse_template(template: str, text: str) -> list[Any]:
    """Parse every YAML document of `template` (path relative to `manifests/`).

    Empty documents (only comments, or `---` separators) are dropped. Raises RenderError with
    the line and column of a syntax error.
    """
    return copy.deepcopy(list(_parsed(template, text)))


@functools.lru_cache(maxsize=512)
def _parsed(template: str, text: str) -> tuple[Any, ...]:
    """`parse_template`, once per template text: a template at a dry commit never changes,
    and every reconcile renders the proposal again to check it. Callers must not mutate the
    documents (`substitute` copies)."""
    where = document_location(template, 0, 1)
    try:
        documents = list(yaml.load_all(text, Loader=_TemplateLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or exc.context or "syntax error"
        raise RenderError(f"{where}: invalid YAML at {at}: {problem}",
                          fix="fix the YAML at that position; templates must be valid YAML "
                              "before any variable is substituted") from exc
    except yaml.YAMLError as exc:
        raise RenderError(f"{where}: invalid YAML: {exc}") from exc
    return tuple(document for document in documents if document is not None)


def render_template(template: str, text: str, variables: Variables) -> list[Any]:
    """Parse `template` and substitute `variables` in each document; return the documents.

    The result holds only plain dicts, lists and scalars (no shared sub-trees), so it can be
    dumped without YAML anchors.
    """
    documents = _parsed(template, text)  # substitute returns copies: the cache stays intact
    rendered = []
    for index, document in enumerate(documents):
        where = document_location(template, index, len(documents))
        value = substitute(document, variables, where=where)
        if value is _OMIT:
            raise RenderError(f"{where}: the whole document is a variable with no value",
                              fix="make the document a Kubernetes object")
        rendered.append(value)
    return rendered


def substitute(node: Any, variables: Variables, *, where: str,
               path: tuple[str | int, ...] = ()) -> Any:
    """Return a copy of the parsed tree `node` with every `${...}` replaced (see module doc).

    `where` names the template (and document) for error messages; `path` is the position of
    `node` inside it. May return the private `_OMIT` marker for a whole-value variable that has
    no value; `render_template` and the recursion handle it.
    """
    if isinstance(node, dict):
        result: dict[Any, Any] = {}
        for key, value in node.items():
            new_key = _substitute_key(key, variables, where=where, path=path)
            if new_key in result:
                raise RenderError(
                    f"{where}: {format_path((*path, str(new_key)))}: two keys of this mapping "
                    f"render to {new_key!r}",
                    fix="give each key a distinct value",
                )
            new_value = substitute(value, variables, where=where, path=(*path, str(key)))
            if new_value is not _OMIT:
                result[new_key] = new_value
        return result
    if isinstance(node, list):
        items = [substitute(item, variables, where=where, path=(*path, index))
                 for index, item in enumerate(node)]
        return [item for item in items if item is not _OMIT]
    if isinstance(node, str):
        return _substitute_string(node, variables, where=where, path=path)
    return copy.deepcopy(node)


def _substitute_key(key: Any, variables: Variables, *, where: str,
                    path: tuple[str | int, ...]) -> Any:
    if not isinstance(key, str):
        return key
    return _interpolate(key, variables, where=where, path=(*path, key))


def _substitute_string(text: str, variables: Variables, *, where: str,
                       path: tuple[str | int, ...]) -> Any:
    if "${" not in text:
        return str(text)
    if not isinstance(text, _TextStr):
        whole = _WHOLE.fullmatch(text)
        if whole:
            value = _lookup(whole.group(1), variables, where=where, path=path)
            return _OMIT if value is None else copy.deepcopy(value)
    return _interpolate(text, variables, where=where, path=path)


def _interpolate(text: str, variables: Variables, *, where: str,
                 path: tuple[str | int, ...]) -> str:
    parts: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        parts.append(text[position:match.start()])
        position = match.end()
        token = match.group(0)
        if token == "$${":
            parts.append("${")
            continue
        inner = match.group(1)
        name_match = _VALID_NAME.fullmatch(inner) if inner is not None else None
        if name_match is None:
            shown = token if inner is not None else text[match.start():]
            raise RenderError(
                f"{where}: {format_path(path)}: malformed placeholder {shown!r}",
                fix="write ${name.path} with a variable name such as ${model.name}, "
                    "or $${ for a literal ${",
            )
        name = name_match.group(1)
        parts.append(_as_text(_lookup(name, variables, where=where, path=path), name,
                              where=where, path=path))
    parts.append(text[position:])
    return "".join(parts)


def _as_text(value: Any, name: str, *, where: str, path: tuple[str | int, ...]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if value is None:
        raise RenderError(
            f"{where}: {format_path(path)}: ${{{name}}} has no value in this environment and "
            "cannot be part of a text",
            fix=f"use ${{{name}}} alone and unquoted as a field's value (the field is then "
                "omitted), or set it in the environment file",
        )
    shape = "a mapping" if isinstance(value, dict) else "a list"
    raise RenderError(
        f"{where}: {format_path(path)}: ${{{name}}} is {shape} and cannot be part of a text",
        fix=f"use ${{{name}}} alone and unquoted as the field's value",
    )


def _lookup(name: str, variables: Variables, *, where: str,
            path: tuple[str | int, ...]) -> Any:
    """Resolve `name`: a variable, or a key path into a mapping variable."""
    if name in variables:
        return variables[name]
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in variables and isinstance(variables[prefix], dict):
            value: Any = variables[prefix]
            for part in parts[cut:]:
                if not isinstance(value, dict) or part not in value:
                    break
                value = value[part]
            else:
                return value
            break
    known = sorted(variables)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean ${{{close[0]}}}? " if close else ""
    raise RenderError(
        f"{where}: {format_path(path)}: unknown variable ${{{name}}}",
        fix=f"{hint}known variables: {', '.join(known)}",
    )
