"""Deterministic YAML output."""

from __future__ import annotations

import yaml

from promoter.render import dump_documents, render_kustomization


def test_keeps_key_order_and_indents_lists() -> None:
    out = dump_documents([{"kind": "X", "apiVersion": "v1", "items": [{"b": 1, "a": 2}]}])
    assert out == b"---\nkind: X\napiVersion: v1\nitems:\n  - b: 1\n    a: 2\n"


def test_multi_line_strings_are_literal_blocks() -> None:
    out = dump_documents([{"data": {"config": "line one\nline two\n"}}])
    assert out == b"---\ndata:\n  config: |\n    line one\n    line two\n"


def test_long_strings_are_never_folded() -> None:
    long = "x" * 500 + " " + "y" * 500
    out = dump_documents([{"a": long}])
    assert out == f"---\na: {long}\n".encode()


def test_strings_that_look_like_other_types_stay_strings() -> None:
    data = {"version": "3", "flag": "true", "empty": "", "octal": "010", "null": "null"}
    out = dump_documents([data])
    assert yaml.safe_load(out) == data


def test_shared_subtrees_are_written_out_without_anchors() -> None:
    shared = {"a": 1}
    out = dump_documents([{"x": shared, "y": shared}])
    assert b"&" not in out
    assert b"*" not in out
    assert yaml.safe_load(out) == {"x": {"a": 1}, "y": {"a": 1}}


def test_several_documents_and_header() -> None:
    out = dump_documents([{"a": 1}, {"b": 2}], header="one\ntwo")
    assert out == b"# one\n# two\n---\na: 1\n---\nb: 2\n"
    assert list(yaml.safe_load_all(out)) == [{"a": 1}, {"b": 2}]


def test_non_ascii_is_written_as_utf8() -> None:
    out = dump_documents([{"a": "café"}])
    assert "café".encode() in out


def test_kustomization_lists_resources_sorted() -> None:
    out = yaml.safe_load(render_kustomization(["training/tfjob.yaml", "serving/a.yaml"]))
    assert out == {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                   "resources": ["serving/a.yaml", "training/tfjob.yaml"]}
