"""The three template mistakes of issue #15, shared by the render, CLI and promotion tests.

Each one rendered, proposed and merged before validation existed, although an API server (or
the kubelet) refuses the object: a misspelt kind, a quoted port, an empty image. Every test
that uses them checks the same thing from its own side: the error names the template file,
the object, the field and the fix, and nothing is written.

`WIDGET_CRD` and `WIDGET` are a user's own CRD (for `render.crdDirectory`) and a template of
its custom kind.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BadManifest:
    """One edit of a real template in `manifests/` and what the error must say."""

    id: str
    template: str
    """Path relative to `manifests/`."""
    old: str
    new: str
    located: str
    """The start of the message: `manifests/<file>: <Kind> <name>: <field>: `."""
    problem: str
    """A fragment of the problem, after the location."""
    fix: str
    """A fragment of the fix."""


BAD_MANIFESTS = (
    BadManifest(
        id="kind-typo", template="serving/service.yaml",
        old="kind: Service\n", new="kind: Servce\n",
        located="manifests/serving/service.yaml: Servce churn: kind: ",
        problem="unknown kind 'Servce'",
        fix="did you mean `kind: Service` (apiVersion v1)?",
    ),
    BadManifest(
        id="string-port", template="serving/service.yaml",
        old="port: ${serving.grpcPort}", new='port: "8500"',
        located="manifests/serving/service.yaml: Service churn: spec.ports[0].port: ",
        problem="must be an integer, got '8500'",
        fix="remove the quotes",
    ),
    BadManifest(
        id="empty-image", template="serving/deployment.yaml",
        old="image: ${serving.image}", new='image: ""',
        located="manifests/serving/deployment.yaml: Deployment churn: "
                "spec.template.spec.containers[0].image: ",
        problem="is empty",
        fix="serving.image",
    ),
)

WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.test
spec:
  group: example.test
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            metadata: {type: object}
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1}
"""

WIDGET = """\
apiVersion: example.test/v1
kind: Widget
metadata:
  name: ${model.name}-widget
  namespace: ${env.namespace}
spec:
  size: ${serving.replicas}
"""
