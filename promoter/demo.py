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
from promoter.plain_text import format_proposal, format_reconcile, format_status
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


def run_demo(workdir: Path, *, echo: Echo) -> None:
    """Build the demo in `workdir` (replacing an earlier demo there) and run it."""
    step = _Steps(echo)
    step("Set up a GitOps repository, a model store and holdout sets", workdir)
    _prepare_workdir(workdir)
    _init_repository(workdir)

    from promoter.demo_data import write_demo_holdouts
    from promoter.demo_models import train_demo_models

    versions = train_demo_models(workdir / "models", model_name=MODEL)
    write_demo_holdouts(workdir / "data", model_name=MODEL)
    echo(f"  trained {MODEL} v{', v'.join(map(str, sorted(versions)))} into models/ "
         "(v2 is better than v1, v3 is worse)")

    service = build_service(load_settings(workdir / "promoter.yaml"))
    environments = ["dev", "staging", "prod"]

    for version in (1, 2):
        for env in environments:
            step(f"Promote {MODEL} v{version} to {env}")
            _promote(service, env, version, echo)

    step(f"Try {MODEL} v3 in dev: the evaluation gate must stop it")
    outcome = _propose_and_reconcile(service, "dev", 3, echo)
    if outcome.state is PromotionState.MERGED:
        raise PromoterError("the demo expected v3 to be blocked, but it was merged")
    report = _report(service, outcome.pull_number)
    echo("  the report on the pull request says:")
    echo("\n".join(f"  | {line}" for line in report.splitlines()))

    step("Where everything stands (promoter status)")
    echo(format_status(service.status()))
    promoter = Path(sys.executable).parent / "promoter"
    echo(f"\nInspect it yourself: cd {workdir} && git log --oneline --graph --all "
         f"&& {promoter} status")


def _promote(service: PromotionService, env: str, version: int, echo: Echo) -> None:
    outcome = _propose_and_reconcile(service, env, version, echo)
    if outcome.state is PromotionState.WAITING:
        echo(f"  {RELEASE_MANAGER} (release manager) approves PR #{outcome.pull_number}")
        service.approve(outcome.pull_number, user=RELEASE_MANAGER)
        outcome = _reconcile(service, outcome.pull_number, echo)
    if outcome.state is not PromotionState.MERGED:
        raise PromoterError(
            f"the demo expected {MODEL} v{version} to reach {env}, but it is {outcome.state}: "
            + "; ".join(g.description for g in outcome.gates if not g.passed)
        )


def _propose_and_reconcile(service: PromotionService, env: str, version: int,
                           echo: Echo) -> ReconcileOutcome:
    result = service.propose(environment=env, model=MODEL, version=version,
                             author=ML_ENGINEER)
    echo(_indent(format_proposal(result)))
    assert result.pull_request is not None
    return _reconcile(service, result.pull_request.number, echo)


def _reconcile(service: PromotionService, number: int, echo: Echo) -> ReconcileOutcome:
    outcome = service.reconcile_pull(number)
    echo(_indent(format_reconcile([outcome])))
    return outcome


def _report(service: PromotionService, number: int) -> str:
    return service.evaluation_report(number) or "(no report)"


def _prepare_workdir(workdir: Path) -> None:
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
    def __init__(self, echo: Echo) -> None:
        self._echo = echo
        self._n = 0

    def __call__(self, title: str, detail: object | None = None) -> None:
        self._n += 1
        suffix = f" ({detail})" if detail is not None else ""
        self._echo(f"\n== {self._n}. {title}{suffix}")


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
