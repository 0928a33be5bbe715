"""A serving template that would let TF Serving read bytes nobody verified is refused at render
time (promoter/render/delivery_rules.py). Each case is one edit of the real
manifests/serving/deployment.yaml, as a careless user or an attacker with write access to the
dry branch would make it; each still applied cleanly before the rule existed."""

from __future__ import annotations

import pytest

from promoter.config import ModelSpec
from promoter.config.schema import EnvironmentSpec
from promoter.domain.model_versions import ModelVersion
from promoter.render import render_environment
from tests.render.conftest import DIGEST, Render
from tests.render.test_bad_input import Dry, edited, refused

DEPLOYMENT = "serving/deployment.yaml"
LOCATED = "manifests/serving/deployment.yaml: Deployment churn: spec.template.spec."
FETCH = """\
        - name: fetch-model
          image: ${serving.fetchImage}
          command: [promoter-fetch-model]
          args:
            - --from=${serving.modelBasePath}
            - --version=${model.version}
            - --digest=${model.digest}
            - --into=${serving.servedBasePath}
"""
SERVING_MOUNT = """\
            - name: verified-models
              mountPath: ${serving.servedModelsDir}
              readOnly: true
"""
VOLUME = """\
        - name: verified-models
          emptyDir: {}"""
OTHER = "sha256:" + "cd" * 32


def without_init_container(dry_source: Dry) -> dict[str, str]:
    text = dry_source[1].templates[DEPLOYMENT]
    start = text.index("      initContainers:\n")
    end = text.index("      containers:\n")
    return {**dry_source[1].templates, DEPLOYMENT: text[:start] + text[end:]}


ATTACKS = [
    pytest.param(
        "--into=${serving.servedBasePath}\n",
        "--into=${serving.servedBasePath}\n            - --digest=" + OTHER + "\n",
        "initContainers[0].args: passes --digest twice", "--digest=${model.digest}",
        id="a-second-digest-flag-overrides-the-first"),
    pytest.param("--digest=${model.digest}", "--digest=" + OTHER,
                 f"initContainers[0].args: passes --digest='{OTHER}'; this release needs "
                 f"--digest={DIGEST}", "--digest=${model.digest}", id="another-digest"),
    pytest.param("- --version=${model.version}", "- --version=2",
                 "passes --version='2'; this release needs --version=3",
                 "--version=${model.version}", id="another-version"),
    pytest.param("            - --into=${serving.servedBasePath}\n", "",
                 "does not pass --into", "--into=${serving.servedBasePath}", id="no-into"),
    pytest.param("- --digest=${model.digest}", "- --dig=" + OTHER,
                 "passes '--dig=" + OTHER + "' to promoter-fetch-model, which takes only",
                 "extra argument", id="an-abbreviated-flag"),
    pytest.param("--from=${serving.modelBasePath}", "--from=s3://elsewhere/churn",
                 "passes --from='s3://elsewhere/churn'", "${serving.modelBasePath}",
                 id="another-store"),
    pytest.param("            runAsNonRoot: true\n", "",
                 "initContainers[0].securityContext.runAsNonRoot: is None",
                 "runAsNonRoot: true", id="fetch-may-run-as-root"),
    pytest.param("            readOnlyRootFilesystem: true\n",
                 "            readOnlyRootFilesystem: false\n",
                 "initContainers[0].securityContext.readOnlyRootFilesystem: is False",
                 "readOnlyRootFilesystem: true", id="fetch-writes-its-root-filesystem"),
    pytest.param("command: [promoter-fetch-model]", 'command: [sh, -c, "exit 0"]',
                 "initContainers[0].command: runs 'sh', not promoter-fetch-model",
                 "command: [promoter-fetch-model]", id="a-command-that-checks-nothing"),
    pytest.param("image: ${serving.fetchImage}", "image: busybox:1.36",
                 "initContainers[0].image: is 'busybox:1.36', not serving.fetchImage",
                 "${serving.fetchImage}", id="another-image"),
    pytest.param("- name: fetch-model", "- name: fetch",
                 "initContainers: has no 'fetch-model' init container", "promoter-fetch-model",
                 id="renamed-init-container"),
    pytest.param(VOLUME, "        - name: verified-models\n          hostPath: {path: /srv/m}",
                 "volumes: volume 'verified-models', which holds the verified copy, is a "
                 "hostPath volume, not an emptyDir", "emptyDir: {}", id="copy-on-a-hostpath"),
    pytest.param(SERVING_MOUNT, "",
                 "containers[0].volumeMounts: container 'tensorflow-serving' reads TF "
                 "Serving's base path /verified-models/churn from its own filesystem",
                 "readOnly: true", id="serving-reads-its-own-filesystem"),
    pytest.param(SERVING_MOUNT, SERVING_MOUNT.replace("verified-models", "model-config", 1),
                 "reads TF Serving's base path /verified-models/churn from volume "
                 "'model-config' at churn", "mount volume 'verified-models'",
                 id="serving-reads-another-volume"),
    pytest.param(SERVING_MOUNT, SERVING_MOUNT + "              subPath: unverified\n",
                 "from volume 'verified-models' at unverified/churn",
                 "mount volume 'verified-models'", id="serving-reads-elsewhere-in-the-volume"),
    pytest.param(SERVING_MOUNT, SERVING_MOUNT.replace("              readOnly: true\n", ""),
                 "containers[0].volumeMounts[1]: container 'tensorflow-serving' mounts volume "
                 "'verified-models' writable", "readOnly: true", id="serving-mount-writable"),
    pytest.param(SERVING_MOUNT, SERVING_MOUNT + "            - name: model-config\n"
                 "              mountPath: /verified-models/churn/3\n"
                 "              readOnly: true\n",
                 "containers[0].volumeMounts[2]: mounts 'model-config' at "
                 "/verified-models/churn/3, over part of TF Serving's base path",
                 "remove that mount", id="a-mount-laid-over-the-copy"),
    pytest.param("      containers:\n",
                 "      containers:\n        - name: rewriter\n          image: busybox:1.36\n"
                 "          volumeMounts:\n            - name: verified-models\n"
                 "              mountPath: /m\n",
                 "containers[0].volumeMounts[0]: container 'rewriter' mounts volume "
                 "'verified-models' writable", "readOnly: true",
                 id="a-sidecar-that-writes-the-copy"),
    pytest.param("            - --model_config_file=/etc/tfserving/models.config\n",
                 "            - --model_config_file=/etc/tfserving/models.config\n"
                 "            - --model_base_path=s3://models/churn\n",
                 "containers[0].args: container 'tensorflow-serving' passes "
                 "--model_base_path", "remove --model_base_path", id="serving-the-bucket"),
    pytest.param("      containers:\n",
                 "      containers:\n        - name: second\n"
                 "          image: ${serving.image}\n"
                 "          args: [--model_name=churn, --model_base_path=s3://models/churn]\n",
                 "containers[0].args: container 'second' passes --model_base_path",
                 "remove --model_base_path", id="a-second-server-on-the-bucket"),
    pytest.param("              mountPath: ${serving.servedModelsDir}\n      containers:",
                 "              mountPath: ${serving.servedModelsDir}\n              "
                 "readOnly: true\n      containers:",
                 "initContainers[0].volumeMounts: mount volume 'verified-models' read-only",
                 "remove readOnly", id="fetch-cannot-write"),
]


@pytest.mark.parametrize(("old", "new", "problem", "fix"), ATTACKS)
def test_each_way_around_the_verified_copy_is_refused(
        render: Render, dry_source: Dry, old: str, new: str, problem: str, fix: str) -> None:
    error = refused(render, edited(dry_source, DEPLOYMENT, old, new))
    assert error.message.startswith(LOCATED), error.message
    assert problem in error.message
    assert error.fix is not None
    assert fix in error.fix


def test_a_template_without_the_init_container_is_refused(render: Render,
                                                          dry_source: Dry) -> None:
    error = refused(render, without_init_container(dry_source))
    assert error.message == (
        f"{LOCATED}initContainers: has no 'fetch-model' init container: TF Serving would "
        f"start on whatever bytes are at /verified-models/churn, unchecked against {DIGEST}")
    assert error.fix is not None
    assert "--digest=${model.digest}" in error.fix


def test_the_example_templates_pass_in_every_form_fetch_model_reads(
        render: Render, dry_source: Dry) -> None:
    """`--flag value` as two words, and a store mounted into the init container (a local
    store on a hostPath or a claim), are what a careful user writes: not refused."""
    text = dry_source[1].templates[DEPLOYMENT]
    text = text.replace("- --digest=${model.digest}", "- --digest\n            - ${model.digest}")
    text = text.replace(
        "          volumeMounts:\n            - name: verified-models\n"
        "              mountPath: ${serving.servedModelsDir}\n      containers:",
        "          volumeMounts:\n            - name: verified-models\n"
        "              mountPath: ${serving.servedModelsDir}\n"
        "            - name: store\n              mountPath: /models\n"
        "              readOnly: true\n      containers:")
    text = text.replace(VOLUME, VOLUME + "\n        - name: store\n"
                        "          persistentVolumeClaim: {claimName: models, readOnly: true}")
    rendered = render("dev", {**dry_source[1].templates, DEPLOYMENT: text})
    assert b"--digest\n" in rendered.files["serving/deployment.yaml"]


def test_a_local_store_path_renders_as_the_init_containers_source(
        dry_source: Dry, churn: ModelSpec, version: ModelVersion) -> None:
    env: EnvironmentSpec = dry_source[1].environment("dev")
    local = env.model_copy(update={"serving": env.serving.model_copy(
        update={"model_base_uri": "/models"})})
    rendered = render_environment(dry_source[1].templates, environment=local, model=churn,
                                  version=version)
    assert b"--from=/models/churn" in rendered.files["serving/deployment.yaml"]
