"""History and DORA read cost: `PromotionService.history()` and `.dora()` over N merges.

Builds the example dry source in a temporary git repository with the local forge, promotes
dev through v1, v2, v3, v1, ... `--merges` times (every promotion a real proposal, statuses,
report comment and merge; the evaluator is a stand-in that passes without scoring), then times
reading the history cold (a fresh service: nothing remembered) and warm (the same service
again: only each branch head asked about), and the DORA figures, `--repeats` times each, side
by side in one run; prints medians, the cost per merge and the ratios (DORA = history plus a
scan of the model store).

    .venv/bin/python benchmarks/history.py                # 60 merges, 5 repeats
    .venv/bin/python benchmarks/history.py --merges 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promoter.config.loader import load_settings
from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.demo import copy_example
from promoter.domain.model_versions import ModelVersion
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, PromotionState


@dataclass(frozen=True)
class _Holdout:
    digest: str


@dataclass(frozen=True)
class _Report:
    candidate: ModelVersion
    baseline: ModelVersion | None
    holdout: _Holdout
    passed: bool = True
    needs_approval: bool = False

    def summary_line(self) -> str:
        return f"passed (v{self.candidate.version})"

    def to_markdown(self) -> str:
        return f"## Evaluation of v{self.candidate.version}\n"

    def to_json_dict(self) -> dict[str, object]:
        """What the verdict store keeps for the dashboard's promotion page."""
        return {"passed": self.passed, "candidate": {"version": self.candidate.version}}


class _PassingEvaluator:
    """Passes every candidate without scoring, reporting the digests it was given."""

    def evaluate(self, *, candidate: ModelVersion, baseline: ModelVersion | None,
                 holdout: Path, model: ModelSpec, policy: EvaluationPolicy,
                 environment: str) -> _Report:
        import hashlib

        digest = "sha256:" + hashlib.sha256(holdout.read_bytes()).hexdigest()
        return _Report(candidate, baseline, _Holdout(digest))


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def service_over(root: Path) -> PromotionService:
    """A new service (so a new history reader, remembering nothing) over the repository."""
    repo = LocalGitRepository(root)
    forge = LocalForge(root / ".git" / "promoter" / "forge.sqlite", repo)
    return PromotionService(settings=load_settings(root / "promoter.yaml"), repo=repo,
                            forge=forge, store=LocalModelStore(root / "models"),
                            evaluator=_PassingEvaluator())  # type: ignore[arg-type]


def build(root: Path, merges: int) -> PromotionService:
    root.mkdir(parents=True)
    copy_example(root)
    for version in (1, 2, 3):
        directory = root / "models" / "churn" / str(version)
        (directory / "variables").mkdir(parents=True)
        (directory / "saved_model.pb").write_text(f"graph v{version}")
        (directory / "variables" / "variables.index").write_text("index")
    (root / "data").mkdir()
    (root / "data" / "churn-holdout-dev.csv").write_text("x,churned\n1,0\n")
    (root / ".gitignore").write_text("models/\ndata/\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=bench", "-c", "user.email=bench@example.test",
         "commit", "-q", "-m", "dry source")
    service = service_over(root)
    for i in range(merges):
        result = service.propose(environment="dev", model="churn", version=i % 3 + 1,
                                 author="bench")
        assert result.pull_request is not None
        outcome = service.reconcile_pull(result.pull_request.number)
        assert outcome.state is PromotionState.MERGED, outcome
    return service


def _median_ms(call: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merges", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
        started = time.perf_counter()
        service = build(Path(tmp) / "gitops", args.merges)
        print(f"built {args.merges} merges in {time.perf_counter() - started:.1f} s "
              f"(load average {os.getloadavg()[0]:.1f})")
        root = Path(tmp) / "gitops"
        [dev] = service.history(environment="dev")
        assert len(dev.deployments) == args.merges, len(dev.deployments)
        # Cold: a fresh service each time (nothing remembered); warm: the same one again.
        cold_ms = _median_ms(lambda: service_over(root).history(), args.repeats)
        warm_ms = _median_ms(lambda: service.history(), args.repeats)
        dora_ms = _median_ms(lambda: service.dora(window=timedelta(days=30)), args.repeats)
    print(f"history, cold: median {cold_ms:.0f} ms ({cold_ms / args.merges:.1f} ms per merge)")
    print(f"history, warm: median {warm_ms:.0f} ms ({cold_ms / warm_ms:.1f}x faster than cold)")
    print(f"dora, warm:    median {dora_ms:.0f} ms ({dora_ms / warm_ms:.2f}x warm history)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
