"""What every configuration file shares: the base model, names, quantities, lengths of
time and the errors a validator raises with a field and a fix."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)
from pydantic.alias_generators import to_camel

from promoter.config.branch_names import branch_problem

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""DNS-1123 label: environment and model names end up in Kubernetes object names."""


QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
"""A Kubernetes resource quantity such as `250m`, `1`, `512Mi`."""


DnsName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=40)]


Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]


class Spec(BaseModel):
    """Base of every configuration model: camelCase aliases, no unknown fields, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=False,
    )


SPAN_PATTERN = r"^([0-9]+(d|h|m|s))+$"
"""A length of time such as `30m`, `24h`, `2d12h` (days are 24 hours)."""


_SPAN_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _check_span(value: object) -> object:
    if not isinstance(value, str) or re.fullmatch(SPAN_PATTERN, value) is None:
        raise ValueError(f"expected a length of time such as 30m, 24h or 2d12h, got {value!r}")
    return value


Span = Annotated[str, BeforeValidator(_check_span)]


MAX_WINDOW = timedelta(days=31)


def span_seconds(text: str) -> int:
    """Seconds in a `Span` string (already validated by its pattern)."""
    return sum(int(n) * _SPAN_UNITS[u] for n, u in re.findall(r"([0-9]+)([dhms])", text))


class FieldError(ValueError):
    """A mistake found by a model validator, with the field it is about.

    Pydantic places a model validator's error at the model itself, so the message would
    point at the top of the file; the loader reads `field` and `fix` from here instead.
    """

    def __init__(self, field: str, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        """Path below the validated model, as the YAML spells it, e.g. `models[0].name`."""
        self.message = message
        self.fix = fix


def require_unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} lists {value!r} twice")
        seen.add(value)


def require_usable_branch(branch: str) -> None:
    """Raise ValueError unless git accepts `branch` (promoter.config.branch_names)."""
    problem = branch_problem(branch)
    if problem is not None:
        raise ValueError(
            f"{branch!r} is not usable as a git branch: {problem} (rules: "
            "git-check-ref-format(1)); use a name like 'environments/<env>'")


DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
"""A Go duration as Flux and Argo CD read it, e.g. `1m`, `5m30s`."""


Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]


EnvVarName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
"""The name of an environment variable, e.g. `PROMOTER_WEBHOOK_SECRET`."""
