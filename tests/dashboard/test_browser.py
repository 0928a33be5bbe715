"""The dashboard in a real browser, on the demo's repository served by `promoter serve`.

Each page loads with no console error, shows the environments, versions, verdicts and plots,
and has no serious or critical accessibility violation by axe-core (vendored: axe-core/);
an approval given through the page merges the promotion and the open page shows it by itself
(server-sent events). A screenshot of every page is saved in test-artifacts/dashboard/.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from promoter.server.tokens import hash_token
from tests.fixtures.browser import ARTIFACTS
from tests.fixtures.demo import PROMOTER, DemoRun, clean_environment, copy_demo

pytestmark = pytest.mark.slow

AXE = Path(__file__).parent / "axe-core" / "axe.min.js"
WAITING = 6
"""The demo's churn v2 -> prod, waiting for a release manager (README)."""
BLOCKED = 7
"""The demo's churn v3 -> dev, stopped by the evaluation gate."""


@dataclass
class Dashboard:
    url: str
    rita_token: str
    workdir: Path


@contextlib.contextmanager
def _serving(demo_run: DemoRun, tmp_path: Path, *,
             policy_extra: str | None = None) -> Iterator[Dashboard]:
    """`promoter serve` on a copy of the demo; `policy_extra` is appended to prod's policy
    (committed on the dry branch) before it starts."""
    workdir = copy_demo(demo_run, tmp_path)
    token = secrets.token_urlsafe(32)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"rita: {hash_token(token)}\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {**clean_environment(home), "PROMOTER_WEBHOOK_SECRET": "browser-test-secret",
           "PROMOTER_API_TOKENS_FILE": str(tokens)}
    if policy_extra is not None:
        policy = workdir / "policies" / "prod.yaml"
        policy.write_text(policy.read_text() + policy_extra)
        subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=t@example.test",
                        "commit", "-q", "-am", "prod: soak"], cwd=workdir, env=env,
                       check=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([str(PROMOTER), "serve", "--port", str(port)], cwd=workdir,
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "promoter serve did not become ready"
            time.sleep(0.3)
        yield Dashboard(url=url, rita_token=token, workdir=workdir)
    finally:
        server.terminate()
        server.wait(60)
        log.close()


@pytest.fixture
def dashboard(demo_run: DemoRun, tmp_path: Path) -> Iterator[Dashboard]:
    with _serving(demo_run, tmp_path) as served:
        yield served


@pytest.fixture
def soaking_dashboard(demo_run: DemoRun, tmp_path: Path) -> Iterator[Dashboard]:
    """The demo with a soak of 30 days in staging before prod: PR #6's soak has started
    (churn v2 was merged into staging) and is far from over."""
    with _serving(demo_run, tmp_path, policy_extra="soak:\n  duration: 30d\n") as served:
        yield served


def _load(browser: Any, url: str) -> None:
    # Leave the last page first: its event stream would retry a server that is gone.
    browser.get("about:blank")
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    _wait(browser, lambda: browser.execute_script("return document.readyState") == "complete")


def _wait(browser: Any, done: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out on {browser.current_url}"
        time.sleep(0.2)


def _console_errors(browser: Any) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser")
            if entry["level"] in ("SEVERE", "ERROR")]


def _axe_violations(browser: Any) -> list[str]:
    browser.execute_script(AXE.read_text(encoding="utf-8"))
    violations = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: "
        "'critical', help: String(e), nodes: []}]));")
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(n.get("target")) for n in v["nodes"][:3])
            for v in violations if v["impact"] in ("serious", "critical")]


def _screenshot(browser: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(max(height + 40, 600), 6000))
    path = ARTIFACTS / f"{name}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(1400, 1000)
    return path


def _text(browser: Any) -> str:
    return str(browser.execute_script("return document.body.innerText"))


PLOTS = {
    "promotion-waiting": {"roc", "pr", "calibration", "forest", "budgets"},
    # dev's policy has absolute bounds only: no vsBaseline delta to draw, and the page says so.
    "promotion-blocked": {"roc", "pr", "calibration", "budgets"},
}
PAGES = {
    "pipelines": ("/", ["dev", "staging", "prod", "churn v2", "churn v1", "PR #6",
                        "waiting for approval", "PR #7", "blocked", "auc 0.5605 < 0.7"]),
    "promotion-waiting": (f"/promotions/{WAITING}", [
        "PR #6", "waiting for approval", "Log in", "approvals", "0 of 1 approvals",
        "Evaluation passed", "auc.vsBaseline", "churn v1 (deployed now)", "Holdout"]),
    "promotion-blocked": (f"/promotions/{BLOCKED}", [
        "PR #7", "blocked", "Evaluation failed", "auc.min", "no vsBaseline checks"]),
    "history": ("/history", ["dev", "staging", "prod", "churn v2", "rita on", "mia"]),
    "dora": ("/dora", ["Lead time for changes", "Change failure rate", "Time to restore",
                       "churn"]),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_loads_cleanly_shows_its_content_and_is_accessible(
        browser: Any, dashboard: Dashboard, name: str) -> None:
    path, expected = PAGES[name]
    _load(browser, dashboard.url + path)
    shot = _screenshot(browser, name)
    assert shot.stat().st_size > 10_000
    text = _text(browser)
    missing = [word for word in expected if word not in text]
    assert missing == [], f"{name} lacks {missing}"
    if name in PLOTS:
        drawn = browser.execute_script(
            "return Array.from(document.querySelectorAll('figure.plot svg'))"
            ".map(s => s.closest('figure').dataset.plot)")
        assert set(drawn) == PLOTS[name], drawn
    assert browser.execute_script(
        "return document.getElementById('live-state').textContent") == "live"
    assert _console_errors(browser) == []
    assert _axe_violations(browser) == []


def test_an_approval_through_the_page_merges_the_promotion(browser: Any,
                                                          dashboard: Dashboard) -> None:
    from selenium.webdriver.common.by import By

    _load(browser, f"{dashboard.url}/promotions/{WAITING}")
    browser.find_element(By.LINK_TEXT, "Log in").click()
    _wait(browser, lambda: "/login" in browser.current_url)
    _screenshot(browser, "login")
    assert _axe_violations(browser) == []
    browser.find_element(By.ID, "token").send_keys(dashboard.rita_token)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    _wait(browser, lambda: browser.current_url.endswith(f"/promotions/{WAITING}"))
    assert "Signed in as rita" in _text(browser)
    browser.find_element(By.CSS_SELECTOR, "button.approve").click()

    def phase() -> str:
        return str(browser.execute_script(
            "const e = document.querySelector('[data-phase]'); return e && e.textContent"))

    # The reconcile runs on the server's workers; the page hears of it by its event stream.
    _wait(browser, lambda: phase() == "merged", timeout_s=120)
    assert "rita approved on" in _text(browser)
    _screenshot(browser, "promotion-approved")
    assert _console_errors(browser) == []
    merged = subprocess.run(["git", "show", "environments/prod:hydrator.metadata"],
                            cwd=dashboard.workdir, capture_output=True, text=True, check=True)
    assert '"version": 2' in merged.stdout
    _load(browser, dashboard.url + "/")
    assert "churn v2" in browser.find_element(
        By.CSS_SELECTOR, '[data-environment="prod"]').text


def test_soak_progress_is_a_progress_bar_on_both_pages(browser: Any,
                                                       soaking_dashboard: Dashboard) -> None:
    """The soak's progress is drawn as a native <progress> (role progressbar, its value and
    a text alternative read out), on the pipelines page and the promotion's; axe stays
    clean."""
    url = soaking_dashboard.url

    def bars() -> list[dict[str, Any]]:
        return list(browser.execute_script(
            "return Array.from(document.querySelectorAll('progress.soak-bar')).map(p => ("
            "{value: p.value, max: p.max, label: p.getAttribute('aria-label'),"
            " text: p.textContent, role: p.computedRole}))"))

    # The server's first resync publishes the soak gate; the page shows it once it has.
    deadline = time.monotonic() + 120
    while True:
        _load(browser, url + "/")
        if bars() or time.monotonic() > deadline:
            break
        time.sleep(1)
    [bar] = bars()
    assert bar["max"] == 100
    assert 0 <= bar["value"] < 5  # minutes of 30 days
    assert bar["label"].startswith("soak before prod: ")
    assert bar["text"].endswith("%")
    assert bar["role"] in ("progressbar", None)  # computedRole: newer Chromium only
    assert "of 30d in staging" in _text(browser)
    _screenshot(browser, "pipelines-soak")
    assert _console_errors(browser) == []
    assert _axe_violations(browser) == []
    _load(browser, f"{url}/promotions/{WAITING}")
    [bar] = bars()
    assert bar["label"].startswith("soak: ")
    _screenshot(browser, "promotion-soak")
    assert _console_errors(browser) == []
    assert _axe_violations(browser) == []
