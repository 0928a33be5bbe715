"""Rendering: the dry source (templates + environment + model version) to plain Kubernetes YAML.

The core is pure: functions take values and return values, and never read files, git or the
cluster. `render_environment` is what the promotion service calls; the smaller pieces are
exported for the CLI (`promoter render`) and for tests.

Modules, by responsibility:

- `variables`: the variables a template may use, and the generated ModelServerConfig;
- `templating`: parse a template as YAML, then substitute `${...}` in the parsed tree;
- `tfjob`: how the TFJob template expresses optional roles (PS, Chief);
- `invariants`: what rendered objects must still do for promotion to be safe, and in which
  order the rules (`object_rules`, `workload_rules`) and the schemas apply; `release`: what they
  are checked against;
- `validation`: whether the API server would accept them (Kubernetes and CRD schemas);
- `yaml_output`: byte-for-byte deterministic YAML;
- `hydrate`: `render_environment` and `RenderedManifests`, tying the above together;
- `metadata`: the `hydrator.metadata` file written next to the rendered manifests.
"""

from promoter.render.hydrate import RenderedManifests, render_environment, render_objects
from promoter.render.invariants import check_invariants
from promoter.render.metadata import (
    METADATA_FILE,
    DeployedModel,
    HydratorMetadata,
    MetadataError,
)
from promoter.render.objects import RenderedObject
from promoter.render.release import MODEL_DIGEST_ANNOTATION, MODEL_VERSION_ANNOTATION, Release
from promoter.render.templating import Variables, parse_template, render_template, substitute
from promoter.render.validation import ObjectSchemas
from promoter.render.variables import (
    build_variables,
    model_base_path,
    render_model_server_config,
    resources_to_kubernetes,
)
from promoter.render.yaml_output import KUSTOMIZATION_FILE, dump_documents, render_kustomization

__all__ = [
    "KUSTOMIZATION_FILE",
    "METADATA_FILE",
    "MODEL_DIGEST_ANNOTATION",
    "MODEL_VERSION_ANNOTATION",
    "DeployedModel",
    "HydratorMetadata",
    "MetadataError",
    "ObjectSchemas",
    "Release",
    "RenderedManifests",
    "RenderedObject",
    "Variables",
    "build_variables",
    "check_invariants",
    "dump_documents",
    "model_base_path",
    "parse_template",
    "render_environment",
    "render_kustomization",
    "render_model_server_config",
    "render_objects",
    "render_template",
    "resources_to_kubernetes",
    "substitute",
]
