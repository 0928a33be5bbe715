"""The training jobs' health rules, run for real: the Flux CEL by a CEL interpreter (cel-python),
the Argo CD Lua by a Lua interpreter (lupa), against JobSets and TFJobs in every state.

The JobSet is the one promoter renders for the example's staging, with the status the JobSet
controller (kubernetes-sigs/jobset v0.12.0) writes in each state: its condition types,
reasons and messages are that release's (pkg/constants/constants.go). How the verdicts are
used: kustomize-controller counts a `current` object healthy, a `failed` one failed, and
waits (until the training timeout) for anything else; Argo CD takes the Lua's `hs.status`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import celpy
import pytest
import yaml
from lupa import LuaRuntime

from promoter.companion.argo import ARGO_HEALTH_STATUSES, tfjob_health_lua
from promoter.companion.flux import tfjob_health_exprs
from promoter.companion.jobset import jobset_health_exprs, jobset_health_lua
from promoter.config import DirectorySource, load_dry_config, load_settings
from promoter.domain.model_versions import ModelVersion
from promoter.render import render_environment
from tests.cluster.objects import ARGO_TRAINING
from tests.conftest import REPO_ROOT

Obj = dict[str, Any]


def cel_true(expression: str, obj: Obj) -> bool:
    """Whether `expression` is true of `obj`, with the object's top-level fields as variables
    (as kustomize-controller passes them). An evaluation error counts as not true: Flux then
    keeps waiting, as it does for an expression that is false."""
    environment = celpy.Environment()
    program = environment.program(environment.compile(expression))
    try:
        result = program.evaluate({key: celpy.json_to_cel(value) for key, value in obj.items()})
    except celpy.CELEvalError:
        return False
    if isinstance(result, celpy.CELEvalError):
        return False
    assert isinstance(result, celpy.celtypes.BoolType), f"{expression} gave {result!r}"
    return bool(result)


def flux_verdict(exprs: dict[str, str], obj: Obj) -> str:
    failed, current = cel_true(exprs["failed"], obj), cel_true(exprs["current"], obj)
    assert not (failed and current), "a job is never both failed and current"
    return "failed" if failed else "current" if current else "in progress"


def lua_health(script: str, obj: Obj) -> tuple[str, str]:
    """(status, message) of Argo CD's health `script` for `obj`."""
    lua = LuaRuntime(unpack_returned_tuples=True)

    def table(value: Any) -> Any:
        if isinstance(value, dict):
            return lua.table_from({k: table(v) for k, v in value.items()})
        if isinstance(value, list):
            return lua.table_from([table(v) for v in value])
        return value

    run = lua.eval(f"function(obj)\n{script}\nend")
    result = run(table(obj))
    return str(result["status"]), str(result["message"])


# --- JobSet ------------------------------------------------------------------------------------


def condition(kind: str, reason: str, message: str, status: str = "True") -> Obj:
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-12-03T10:00:00Z"}


def jobs_status(jobset: Obj, **per_job: dict[str, int]) -> list[Obj]:
    """replicatedJobsStatus with every count 0 but those given per replicatedJob."""
    return [{"name": job["name"], "ready": 0, "succeeded": 0, "failed": 0, "active": 0,
             "suspended": 0, **per_job.get(job["name"], {})}
            for job in jobset["spec"]["replicatedJobs"]]


JobSetState = Callable[[Obj], Obj]


def _with_status(jobset: Obj, status: Obj | None, *, suspend: bool = False) -> Obj:
    out = copy.deepcopy(jobset)
    if status is not None:
        out["status"] = status
    if suspend:
        out["spec"]["suspend"] = True
    return out


JOBSET_STATES: dict[str, tuple[JobSetState, str, str, str, tuple[str, str]]] = {
    # case: (state, Flux verdict, Flux verdict with waitForTraining,
    #        Argo status with waitForTraining, Argo (status, message))
    "not seen by the controller yet": (
        lambda js: _with_status(js, None), "in progress", "in progress",
        "Progressing", ("Progressing", "Waiting for the JobSet's Jobs to run")),
    "queued: pods pending": (
        lambda js: _with_status(js, {"restarts": 0, "replicatedJobsStatus": jobs_status(
            js, chief={"active": 1}, worker={"active": 2}, ps={"active": 1})}),
        "in progress", "in progress",
        "Progressing", ("Progressing", "Waiting for the JobSet's Jobs to run")),
    "workers running, ps still pending": (
        lambda js: _with_status(js, {"restarts": 0, "replicatedJobsStatus": jobs_status(
            js, chief={"active": 1, "ready": 1}, worker={"active": 2, "ready": 2},
            ps={"active": 1})}),
        "in progress", "in progress",
        "Progressing", ("Progressing", "Waiting for the JobSet's Jobs to run")),
    "running": (
        lambda js: _with_status(js, {"restarts": 0, "replicatedJobsStatus": jobs_status(
            js, chief={"active": 1, "ready": 1}, worker={"active": 2, "ready": 2},
            ps={"active": 1, "ready": 1})}),
        "current", "in progress",
        "Progressing", ("Healthy", "Every Job of the JobSet is running")),
    "one worker finished, the other and the ps run": (
        lambda js: _with_status(js, {"restarts": 0, "replicatedJobsStatus": jobs_status(
            js, chief={"active": 1, "ready": 1}, worker={"active": 1, "ready": 1, "succeeded": 1},
            ps={"active": 1, "ready": 1})}),
        "current", "in progress",
        "Progressing", ("Healthy", "Every Job of the JobSet is running")),
    "suspended by Kueue": (
        lambda js: _with_status(js, {"restarts": 0, "conditions": [
            condition("Suspended", "SuspendedJobs", "jobset is suspended")],
            "replicatedJobsStatus": jobs_status(js, chief={"suspended": 1}, worker={"suspended": 2},
                                                ps={"suspended": 1})}, suspend=True),
        "in progress", "in progress",
        "Suspended", ("Suspended", "jobset is suspended")),
    "completed": (
        lambda js: _with_status(js, {"restarts": 0, "terminalState": "Completed", "conditions": [
            condition("Completed", "AllJobsCompleted", "jobset completed successfully")],
            "replicatedJobsStatus": jobs_status(js, chief={"succeeded": 1})}),
        "current", "current",
        "Healthy", ("Healthy", "jobset completed successfully")),
    "failed": (
        lambda js: _with_status(js, {"restarts": 3, "terminalState": "Failed", "conditions": [
            condition("Failed", "ReachedMaxRestarts",
                      "jobset failed due to reaching max number of restarts")],
            "replicatedJobsStatus": jobs_status(js, worker={"failed": 1, "ready": 1})}),
        "failed", "failed",
        "Degraded", ("Degraded", "jobset failed due to reaching max number of restarts")),
    "failed while its other Jobs still run": (
        lambda js: _with_status(js, {"restarts": 0, "terminalState": "Failed", "conditions": [
            condition("Failed", "FailedJobs", "jobset failed due to one or more job failures")],
            "replicatedJobsStatus": jobs_status(js, chief={"active": 1, "ready": 1},
                                                worker={"active": 2, "ready": 2},
                                                ps={"active": 1, "ready": 1})}),
        "failed", "failed",
        "Degraded", ("Degraded", "jobset failed due to one or more job failures")),
}


@pytest.fixture(scope="module")
def staging_jobset() -> Obj:
    """The JobSet promoter renders for the example's staging (a chief, 2 workers, 1 ps)."""
    loaded = load_settings(REPO_ROOT / "promoter.yaml")
    dry = load_dry_config(DirectorySource(REPO_ROOT), loaded.settings)
    churn = loaded.settings.model("churn")
    assert churn is not None
    rendered = render_environment(
        dry.templates, environment=dry.environment("staging"), model=churn,
        version=ModelVersion(name="churn", version=3, digest="sha256:" + "ab" * 32,
                             uri="/models/churn/3"))
    (jobset,) = yaml.safe_load_all(rendered.files["training/jobset.yaml"])
    return dict(jobset)


@pytest.mark.parametrize("case", list(JOBSET_STATES))
def test_flux_reads_a_jobset(case: str, staging_jobset: Obj) -> None:
    state, running, waiting, _, _ = JOBSET_STATES[case]
    obj = state(staging_jobset)
    assert flux_verdict(jobset_health_exprs(wait_for_training=False), obj) == running
    assert flux_verdict(jobset_health_exprs(wait_for_training=True), obj) == waiting


@pytest.mark.parametrize("case", list(JOBSET_STATES))
def test_argo_reads_a_jobset(case: str, staging_jobset: Obj) -> None:
    state, _, _, waiting, (status, message) = JOBSET_STATES[case]
    obj = state(staging_jobset)
    assert lua_health(jobset_health_lua(wait_for_training=False), obj) == (status, message)
    assert lua_health(jobset_health_lua(wait_for_training=True), obj)[0] == waiting


def test_a_jobset_without_replicas_written_counts_one_job(staging_jobset: Obj) -> None:
    """`replicas` defaults to 1 in the CRD; a rule must not need it written."""
    obj = JOBSET_STATES["running"][0](staging_jobset)
    for job in obj["spec"]["replicatedJobs"]:
        if job["name"] == "ps":
            del job["replicas"]
    assert flux_verdict(jobset_health_exprs(wait_for_training=False), obj) == "current"
    assert lua_health(jobset_health_lua(wait_for_training=False), obj)[0] == "Healthy"


# --- TFJob: the rules shipped before, run for real too ------------------------------------------


def tfjob(*conditions: Obj) -> Obj:
    obj: Obj = {"apiVersion": "kubeflow.org/v1", "kind": "TFJob",
                "metadata": {"name": "churn-train-v3"}, "spec": {}}
    if conditions:
        obj["status"] = {"conditions": list(conditions)}
    return obj


TFJOB_STATES: dict[str, tuple[Obj, str, str, str, str]] = {
    "not seen yet": (tfjob(), "in progress", "in progress", "Progressing", "Progressing"),
    "created": (tfjob(condition("Created", "TFJobCreated", "TFJob churn-train-v3 is created.")),
                "in progress", "in progress", "Progressing", "Progressing"),
    "running": (tfjob(condition("Created", "TFJobCreated", "created"),
                      condition("Running", "TFJobRunning", "TFJob churn-train-v3 is running.")),
                "current", "in progress", "Healthy", "Progressing"),
    "suspended": (tfjob(condition("Suspended", "TFJobSuspended", "TFJob is suspended.")),
                  "in progress", "in progress", "Suspended", "Suspended"),
    "succeeded": (tfjob(condition("Running", "TFJobRunning", "r", status="False"),
                        condition("Succeeded", "TFJobSucceeded", "TFJob succeeded.")),
                  "current", "current", "Healthy", "Healthy"),
    "failed": (tfjob(condition("Failed", "TFJobFailed", "TFJob has failed.")),
               "failed", "failed", "Degraded", "Degraded"),
}


@pytest.mark.parametrize("case", list(TFJOB_STATES))
def test_the_tfjob_rules(case: str) -> None:
    obj, running, waiting, argo, argo_waiting = TFJOB_STATES[case]
    assert flux_verdict(tfjob_health_exprs(wait_for_training=False), obj) == running
    assert flux_verdict(tfjob_health_exprs(wait_for_training=True), obj) == waiting
    assert lua_health(tfjob_health_lua(wait_for_training=False), obj)[0] == argo
    assert lua_health(tfjob_health_lua(wait_for_training=True), obj)[0] == argo_waiting


@pytest.mark.parametrize("wait", [False, True])
def test_the_jobset_lua_returns_only_argo_statuses(wait: bool) -> None:
    statuses = set(re.findall(r'hs\.status = "([A-Za-z]+)"', jobset_health_lua(
        wait_for_training=wait)))
    assert statuses <= set(ARGO_HEALTH_STATUSES)
    assert {"Healthy", "Degraded", "Progressing", "Suspended"} <= statuses


@pytest.mark.parametrize(("fixture_case", "state_case"), [
    ("JobSet queued", "queued: pods pending"), ("JobSet failed", "failed"),
    ("JobSet suspended by Kueue", "suspended by Kueue")])
def test_the_fake_clusters_argo_health_is_what_the_check_says(
        fixture_case: str, state_case: str, staging_jobset: Obj) -> None:
    """The training Applications the cluster tests put in the fake API server carry the
    health this Lua gives such a JobSet, not words made up for the test."""
    obj = JOBSET_STATES[state_case][0](staging_jobset)
    assert lua_health(jobset_health_lua(wait_for_training=False), obj) == ARGO_TRAINING[
        fixture_case]
