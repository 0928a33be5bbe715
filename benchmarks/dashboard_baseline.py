"""The other side of `benchmarks/dashboard.py --against REV`: the pipelines page served by
promoter as it was at REV, over the workspace the benchmark prepared, timed on request.

Run by dashboard.py as `python dashboard_baseline.py OLD_CHECKOUT PROMOTER_YAML`, with
OLD_CHECKOUT (a `git worktree` of REV) first on `sys.path`, so every `promoter` module is
REV's. It uses only what REV's code already had (`load_settings`, `build_adapters`,
`PromotionService`, `build_app`). Protocol, one line each way: `page` -> the server time in
milliseconds of `GET /` right after a change of the dashboard's feed, and the number of
environments on the page; `quit` ends it.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path


def main() -> int:
    old, config = Path(sys.argv[1]), Path(sys.argv[2])
    sys.path[:0] = [str(old), str(old / "benchmarks")]
    from scale import PassingEvaluator

    from promoter.config.loader import load_settings
    from promoter.promotion.service import PromotionService
    from promoter.wiring import build_adapters, build_app, build_rollback_service

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
        from fastapi.testclient import TestClient

    loaded = load_settings(config)
    adapters = build_adapters(loaded)
    service = PromotionService(settings=loaded, repo=adapters.repo, forge=adapters.forge,
                               store=adapters.store, evaluator=PassingEvaluator(),
                               rollbacks=build_rollback_service(adapters),
                               verdicts=adapters.verdicts)
    app = build_app(service, webhook_secret=b"bench", resync_interval_s=None,
                    dashboard=service)
    feed = app.state.dashboard.feed
    with TestClient(app) as client:
        app.state.parts.scheduler.wait_idle(600)
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() != "page":
                break
            feed.changed()
            start = time.perf_counter()
            response = client.get("/")
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, response.text[:500]
            shown = response.text.count('class="env"')
            print(f"{elapsed} {shown}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
