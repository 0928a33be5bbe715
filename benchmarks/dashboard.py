"""Dashboard benchmark: server time of the pipelines page `/` for N models x 3 environments.

Set-up (not timed): the workspace of benchmarks/scale.py (N models, each `mNN-dev ->
mNN-staging -> mNN-prod`, 3N environment branches, stand-in SavedModels), a policy needing one
approval, each model's v1 approved and merged into dev, and a promotion of it to staging
opened and reconciled (so every staging environment shows an open promotion with its gates,
waiting for an approval). The app is the one `promoter serve` builds (`build_app` with the
real service, git repository and local forge, and the dashboard).

Timed, warm (after `--warmup` requests), `--requests` times each, interleaved so the machine's
load falls on all of them alike, in-process through the ASGI app (server time, no network):

- `GET /`, warm: the pipelines page as it is answered between two changes (the service's
  statuses are read once per change of the dashboard's feed: `feed.SinceLastChange`);
- `GET /` right after a change (a reconcile moved the feed): `status(health=True)` read
  again from git and the forge, + views + Jinja2: what the first viewer after a change pays;
- with `--against REV` (e.g. the commit before a change), the same `GET /` after a change
  served by promoter as it was at REV (a `git worktree` of REV, in a child process:
  `dashboard_baseline.py`), over the same workspace, its samples interleaved with these;
- `pipelines()` of a service built afresh (its git reads remember nothing yet; the dry
  source, parsed once per commit, is loaded before the clock starts): the git and forge
  reads of the first page after `promoter serve` starts, service time only;
- `GET /api/v1/environments` (the REST API's `status()` of the same environments), for the
  ratio: what the page costs over the JSON of the same facts;
- `GET /` over a stand-in service that answers the same statuses from memory: rendering
  alone (views + Jinja2 + FastAPI).

    .venv/bin/python benchmarks/dashboard.py              # 50 x 3
    .venv/bin/python benchmarks/dashboard.py --models 2   # a quick run
    .venv/bin/python benchmarks/dashboard.py --against ad091bc  # old vs new, one run

Prints medians and p90 in milliseconds and the ratios. Exit status 1 if the warm page's
median is over `--budget-ms` (200 by default, the issue's bound).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from scale import (  # noqa: E402
    PassingEvaluator,
    build_workspace,
    environment_name,
    isolate_git,
    model_names,
)

from promoter.config.loader import DryConfig, load_settings  # noqa: E402
from promoter.promotion.results import EnvironmentStatus, PromotionRecord  # noqa: E402
from promoter.promotion.service import PromotionService  # noqa: E402
from promoter.wiring import build_adapters, build_app, build_rollback_service  # noqa: E402

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

APPROVER = "rita"


class MemoryService:
    """Answers the pages' reads from values taken once from the real service."""

    def __init__(self, dry: tuple[str, DryConfig], statuses: Sequence[EnvironmentStatus]):
        self._dry, self._statuses = dry, list(statuses)

    def dry_config(self) -> tuple[str, DryConfig]:
        return self._dry

    def status(self) -> list[EnvironmentStatus]:
        return self._statuses

    def pipelines(self) -> list[EnvironmentStatus]:
        return self._statuses

    def promotion(self, number: int) -> PromotionRecord:
        raise NotImplementedError

    def reconcile(self) -> list[Any]:
        return []

    def reconcile_pull(self, number: int) -> Any:
        raise NotImplementedError

    def evaluation_report(self, number: int) -> str | None:
        return None

    def approve(self, number: int, *, user: str, reject: bool = False) -> Any:
        raise NotImplementedError

    def history(self, **kwargs: Any) -> list[Any]:
        return []

    def dora(self, **kwargs: Any) -> list[Any]:
        return []


def build(config: Path) -> PromotionService:
    """A service over the workspace, as `promoter serve` builds one (fresh adapters)."""
    loaded = load_settings(config)
    adapters = build_adapters(loaded)
    return PromotionService(settings=loaded, repo=adapters.repo, forge=adapters.forge,
                            store=adapters.store, evaluator=PassingEvaluator(),
                            rollbacks=build_rollback_service(adapters),
                            verdicts=adapters.verdicts)


def prepare(root: Path, count: int) -> tuple[PromotionService, Path]:
    config = build_workspace(root / "gitops", model_names(count), stub_models=True,
                             holdout_rows=200)
    policy = config.parent / "policies" / "bench.yaml"
    data = yaml.safe_load(policy.read_text())
    data["approvals"] = {"required": 1, "approvers": [APPROVER]}
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    subprocess.run(["git", "commit", "-q", "-am", "One approval"], cwd=config.parent,
                   check=True)
    service = build(config)
    for model in model_names(count):
        for stage, approve in (("dev", True), ("staging", False)):
            proposal = service.propose(environment=environment_name(model, stage),
                                       model=model, version=1, author="mia")
            assert proposal.pull_request is not None
            if approve:
                service.approve(proposal.pull_request.number, user=APPROVER)
            service.reconcile_pull(proposal.pull_request.number)
    return service, config


class Baseline:
    """promoter at `rev`, serving the same workspace in a child process (see module doc)."""

    def __init__(self, rev: str, config: Path, scratch: Path) -> None:
        self._checkout = scratch / "baseline"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--quiet", "--detach",
                        str(self._checkout), rev], check=True)
        self._child = subprocess.Popen(
            [sys.executable, str(REPO / "benchmarks" / "dashboard_baseline.py"),
             str(self._checkout), str(config)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        assert self._read() == "ready"

    def page(self) -> tuple[float, int]:
        """Server time (ms) of one `GET /` after a change, and the environments shown."""
        assert self._child.stdin is not None
        self._child.stdin.write("page\n")
        self._child.stdin.flush()
        elapsed, shown = self._read().split()
        return float(elapsed), int(shown)

    def _read(self) -> str:
        assert self._child.stdout is not None
        line = self._child.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"the baseline exited ({self._child.wait()})")
        return line

    def close(self) -> None:
        if self._child.stdin is not None:
            self._child.stdin.close()
        self._child.wait(60)
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                        str(self._checkout)], check=False)


def timed(get: Callable[[], Any], requests: int) -> list[float]:
    out = []
    for _ in range(requests):
        start = time.perf_counter()
        response = get()
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text[:500]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--budget-ms", type=float, default=200.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--against", metavar="REV",
                        help="also time GET / after a change as promoter at REV serves it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="promoter-dashboard-bench-") as tmp:
        root = Path(tmp)
        isolate_git(root / "home")
        started = time.perf_counter()
        service, config = prepare(root, args.models)
        setup_s = time.perf_counter() - started
        baseline = Baseline(args.against, config, root) if args.against else None
        memory = MemoryService(service.dry_config(), service.pipelines())
        real = build_app(service, webhook_secret=b"bench", resync_interval_s=None,
                         dashboard=service)
        stand_in = build_app(memory, webhook_secret=b"bench", resync_interval_s=None,
                             dashboard=memory)
        samples: dict[str, list[float]] = {"page": [], "page_after_change": [], "api": [],
                                           "render_only": [], "pipelines_fresh_service": []}
        if baseline is not None:
            samples["page_after_change_at_against"] = []
        feed = real.state.dashboard.feed
        with TestClient(real) as client, TestClient(stand_in) as fake:
            real.state.parts.scheduler.wait_idle(600)
            page = client.get("/").text
            assert page.count('class="env"') == 3 * args.models, "every environment shown"
            assert page.count("waiting for approval") == args.models
            for _ in range(args.warmup):
                client.get("/"), client.get("/api/v1/environments"), fake.get("/")
            for _ in range(args.requests):  # interleaved: the machine's load hits all alike
                samples["page"] += timed(lambda: client.get("/"), 1)
                feed.changed()  # what a reconcile does: the next page reads the service
                samples["page_after_change"] += timed(lambda: client.get("/"), 1)
                samples["api"] += timed(lambda: client.get("/api/v1/environments"), 1)
                samples["render_only"] += timed(lambda: fake.get("/"), 1)
                fresh = build(config)
                fresh.dry_config()
                started = time.perf_counter()
                assert len(fresh.pipelines()) == 3 * args.models
                samples["pipelines_fresh_service"].append(
                    (time.perf_counter() - started) * 1000)
                if baseline is not None:
                    elapsed, shown = baseline.page()
                    assert shown == 3 * args.models, "the baseline shows every environment"
                    samples["page_after_change_at_against"].append(elapsed)
        if baseline is not None:
            baseline.close()
    median = {k: statistics.median(v) for k, v in samples.items()}
    report = {
        "models": args.models, "environments": 3 * args.models, "requests": args.requests,
        "setup_s": round(setup_s, 1),
        **{f"{k}_median_ms": round(v, 1) for k, v in median.items()},
        **{f"{k}_p90_ms": round(statistics.quantiles(v, n=10)[-1], 1)
           for k, v in samples.items()},
        "page_over_api": round(median["page"] / median["api"], 4),
        "page_after_change_over_api": round(median["page_after_change"] / median["api"], 2),
        "render_share_of_page": round(median["render_only"] / median["page"], 2),
        **({"against": args.against,
            "after_change_at_against_over_now": round(
                median["page_after_change_at_against"] / median["page_after_change"], 1)}
           if baseline is not None else {}),
        "page_html_bytes": len(page.encode()),
        "budget_ms": args.budget_ms,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>24}: {value}")
    return 0 if median["page"] <= args.budget_ms else 1


if __name__ == "__main__":
    sys.exit(main())
