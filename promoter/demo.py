"""`promoter demo`: one model's whole journey on the embedded default, narrated.

Builds a real GitOps repository from the example dry source (the top-level `promoter.yaml`,
`environments/`, `policies/`, `manifests/`), trains three small Keras models into a real
model store, and drives the same `PromotionService` the CLI uses. Nothing is simulated: the
branches, pull requests, statuses and evaluations are left in the work directory to inspect.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from promoter.config.loader import load_settings
from promoter.errors import BadInputError, PromoterError
from promoter.plain_text import Style, format_proposal, format_reconcile, format_status, plain
from promoter.promotion.results import PromotionState, ReconcileOutcome
from promoter.promotion.service import PromotionService
from promoter.wiring import build_service

MARKER = ".promoter-demo"
"""File that marks a directory as a demo work directory, so only those are ever replaced."""

ML_ENGINEER = "mia"
RELEASE_MANAGER = "rita"
MODEL = "churn"
DRY_SOURCE = ("promoter.yaml", "environments", "policies", "manifests")

Echo = Callable[[str], None]


def example_root() -> Path:
    """The directory holding the example dry source (the repository's top level)."""
    root = Path(__file__).resolve().parents[1]
    if not all((root / name).exists() for name in DRY_SOURCE):
        raise BadInputError(
            f"the example configuration is not next to the package at {root}",
            fix="run the demo from a clone of the promoter repository (make demo)",
        )
    return root


def run_demo(workdir: Path, *, echo: Echo, progress: Echo | None = None,
             style: Style = plain) -> None:
    """Build the demo in `workdir` (replacing an earlier demo there) and run it.

    `echo` prints the story (stdout); `progress`, when given, is told when a long stage
    starts (training, an evaluation), so a terminal can show that work is going on;
    `style` colours the service's answers (see `promoter.plain_text`)."""
    step = _Steps(echo, style)
    stage = progress or (lambda text: None)
    step("Set up a GitOps repository, a model store and holdout sets", workdir)
    prepare_workdir(workdir)
    _init_repository(workdir)

    from promoter.demo_data import write_demo_holdouts
    from promoter.demo_models import train_demo_models

    stage(f"starting TensorFlow to train {MODEL} v1, v2 and v3")
    versions = train_demo_models(workdir / "models", model_name=MODEL, progress=stage)
    stage("writing the holdout sets")
    write_demo_holdouts(workdir / "data", model_name=MODEL)
    echo(f"  trained {MODEL} v{', v'.join(map(str, sorted(versions)))} into models/ "
         "(v2 is better than v1, v3 is worse)")

    service = build_service(load_settings(workdir / "promoter.yaml"))
    demo = _Narrator(service, echo, stage, style)
    environments = ["dev", "staging", "prod"]

    for env in environments:
        step(f"Promote {MODEL} v1 to {env}")
        demo.promote(env, 1)
    for env in environments[:-1]:
        step(f"Promote {MODEL} v2 to {env}")
        demo.promote(env, 2)

    step(f"Propose {MODEL} v2 to prod: it waits for a release manager, for you")
    waiting = demo.propose_and_reconcile("prod", 2)
    if waiting.state is not PromotionState.WAITING:
        raise PromoterError(f"the demo expected {MODEL} v2 to wait for an approval in prod, "
                            f"but it is {waiting.state}")

    step(f"Try {MODEL} v3 in dev: the evaluation gate must stop it")
    outcome = demo.propose_and_reconcile("dev", 3)
    if outcome.state is PromotionState.MERGED:
        raise PromoterError("the demo expected v3 to be blocked, but it was merged")
    report = _report(service, outcome.pull_number)
    echo("  the report on the pull request says:")
    echo("\n".join(f"  | {line}" for line in report.splitlines()))

    step("Where everything stands (promoter status)")
    echo(format_status(service.status(), style))
    promoter = Path(sys.executable).parent / "promoter"
    echo(f"\nYour turn: approve v2 for prod as the release manager and merge it:\n"
         f"  cd {workdir}\n"
         f"  {promoter} approve {waiting.pull_number} --as {RELEASE_MANAGER}\n"
         f"  {promoter} reconcile\n"
         f"  git log --oneline --graph --all")


class _Narrator:
    """Drives the service for the demo and tells what happens."""

    def __init__(self, service: PromotionService, echo: Echo, stage: Echo,
                 style: Style) -> None:
        self._service = service
        self._echo = echo
        self._stage = stage
        self._style = style

    def promote(self, env: str, version: int) -> None:
        outcome = self.propose_and_reconcile(env, version)
        if outcome.state is PromotionState.WAITING:
            self._echo(f"  {RELEASE_MANAGER} (release manager) approves "
                       f"PR #{outcome.pull_number}")
            self._service.approve(outcome.pull_number, user=RELEASE_MANAGER)
            outcome = self.reconcile(outcome.pull_number)
        if outcome.state is not PromotionState.MERGED:
            raise PromoterError(
                f"the demo expected {MODEL} v{version} to reach {env}, but it is "
                f"{outcome.state}: "
                + "; ".join(g.description for g in outcome.gates if not g.passed)
            )

    def propose_and_reconcile(self, env: str, version: int) -> ReconcileOutcome:
        result = self._service.propose(environment=env, model=MODEL, version=version,
                                       author=ML_ENGINEER)
        self._echo(_indent(format_proposal(result, self._style)))
        assert result.pull_request is not None
        self._stage(f"reconciling PR #{result.pull_request.number}: running its gates "
                    f"(the evaluation scores {MODEL} v{version} in a worker)")
        return self.reconcile(result.pull_request.number)

    def reconcile(self, number: int) -> ReconcileOutcome:
        outcome = self._service.reconcile_pull(number)
        self._echo(_indent(format_reconcile([outcome], self._style)))
        return outcome


def _report(service: PromotionService, number: int) -> str:
    return service.evaluation_report(number) or "(no report)"


def prepare_workdir(workdir: Path) -> None:
    """Make `workdir` an empty demo directory: created, or emptied if an earlier demo made
    it; any other non-empty directory is refused (BadInputError), never replaced."""
    if workdir.exists():
        if not (workdir / MARKER).exists() and any(workdir.iterdir()):
            raise BadInputError(
                f"{workdir} exists and is not a promoter demo directory; not replacing it",
                fix="pass --workdir with a new or empty directory",
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("created by `promoter demo`; safe to delete\n")


def copy_example(destination: Path) -> None:
    """Copy the example dry source (promoter.yaml, environments/, policies/, manifests/)."""
    example = example_root()
    for name in DRY_SOURCE:
        source = example / name
        if source.is_dir():
            shutil.copytree(source, destination / name)
        else:
            shutil.copy2(source, destination / name)


def _init_repository(workdir: Path) -> None:
    """Make `workdir` a git repository whose `main` holds the example dry source."""
    copy_example(workdir)
    (workdir / ".gitignore").write_text(f"models/\ndata/\n{MARKER}\n")
    git = ["git", "-c", "user.name=Mia (ML engineer)", "-c", "user.email=mia@example.com",
           "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "."],
                 ["commit", "-q", "-m", "Dry source: churn model, dev -> staging -> prod"]):
        subprocess.run([*git, *args], cwd=workdir, check=True, capture_output=True)


class _Steps:
    def __init__(self, echo: Echo, style: Style) -> None:
        self._echo = echo
        self._style = style
        self._n = 0

    def __call__(self, title: str, detail: object | None = None) -> None:
        self._n += 1
        suffix = f" ({detail})" if detail is not None else ""
        self._echo("\n" + self._style(f"== {self._n}. {title}{suffix}", "title"))


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
