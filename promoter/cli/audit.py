"""`promoter history` and `promoter dora`: the audit trail and the DORA figures.

Both answer with the documents of `GET /api/v1/history` and `GET /api/v1/dora`
(`promoter.server.history_answers`) in JSON and YAML, and a table in text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from promoter.cli.errors import handle_errors
from promoter.cli.output import emit, reports
from promoter.promotion.dora import DEFAULT_WINDOW, DoraFigures, parse_until, parse_window
from promoter.promotion.history import DEFAULT_LIMIT, EnvironmentHistory


@reports
@click.command()
@click.option("--env", "environment", metavar="ENV", help="Only this environment.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=DEFAULT_LIMIT,
              show_default=True, help="Merges read per environment, newest first.")
@click.pass_obj
@handle_errors
def history(obj: Any, environment: str | None, limit: int) -> None:
    """Every merge and rollback per environment: who proposed and approved (on which head),
    the evaluation, the digests, and the time from proposal to merge and to healthy."""
    from promoter.server.history_answers import HistoryAnswer
    from promoter.wiring import build_service

    histories = build_service(obj.settings()).history(environment=environment, limit=limit)
    emit(HistoryAnswer.of(histories).as_json(), lambda: format_history(histories))


@reports
@click.command()
@click.option("--window", default=DEFAULT_WINDOW, show_default=True, metavar="DURATION",
              help="The span ending now: N followed by h, d or w (12h, 30d, 2w).")
@click.option("--until", metavar="TIME",
              help="End of the window, RFC 3339 with offset [default: now].")
@click.option("--env", "environment", metavar="ENV", help="Only this environment.")
@click.pass_obj
@handle_errors
def dora(obj: Any, window: str, until: str | None, environment: str | None) -> None:
    """DORA figures per model and environment over the window: deployment frequency, lead
    time (version complete in the store -> healthy), change failure rate, time to restore.
    A figure that cannot be measured is shown as n/a (null in JSON), never as 0."""
    from promoter.server.history_answers import DoraAnswer
    from promoter.wiring import build_service

    # Both checked before anything is built: a bad window or time is exit 2 at once.
    length, end = parse_window(window), None if until is None else parse_until(until)
    figures = build_service(obj.settings()).dora(window=length, end=end,
                                                 environment=environment)
    emit(DoraAnswer.of(window, figures).as_json(), lambda: format_dora(window, figures))


def format_history(histories: Sequence[EnvironmentHistory]) -> str:
    lines = []
    for h in histories:
        more = " (older merges not read: raise --limit)" if h.truncated else ""
        lines.append(f"{h.environment} ({h.branch}){more}")
        if not h.deployments:
            lines.append("  no merges yet")
        for d in h.deployments:
            pull = f"#{d.pull_number}" if d.pull_number is not None else "no PR"
            who = ", ".join(d.proposed_by) or "?"
            approved = ", ".join(d.approvers) or "-"
            state = ("rolled back" if d.rolled_back_by else "failed" if d.failed_at
                     else "healthy" if d.healthy_at else "rollout unknown")
            lines.append(
                f"  {d.merged_at:%Y-%m-%d %H:%M} {d.kind:<9} {d.model} v{d.version} "
                f"{d.digest[:19]} {pull} by {who}, approved by {approved}; "
                f"proposal->merge {duration(d.proposal_to_merge_seconds)}, "
                f"merge->healthy {duration(d.merge_to_healthy_seconds)}; {state}")
    return "\n".join(lines)


def format_dora(window: str, figures: Sequence[DoraFigures]) -> str:
    if not figures:
        return f"no deployments in any environment (window {window})"
    rows = [("model", "environment", "deploys", "per day", "lead time", "failure rate",
             "restore", "")]
    for f in figures:
        rate = "n/a" if f.change_failure_rate is None else f"{f.change_failure_rate:.0%}"
        notes = [note for note, on in (
            (f"{f.unrestored} unrestored", f.unrestored),
            (f"{f.unmeasured_failures} unmeasured", f.unmeasured_failures),
            ("older merges not read", not f.complete)) if on]
        rows.append((f.model, f.environment, str(f.deployments),
                     f"{f.deployments_per_day:.2f}", duration(f.lead_time_seconds), rate,
                     duration(f.time_to_restore_seconds), "; ".join(notes)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    body = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]
    return f"DORA over the last {window}\n" + "\n".join(body)


def duration(seconds: float | None) -> str:
    """`n/a`, `45s`, `12m`, `2h 5m`, `3.5d`."""
    if seconds is None:
        return "n/a"
    if abs(seconds) < 60:
        return f"{seconds:.0f}s"
    if abs(seconds) < 3600:
        return f"{seconds / 60:.0f}m"
    if abs(seconds) < 86400:
        hours, rest = divmod(round(seconds / 60), 60)
        return f"{hours}h {rest}m" if rest else f"{hours}h"
    return f"{seconds / 86400:.1f}d"
