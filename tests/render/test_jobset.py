"""JobSet training (`training.kind: JobSet`): TF_CONFIG computed by promoter for every replica.

The check does what the cluster would do with the rendered JobSet, from the rules of the
upstream projects rather than from promoter's code: the JobSet controller creates, per
replicatedJob, `replicas` Jobs named `<jobset>-<replicatedJob>-<jobIndex>` and labels their
pods `jobset.sigs.k8s.io/job-index: <jobIndex>` (kubernetes-sigs/jobset
pkg/controllers/jobset_controller.go, labelAndAnnotateObject); an Indexed Job's pod has the
hostname `<job>-<completionIndex>` in the subdomain `network.subdomain` (default: the JobSet's
name); the kubelet resolves downward-API `fieldRef`s and then expands `$(VAR)` from the
variables defined before it (`$$` is a literal `$`, an unknown `$(X)` stays as it is). Each
replica's TF_CONFIG must then parse, name the same cluster, and name the replica's own task
at its own address.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from promoter.config import DryConfig, EnvironmentSpec, ModelSpec, Settings
from promoter.config.loader import validate_model
from promoter.domain.model_versions import ModelVersion
from promoter.errors import ConfigError, InvalidManifestError, RenderError
from promoter.render import RenderedManifests, render_environment
from tests.conftest import REPO_ROOT
from tests.render.conftest import Render

Dry = tuple[Settings, DryConfig]
JOB_INDEX = "jobset.sigs.k8s.io/job-index"
_FIELD_LABEL = re.compile(r"^metadata\.labels\['([^']+)'\]$")
_EXPANSION = re.compile(r"\$\$|\$\(([^)]*)\)")


def expand(value: str, defined: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion of an env value (k8s.io/kubernetes
    third_party/forked/golang/expansion): defined variables only, `$$` escapes."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return defined[name] if name in defined else match.group(0)
    return _EXPANSION.sub(one, value)


def container_env(container: dict[str, Any], pod_labels: dict[str, str]) -> dict[str, str]:
    """The environment the kubelet gives `container` in a pod with `pod_labels`."""
    defined: dict[str, str] = {}
    for item in container.get("env", []):
        if "valueFrom" in item:
            path = item["valueFrom"]["fieldRef"]["fieldPath"]
            match = _FIELD_LABEL.match(path)
            assert match, f"unexpected fieldRef {path}"
            defined[item["name"]] = pod_labels[match.group(1)]
        else:
            defined[item["name"]] = expand(item["value"], defined)
    return defined


def replicas_of(jobset: dict[str, Any]) -> list[tuple[str, int, str, dict[str, str]]]:
    """(replicatedJob, job index, pod FQDN-in-namespace, TF_CONFIG env) of every pod the
    JobSet controller would create."""
    name = jobset["metadata"]["name"]
    subdomain = jobset["spec"].get("network", {}).get("subdomain") or name
    pods = []
    for job in jobset["spec"]["replicatedJobs"]:
        pod = job["template"]["spec"]["template"]
        (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "tensorflow"]
        for index in range(job.get("replicas", 1)):
            labels = {**pod["metadata"].get("labels", {}), JOB_INDEX: str(index)}
            hostname = f"{name}-{job['name']}-{index}-0"  # Job name + completion index 0
            pods.append((job["name"], index, f"{hostname}.{subdomain}",
                         container_env(container, labels)))
    return pods


def jobset_of(rendered: RenderedManifests) -> dict[str, Any]:
    (document,) = yaml.safe_load_all(rendered.files["training/jobset.yaml"])
    assert document["kind"] == "JobSet"
    return document


def environment(dry_source: Dry, env: str, **training: Any) -> EnvironmentSpec:
    spec = dry_source[1].environment(env)
    data = spec.model_dump(by_alias=True)
    return EnvironmentSpec.model_validate(
        {**data, "training": {**data["training"], "kind": "JobSet", **training}})


def rendered(dry_source: Dry, churn: ModelSpec, version: ModelVersion, env: EnvironmentSpec,
             templates: dict[str, str] | None = None) -> RenderedManifests:
    return render_environment(dry_source[1].templates if templates is None else templates,
                              environment=env, model=churn, version=version)


SHAPES = {
    "staging as shipped (a chief, 2 workers, 1 ps)": {},
    "chief, 4 workers, 2 ps": {"chief": True, "workers": 4, "parameterServers": 2},
    "one worker alone": {"workers": 1, "parameterServers": 0},
    "chief and 12 workers": {"chief": True, "workers": 12, "parameterServers": 0},
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_replica_names_the_same_cluster_and_its_own_task(
        shape: str, dry_source: Dry, churn: ModelSpec, version: ModelVersion) -> None:
    env = environment(dry_source, "staging", **SHAPES[shape])
    training = env.training
    jobset = jobset_of(rendered(dry_source, churn, version, env))
    pods = replicas_of(jobset)
    expected = {"chief": 1 if training.chief else 0, "worker": training.workers,
                "ps": training.parameter_servers}
    assert len(pods) == sum(expected.values())
    configs = [json.loads(env_vars["TF_CONFIG"]) for *_, env_vars in pods]
    cluster = configs[0]["cluster"]
    assert {task: len(hosts) for task, hosts in cluster.items()} == {
        task: n for task, n in expected.items() if n}
    for (job, index, address, _), config in zip(pods, configs, strict=True):
        assert config["cluster"] == cluster, "every replica must see the same cluster"
        assert config["task"] == {"type": job, "index": index}
        # Its own address in the cluster is the DNS name JobSet gives this very pod.
        assert cluster[job][index] == f"{address}:2222"
    tasks = [(c["task"]["type"], c["task"]["index"]) for c in configs]
    assert sorted(tasks) == sorted((t, i) for t, hosts in cluster.items()
                                   for i in range(len(hosts)))


def test_the_shipped_staging_jobset(render: Render) -> None:
    jobset = jobset_of(render("staging"))
    assert [(j["name"], j["replicas"]) for j in jobset["spec"]["replicatedJobs"]] == [
        ("chief", 1), ("worker", 2), ("ps", 1)]
    assert jobset["spec"]["successPolicy"] == {"operator": "All",
                                               "targetReplicatedJobs": ["chief"]}
    assert jobset["spec"]["failurePolicy"] == {"maxRestarts": 3}
    config = json.loads(replicas_of(jobset)[2][3]["TF_CONFIG"])
    assert config == {"cluster": {
        "chief": ["churn-train-v3-chief-0-0.churn-train-v3:2222"],
        "worker": ["churn-train-v3-worker-0-0.churn-train-v3:2222",
                   "churn-train-v3-worker-1-0.churn-train-v3:2222"],
        "ps": ["churn-train-v3-ps-0-0.churn-train-v3:2222"]},
        "task": {"type": "worker", "index": 1}}


def test_a_chief_is_what_success_waits_for(dry_source: Dry, churn: ModelSpec,
                                           version: ModelVersion) -> None:
    env = environment(dry_source, "prod")  # prod: chief, 4 workers, 2 ps, a deadline
    jobset = jobset_of(rendered(dry_source, churn, version, env))
    assert [j["name"] for j in jobset["spec"]["replicatedJobs"]] == ["chief", "worker", "ps"]
    assert jobset["spec"]["successPolicy"]["targetReplicatedJobs"] == ["chief"]
    assert {j["template"]["spec"]["activeDeadlineSeconds"]
            for j in jobset["spec"]["replicatedJobs"]} == {86400}


def test_a_subdomain_of_the_template_is_used(dry_source: Dry, churn: ModelSpec,
                                             version: ModelVersion) -> None:
    templates = dict(dry_source[1].templates)
    templates["training/jobset.yaml"] = templates["training/jobset.yaml"].replace(
        "    enableDNSHostnames: true\n", "    enableDNSHostnames: true\n    subdomain: tf\n")
    jobset = jobset_of(rendered(dry_source, churn, version,
                                environment(dry_source, "staging"), templates))
    for _, _, address, env_vars in replicas_of(jobset):
        assert address.endswith(".tf")
        assert f"{address}:2222" in json.dumps(json.loads(env_vars["TF_CONFIG"]))


def test_a_tfjob_environment_renders_no_jobset_and_the_other_way_round(render: Render) -> None:
    assert "training/tfjob.yaml" in render("dev").files
    assert "training/jobset.yaml" not in render("dev").files
    staging = render("staging").files
    assert "training/jobset.yaml" in staging
    assert "training/tfjob.yaml" not in staging
    assert yaml.safe_load(staging["training/kustomization.yaml"])["resources"] == ["jobset.yaml"]


# --- what is refused ----------------------------------------------------------------------------


def refused_staging(dry_source: Dry, churn: ModelSpec, version: ModelVersion, old: str,
                    new: str, *, count: int = 1, **training: Any) -> RenderError:
    templates = dict(dry_source[1].templates)
    assert old in templates["training/jobset.yaml"], old
    templates["training/jobset.yaml"] = templates["training/jobset.yaml"].replace(old, new,
                                                                                  count)
    with pytest.raises(RenderError) as caught:
        rendered(dry_source, churn, version, environment(dry_source, "staging", **training),
                 templates)
    assert caught.value.exit_code == 2
    return caught.value


BAD = {
    "a replicatedJob not named after a task type": (
        "- name: worker\n", "- name: workers\n", {},
        'spec.replicatedJobs[1].name: \'workers\' is not a TensorFlow task type'),
    "a Job running two pods": (
        "parallelism: 1", "parallelism: 2", {},
        "spec.replicatedJobs[0].template.spec.parallelism: is 2; each Job must run exactly one "
        "pod"),
    "completions left out": (
        "          completions: 1\n", "", {},
        "spec.replicatedJobs[0].template.spec.completions: is None"),
    "two chiefs": (
        "replicas: ${training.chiefReplicas}", "replicas: 2", {},
        "spec.replicatedJobs[0].replicas: is 2; TensorFlow has at most one chief"),
    "DNS hostnames off": (
        "enableDNSHostnames: true", "enableDNSHostnames: false", {},
        "spec.network.enableDNSHostnames: is false"),
    "TF_CONFIG written by hand": (
        "                    - name: PROMOTER_MODEL_NAME\n",
        "                    - name: TF_CONFIG\n                      value: '{}'\n"
        "                    - name: PROMOTER_MODEL_NAME\n", {},
        "containers[0].env: sets TF_CONFIG, which promoter computes for each replica"),
    "no tensorflow container": (
        "- name: tensorflow", "- name: trainer", {},
        "has no container named 'tensorflow' (found ['trainer'])"),
    "a name too long for JobSet's pods": (
        "name: ${model.name}-train-v${model.version}",
        "name: ${model.name}-" + "x" * 38 + "-v${model.version}", {},
        "metadata.name: is too long"),
    "no task at all": (
        "replicas: ${training.workers}", "replicas: 0", {"parameterServers": 0, "chief": False},
        "spec.replicatedJobs: has no replicatedJob with replicas > 0"),
    "parameter servers without a chief": (
        "- name: ps", "- name: ps", {"chief": False},
        "spec.replicatedJobs[1].name: is 'ps' but the JobSet has no chief: TensorFlow's "
        "ParameterServerStrategy runs its coordinator"),
    "a template that drops the chief the environment asks for": (
        "replicas: ${training.chiefReplicas}", "replicas: 0", {"chief": True},
        "spec.replicatedJobs[1].name: is 'ps' but the JobSet has no chief"),
    "two replicatedJobs of one task type": (
        "    - name: ps\n", "    - name: worker\n", {},
        "spec.replicatedJobs[2].name: 'worker' is a second replicatedJob of that task type"),
    "a hostname of the pod's own": (
        "restartPolicy: Never", "restartPolicy: Never\n              hostname: trainer", {},
        "template.spec.template.spec.hostname: is set, but TF_CONFIG names every task"),
    "a subdomain of the pod's own": (
        "restartPolicy: Never", "restartPolicy: Never\n              subdomain: tf", {},
        "template.spec.template.spec.subdomain: is set"),
    "a typo in the pod (strict CRD schema)": (
        "restartPolicy: Never", "restartPolicy: Never\n              hostNetwrk: true", {},
        "hostNetwrk"),
    "a typo in the JobSet spec (strict CRD schema)": (
        "  successPolicy:", "  sucessPolicy:", {}, "sucessPolicy"),
}


def test_a_chief_with_workers_and_no_parameter_servers_needs_no_rule(
        dry_source: Dry, churn: ModelSpec, version: ModelVersion) -> None:
    """Only parameter servers need the coordinator: workers alone (MultiWorkerMirroredStrategy)
    or with a chief render."""
    for training in ({"chief": False, "parameterServers": 0, "workers": 3},
                     {"chief": True, "parameterServers": 0}):
        env = environment(dry_source, "staging", **training)
        jobset = jobset_of(rendered(dry_source, churn, version, env))
        assert "ps" not in [job["name"] for job in jobset["spec"]["replicatedJobs"]]


@pytest.mark.parametrize("case", list(BAD))
def test_refused(case: str, dry_source: Dry, churn: ModelSpec, version: ModelVersion) -> None:
    old, new, training, words = BAD[case]
    error = refused_staging(dry_source, churn, version, old, new, **training)
    assert isinstance(error, InvalidManifestError)
    assert error.message.startswith("manifests/training/jobset.yaml: JobSet "), error.message
    assert words in error.message
    assert error.fix


def test_the_longest_pod_name_jobset_accepts_is_accepted(dry_source: Dry, churn: ModelSpec,
                                                         version: ModelVersion) -> None:
    # churn-<37 x>-v3-worker-1-0 plus JobSet's "-abcde" is 63 characters, its webhook's limit.
    templates = dict(dry_source[1].templates)
    templates["training/jobset.yaml"] = templates["training/jobset.yaml"].replace(
        "name: ${model.name}-train-v${model.version}",
        "name: ${model.name}-" + "x" * 37 + "-v${model.version}", 1)
    jobset = jobset_of(rendered(dry_source, churn, version, environment(dry_source, "staging"),
                                templates))
    assert max(len(address.split(".")[0]) for _, _, address, _ in replicas_of(jobset)) == 57


def test_a_jobset_environment_without_a_jobset_template(dry_source: Dry, churn: ModelSpec,
                                                        version: ModelVersion) -> None:
    templates = {p: t for p, t in dry_source[1].templates.items() if p != "training/jobset.yaml"}
    with pytest.raises(RenderError) as caught:
        rendered(dry_source, churn, version, environment(dry_source, "staging"), templates)
    assert caught.value.message == (
        "training.kind is JobSet for staging, but no template under manifests/training/ "
        "renders a JobSet (jobset.x-k8s.io/v1alpha2)")
    assert caught.value.fix == ("add one to manifests/training/, or set training.kind: TFJob "
                                "in environments/staging.yaml")


def test_a_jobset_under_serving_is_refused(dry_source: Dry, churn: ModelSpec,
                                          version: ModelVersion) -> None:
    templates = dict(dry_source[1].templates)
    templates["serving/jobset.yaml"] = templates.pop("training/jobset.yaml")
    with pytest.raises(RenderError, match=r"manifests/serving/jobset\.yaml: JobSet "
                                          r"churn-train-v3: a training job under serving/"):
        rendered(dry_source, churn, version, environment(dry_source, "staging"), templates)


def test_a_jobset_template_is_not_prepared_where_tfjobs_run(render: Render,
                                                            dry_source: Dry) -> None:
    """A JobSet template only some environments use cannot break the others."""
    templates = dict(dry_source[1].templates)
    templates["training/jobset.yaml"] = templates["training/jobset.yaml"].replace(
        "- name: worker\n", "- name: workers\n")
    assert "training/tfjob.yaml" in render("dev", templates).files


@pytest.mark.parametrize(("written", "fix"), [
    ("jobset", "write 'JobSet' (kinds are case-sensitive)"),
    ("PyTorchJob", "set training.kind to 'JobSet' (no deprecated operator needed) or 'TFJob', "
                   "or training.enabled: false"),
])
def test_an_unknown_training_kind_is_a_clear_config_error(written: str, fix: str,
                                                          dry_source: Dry) -> None:
    data = dry_source[1].environment("staging").model_dump(by_alias=True)
    data["training"]["kind"] = written
    with pytest.raises(ConfigError) as caught:
        validate_model(EnvironmentSpec, data, "environments/staging.yaml")
    message = str(caught.value)
    assert message.startswith(f"environments/staging.yaml: training.kind: {written!r} is not "
                              "a training kind promoter renders (TFJob: kubeflow.org/v1")
    assert caught.value.fix == fix
    assert caught.value.exit_code == 2


def test_the_readme_shows_the_tf_config_staging_renders(render: Render) -> None:
    jobset = jobset_of(render("staging"))
    (worker,) = [c for c in jobset["spec"]["replicatedJobs"][1]["template"]["spec"]["template"]
                 ["spec"]["containers"] if c["name"] == "tensorflow"]
    value = {e["name"]: e for e in worker["env"]}["TF_CONFIG"]["value"]
    assert f"  value: '{value}'" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")
