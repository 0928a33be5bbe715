"""One whole promotion through the promotion service on (fake) GitHub, and its API calls."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from promoter.config.loader import load_settings
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, PromotionState
from tests.fakes.scripted import ScriptedEvaluator
from tests.github.fixtures import running_fake, token_forge
from tests.promotion.world import World, git

CALL_BUDGET = 25
"""GitHub API calls allowed for propose + reconcile + merge of one promotion (measured: 23)."""


def test_one_promotion_stays_within_the_call_budget(tmp_path: Path) -> None:
    world = World(tmp_path / "gitops", ScriptedEvaluator())
    with running_fake(world.root) as fake:
        forge = token_forge(fake)
        service = PromotionService(
            settings=load_settings(world.root / "promoter.yaml"),
            repo=LocalGitRepository(world.root), forge=forge,
            store=LocalModelStore(world.root / "models"), evaluator=world.evaluator,
            identity=fake.bot)

        proposed = service.propose(environment="dev", model="churn", version=1, author="mia")
        assert proposed.pull_request is not None
        propose_calls = len(fake.requests)
        outcome = service.reconcile_pull(proposed.pull_request.number)
        assert outcome.state is PromotionState.MERGED, outcome
        assert git(world.root, "rev-parse", "environments/dev") == outcome.merge_sha
        total = len(fake.requests)
        calls = Counter(f"{m} {p}" for m, p in fake.requests)
        print(f"\nGitHub API calls: propose {propose_calls}, reconcile+merge "
              f"{total - propose_calls}, total {total}")
        for call, n in sorted(calls.items()):
            print(f"  {n} x {call}")
        assert total <= CALL_BUDGET, calls

        # Running reconcile again writes nothing: the PR is merged and no longer listed.
        writes = sum(1 for m, _ in fake.requests if m != "GET")
        assert service.reconcile() == []
        assert sum(1 for m, _ in fake.requests if m != "GET") == writes


def test_listing_open_pull_requests_is_one_call(git_repo: Path,
                                               gitops_repo: LocalGitRepository) -> None:
    from tests.github.scenario import open_pr, propose

    with running_fake(git_repo) as fake:
        forge = token_forge(fake)
        propose(gitops_repo)
        open_pr(forge)
        before = len(fake.requests)
        (pull,) = forge.list_open_pull_requests(label="promoter")
        assert pull.author == "mia"
        # Listed PRs are `pull-request-simple`: reading them must not fetch each PR again.
        assert fake.requests[before:] == [("GET", "/repos/acme/gitops/pulls")]
