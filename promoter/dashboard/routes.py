"""The dashboard's routes: pages, login, reviews from the page, live updates.

`install_dashboard(app, parts)` adds them to the app `create_app` built; `promoter.wiring`
chooses the parts. Pages are rendered on the server with Jinja2 (autoescaped) from the
service's answers through `promoter.dashboard.views`; the one script (`static/dashboard.js`)
only reloads the live part of a page when the change feed says so. Every page is sent with a
Content-Security-Policy that allows only this server's own scripts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from promoter.dashboard import views
from promoter.dashboard.feed import ChangeFeed, SinceLastChange
from promoter.dashboard.plots import PlotCache
from promoter.dashboard.ports import DashboardPort
from promoter.dashboard.sessions import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Session,
    Sessions,
    SessionStore,
    same_token,
)
from promoter.domain.pull_requests import PullRequestState
from promoter.errors import PromoterError, PullRequestNotFoundError
from promoter.promotion.dora import DEFAULT_WINDOW, parse_window
from promoter.server.errors import http_status
from promoter.server.tokens import ApiTokens

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    # matplotlib's SVG styles its elements inline, hence 'unsafe-inline' for styles only;
    # scripts come from this server alone, and no other site may frame or post to a page.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
WINDOW_CHOICES = ("7d", "30d", "90d")
"""The DORA page's windows to pick from; any `?window=` that `parse_window` reads works."""
STREAM_SECONDS = 300.0
"""An event stream ends after this long; the browser's EventSource opens a new one."""


@dataclass(frozen=True, slots=True)
class DashboardParts:
    """What the pages use, kept on `app.state.dashboard`."""

    service: DashboardPort
    feed: ChangeFeed
    api_tokens: ApiTokens | None
    """Who may log in (the REST API's tokens); None: nobody, the pages are read-only."""
    reconcile: Callable[[int, str], None]
    """Reconcile PR `number` on branch `base` now (after a review given on the page)."""
    pull_url: Callable[[int], str] | None = None
    """The PR's page on a forge that takes reviews on its own site (GitHub), for a PR that
    does not carry its own `web_url`; None: reviews are given here, on the local forge."""
    require_auth_for_reads: bool = False
    sessions: Sessions = field(default_factory=SessionStore)
    """Who is logged in: `promoter serve` keeps them in its state directory."""
    plots: PlotCache = field(default_factory=PlotCache)
    templates: jinja2.Environment = field(default_factory=lambda: template_environment())
    statuses: SinceLastChange[Any] | None = None
    """The dry config and the pipelines' statuses, computed once per change of `feed` (set
    from it by default)."""

    def __post_init__(self) -> None:
        if self.statuses is None:
            object.__setattr__(self, "statuses", SinceLastChange(self.feed))


def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("promoter.dashboard", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals.update(number=views.number, short_digest=views.short_digest,
                       baseline_label=views.baseline_label, duration=views.duration,
                       percent=views.percent, when=views.when)
    return env


class LoginRequired(Exception):
    """A page asked for by someone not logged in, where reads need a login."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


async def get_dashboard(request: Request) -> DashboardParts:
    parts: DashboardParts = request.app.state.dashboard
    return parts


DashboardDep = Annotated[DashboardParts, Depends(get_dashboard)]


def current_session(request: Request, parts: DashboardParts) -> Session | None:
    return parts.sessions.get(request.cookies.get(SESSION_COOKIE))


async def reader(request: Request, parts: DashboardDep) -> Session | None:
    """The session of a read, or LoginRequired where `requireAuthForReads` asks for one."""
    session = current_session(request, parts)
    if parts.require_auth_for_reads and session is None:
        raise LoginRequired(request.url.path)
    return session


ReaderDep = Annotated[Session | None, Depends(reader)]


def install_dashboard(app: FastAPI, parts: DashboardParts) -> None:
    """Add the pages, the static files and the event stream to `app`."""
    app.state.dashboard = parts
    app.mount("/static", StaticFiles(packages=[("promoter.dashboard", "static")]),
              name="static")

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/login?next={quote(exc.path)}", status_code=303)

    app.add_exception_handler(LoginRequired, login_required)
    app.include_router(_router())


def render(request: Request, parts: DashboardParts, template: str, *, status: int = 200,
           **values: Any) -> HTMLResponse:
    session = current_session(request, parts)
    html = parts.templates.get_template(template).render(
        session=session, path=request.url.path, can_login=parts.api_tokens is not None,
        **values)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    _page_routes(router)
    _review_routes(router)
    _login_routes(router)
    _audit_routes(router)
    return router


def _page_routes(router: APIRouter) -> None:
    @router.get("/", response_class=HTMLResponse)
    def pipelines(request: Request, parts: DashboardDep, session: ReaderDep) -> Response:
        try:
            assert parts.statuses is not None
            dry, statuses = parts.statuses.get(
                lambda: (parts.service.dry_config()[1], parts.service.pipelines()))
        except PromoterError as exc:
            return render(request, parts, "error.html", status=http_status(exc), error=exc)
        edges = {name: env.promotes_from for name, env in dry.environments.items()}
        return render(request, parts, "pipelines.html",
                      pipelines=views.pipelines(edges, statuses))

    @router.get("/promotions/{number}", response_class=HTMLResponse)
    def promotion(number: int, request: Request, parts: DashboardDep,
                  session: ReaderDep) -> Response:
        return _promotion_page(request, parts, number)

    @router.get("/events")
    async def events(request: Request, parts: DashboardDep, session: ReaderDep) -> Response:
        """Server-sent events: `changed` whenever a promotion may have moved."""
        return StreamingResponse(_stream(request, parts.feed), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})


def _review_routes(router: APIRouter) -> None:
    def review(number: int, request: Request, parts: DashboardParts, form: dict[str, str],
               *, reject: bool) -> Response:
        session = current_session(request, parts)
        if session is None:
            return _promotion_page(request, parts, number, status=401,
                                   problem="log in to review: your session has ended or "
                                           "was never started")
        if not same_token(form.get("csrf"), session.csrf):
            log.warning("review of PR #%s refused: missing or wrong CSRF token", number,
                        extra={"pr": number})
            return _promotion_page(request, parts, number, status=403,
                                   problem="the form's CSRF token is missing or wrong: "
                                           "reload the page and try again")
        try:
            parts.service.approve(number, user=session.user, reject=reject)
            record = parts.service.promotion(number)
        except PromoterError as exc:
            fix = f" ({exc.fix})" if exc.fix else ""
            return _promotion_page(request, parts, number, status=http_status(exc),
                                   problem=exc.message + fix)
        log.info("%s %s PR #%s on the dashboard", session.user,
                 "requested changes on" if reject else "approved", number,
                 extra={"pr": number})
        parts.feed.changed()
        if record.pull.state is PullRequestState.OPEN:
            parts.reconcile(number, record.pull.base_branch)
        return RedirectResponse(f"/promotions/{number}", status_code=303)

    @router.post("/promotions/{number}/approve")
    async def approve(number: int, request: Request, parts: DashboardDep) -> Response:
        form = await _form(request)
        return await asyncio.to_thread(review, number, request, parts, form, reject=False)

    @router.post("/promotions/{number}/reject")
    async def reject(number: int, request: Request, parts: DashboardDep) -> Response:
        form = await _form(request)
        return await asyncio.to_thread(review, number, request, parts, form, reject=True)


def _login_routes(router: APIRouter) -> None:
    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, parts: DashboardDep, next: str = "/") -> Response:
        return _login_page(request, parts, next_path=_safe_next(next))

    @router.post("/login")
    async def login(request: Request, parts: DashboardDep) -> Response:
        form = await _form(request)
        next_path = _safe_next(form.get("next", "/"))
        if not same_token(form.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
            return _login_page(request, parts, next_path=next_path, status=403,
                               problem="the form's CSRF token is missing or wrong: reload "
                                       "the page and try again")
        user = parts.api_tokens.user_for(form.get("token", "")) if parts.api_tokens else None
        if user is None:
            return _login_page(request, parts, next_path=next_path, status=401,
                               problem="unknown token: the operator issues tokens with "
                                       "`promoter token new USER`")
        session = parts.sessions.start(user)
        log.info("%s logged in to the dashboard", user)
        response = RedirectResponse(next_path, status_code=303)
        _set_cookie(response, SESSION_COOKIE, session.id, max_age=SESSION_SECONDS)
        response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True,
                               samesite="strict")
        return response

    @router.post("/logout")
    async def logout(request: Request, parts: DashboardDep) -> Response:
        form = await _form(request)
        session = current_session(request, parts)
        if session is not None and same_token(form.get("csrf"), session.csrf):
            parts.sessions.end(session.id)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True,
                               samesite="strict")
        return response


def _audit_routes(router: APIRouter) -> None:
    @router.get("/history", response_class=HTMLResponse)
    def history(request: Request, parts: DashboardDep, session: ReaderDep,
                environment: str | None = None) -> Response:
        try:
            histories = parts.service.history(environment=environment or None)
        except PromoterError as exc:
            return render(request, parts, "error.html", status=http_status(exc), error=exc)
        return render(request, parts, "history.html", histories=histories,
                      environment=environment)

    @router.get("/dora", response_class=HTMLResponse)
    def dora(request: Request, parts: DashboardDep, session: ReaderDep,
             window: str = DEFAULT_WINDOW) -> Response:
        try:
            figures = parts.service.dora(window=parse_window(window))
        except PromoterError as exc:
            return render(request, parts, "error.html", status=http_status(exc), error=exc)
        return render(request, parts, "dora.html", figures=figures, window=window,
                      windows=WINDOW_CHOICES)


def _promotion_page(request: Request, parts: DashboardParts, number: int, *,
                    status: int = 200, problem: str | None = None) -> Response:
    try:
        record = parts.service.promotion(number)
    except PullRequestNotFoundError as exc:
        return render(request, parts, "error.html", status=404, error=exc)
    except PromoterError as exc:
        return render(request, parts, "error.html", status=http_status(exc), error=exc)
    report = record.report
    return render(
        request, parts, "promotion.html", status=status, record=record, problem=problem,
        phase=views.phase_words(record.phase), phase_tone=views.phase_tone(record.phase),
        gates=[views.GateView.of(g) for g in record.gates],
        checks=views.checks(report) if report else (),
        metrics=views.metric_rows(report) if report else (),
        plots=parts.plots.plots(report) if report else (),
        report=report, open=record.pull.state is PullRequestState.OPEN,
        pull_url=_web_link(record.pull.web_url)
        or (parts.pull_url(number) if parts.pull_url else None))


def _web_link(url: str | None) -> str | None:
    """`url` if a browser may follow it from the page (http or https), else None: the
    forge's word, but never a `javascript:` link."""
    return url if url and urlsplit(url).scheme in ("https", "http") else None


def _login_page(request: Request, parts: DashboardParts, *, next_path: str, status: int = 200,
                problem: str | None = None) -> Response:
    import secrets

    token = secrets.token_urlsafe(32)
    response = render(request, parts, "login.html", status=status if parts.api_tokens
                      else 403, next_path=next_path, csrf=token, problem=problem)
    _set_cookie(response, LOGIN_COOKIE, token, max_age=3600)
    return response


def _set_cookie(response: Response, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True,
                        samesite="strict")


def _safe_next(path: str) -> str:
    """Where to go after login: a path on this server only (never `//evil.example`, nor
    a slash, a tab and `/evil.example`, which a browser reads as `//evil.example`)."""
    if (not path.startswith("/") or path.startswith("//") or "\\" in path
            or any(c.isspace() or not c.isprintable() for c in path)):
        return "/"
    return path


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the body is capped by the app's body limit)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


async def _stream(request: Request, feed: ChangeFeed) -> AsyncIterator[str]:
    seen = feed.version
    end = time.monotonic() + STREAM_SECONDS
    yield f"retry: 3000\nevent: hello\ndata: {seen}\n\n"
    while (time.monotonic() < end and not feed.closed
           and not await request.is_disconnected()):
        current = await feed.wait_past(seen, timeout_s=15.0)
        if feed.closed:
            return
        if current > seen:
            seen = current
            yield f"event: changed\ndata: {current}\n\n"
        else:
            yield ": keep-alive\n\n"
