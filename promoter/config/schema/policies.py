"""`policies/<name>.yaml` (`PolicySpec`): what a promotion must prove (metric thresholds,
slices, budgets), who approves, soak, change windows, rollbacks, and whether promoter merges
on its own."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from promoter.config.schema.common import MAX_WINDOW, DnsName, FieldError, Span, Spec, span_seconds
from promoter.cron import CronExpression

MetricName = Literal[
    # binary classification
    "accuracy", "precision", "recall", "f1", "auc", "auc_pr", "log_loss", "brier",
    "calibration_error",
    # multi-class classification (also `accuracy`, `log_loss`)
    "top_k_accuracy", "macro_f1", "micro_f1",
    # regression
    "mae", "rmse", "r2", "mape",
]


class BaselineComparison(Spec):
    """How the candidate must compare with the model deployed now in the environment.

    `improvement` is `candidate - baseline` for a higher-is-better metric and
    `baseline - candidate` for a lower-is-better one (divided by |baseline| when `relative`).
    `minImprovement: X` requires improvement >= X ("must improve by at least X");
    `maxRegression: X` requires improvement >= -X ("may be worse by at most X").
    """

    min_improvement: float | None = None
    max_regression: float | None = Field(default=None, ge=0.0)
    relative: bool = False

    @model_validator(mode="after")
    def _one_rule(self) -> BaselineComparison:
        if (self.min_improvement is None) == (self.max_regression is None):
            raise ValueError("set exactly one of minImprovement or maxRegression")
        return self


class MetricThreshold(Spec):
    name: MetricName
    min: float | None = None
    max: float | None = None
    vs_baseline: BaselineComparison | None = None
    """Comparison with the deployed model; skipped (and reported) on a first deployment."""

    @model_validator(mode="after")
    def _something(self) -> MetricThreshold:
        if self.min is None and self.max is None and self.vs_baseline is None:
            raise ValueError("set at least one of min, max or vsBaseline")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class BootstrapPolicy(Spec):
    """Decide vsBaseline checks on a confidence interval of the improvement (paired Poisson
    bootstrap) instead of on the point value."""

    resamples: int = Field(default=1000, ge=100, le=20000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Two-sided level of the interval; each bound is a one-sided (1 + confidence) / 2 test."""
    seed: int = Field(default=0, ge=0)
    """Seed of the resampling weights: the same inputs always give the same verdict."""
    on_inconclusive: Literal["block", "requireApproval"] = "block"
    """What a check whose interval straddles its bound does: block the promotion, or let it
    through only with the approvals the policy requires (at least one)."""


class SliceThreshold(Spec):
    """A metric bound that every slice of a column must meet."""

    name: MetricName
    min: float | None = None
    max: float | None = None
    vs_baseline: BaselineComparison | None = None

    @model_validator(mode="after")
    def _something(self) -> SliceThreshold:
        if self.min is None and self.max is None and self.vs_baseline is None:
            raise ValueError("set at least one of min, max or vsBaseline")
        return self


class SlicePolicy(Spec):
    """Metrics per value of one holdout column, e.g. `country`."""

    column: str
    min_rows: int = Field(default=100, ge=1)
    """Values with fewer rows are reported as too small and not checked."""
    max_values: int = Field(default=100, ge=1, le=10000)
    """More distinct values than this is an error (the column is not categorical)."""
    metrics: tuple[SliceThreshold, ...] = Field(min_length=1)


class BudgetPolicy(Spec):
    """Limits on the candidate's cost, measured on the evaluating machine."""

    p50_latency_ms: float | None = Field(default=None, gt=0)
    """Median latency of a single-row request."""
    p99_latency_ms: float | None = Field(default=None, gt=0)
    """99th percentile latency of a single-row request."""
    batch_p99_latency_ms: float | None = Field(default=None, gt=0)
    """99th percentile latency of a batch of `batchSize` rows."""
    batch_size: int = Field(default=256, ge=1, le=100000)
    max_model_mb: float | None = Field(default=None, gt=0)
    """SavedModel size on disk, in MiB."""


OP_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_>.]{0,127}$"
"""A TensorFlow op type name, e.g. `BoostedTreesPredict`, `Addons>GatherTree`."""


class SandboxPolicy(Spec):
    """`evaluation.sandbox:` how far an untrusted candidate is let in."""

    allow_ops: tuple[Annotated[str, Field(pattern=OP_NAME_PATTERN)], ...] = ()
    """Ops added to the allowlist of ops that only compute (`promoter/domain/
    tensorflow_ops.py`), for a model that needs one the list lacks. Ops known to reach outside
    the model (files, network, Python, checkpoints, assets) cannot be added."""
    confinement: Literal["required", "best-effort"] = "best-effort"
    """`required`: the gate fails (check `security.confinement`) where the kernel lacks
    Landlock or seccomp. `best-effort`: the run goes on with what the kernel offers. Either
    way the report lists the mechanisms that confined the run."""

    @field_validator("allow_ops")
    @classmethod
    def _only_computing_ops(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from promoter.domain.tensorflow_ops import NEVER_ALLOWABLE, REFUSED_OPS

        refused = sorted(set(value) & NEVER_ALLOWABLE)
        if refused:
            raise ValueError(
                "these ops reach outside the model and cannot be allowed: " + ", ".join(
                    f"{op} ({REFUSED_OPS.get(op, 'checkpoint or asset file op')})"
                    for op in refused))
        return value


class EvaluationPolicy(Spec):
    metrics: tuple[MetricThreshold, ...] = ()
    bootstrap: BootstrapPolicy | None = None
    """Without it, vsBaseline checks compare point values (no interval, never inconclusive)."""
    slices: tuple[SlicePolicy, ...] = ()
    budgets: BudgetPolicy | None = None
    sandbox: SandboxPolicy = SandboxPolicy()


class ApprovalPolicy(Spec):
    required: int = Field(default=0, ge=0, le=10)
    """Number of distinct eligible approvals on the current head."""
    approvers: tuple[str, ...] = ()
    """Users who may approve. The promotion's author never counts."""

    @model_validator(mode="after")
    def _enough(self) -> ApprovalPolicy:
        if self.required > len(set(self.approvers)):
            raise ValueError(
                f"required is {self.required} but only {len(set(self.approvers))} approvers "
                "are named: list more approvers or lower required"
            )
        return self


class SoakPolicy(Spec):
    """`soak:` in a policy: how long the version must have run in the environment the target
    promotes from before it may merge here."""

    duration: Span
    """E.g. `24h`. Counted from the version's first merge into the upstream environment and,
    where a cluster is configured, from when its rollout there last became healthy."""

    @property
    def seconds(self) -> int:
        return span_seconds(self.duration)


class ScheduleWindow(Spec):
    """A span of time: recurring (`cron` + `duration`) or once (`start` + `end`)."""

    cron: str | None = None
    """Five-field crontab expression for when each occurrence starts, e.g. `0 9 * * mon-thu`,
    read in the schedule's time zone."""
    duration: Span | None = None
    """How long each occurrence lasts, e.g. `7h` (at most 31 days)."""
    start: datetime | None = None
    """Start of a one-off span, e.g. `2026-12-20T00:00`; without an offset it is read in the
    schedule's time zone."""
    end: datetime | None = None
    """End of a one-off span (exclusive)."""
    reason: str | None = Field(default=None, max_length=80)
    """Shown on the pull request, e.g. `year-end freeze`."""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date_is_midnight(cls, value: object) -> object:
        # YAML reads an unquoted 2026-12-20 as a date: it means that day's midnight.
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day)
        return value

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is not None:
            CronExpression.parse(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleWindow:
        recurring = self.cron is not None or self.duration is not None
        once = self.start is not None or self.end is not None
        if recurring and once:
            raise ValueError("give either cron + duration (recurring) or start + end (once), "
                             "not both")
        if recurring and (self.cron is None or self.duration is None):
            raise ValueError("a recurring window needs both cron and duration, e.g. "
                             "cron: '0 9 * * mon-thu' and duration: 7h")
        if once:
            if self.start is None or self.end is None:
                raise ValueError("a one-off window needs both start and end")
            if (self.start.tzinfo is None) != (self.end.tzinfo is None):
                raise ValueError("start and end must both have a UTC offset or both have none")
            if self.end <= self.start:
                raise ValueError("end must be after start")
        if not recurring and not once:
            raise ValueError("give cron + duration (recurring) or start + end (once)")
        if self.duration is not None and not (
                0 < span_seconds(self.duration) <= MAX_WINDOW.total_seconds()):
            raise ValueError("duration must be more than 0s and at most 31d")
        return self


class SchedulePolicy(Spec):
    """`schedule:` in a policy: when promoter may merge into the environment.

    With `windows`, merges happen only inside one of them; `freezes` forbid merges whatever
    the windows say. A promotion outside a window waits (its gate is pending) and merges at
    the first reconcile inside one. Rollbacks are not held by the schedule.
    """

    timezone: str = "UTC"
    """IANA time zone the cron expressions and offset-less times are read in, e.g.
    `Europe/Berlin`."""
    windows: tuple[ScheduleWindow, ...] = ()
    freezes: tuple[ScheduleWindow, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as "
                             "'UTC' or 'Europe/Berlin'") from None
        return value


class RollbackPolicy(Spec):
    """Who may roll an environment back by hand, and what a manual rollback needs to merge.

    A rollback restores a tree the environment ran before (it was gated then), so it skips
    the evaluation, soak and change-window gates, but not a person's say: a rollback moves
    production too. Automatic rollbacks after a failed rollout follow the environment's
    `delivery.autoMergeRollback` instead; with it off, they wait for these approvals.
    """

    requesters: tuple[str, ...] = ()
    """Who may ask for a rollback; empty: the policy's approvers (anyone where it names none)."""
    approvals: int | None = Field(default=None, ge=0, le=10)
    """Approvals (from the policy's approvers, not the requester) a rollback needs before it
    merges; unset: as many as a promotion (`approvals.required`)."""


class PolicySpec(Spec):
    """`policies/<name>.yaml`."""

    name: DnsName
    evaluation: EvaluationPolicy = EvaluationPolicy()
    approvals: ApprovalPolicy = ApprovalPolicy()
    soak: SoakPolicy | None = None
    """Minimum time the version must have run in the upstream environment."""
    schedule: SchedulePolicy | None = None
    """Change windows and freezes for merges into the environment."""
    auto_merge: bool = True
    """Merge as soon as every gate passes. Off: promoter only reports; a person merges."""
    rollback: RollbackPolicy = RollbackPolicy()

    @model_validator(mode="after")
    def _rollback_approvals_possible(self) -> PolicySpec:
        needed = self.rollback_approvals
        if needed > len(set(self.approvals.approvers)):
            raise FieldError(
                "rollback.approvals",
                f"a rollback needs {needed} approvals but only "
                f"{len(set(self.approvals.approvers))} approvers are named",
                fix="name more approvers under approvals.approvers or lower rollback.approvals")
        return self

    @property
    def rollback_approvals(self) -> int:
        """Approvals a manual rollback needs (see `RollbackPolicy.approvals`)."""
        explicit = self.rollback.approvals
        return self.approvals.required if explicit is None else explicit

    def may_request_rollback(self, user: str) -> bool:
        """True if `user` may ask for a rollback (compared trimmed, case-insensitively)."""
        allowed = self.rollback.requesters or self.approvals.approvers
        wanted = user.strip().casefold()
        return not allowed or any(a.strip().casefold() == wanted for a in allowed)
