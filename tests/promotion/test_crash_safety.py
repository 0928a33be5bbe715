"""Crash safety: a promotion killed (SIGKILL) at any write, then restarted, ends as if never
interrupted.

One model version goes dev -> staging -> prod (prod needs a release manager's approval) on
real git repositories and the real LocalForge, with the scripted evaluator and a healthy
scripted cluster, as a person drives it from the CLI: propose, reconcile, approve. The census
first records every side-effecting call of an uninterrupted run (git commit creations and ref
moves, the forge's writes). Then, for every N, a forked child runs the same steps with adapters
that SIGKILL the process right after the N-th such call returns; the parent checks that the
child died by SIGKILL at that call, and restarts: fresh adapters on the same on-disk repository
and forge re-run the interrupted step and the ones after it. Every end state must be the same:

- exactly one pull request per promotion ever opened (open, merged or closed);
- no comment twice under one key and no warning comment; no status written twice in a row;
- every environment branch only moved forward (its reflog is a chain of fast-forwards), with
  exactly one merge on it;
- the version deployed in every environment with the right `hydrator.metadata`;
- no pull request left open, and every promotion's derived phase `healthy`.

The same is done right before the first write of each step, and for a second scenario: a new
version proposed on a pull request that is still open (`<env>-next` moves, then the PR), both
re-running the killed command and leaving it to the reconciles (the service's resync).

Forking after the setup keeps imports and the repository setup out of the loop, and kill points
are checked on two forked workers at once.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from promoter.config.loader import load_settings
from promoter.domain.pull_requests import Comment, CommitStatus, PullRequest, Review
from promoter.forge.base import Forge
from promoter.forge.capabilities import ForgeCapabilities
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import GitOpsRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService
from promoter.promotion.phase import PromotionPhase
from promoter.promotion.rollback import RollbackService
from promoter.promotion.verdicts import DirectoryVerdictStore
from tests.conftest import isolate_git
from tests.fakes.scripted import ScriptedCluster, ScriptedEvaluator
from tests.promotion.world import World, git

ENVIRONMENTS = ("dev", "staging", "prod")
STORE: list[Path] = []
"""The model store all runs read (set by the `template` fixture)."""
VERSION = 1
ZERO = "0" * 40
FORGE_FILE = Path(".git") / "promoter" / "forge.sqlite"

REPO_WRITES = ("create_commit", "update_branch")
OBJECT_READS = ("read_file", "list_files", "commit_info", "is_ancestor", "tree_id")
"""Repository reads whose answer depends only on git objects: the same for a full sha."""
_SHA = re.compile(r"[0-9a-f]{40}")
FORGE_WRITES = ("open_or_update_pull_request", "set_status", "upsert_comment", "submit_review",
                "merge", "close")


# --- the kill switch (test-only adapters' wrappers) -----------------------------------------


@dataclass
class KillSwitch:
    """Counts side-effecting calls, and SIGKILLs this process around the `kill_at`-th one.

    Calls are numbered when they start, so a forge merge is numbered before the git writes
    it makes inside its own transaction: those are kill points too (the forge's crash window
    between moving the branch and recording the merge). Each call's name is appended to
    `journal` as it starts, so the parent can tell where its killed child stopped.
    """

    kill_at: int | None = None
    before: bool = False
    journal: Path | None = None
    calls: list[str] = field(default_factory=list)

    def around(self, name: str, call: Callable[[], Any]) -> Any:
        self.calls.append(name)
        number = len(self.calls)
        if self.journal is not None:
            with self.journal.open("a") as handle:
                handle.write(f"{name}\n")
        if number == self.kill_at and self.before:
            os.kill(os.getpid(), signal.SIGKILL)
        result = call()
        if number == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result


class KillingRepository:
    """A GitOpsRepository whose commit creations and ref moves go through a KillSwitch.

    It also remembers reads of git objects named by full sha (file contents, trees, commits,
    ancestry), which can never change: the crash tests run a whole promotion per kill point,
    and each read is a git process. Branch heads are always read from disk, and every new
    wrapper (every restart) starts with nothing remembered.
    """

    def __init__(self, inner: LocalGitRepository, switch: KillSwitch) -> None:
        self._inner = inner
        self._switch = switch
        self._objects: dict[tuple[object, ...], object] = {}

    def create_commit(self, **kwargs: Any) -> str:
        return cast(str, self._switch.around(
            "git create_commit", lambda: self._inner.create_commit(**kwargs)))

    def update_branch(self, branch: str, new_sha: str, **kwargs: Any) -> None:
        self._switch.around(f"git update_branch {branch}",
                            lambda: self._inner.update_branch(branch, new_sha, **kwargs))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in OBJECT_READS:
            return attribute

        def read(*args: str) -> object:
            shas = args[:2] if name == "is_ancestor" else args[:1]
            if not all(_SHA.fullmatch(sha) for sha in shas):
                return attribute(*args)
            key = (name, *args)
            if key not in self._objects:
                self._objects[key] = attribute(*args)
            return self._objects[key]
        return read


class KillingForge:
    """A Forge (and ReviewRecorder) whose writes go through a KillSwitch; reads pass through.

    The writes are spelled out, not found by `__getattr__`, and `capabilities` names this
    wrapper as the review recorder: LocalForge's record would name LocalForge itself, and
    reviews would then bypass the switch.
    """

    def __init__(self, inner: LocalForge, switch: KillSwitch) -> None:
        self._inner = inner
        self._switch = switch

    @property
    def capabilities(self) -> ForgeCapabilities:
        return ForgeCapabilities(reviews=self)

    def _write(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self._inner, name)
        return self._switch.around(f"forge {name}", lambda: method(*args, **kwargs))

    def open_or_update_pull_request(self, **kwargs: Any) -> PullRequest:
        return cast(PullRequest, self._write("open_or_update_pull_request", **kwargs))

    def set_status(self, sha: str, status: CommitStatus) -> None:
        self._write("set_status", sha, status)

    def upsert_comment(self, number: int, **kwargs: Any) -> Comment:
        return cast(Comment, self._write("upsert_comment", number, **kwargs))

    def submit_review(self, number: int, **kwargs: Any) -> Review:
        return cast(Review, self._write("submit_review", number, **kwargs))

    def merge(self, number: int, **kwargs: Any) -> str:
        return cast(str, self._write("merge", number, **kwargs))

    def close(self, number: int, **kwargs: Any) -> None:
        self._write("close", number, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def build(root: Path, switch: KillSwitch, *,
          failing: frozenset[int] = frozenset()) -> tuple[PromotionService, Forge]:
    """The service as `wiring.build_service` would build it, on wrapped adapters; the
    evaluator fails the `failing` versions."""
    repo = cast(GitOpsRepository, KillingRepository(LocalGitRepository(root), switch))
    forge = cast(Forge, KillingForge(LocalForge(root / FORGE_FILE, repo), switch))
    service = PromotionService(
        settings=load_settings(root / "promoter.yaml"), repo=repo, forge=forge,
        store=LocalModelStore(STORE[0] if STORE else root / "models"),
        evaluator=ScriptedEvaluator(failing_versions=set(failing)),
        cluster=ScriptedCluster(), rollbacks=RollbackService(repo=repo, forge=forge),
        verdicts=DirectoryVerdictStore(root / ".git" / "promoter" / "verdicts"))
    return service, forge


# --- promotions, step by step as from the CLI -----------------------------------------------

Step = tuple[str, Callable[[PromotionService, Forge], object]]


def propose(env: str, version: int) -> Step:
    return (f"promoter propose --env {env} --version {version}",
            lambda service, _: service.propose(environment=env, model="churn",
                                               version=version, author="mia"))


def reconcile() -> Step:
    return ("promoter reconcile", lambda service, _: service.reconcile())


def _approve_prod(service: PromotionService, forge: Forge) -> object:
    pull = forge.find_open_pull_request(head="environments/prod-next", base="environments/prod")
    assert pull is not None, "the prod promotion is not open"
    return service.approve(pull.number, user="rita")


@dataclass(frozen=True)
class Scenario:
    """Steps a person runs, and where they must end, however often the process dies."""

    name: str
    steps: tuple[Step, ...]
    deployed: dict[str, int]
    """Environment -> version at the end, in the order their pull requests were opened."""
    failing: frozenset[int] = frozenset()
    """Versions the scripted evaluator fails."""


THROUGH_ALL = Scenario("dev to prod", (
    propose("dev", 1), reconcile(),                  # merges dev
    propose("staging", 1), reconcile(),              # dev's rollout status; merges staging
    propose("prod", 1), reconcile(),                 # staging's rollout; prod waits for rita
    ("promoter approve", _approve_prod), reconcile(),  # merges prod
    reconcile(),                                     # prod's rollout status
), deployed={"dev": 1, "staging": 1, "prod": 1})

UPDATED_WHILE_OPEN = Scenario("a new version on an open proposal", (
    propose("dev", 1), reconcile(),                  # v1 fails its evaluation: blocked
    propose("dev", 2),                               # the same pull request now proposes v2
    reconcile(), reconcile(),                        # merges v2; its rollout status
), deployed={"dev": 2}, failing=frozenset({1}))


def run_steps(scenario: Scenario, root: Path, switch: KillSwitch, progress: Path) -> None:
    """Run the steps not yet recorded in `progress`, recording each one when it returns.

    A step that was running when the process died is not recorded, so the restart runs it
    again: what a person does when a command is killed.
    """
    done = len(progress.read_text().split()) if progress.exists() else 0
    service, forge = build(root, switch, failing=scenario.failing)
    for index in range(done, len(scenario.steps)):
        scenario.steps[index][1](service, forge)
        with progress.open("a") as handle:
            handle.write(f"{index}\n")


def run_killed(scenario: Scenario, root: Path, progress: Path, switch: KillSwitch) -> None:
    """Run the steps in a forked child that `switch` kills; assert it died by SIGKILL."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 3
        try:
            run_steps(scenario, root, switch, progress)
            code = 0
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    how = (f"exit code {os.WEXITSTATUS(status)}" if os.WIFEXITED(status)
           else f"signal {os.WTERMSIG(status)}")
    assert os.WIFSIGNALED(status), f"the child was not killed: {how}"
    assert os.WTERMSIG(status) == signal.SIGKILL, f"the child was not killed by SIGKILL: {how}"


# --- what every end state must be -----------------------------------------------------------


def assert_promoted_once(scenario: Scenario, root: Path) -> None:
    """The end state of `scenario`, as if nothing had ever been interrupted."""
    with sqlite3.connect(root / FORGE_FILE) as db:
        pulls = db.execute("SELECT number, head, base, title, state FROM pull_requests"
                           " ORDER BY number").fetchall()
        comments = db.execute("SELECT pr, key, COUNT(*) FROM comments GROUP BY pr, key"
                              " ORDER BY pr, key").fetchall()
        statuses = db.execute("SELECT sha, context, state, description FROM statuses"
                              " ORDER BY sha, context, id").fetchall()
    assert [(base, head, title, state) for _, head, base, title, state in pulls] == [
        (f"environments/{env}", f"environments/{env}-next",
         f"Promote churn v{version} to {env}", "merged")
        for env, version in scenario.deployed.items()], "not one pull request per promotion"
    # One evaluation report per pull request, and nothing else (no foreign-push warning).
    assert comments == [(number, "evaluation-report", 1) for number, *_ in pulls]
    repeated = [a for a, b in itertools.pairwise(statuses) if a == b]
    assert repeated == [], "a status was written again without a change"

    store = LocalModelStore(root / "models")
    order = list(ENVIRONMENTS)
    for env, version in scenario.deployed.items():
        branch = f"environments/{env}"
        assert_only_fast_forwards(root, branch)
        # The bootstrap commit, then exactly one merge: never merged twice.
        assert git(root, "rev-list", "--first-parent", "--count", branch) == "2"
        meta = json.loads(git(root, "show", f"{branch}:hydrator.metadata"))["promoter"]
        upstream = order[order.index(env) - 1] if env != order[0] else None
        assert (meta["model"], meta["version"], meta["digest"], meta["environment"],
                meta["promotedFrom"]) == ("churn", version, store.get("churn", version).digest,
                                          env, upstream)

    service, forge = build(root, KillSwitch())
    assert forge.list_open_pull_requests() == []
    assert [service.promotion_phase(number) for number, *_ in pulls] == [
        PromotionPhase.HEALTHY] * len(pulls)


def assert_only_fast_forwards(root: Path, branch: str) -> None:
    """Every move of `branch` in its reflog went from an ancestor of where it went to."""
    log = (root / ".git" / "logs" / "refs" / "heads" / branch).read_text().splitlines()
    moves = [line.split(" ", 2)[:2] for line in log]
    assert moves[0][0] == ZERO, f"{branch} was created twice"
    for old, new in moves[1:]:
        ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", old, new], cwd=root,
                                  check=False).returncode == 0
        assert ancestor, f"{branch} moved from {old[:12]} to {new[:12]}: not a fast-forward"
    assert [new for _, new in moves[:-1]] == [old for old, _ in moves[1:]], "a gap in the log"
    assert moves[-1][1] == git(root, "rev-parse", branch)


# --- kill points ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Census:
    """One uninterrupted run of a scenario: its side-effecting calls, and the world before
    each step.

    A kill point's child starts from the snapshot before the step the call belongs to (with
    the earlier steps recorded as done), not from the beginning: the disk is the same as
    after running those steps, and the loop over kill points takes half the time.
    """

    scenario: Scenario
    calls: list[str]
    starts: list[int]
    """Per step, how many calls the steps before it made."""
    snapshots: Path
    """`<snapshots>/<step>`: a copy of the world just before that step."""

    def step_of(self, call: int) -> int:
        """The step making the `call`-th call (1-based)."""
        return max(step for step, start in enumerate(self.starts) if start < call)

    def where(self, call: int, *, before: bool) -> str:
        return (f"killed {'before' if before else 'after'} call {call} of {len(self.calls)} "
                f"({self.calls[call - 1]}) in `{self.scenario.steps[self.step_of(call)][0]}`")


def take_census(scenario: Scenario, template: Path, base: Path) -> Census:
    root = base / "gitops"
    shutil.copytree(template, root)
    switch = KillSwitch()
    service, forge = build(root, switch, failing=scenario.failing)
    starts = []
    for index, (_, step) in enumerate(scenario.steps):
        shutil.copytree(root, base / "snapshots" / str(index))
        starts.append(len(switch.calls))
        step(service, forge)
    assert_promoted_once(scenario, root)
    return Census(scenario, switch.calls, starts, base / "snapshots")


def kill_and_restart(census: Census, work: Path, *, kill_at: int, before: bool = False,
                     rerun: bool = True) -> None:
    """Kill a child at call `kill_at`, restart, and check the end state.

    With `rerun`, the restart runs the interrupted step again and goes on, as a person at
    the CLI does; without, it goes on with the steps after it, as the service's resync does
    when nobody re-runs the command.
    """
    scenario = census.scenario
    step = census.step_of(kill_at)
    root = work / "gitops"
    shutil.copytree(census.snapshots / str(step), root)
    progress, journal = work / "progress", work / "journal"
    progress.write_text("".join(f"{index}\n" for index in range(step)))
    run_killed(scenario, root, progress, KillSwitch(kill_at=kill_at - census.starts[step],
                                                    before=before, journal=journal))
    # The child made the census's calls up to the kill point (and, killed after a merge, the
    # git writes inside it): numbering is deterministic, so N means the same call every run.
    made = journal.read_text().splitlines()
    first = census.starts[step]
    assert made == census.calls[first:first + len(made)], "the child ran differently"
    assert len(made) >= kill_at - first, "the child died before its kill point"
    if not rerun:
        with progress.open("a") as handle:
            handle.write(f"{step}\n")
    run_steps(scenario, root, KillSwitch(), progress)
    assert_promoted_once(scenario, root)


@dataclass(frozen=True)
class KillPoint:
    call: int
    """1-based number of the side-effecting call the child is killed at."""
    before: bool = False
    """Killed right before the call starts, instead of right after it returns."""
    rerun: bool = True
    """The restart runs the interrupted step again (see `kill_and_restart`)."""


WORKERS = min(2, os.cpu_count() or 1)
"""Kill points are independent (each has its own copy of the world): check them on this
many forked workers at once."""


def sweep(census: Census, tmp_path: Path, points: list[KillPoint]) -> None:
    """`kill_and_restart` at every point, on `WORKERS` forked workers; fail with every
    failing point, each saying where its child was killed."""
    reports = [tmp_path / f"failures-{index}.txt" for index in range(WORKERS)]
    workers = []
    for index in range(min(WORKERS, len(points))):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # a worker: never return into pytest
            code = 0
            try:
                for point in points[index::WORKERS]:
                    work = tmp_path / f"{'before' if point.before else 'after'}-{point.call}"
                    try:
                        kill_and_restart(census, work, kill_at=point.call,
                                         before=point.before, rerun=point.rerun)
                    except Exception:
                        code = 1
                        with reports[index].open("a") as report:
                            report.write(f"{census.where(point.call, before=point.before)}:\n"
                                         f"{traceback.format_exc()}\n")
                    else:
                        shutil.rmtree(work)
            except BaseException:
                traceback.print_exc()
                code = 2
            finally:
                os._exit(code)
        workers.append(pid)
    statuses = [os.waitpid(pid, 0)[1] for pid in workers]
    failures = "".join(report.read_text() for report in reports if report.exists())
    assert not failures, failures
    assert all(os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0 for s in statuses), statuses


# --- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh world (dry source committed, models, holdouts), copied for every run.

    Module scope, so the autouse isolated_git fixture (per test) is not there yet: the same
    isolation is set up here, for this module's fixtures.
    """
    with pytest.MonkeyPatch.context() as env:
        isolate_git(env, tmp_path_factory.mktemp("home"))
        root = World(tmp_path_factory.mktemp("template") / "gitops", ScriptedEvaluator()).root
        # One store for every copy: a model's URI (in hydrator.metadata) is its path, and a
        # restarted child must render what the census rendered, byte for byte.
        STORE[:] = [root / "models"]
        yield root
        STORE.clear()


@pytest.fixture(scope="module")
def through_all(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Census:
    return take_census(THROUGH_ALL, template, tmp_path_factory.mktemp("through-all"))


@pytest.fixture(scope="module")
def updated_while_open(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Census:
    return take_census(UPDATED_WHILE_OPEN, template, tmp_path_factory.mktemp("updated"))


def test_an_uninterrupted_promotion_makes_every_kind_of_write(through_all: Census) -> None:
    kinds = {call.split()[1] for call in through_all.calls}
    # Nothing is superseded in this promotion, so nothing is closed.
    assert kinds >= {*REPO_WRITES, *(w for w in FORGE_WRITES if w != "close")}
    assert through_all.calls.count("forge merge") == len(ENVIRONMENTS)


def test_killed_after_every_write_then_restarted(through_all: Census, tmp_path: Path) -> None:
    started = time.monotonic()
    sweep(through_all, tmp_path, [KillPoint(n) for n in range(1, len(through_all.calls) + 1)])
    print(f"{len(through_all.calls)} kill points in {time.monotonic() - started:.1f} s")


def test_killed_when_a_step_starts_then_restarted(through_all: Census, tmp_path: Path) -> None:
    """Killed right before the first write of each step: the step ran, wrote nothing.

    Killed before any other call N leaves the disk as killed after call N-1 does (only reads
    happen between them), and the restart re-runs the same step, so the sweep above covers
    those; before the first write of a step is the one case it does not (it re-runs the
    step before).
    """
    sweep(through_all, tmp_path, [KillPoint(start + 1, before=True)
                                  for start in sorted(set(through_all.starts))])


def _update_step(census: Census) -> int:
    return next(i for i, (name, _) in enumerate(census.scenario.steps)
                if name.endswith("--version 2"))


def test_killed_while_updating_an_open_proposal(updated_while_open: Census,
                                                tmp_path: Path) -> None:
    """A new version proposed on an open pull request: `<env>-next` moves, then the PR.

    From the update on: the kill points before it are those of a first proposal, which the
    sweep of the whole promotion covers."""
    census = updated_while_open
    first = census.starts[_update_step(census)] + 1
    sweep(census, tmp_path, [KillPoint(n) for n in range(first, len(census.calls) + 1)])


def test_the_resync_finishes_an_interrupted_proposal(updated_while_open: Census,
                                                     tmp_path: Path) -> None:
    """Killed once `<env>-next` moved: nobody re-runs propose, the reconciles finish it."""
    census = updated_while_open
    step = _update_step(census)
    moved = census.calls.index("git update_branch environments/dev-next",
                               census.starts[step]) + 1
    sweep(census, tmp_path, [KillPoint(n, rerun=False)
                             for n in range(moved, census.starts[step + 1] + 1)])
