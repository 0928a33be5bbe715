"""Checks on the rendered objects, run before anything is written: the rules no schema
expresses, here, and in which order they and the schemas (`validation.py`) apply.

A template is the user's to edit, so it can stop doing what promotion relies on: a Deployment
that no longer pins the model version still applies cleanly and then quietly serves the newest
model in the bucket. Each check here protects one such promise, and each error names the file,
the object, the field and the edit that fixes it:

- every object is namespaced into the environment's namespace, has a name and a kind that
  a schema serves (a core kind of the configured Kubernetes version or a known CRD's);
- no two templates render the same object;
- labels, annotations, env values and ConfigMap data are strings (an unquoted `${model.version}`
  renders an int, which the API server rejects at apply time, after the PR merged);
- every container has a non-empty image; container ports, Service ports and gRPC probe ports
  are integers from 1 to 65535; a `targetPort` or HTTP/TCP probe port is such an integer or a
  valid port name, never a quoted number (Kubernetes would read `"8500"` as a name);
- every object matches its schema (strict: no undeclared field);
- every serving Deployment carries the model version and digest on its pod template (so a
  promotion rolls the pods), selects its own pods without the per-release version label (a
  Deployment's selector is immutable), and runs TF Serving with `--model_config_file` pointing
  at a mounted ConfigMap that holds exactly the generated ModelServerConfig;
- and TF Serving reads only the copy its `fetch-model` init container verified against the
  pinned digest: on an emptyDir, at the config's base path, mounted read-only, written by no
  other container (`delivery_rules`);
- Services and PodDisruptionBudgets select the pods of a rendered Deployment; an autoscaler
  targets a rendered Deployment, whose containers request CPU if it scales on CPU;
- every TFJob carries the model version and digest, has a container named `tensorflow` in each
  replica spec (the operator injects TF_CONFIG only there) and at most one Chief/Master;
- every JobSet carries the model version and digest (its TF_CONFIG rules are in `jobset`).

The rules themselves are in `object_rules` (every object on its own) and `workload_rules`
(serving Deployments, the objects around them, TFJobs) and `delivery_rules` (what the
serving pods may read); `Release` and the names they require in
`release`. This module holds the order in which they and the schemas apply.
"""

from __future__ import annotations

from collections.abc import Sequence

from promoter.errors import RenderError
from promoter.render.delivery_rules import check_verified_delivery
from promoter.render.jobset import is_jobset
from promoter.render.object_rules import (
    _check_containers,
    _check_identity,
    _check_service_ports,
    _check_strings,
)
from promoter.render.objects import RenderedObject
from promoter.render.release import Release
from promoter.render.tfjob import is_tfjob
from promoter.render.validation import ObjectSchemas
from promoter.render.workload_rules import (
    _check_autoscaler,
    _check_deployment,
    _check_jobset,
    _check_selects,
    _check_tfjob,
)


def check_invariants(objects: Sequence[RenderedObject], release: Release, *,
                     schemas: ObjectSchemas) -> None:
    """Raise InvalidManifestError for the first rendered object that breaks a rule (see the
    module doc) or its schema (`schemas`); ConfigError for an unusable CRD of the user's.

    Order: what every object needs (apiVersion, kind, name, a kind some schema serves, the
    namespace), then each object's own fields (the rules here first, because their fixes
    speak of templates, then the whole schema), and only then the rules between objects,
    which can then rely on well-formed objects.
    """
    for obj in objects:
        _check_identity(obj, release, schemas)
    _check_unique(objects)
    for obj in objects:
        _check_strings(obj)
        _check_containers(obj, release)
        _check_service_ports(obj)
        schemas.check_schema(obj)
    deployments = [o for o in objects if o.group == "apps" and o.kind == "Deployment"]
    if not deployments:
        raise RenderError(
            f"no template renders a Deployment (apps/v1) serving model {release.model!r}",
            fix="add manifests/serving/deployment.yaml running TensorFlow Serving",
        )
    for deployment in deployments:
        _check_deployment(deployment, objects, release)
        check_verified_delivery(deployment, release)
    for obj in objects:
        if obj.group == "" and obj.kind == "Service":
            _check_selects(obj, ("spec", "selector"), deployments)
        elif obj.group == "policy" and obj.kind == "PodDisruptionBudget":
            _check_selects(obj, ("spec", "selector", "matchLabels"), deployments)
        elif obj.group == "autoscaling" and obj.kind == "HorizontalPodAutoscaler":
            _check_autoscaler(obj, deployments, release)
        elif is_tfjob(obj):
            _check_tfjob(obj, release)
        elif is_jobset(obj):
            _check_jobset(obj, release)



def _check_unique(objects: Sequence[RenderedObject]) -> None:
    seen: dict[tuple[str, str, str], RenderedObject] = {}
    for obj in objects:
        key = (obj.group, obj.kind, obj.name)
        if key in seen:
            raise RenderError(
                f"{obj.describe()}: the same object is also rendered by {seen[key].where}",
                fix="give each object its own metadata.name, or delete one of the templates",
            )
        seen[key] = obj
