"""The change-window gate: windows, freezes, time zones, and the errors a bad schedule gets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from promoter.change_windows import CHANGE_WINDOW_CONTEXT, decide_change_window
from promoter.config import DirectorySource, load_dry_config, load_settings
from promoter.config.schema import SchedulePolicy
from promoter.demo import copy_example
from promoter.domain.pull_requests import StatusState
from promoter.errors import ConfigError

OFFICE_HOURS = {"cron": "0 9 * * mon-thu", "duration": "7h"}
YEAR_END = {"start": "2026-12-20T00:00", "end": "2027-01-04", "reason": "year-end freeze"}
WEEKEND = {"cron": "0 0 * * sat", "duration": "48h", "reason": "weekend"}


def schedule(**fields: Any) -> SchedulePolicy:
    return SchedulePolicy.model_validate(fields)


def gate(policy: SchedulePolicy, when: str):
    result = decide_change_window(policy, datetime.fromisoformat(when))
    assert result.context == CHANGE_WINDOW_CONTEXT
    assert len(result.description) <= 140
    return result


BERLIN = schedule(timezone="Europe/Berlin", windows=[OFFICE_HOURS], freezes=[YEAR_END, WEEKEND])


@pytest.mark.parametrize(("when", "state", "description"), [
    ("2026-11-23T10:00:00+00:00", StatusState.SUCCESS,
     "inside a change window until Mon 2026-11-23 16:00 CET"),
    ("2026-11-23T07:59:00+00:00", StatusState.PENDING,
     "outside change windows; next opens Mon 2026-11-23 09:00 CET"),
    ("2026-11-23T08:00:00+00:00", StatusState.SUCCESS,   # 09:00 in Berlin: open, inclusive
     "inside a change window until Mon 2026-11-23 16:00 CET"),
    ("2026-11-23T15:00:00+00:00", StatusState.PENDING,   # 16:00 in Berlin: closed, exclusive
     "outside change windows; next opens Tue 2026-11-24 09:00 CET"),
    ("2026-11-27T10:00:00+00:00", StatusState.PENDING,   # Friday: no window
     "outside change windows; next opens Mon 2026-11-30 09:00 CET"),
    ("2026-11-28T12:00:00+00:00", StatusState.PENDING,
     "frozen until Mon 2026-11-30 00:00 CET: weekend"),
    ("2026-12-22T10:00:00+00:00", StatusState.PENDING,
     "frozen until Mon 2027-01-04 00:00 CET: year-end freeze"),
    # Friday before the freeze: the next window (Mon 21 Dec) is frozen; the first one after.
    ("2026-12-18T16:00:00+00:00", StatusState.PENDING,
     "outside change windows; next opens Mon 2027-01-04 09:00 CET"),
])
def test_windows_and_freezes(when: str, state: StatusState, description: str) -> None:
    result = gate(BERLIN, when)
    assert (result.state, result.description) == (state, description)


def test_no_windows_means_always_open_except_freezes() -> None:
    policy = schedule(freezes=[WEEKEND])
    assert gate(policy, "2026-11-27T23:59:00+00:00").state is StatusState.SUCCESS
    assert gate(policy, "2026-11-27T23:59:00+00:00").description == "no freeze now"
    assert gate(policy, "2026-11-28T00:00:00+00:00").state is StatusState.PENDING


def test_back_to_back_freezes_report_the_end_of_the_chain() -> None:
    policy = schedule(freezes=[
        {"start": "2026-12-01T00:00", "end": "2026-12-10T00:00", "reason": "audit"},
        {"start": "2026-12-09T00:00", "end": "2026-12-15T00:00", "reason": "migration"},
    ])
    result = gate(policy, "2026-12-05T00:00:00+00:00")
    assert result.description == "frozen until Tue 2026-12-15 00:00 UTC: audit"


def test_window_follows_wall_clock_across_daylight_saving() -> None:
    # Berlin leaves summer time on 2026-10-25: 09:00 is 07:00 UTC before, 08:00 UTC after.
    policy = schedule(timezone="Europe/Berlin", windows=[{"cron": "0 9 * * *",
                                                          "duration": "1h"}])
    assert gate(policy, "2026-10-24T07:30:00+00:00").state is StatusState.SUCCESS
    assert gate(policy, "2026-10-26T07:30:00+00:00").state is StatusState.PENDING
    assert gate(policy, "2026-10-26T08:30:00+00:00").state is StatusState.SUCCESS


def test_start_skipped_by_spring_forward_does_not_open() -> None:
    # 02:30 does not exist in Berlin on 2027-03-28.
    policy = schedule(timezone="Europe/Berlin", windows=[{"cron": "30 2 * * *",
                                                          "duration": "30m"}])
    assert gate(policy, "2027-03-28T01:10:00+00:00").state is StatusState.PENDING
    assert gate(policy, "2027-03-27T01:40:00+00:00").state is StatusState.SUCCESS


def test_start_the_clock_repeats_opens_once() -> None:
    # 02:00-03:00 happens twice in Berlin on 2026-10-25: 00:00-01:00 UTC in summer time,
    # 01:00-02:00 UTC in winter time. A wall-clock start counts once, at its first time.
    policy = schedule(timezone="Europe/Berlin", windows=[{"cron": "0 * * * *",
                                                          "duration": "30m"}])
    assert gate(policy, "2026-10-25T00:10:00+00:00").state is StatusState.SUCCESS  # 02:10 CEST
    repeated = gate(policy, "2026-10-25T01:10:00+00:00")                          # 02:10 CET
    assert (repeated.state, repeated.description) == (
        StatusState.PENDING, "outside change windows; next opens Sun 2026-10-25 03:00 CET")
    assert gate(policy, "2026-10-25T02:10:00+00:00").state is StatusState.SUCCESS  # 03:10 CET


def test_fixed_times_with_an_offset_are_absolute() -> None:
    policy = schedule(timezone="Asia/Tokyo", freezes=[
        {"start": "2026-12-01T00:00:00+00:00", "end": "2026-12-02T00:00:00+00:00"}])
    assert gate(policy, "2026-12-01T23:59:00+00:00").state is StatusState.PENDING
    assert gate(policy, "2026-12-02T00:00:00+00:00").state is StatusState.SUCCESS


def test_a_window_that_never_comes_is_said() -> None:
    policy = schedule(windows=[{"start": "2020-01-01T00:00", "end": "2020-01-02T00:00"}])
    assert gate(policy, "2026-11-23T10:00:00+00:00").description == (
        "outside change windows, and none opens within a year")


# --- bad schedules are configuration errors, naming file and field ---------------------------

@pytest.fixture
def example(tmp_path: Path) -> Path:
    copy_example(tmp_path)
    return tmp_path


def error_for(example: Path, schedule_yaml: str) -> str:
    path = example / "policies/prod.yaml"
    path.write_text(path.read_text() + schedule_yaml)
    loaded = load_settings(example / "promoter.yaml")
    with pytest.raises(ConfigError) as info:
        load_dry_config(DirectorySource(example), loaded.settings)
    assert info.value.exit_code == 2
    return str(info.value)


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("schedule:\n  timezone: Mars/Olympus\n",
     "policies/prod.yaml: schedule.timezone: unknown time zone 'Mars/Olympus'"),
    ("schedule:\n  windows:\n    - cron: '0 25 * * *'\n      duration: 1h\n",
     "policies/prod.yaml: schedule.windows[0].cron: the hour field '25' is not valid; "
     "expected 0-23,"),
    ("schedule:\n  windows:\n    - cron: '0 9 30 feb *'\n      duration: 1h\n",
     "policies/prod.yaml: schedule.windows[0].cron: the day of month field '30' never "
     "occurs in the month field 'feb'"),
    ("schedule:\n  windows:\n    - cron: '0 9 * * mon'\n",
     "policies/prod.yaml: schedule.windows[0]: a recurring window needs both cron and "
     "duration"),
    ("schedule:\n  freezes:\n    - start: 2026-12-20\n      end: 2026-12-01\n",
     "policies/prod.yaml: schedule.freezes[0]: end must be after start"),
    ("schedule:\n  freezes:\n    - cron: '0 0 * * *'\n      duration: 40d\n",
     "policies/prod.yaml: schedule.freezes[0]: duration must be more than 0s and at most 31d"),
    ("schedule:\n  freezes:\n    - cron: '0 0 * * *'\n      duration: 1 week\n",
     "policies/prod.yaml: schedule.freezes[0].duration: expected a length of time such as "
     "30m, 24h or 2d12h, got '1 week'"),
    ("soak:\n  duration: 24\n", "policies/prod.yaml: soak.duration: expected a length of "
     "time such as 30m, 24h or 2d12h, got 24"),
])
def test_bad_schedule_names_file_and_field(example: Path, yaml_text: str,
                                           expected: str) -> None:
    assert error_for(example, yaml_text).startswith(expected)


def test_dates_in_yaml_mean_midnight(example: Path) -> None:
    path = example / "policies/prod.yaml"
    path.write_text(path.read_text() + "schedule:\n  freezes:\n    - start: 2026-12-20\n"
                    "      end: 2027-01-04\n")
    loaded = load_settings(example / "promoter.yaml")
    dry = load_dry_config(DirectorySource(example), loaded.settings)
    freeze = dry.policy_for(dry.environments["prod"]).schedule.freezes[0]  # type: ignore[union-attr]
    assert freeze.start == datetime(2026, 12, 20)
