"""The shape of promoter's configuration files, as pydantic models: one module per kind of file.

- `settings`: `promoter.yaml` (`Settings`): where the GitOps repository, the forge and the
  model store are, which models exist and the order of environments. It describes promoter's
  deployment.
- `environments`: `environments/<env>.yaml` (`EnvironmentSpec`): what an environment runs
  (serving and training sizes, namespace, holdout set) and which policy gates it.
- `policies`: `policies/<name>.yaml` (`PolicySpec`): what a promotion must prove (metric
  thresholds, approvals) and whether promoter merges on its own.
- `common`: what they share (the base model, names, lengths of time, FieldError).

Field names are camelCase in YAML, like Kubernetes objects; unknown fields are errors so a typo
never silently disables a gate. Every model is frozen: configuration is a value. Import from
this package: the modules are how it is laid out, not its interface.
"""

from __future__ import annotations

from promoter.config.schema.common import (
    DURATION_PATTERN,
    MAX_WINDOW,
    NAME_PATTERN,
    QUANTITY_PATTERN,
    SPAN_PATTERN,
    DnsName,
    Duration,
    EnvVarName,
    FieldError,
    Quantity,
    Span,
    Spec,
    require_unique,
    require_usable_branch,
    span_seconds,
)
from promoter.config.schema.environments import (
    TRAINING_SUFFIX,
    DeliverySpec,
    EnvironmentSpec,
    EvaluationSpec,
    FetchSpec,
    ResourceAmounts,
    Resources,
    ServingSpec,
    TrainingSpec,
)
from promoter.config.schema.policies import (
    ApprovalPolicy,
    BaselineComparison,
    BootstrapPolicy,
    BudgetPolicy,
    EvaluationPolicy,
    MetricName,
    MetricThreshold,
    PolicySpec,
    RollbackPolicy,
    SchedulePolicy,
    ScheduleWindow,
    SlicePolicy,
    SliceThreshold,
    SoakPolicy,
)
from promoter.config.schema.settings import (
    DEFAULT_KUBERNETES_VERSION,
    ClusterSpec,
    ForgeSpec,
    GitHubAuthSpec,
    GitHubSpec,
    ModelPromotionSpec,
    ModelSpec,
    ModelStoreSpec,
    RenderSpec,
    RepositorySpec,
    ServiceSpec,
    Settings,
)

__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "DURATION_PATTERN",
    "MAX_WINDOW",
    "NAME_PATTERN",
    "QUANTITY_PATTERN",
    "SPAN_PATTERN",
    "TRAINING_SUFFIX",
    "ApprovalPolicy",
    "BaselineComparison",
    "BootstrapPolicy",
    "BudgetPolicy",
    "ClusterSpec",
    "DeliverySpec",
    "DnsName",
    "Duration",
    "EnvVarName",
    "EnvironmentSpec",
    "EvaluationPolicy",
    "EvaluationSpec",
    "FetchSpec",
    "FieldError",
    "ForgeSpec",
    "GitHubAuthSpec",
    "GitHubSpec",
    "MetricName",
    "MetricThreshold",
    "ModelPromotionSpec",
    "ModelSpec",
    "ModelStoreSpec",
    "PolicySpec",
    "Quantity",
    "RenderSpec",
    "RepositorySpec",
    "ResourceAmounts",
    "Resources",
    "RollbackPolicy",
    "SchedulePolicy",
    "ScheduleWindow",
    "ServiceSpec",
    "ServingSpec",
    "Settings",
    "SlicePolicy",
    "SliceThreshold",
    "SoakPolicy",
    "Span",
    "Spec",
    "TrainingSpec",
    "require_unique",
    "require_usable_branch",
    "span_seconds",
]
