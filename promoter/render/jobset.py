"""JobSet training jobs: TensorFlow's TF_CONFIG computed by promoter, for every replica.

Why. TFJob (`kubeflow.org/v1`) exists only in Kubeflow Training Operator v1.9, whose
successor (Kubeflow Trainer v2) ships no TensorFlow runtime. A JobSet (`jobset.x-k8s.io/
v1alpha2`, kubernetes-sigs/jobset) runs the same cluster with plain Kubernetes Jobs, but
nothing in it writes TF_CONFIG, the environment variable TensorFlow's cluster resolvers read
(`{"cluster": {"chief": [...], "worker": [...], "ps": [...]}, "task": {"type": ..., "index":
...}}`). So promoter writes it when rendering.

Design: one replicatedJob per TensorFlow task type, named as the task type (`chief`, `worker`,
`ps`), with `replicas:` the number of tasks of that type, and each Job running exactly one pod
(`parallelism: 1`, `completions: 1`). Then task `<type>:<i>` is pod 0 of Job `i` of
replicatedJob `<type>`, which JobSet names and resolves (`enableDNSHostnames`, the default, and
a headless Service named after `network.subdomain`, default the JobSet's name) as

    <jobset>-<type>-<i>-0.<subdomain>

the same form as JobSet's own coordinator endpoint (`jobset.sigs.k8s.io/coordinator`). The
cluster part of TF_CONFIG is therefore known when rendering. The task index is not: it is
the Job's index within its replicatedJob, which the JobSet controller writes on every pod as
the label `jobset.sigs.k8s.io/job-index`. So the `tensorflow` container gets two variables:

    PROMOTER_TF_TASK_INDEX  from the downward API: metadata.labels['jobset.sigs.k8s.io/job-index']
    TF_CONFIG               {"cluster": {...}, "task": {"type": "worker",
                            "index": $(PROMOTER_TF_TASK_INDEX)}}

and the kubelet expands `$(PROMOTER_TF_TASK_INDEX)` (a variable defined earlier in the same
container, Kubernetes' dependent environment variables) when it starts the container: every
replica gets the same cluster and its own task, with no init container and no code in the
image. The JSON holds no other `$`, so nothing else is expanded.

Alternatives considered: one Indexed Job with N pods per task type (the pod's completion
index as the task index) works the same way but ties the task index to one Job, so a single
failed pod restarts differently from TFJob's per-replica pods, and JobSet's failure policy
counts Jobs, not pods; an init container writing TF_CONFIG to a file needs an image and a
volume, and TensorFlow reads the variable, not a file.

As for TFJob (`tfjob.py`), the template lists every task type with `replicas:` from a variable
and shares the Job template through a YAML anchor; promoter removes a replicatedJob whose
replicas is 0 and then injects the two variables into each replicatedJob's container named
`tensorflow`. What this module refuses, because TF_CONFIG would be wrong: a replicatedJob not
named after a task type, a Job running other than one pod, DNS hostnames turned off, a
template that sets TF_CONFIG itself or the pod's hostname or subdomain, two replicatedJobs of
one task type, parameter servers without a chief (ParameterServerStrategy's coordinator), no
`tensorflow` container, and pod names JobSet's webhook would refuse (over 63 characters).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from promoter.render.objects import RenderedObject, format_path, get_in, list_at, mapping_at
from promoter.render.release import TENSORFLOW_CONTAINER

JOBSET_API_VERSION = "jobset.x-k8s.io/v1alpha2"
JOBSET_KIND = "JobSet"

TASK_TYPES = ("chief", "worker", "ps")
"""TensorFlow task types a replicatedJob may be named after (`tf.distribute` cluster roles)."""

JOB_INDEX_LABEL = "jobset.sigs.k8s.io/job-index"
"""Label (and annotation) the JobSet controller sets on each Job and its pods: the Job's index
within its replicatedJob, 0 to replicas-1 (kubernetes-sigs/jobset, api/jobset/v1alpha2)."""

TASK_INDEX_ENV = "PROMOTER_TF_TASK_INDEX"
TF_CONFIG_ENV = "TF_CONFIG"
TF_PORT = 2222
"""The port every task's server listens on (TFJob's default port, too)."""

PS_NEEDS_CHIEF = ("TensorFlow's ParameterServerStrategy runs its coordinator as the task of "
                  "type 'chief' (it connects to the cluster as `chief`), so parameter servers "
                  "and workers without one wait for a coordinator that never comes")
"""Why a cluster with parameter servers needs a chief (tensorflow/python/distribute/
parameter_server_strategy_v2.py, TF 2.18: `_connect_to_cluster(coordinator_name="chief")`)."""
PS_NEEDS_CHIEF_FIX = ("set `training.chief: true` in the environment's file (one coordinator "
                      "task), or `training.parameterServers: 0` for training without "
                      "parameter servers")

_POD_NAME_MAX = 63
_POD_SUFFIX = len("-abcde")
"""JobSet's webhook checks the longest pod name plus the random 5-character suffix."""


def is_jobset(obj: RenderedObject) -> bool:
    return obj.api_version == JOBSET_API_VERSION and obj.kind == JOBSET_KIND


def tf_cluster(*, jobset: str, subdomain: str,
               replicas: Sequence[tuple[str, int]]) -> dict[str, list[str]]:
    """The `cluster` of TF_CONFIG: for each task type, the address of each of its tasks.

    `replicas` is (task type, number of tasks) in the template's order; types with no task
    are left out, as TensorFlow expects.
    """
    return {task: [f"{jobset}-{task}-{index}-0.{subdomain}:{TF_PORT}" for index in range(count)]
            for task, count in replicas if count > 0}


def tf_config_value(cluster: Mapping[str, list[str]], task: str) -> str:
    """TF_CONFIG for every task of type `task`, its index left to the kubelet to expand."""
    placeholder = "__PROMOTER_TASK_INDEX__"
    text = json.dumps({"cluster": cluster, "task": {"type": task, "index": placeholder}},
                      separators=(",", ":"))
    return text.replace(json.dumps(placeholder), f"$({TASK_INDEX_ENV})")


def prepare_jobset(obj: RenderedObject) -> RenderedObject:
    """Return `obj` with idle replicatedJobs removed and TF_CONFIG in every `tensorflow`
    container (see the module doc). Objects other than JobSets are returned unchanged.

    Raises InvalidManifestError, naming the field, where TF_CONFIG cannot be right. A part
    of the wrong shape (replicatedJobs not a list) is left for the schema check to report.
    """
    if not is_jobset(obj):
        return obj
    jobs = get_in(obj.body, "spec", "replicatedJobs")
    if not isinstance(jobs, list):
        return obj
    kept = [job for job in jobs if not (isinstance(job, dict) and _is_zero(job.get("replicas")))]
    if not kept:
        raise obj.error("spec.replicatedJobs", "has no replicatedJob with replicas > 0",
                        fix="give worker `replicas: ${training.workers}`")
    counts = [_task(obj, index, job) for index, job in enumerate(kept)]
    seen: set[str] = set()
    for index, (task, _) in enumerate(counts):
        if task in seen:
            raise obj.error(format_path(("spec", "replicatedJobs", index, "name")),
                            f"{task!r} is a second replicatedJob of that task type",
                            fix=f"keep one {task} replicatedJob and set its replicas")
        seen.add(task)
    if "ps" in seen and "chief" not in seen:
        ps_at = next(i for i, (task, _) in enumerate(counts) if task == "ps")
        raise obj.error(format_path(("spec", "replicatedJobs", ps_at, "name")),
                        f"is 'ps' but the JobSet has no chief: {PS_NEEDS_CHIEF}",
                        fix=PS_NEEDS_CHIEF_FIX)
    subdomain = _subdomain(obj)
    cluster = tf_cluster(jobset=obj.name, subdomain=subdomain, replicas=counts)
    jobs_out = [_with_tf_config(obj, index, job, tf_config_value(cluster, task))
                for index, (job, (task, _)) in enumerate(zip(kept, counts, strict=True))]
    body = dict(obj.body)
    body["spec"] = {**obj.body["spec"], "replicatedJobs": jobs_out}
    return RenderedObject(template=obj.template, document=obj.document,
                          documents_in_file=obj.documents_in_file, body=body)


def _task(obj: RenderedObject, index: int, job: Any) -> tuple[str, int]:
    """(task type, replicas) of one replicatedJob; raises where TF_CONFIG would be wrong."""
    path = ("spec", "replicatedJobs", index)
    name = job.get("name") if isinstance(job, dict) else None
    if name not in TASK_TYPES:
        raise obj.error(format_path((*path, "name")),
                        f"{name!r} is not a TensorFlow task type: promoter writes TF_CONFIG "
                        f"from replicatedJobs named {', '.join(TASK_TYPES)}",
                        fix="name each replicatedJob after its task type, one per type")
    replicas = job.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise obj.error(format_path((*path, "replicas")),
                        f"is {replicas!r}; expected the number of {name} tasks",
                        fix="use a training variable, e.g. `replicas: ${training.workers}`")
    if name == "chief" and replicas > 1:
        raise obj.error(format_path((*path, "replicas")),
                        f"is {replicas}; TensorFlow has at most one chief",
                        fix="use `replicas: ${training.chiefReplicas}`")
    spec = mapping_at(job, "template", "spec")
    for field in ("parallelism", "completions"):
        if spec.get(field) != 1:
            raise obj.error(
                format_path((*path, "template", "spec", field)),
                f"is {spec.get(field)!r}; each Job must run exactly one pod (one task), so "
                "that the Job's index is the task index",
                fix=f"set `{field}: 1` and the number of tasks in `replicas:`")
    pod_spec = mapping_at(spec, "template", "spec")
    for field in ("hostname", "subdomain"):
        if field in pod_spec:
            raise obj.error(
                format_path((*path, "template", "spec", "template", "spec", field)),
                "is set, but TF_CONFIG names every task by the hostname and subdomain "
                "JobSet gives its pod",
                fix=f"remove {field} from the pod; a JobSet's subdomain is "
                    "spec.network.subdomain")
    if replicas > 0:
        longest = f"{obj.name}-{name}-{replicas - 1}-0"
        if len(longest) + _POD_SUFFIX > _POD_NAME_MAX:
            raise obj.error(
                "metadata.name",
                f"is too long: JobSet names the pods like {longest!r}-xxxxx, over "
                f"{_POD_NAME_MAX} characters, and its webhook refuses the JobSet",
                fix="shorten the JobSet's name in the template")
    return str(name), replicas


def _subdomain(obj: RenderedObject) -> str:
    network = mapping_at(obj.body, "spec", "network")
    if network.get("enableDNSHostnames") is False:
        raise obj.error("spec.network.enableDNSHostnames",
                        "is false, but TF_CONFIG names every task by its pod's DNS name",
                        fix="remove the field or set it to true")
    subdomain = network.get("subdomain")
    return subdomain if isinstance(subdomain, str) and subdomain else obj.name


def _with_tf_config(obj: RenderedObject, index: int, job: dict[str, Any],
                    tf_config: str) -> dict[str, Any]:
    """A copy of replicatedJob `job` whose `tensorflow` container has the two variables."""
    path = ("spec", "replicatedJobs", index, "template", "spec", "template", "spec",
            "containers")
    containers = list_at(job, *path[3:])
    names = [c.get("name") for c in containers if isinstance(c, dict)]
    if TENSORFLOW_CONTAINER not in names:
        raise obj.error(format_path(path),
                        f"has no container named {TENSORFLOW_CONTAINER!r} (found {names})",
                        fix=f"name the training container {TENSORFLOW_CONTAINER!r}: promoter "
                            "writes TF_CONFIG into the container with that name")
    out = []
    for position, container in enumerate(containers):
        if not isinstance(container, dict) or container.get("name") != TENSORFLOW_CONTAINER:
            out.append(container)
            continue
        env = list_at(container, "env")
        for item in env:
            if isinstance(item, dict) and item.get("name") in (TF_CONFIG_ENV, TASK_INDEX_ENV):
                raise obj.error(
                    format_path((*path, position, "env")),
                    f"sets {item['name']}, which promoter computes for each replica",
                    fix=f"remove {item['name']} from the template")
        out.append({**container, "env": [*env, *_tf_env(tf_config)]})
    pod_spec = {**job["template"]["spec"]["template"]["spec"], "containers": out}
    pod = {**job["template"]["spec"]["template"], "spec": pod_spec}
    job_spec = {**job["template"]["spec"], "template": pod}
    return {**job, "template": {**job["template"], "spec": job_spec}}


def _tf_env(tf_config: str) -> list[dict[str, Any]]:
    # The index first: Kubernetes expands $(VAR) only for variables defined earlier.
    return [
        {"name": TASK_INDEX_ENV,
         "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_INDEX_LABEL}']"}}},
        {"name": TF_CONFIG_ENV, "value": tf_config},
    ]


def _is_zero(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == 0
