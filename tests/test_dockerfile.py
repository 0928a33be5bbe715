"""The Dockerfile, checked statically (no container engine here; the image is not built in the
tests): stages from a pinned base, every COPY source in the build context, no ADD from a URL,
a non-root user, and the `promoter` console script as the entrypoint."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass

import pytest

from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


def _instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    out: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(DOCKERFILE.read_text().splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, arguments = text.partition(" ")
        out.append(Instruction(keyword.upper(), arguments.strip(), start))
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return out


def _args() -> dict[str, str]:
    """Default values of ARGs declared before the first FROM (usable in FROM lines)."""
    values: dict[str, str] = {}
    for instruction in _instructions():
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG" and "=" in instruction.arguments:
            name, _, value = instruction.arguments.partition("=")
            values[name.strip()] = value.strip()
    return values


def _expand(text: str) -> str:
    args = _args()
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m[1], m[0]), text)


def _flags_and_words(arguments: str) -> tuple[dict[str, str], list[str]]:
    words = shlex.split(arguments)
    flags = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return flags, words


def _dockerignore() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str) -> bool:
    for pattern in _dockerignore():
        bare = pattern.removeprefix("**/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[-1], bare) \
                or path == pattern or path.startswith(pattern.rstrip("/") + "/"):
            return True
    return False


def test_multi_stage_from_a_pinned_base() -> None:
    froms = [i for i in _instructions() if i.keyword == "FROM"]
    assert len(froms) >= 2, "a build stage and a runtime stage"
    stages: set[str] = set()
    for instruction in froms:
        words = instruction.arguments.split()
        image = _expand(words[0])
        if image in stages:
            continue
        # An exact release (python:3.11.11-slim-bookworm) or a digest; never a floating tag.
        pinned = "@sha256:" in image or re.search(r":\d+\.\d+\.\d+(-[a-z0-9.-]+)?$", image)
        assert pinned, f"line {instruction.line}: {image} is not pinned to a release or digest"
        assert not image.endswith(":latest")
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2])


def test_every_copy_source_is_in_the_build_context() -> None:
    copies = [i for i in _instructions() if i.keyword == "COPY"]
    assert copies
    for instruction in copies:
        flags, words = _flags_and_words(instruction.arguments)
        if "from" in flags:
            continue  # from an earlier stage, not the context
        if words and words[0].startswith("["):
            words = json.loads(instruction.arguments[instruction.arguments.index("["):])
        *sources, _ = words
        assert sources, f"line {instruction.line}: COPY without a source"
        for source in sources:
            assert not source.startswith(("/", "..")), f"line {instruction.line}: {source}"
            assert (REPO_ROOT / source).exists(), \
                f"line {instruction.line}: COPY {source}: not in the repository"
            assert not _ignored(source.rstrip("/")), \
                f"line {instruction.line}: COPY {source}: excluded by .dockerignore"


def test_no_add_of_a_url() -> None:
    for instruction in _instructions():
        if instruction.keyword == "ADD":
            _, words = _flags_and_words(instruction.arguments)
            assert not any("://" in w or w.startswith("git@") for w in words), \
                f"line {instruction.line}: ADD of a URL (download in a RUN with a checksum)"


def test_runs_as_a_non_root_user() -> None:
    instructions = _instructions()
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    users = [ins for ins in instructions[last_from:] if ins.keyword == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    user = users[-1].arguments.split(":")[0]
    assert user not in {"root", "0"}
    if user.isdigit():
        runs = " ".join(ins.arguments for ins in instructions[last_from:]
                        if ins.keyword == "RUN")
        assert re.search(rf"useradd\b[^&]*--uid {user}\b", runs), \
            f"uid {user} is never created in the runtime stage"
    else:
        pytest.fail("USER should be numeric, so that Kubernetes can check runAsNonRoot")


def test_the_entrypoint_is_the_console_script() -> None:
    entrypoints = [i for i in _instructions() if i.keyword == "ENTRYPOINT"]
    assert entrypoints
    value = json.loads(entrypoints[-1].arguments)  # exec form: signals reach promoter
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert value == ["promoter"]
    assert scripts["promoter"] == "promoter.cli:main"


def _stage(name: str) -> list[Instruction]:
    """The instructions of the stage `FROM ... AS name`, up to the next FROM."""
    instructions = _instructions()
    start = next(i for i, ins in enumerate(instructions) if ins.keyword == "FROM"
                 and ins.arguments.split()[-1] == name)
    end = next((i for i in range(start + 1, len(instructions))
                if instructions[i].keyword == "FROM"), len(instructions))
    return instructions[start:end]


def test_the_fetch_target_is_slim_and_runs_the_fetch_command() -> None:
    """`docker build --target fetch`: promoter without its dependencies, and only the
    object-store clients, with the bounds pyproject.toml gives them; no TensorFlow."""
    build = " ".join(i.arguments for i in _stage("fetch-build") if i.keyword == "RUN")
    assert "pip install --no-deps ." in build
    installed = {re.split(r"[<>=!~]", spec)[0]: spec
                 for spec in re.findall(r'"([^"]+)"', build)}
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    bounds = {re.split(r"[<>=!~;\[ ]", spec)[0]: spec for spec in declared["dependencies"]}
    assert set(installed) == {"s3fs", "gcsfs", "aiobotocore"}
    for name, spec in installed.items():
        assert bounds[name] == spec, f"the fetch target installs {spec}, pyproject {bounds[name]}"
    assert "tensorflow" not in build
    fetch = _stage("fetch")
    assert [i.arguments for i in fetch if i.keyword == "USER"] == ["10001:10001"]
    assert "--uid 10001" in " ".join(i.arguments for i in fetch if i.keyword == "RUN")
    (entrypoint,) = [i for i in fetch if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint.arguments) == ["promoter-fetch-model"]
    scripts = declared["scripts"]
    assert scripts["promoter-fetch-model"] == "promoter.model_store.fetch:main"
    # The default target (the last stage) is still promoter itself.
    last = _instructions()[max(i for i, ins in enumerate(_instructions())
                               if ins.keyword == "FROM")]
    assert len(last.arguments.split()) == 1
