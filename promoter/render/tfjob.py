"""TFJob replica specs: how a template expresses "PS only when parameterServers > 0".

Design. The TFJob template is a complete, ordinary `kubeflow.org/v1` TFJob that lists every
role it may need (`Worker`, `PS`, `Chief`), each with `replicas:` taken from a variable
(`${training.workers}`, `${training.parameterServers}`, `${training.chiefReplicas}`). The roles
share one pod template through a plain YAML anchor (`template: &pod` on the first role,
`template: *pod` on the others), so the container named `tensorflow`, its image, command,
resources and the release's labels are written once. After substitution, promoter removes every
replica spec whose `replicas` is 0; that is the only TFJob-specific rule.

Alternatives considered:

- Code builds `tfReplicaSpecs` entirely (`tfReplicaSpecs: ${training.replicaSpecs}`): the pod
  a training job runs (volumes, env, node selectors) would then live in Python instead of the
  template, where operators expect to edit it.
- A conditional syntax in templates (`{{ if }}`): a template language is what structural
  substitution avoids; a rule on a field the TFJob already has needs none.

Zero-replica roles are removed rather than kept as `replicas: 0` so that the job has exactly
the shape of the operator's own examples (a job without parameter servers has no `PS` key),
instead of relying on how the operator and TensorFlow's cluster resolvers treat an empty role
in TF_CONFIG.
"""

from __future__ import annotations

from promoter.render.objects import RenderedObject, format_path, get_in

TFJOB_API_VERSION = "kubeflow.org/v1"
TFJOB_KIND = "TFJob"


def is_tfjob(obj: RenderedObject) -> bool:
    return obj.api_version == TFJOB_API_VERSION and obj.kind == TFJOB_KIND


def drop_idle_replica_specs(obj: RenderedObject) -> RenderedObject:
    """Return `obj` without the TFJob replica specs whose `replicas` is 0.

    Objects other than TFJobs are returned unchanged. A `replicas` that is not an integer is
    left for the invariant checks and the cluster to report.
    """
    if not is_tfjob(obj):
        return obj
    specs = get_in(obj.body, "spec", "tfReplicaSpecs")
    if not isinstance(specs, dict):
        return obj
    kept = {role: spec for role, spec in specs.items()
            if not (isinstance(spec, dict) and _is_zero(spec.get("replicas")))}
    if len(kept) == len(specs):
        return obj
    body = dict(obj.body)
    body["spec"] = {**obj.body["spec"], "tfReplicaSpecs": kept}
    return RenderedObject(template=obj.template, document=obj.document,
                          documents_in_file=obj.documents_in_file, body=body)


def replica_spec_path(role: str, *rest: str | int) -> str:
    """Format the YAML path of a field inside one replica spec, for messages."""
    return format_path(("spec", "tfReplicaSpecs", role, *rest))


def _is_zero(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == 0
