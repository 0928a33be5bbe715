"""A throwaway GitOps world for tests: the example dry source in a real git repository, a
model store of stand-in SavedModel directories, holdout files and a promotion service.

The SavedModel directories have the right layout but no graph: enough for hydration,
proposals and digests; tests that score models use the real ones from tests/fixtures/models.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from promoter.config.loader import load_settings
from promoter.demo import copy_example
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import HoldoutSource, LocalModelStore
from promoter.promotion import PromotionService, PromotionState
from promoter.promotion.rollback import RollbackService
from promoter.promotion.verdicts import DirectoryVerdictStore
from tests.fakes.scripted import ScriptedEvaluator


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def refs(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ") for line in out.splitlines())


def fake_saved_model(path: Path, payload: str) -> None:
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_text(payload)
    (path / "variables" / "variables.index").write_text("index")


class World:
    """A GitOps repository with the example dry source, a model store and a service."""

    def __init__(self, root: Path, evaluator: ScriptedEvaluator) -> None:
        self.root = root
        root.mkdir(parents=True)
        copy_example(root)
        for version in (1, 2, 3):
            fake_saved_model(root / "models" / "churn" / str(version), f"graph v{version}")
        (root / "data").mkdir()
        for env in ("dev", "staging", "prod"):
            (root / "data" / f"churn-holdout-{env}.csv").write_text("x,churned\n1,0\n")
        (root / ".gitignore").write_text("models/\ndata/\n")
        git(root, "init", "-q", "-b", "main")
        git(root, "add", ".")
        git(root, "commit", "-q", "-m", "dry source")
        self.evaluator = evaluator
        self.service = self.build()

    def build(self, *, holdouts: HoldoutSource | None = None) -> PromotionService:
        """The service over this world's repository, forge and store; `holdouts` finds the
        holdouts (default: the service's own, local paths relative to promoter.yaml)."""
        loaded = load_settings(self.root / "promoter.yaml")
        repo = LocalGitRepository(self.root)
        self.forge = LocalForge(self.root / ".git" / "promoter" / "forge.sqlite", repo)
        return PromotionService(settings=loaded, repo=repo, forge=self.forge,
                                rollbacks=RollbackService(repo=repo, forge=self.forge),
                                store=LocalModelStore(self.root / "models"),
                                evaluator=self.evaluator,
                                verdicts=DirectoryVerdictStore(
                                    self.root / ".git" / "promoter" / "verdicts"),
                                holdouts=holdouts)

    def commit_dry_change(self, path: str, old: str, new: str) -> None:
        file = self.root / path
        file.write_text(file.read_text().replace(old, new))
        git(self.root, "commit", "-q", "-am", f"change {path}")

    def metadata(self, ref: str) -> dict:
        return json.loads(git(self.root, "show", f"{ref}:hydrator.metadata"))

    def promote(self, env: str, version: int, *, approver: str | None = None) -> None:
        result = self.service.propose(environment=env, model="churn", version=version,
                                      author="mia")
        assert result.pull_request is not None
        if approver:
            self.service.approve(result.pull_request.number, user=approver)
        outcome = self.service.reconcile_pull(result.pull_request.number)
        assert outcome.state is PromotionState.MERGED, outcome
