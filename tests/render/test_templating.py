"""The substitution engine: typed and text substitution, escapes, omission and errors."""

from __future__ import annotations

from typing import Any

import pytest

from promoter.errors import RenderError
from promoter.render import render_template

VARIABLES: dict[str, Any] = {
    "model.name": "churn",
    "model.version": 3,
    "serving.image": "tensorflow/serving:2.18.0",
    "serving.replicas": 2,
    "serving.resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1"}},
    "training.command": ["python", "/opt/train/train.py"],
    "training.chief": True,
    "training.activeDeadlineSeconds": None,
    "serving.modelConfig": 'model_config_list {\n  config { name: "churn" }\n}\n',
}


def render_one(text: str, template: str = "serving/x.yaml") -> Any:
    documents = render_template(template, text, VARIABLES)
    assert len(documents) == 1
    return documents[0]


def test_whole_value_keeps_the_variable_type() -> None:
    out = render_one(
        "replicas: ${serving.replicas}\n"
        "resources: ${serving.resources}\n"
        "command: ${training.command}\n"
        "chief: ${training.chief}\n"
        "name: ${model.name}\n"
    )
    assert out == {
        "replicas": 2,
        "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1"}},
        "command": ["python", "/opt/train/train.py"],
        "chief": True,
        "name": "churn",
    }


def test_substituted_values_are_copies_not_shared_with_the_variables() -> None:
    out = render_one("a: ${serving.resources}\nb: ${serving.resources}\n")
    out["a"]["requests"]["cpu"] = "9"
    assert out["b"]["requests"]["cpu"] == "250m"
    assert VARIABLES["serving.resources"]["requests"]["cpu"] == "250m"


def test_placeholder_inside_a_longer_string_is_interpolated_as_text() -> None:
    out = render_one(
        "image: registry.local/${serving.image}\n"
        "path: /v1/models/${model.name}/versions/${model.version}\n"
        "flag: --enabled=${training.chief}\n"
    )
    assert out == {
        "image": "registry.local/tensorflow/serving:2.18.0",
        "path": "/v1/models/churn/versions/3",
        "flag": "--enabled=true",
    }


def test_quoted_or_block_scalar_is_always_text() -> None:
    out = render_one(
        'double: "${model.version}"\n'
        "single: '${serving.replicas}'\n"
        "block: |\n  v${model.version}\n"
    )
    assert out == {"double": "3", "single": "2", "block": "v3\n"}


def test_a_multi_line_value_stays_one_string_value() -> None:
    out = render_one("data:\n  models.config: ${serving.modelConfig}\n")
    assert out == {"data": {"models.config": VARIABLES["serving.modelConfig"]}}


def test_a_value_cannot_inject_yaml_structure() -> None:
    variables = {"evil": "x\nkind: Secret\n---\nfoo: [1"}
    out = render_template("serving/x.yaml", "kind: ConfigMap\nname: ${evil}\nlabel: a-${evil}\n",
                          variables)
    assert out == [{"kind": "ConfigMap", "name": variables["evil"],
                    "label": "a-" + variables["evil"]}]


def test_dollar_dollar_brace_escapes_a_placeholder() -> None:
    out = render_one(
        "a: $${model.name}\n"
        "b: echo $${HOME} and ${model.name}\n"
        "c: cost is $5 and $HOME stays\n"
        'd: "$${model.version}"\n'
    )
    assert out == {
        "a": "${model.name}",
        "b": "echo ${HOME} and churn",
        "c": "cost is $5 and $HOME stays",
        "d": "${model.version}",
    }


def test_whole_value_with_no_value_omits_the_key_or_item() -> None:
    out = render_one(
        "runPolicy:\n"
        "  backoffLimit: 3\n"
        "  activeDeadlineSeconds: ${training.activeDeadlineSeconds}\n"
        "args:\n"
        "  - a\n"
        "  - ${training.activeDeadlineSeconds}\n"
    )
    assert out == {"runPolicy": {"backoffLimit": 3}, "args": ["a"]}


def test_placeholder_may_reach_into_a_mapping_variable() -> None:
    out = render_one("cpu: ${serving.resources.requests.cpu}\n")
    assert out == {"cpu": "250m"}


def test_whitespace_inside_braces_is_allowed() -> None:
    assert render_one("a: ${ model.version }\n") == {"a": 3}


def test_keys_are_interpolated_as_text() -> None:
    out = render_one("labels:\n  ${model.name}/version: '1'\n")
    assert out == {"labels": {"churn/version": "1"}}


def test_templates_may_share_subtrees_with_anchors() -> None:
    out = render_one("a: &pod\n  image: ${serving.image}\nb: *pod\n")
    assert out == {"a": {"image": "tensorflow/serving:2.18.0"},
                   "b": {"image": "tensorflow/serving:2.18.0"}}
    assert out["a"] is not out["b"]


def test_multiple_documents_and_empty_ones() -> None:
    documents = render_template("serving/x.yaml",
                                "# only a comment\n---\na: ${model.name}\n---\n---\nb: 2\n",
                                VARIABLES)
    assert documents == [{"a": "churn"}, {"b": 2}]


def test_unknown_variable_names_file_path_and_known_variables() -> None:
    text = (
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        "        - name: serving\n"
        "          image: ${serving.imag}\n"
    )
    with pytest.raises(RenderError) as caught:
        render_template("serving/deployment.yaml", text, VARIABLES)
    error = caught.value
    assert error.message == ("manifests/serving/deployment.yaml: "
                             "spec.template.spec.containers[0].image: "
                             "unknown variable ${serving.imag}")
    assert error.fix is not None
    assert "did you mean ${serving.image}?" in error.fix
    assert "known variables: model.name, model.version" in error.fix
    assert "serving.replicas" in error.fix


def test_unknown_variable_in_text_and_in_a_label_key_path() -> None:
    with pytest.raises(RenderError, match=r'metadata\.labels\["app\.kubernetes\.io/name"\]: '
                                          r"unknown variable \$\{model\.nam\}"):
        render_template("serving/x.yaml",
                        "metadata:\n  labels:\n    app.kubernetes.io/name: x-${model.nam}\n",
                        VARIABLES)


def test_unknown_variable_names_the_document_of_a_multi_document_file() -> None:
    with pytest.raises(RenderError, match=r"^manifests/serving/x\.yaml \(document 2\): "
                                          r"spec\.replicas: unknown variable \$\{nope\}"):
        render_template("serving/x.yaml", "a: 1\n---\nspec:\n  replicas: ${nope}\n", VARIABLES)


def test_unknown_key_of_a_mapping_variable() -> None:
    with pytest.raises(RenderError,
                       match=r"unknown variable \$\{serving\.resources\.requests\.gpu"):
        render_one("gpu: ${serving.resources.requests.gpu}\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: ${}\n", "malformed placeholder '${}'"),
        ("a: ${model..name}\n", "malformed placeholder '${model..name}'"),
        ("a: x-${model.name\n", "malformed placeholder '${model.name'"),
        ("a: ${model name}\n", "malformed placeholder '${model name}'"),
    ],
)
def test_malformed_placeholder(text: str, message: str) -> None:
    with pytest.raises(RenderError, match=r"manifests/serving/x\.yaml: a: ") as caught:
        render_one(text)
    assert message in caught.value.message


def test_a_mapping_cannot_be_interpolated_into_text() -> None:
    with pytest.raises(RenderError, match=r"\$\{serving\.resources\} is a mapping") as caught:
        render_one("a: 'x ${serving.resources}'\n")
    assert caught.value.fix is not None
    assert "alone and unquoted" in caught.value.fix


def test_a_value_less_variable_cannot_be_interpolated_into_text() -> None:
    with pytest.raises(RenderError, match=r"activeDeadlineSeconds\} has no value"):
        render_one('a: "${training.activeDeadlineSeconds}s"\n')


def test_malformed_yaml_names_file_line_and_column() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n  other: x\n"
    with pytest.raises(RenderError) as caught:
        render_template("serving/configmap.yaml", text, VARIABLES)
    assert caught.value.message.startswith(
        "manifests/serving/configmap.yaml: invalid YAML at line ")
    assert "column" in caught.value.message


def test_flow_style_placeholder_is_a_yaml_error_with_its_line() -> None:
    with pytest.raises(RenderError, match=r"invalid YAML at line 2, column"):
        render_template("serving/x.yaml", "a: 1\nb: {c: ${model.name}}\n", VARIABLES)


def test_duplicate_keys_are_an_error() -> None:
    text = "metadata:\n  labels: {}\n  labels:\n    a: b\n"
    with pytest.raises(RenderError, match=r"invalid YAML at line 3, column 3: duplicate key "
                                          r"'labels' \(first at line 2\)"):
        render_template("serving/x.yaml", text, VARIABLES)


def test_keys_rendering_to_the_same_text_are_an_error() -> None:
    with pytest.raises(RenderError, match="two keys of this mapping render to 'churn'"):
        render_one("m:\n  churn: 1\n  ${model.name}: 2\n")
