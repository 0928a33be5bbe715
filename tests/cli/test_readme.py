"""The README's shell blocks work as written, run against a fresh copy of the demo.

Each ```sh block is one bash script (`set -euo pipefail`: every command must succeed), run in
the demo's repository, or in its parent when the block starts with `cd promoter-demo` (so
`../.venv/bin/promoter` is the installed command, as after `make demo`). `promoter` on the
PATH is the installed command too. A block that cannot run here carries the comment
`<!-- not run in tests: REASON -->` on the line before it; those are skipped with their reason,
and `test_the_blocks_not_run_are_exactly_these` lists them, so marking another one is a
decision a reviewer sees.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.demo import DemoRun, clean_environment, copy_demo

README = Path(__file__).resolve().parents[2] / "README.md"
NOT_RUN = re.compile(r"^<!--\s*not run in tests:\s*(?P<reason>.*?)\s*-->$")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
SHELLS = ("sh", "bash", "shell")


@dataclass(frozen=True)
class Block:
    line: int
    """Line of the opening fence, 1-based."""
    code: str
    not_run: str | None
    """The marker's reason, when the README says the block is not run in tests."""

    @property
    def first_line(self) -> str:
        return self.code.strip().splitlines()[0]

    @property
    def id(self) -> str:
        words = re.sub(r"[^A-Za-z0-9 ]+", "", self.first_line.split("#")[0]).split()
        return f"line{self.line}-" + "-".join(words[:3])


def shell_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        if fence["lang"] in SHELLS:
            previous = next((lines[i].strip() for i in range(index - 1, -1, -1)
                             if lines[i].strip()), "")
            marker = NOT_RUN.match(previous)
            blocks.append(Block(line=index + 1, code="\n".join(lines[index + 1:end]) + "\n",
                                not_run=marker["reason"] if marker else None))
        index = end + 1
    return blocks


BLOCKS = shell_blocks(README.read_text(encoding="utf-8"))


def test_the_blocks_not_run_are_exactly_these() -> None:
    not_run = {b.first_line.split("#")[0].strip(): b.not_run for b in BLOCKS if b.not_run}
    assert set(not_run) == {"make demo", "export PROMOTER_WEBHOOK_SECRET=...",
                            "kubectl create namespace promoter",
                            "docker build --target fetch -t "
                            "registry.example.com/ml/promoter-fetch-model:0.1.0 ."}, not_run
    assert all(not_run.values()), "every marker says why"
    assert len(BLOCKS) - len(not_run) >= 4, "the demo, promotion, Flux and discovery blocks run"


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs_as_written(block: Block, demo_run: DemoRun, tmp_path: Path) -> None:
    if block.not_run:
        pytest.skip(f"README.md line {block.line}: not run in tests: {block.not_run}")
    workdir = copy_demo(demo_run, tmp_path)
    bin_dir = Path(sys.executable).parent
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "promoter").symlink_to(bin_dir / "promoter")
    cwd = tmp_path if block.code.lstrip().startswith("cd promoter-demo") else workdir
    home = tmp_path / "home"
    home.mkdir()
    env = clean_environment(home)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"README.md line {block.line}:\n{block.code}\n{output}"
    assert "Traceback" not in output, output
