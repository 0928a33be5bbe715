"""The third-party schemas promoter ships, and the validator built from the CRDs (pure).

The data lives in this package, not beside the repository, so that a plain clone, an
installed wheel and a container image all validate against the same files:

- `crds/`: the CustomResourceDefinitions of the Flux, Argo CD and Kubeflow kinds promoter
  generates or reads (pinned release tags, Apache-2.0);
- `github/`: a subset of GitHub's REST OpenAPI description and example webhook deliveries
  (MIT), which keep the tests' fake GitHub honest.

`SOURCES.md` names the upstream project, release and sha256 of every file; the licence files sit
beside the data they cover. Files are read with `importlib.resources`, so they are found
wherever the package is installed (directory or zip).

    from promoter.schemas import crd_schema, validate_crd_object

    validate_crd_object(tfjob)          # raises SchemaValidationError listing every problem
    schema = crd_schema("kubeflow.org/v1", "TFJob")   # the JSON Schema it validates against

This module and `crd` import no git, GitHub, Kubernetes or TensorFlow code: validating a
manifest needs only the manifest.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from promoter.schemas.crd import (
    SchemaValidationError,
    crd_kinds,
    crd_schema,
    crd_schemas,
    crd_validator,
    format_path,
    object_name,
    object_type,
    openapi_to_json_schema,
    schema_validator,
    validate_crd_object,
)

__all__ = [
    "SchemaValidationError",
    "crd_kinds",
    "crd_schema",
    "crd_schemas",
    "crd_validator",
    "data_file",
    "format_path",
    "object_name",
    "object_type",
    "openapi_to_json_schema",
    "schema_validator",
    "validate_crd_object",
]


def data_file(*parts: str) -> Traversable:
    """A file or folder of the packaged schema data, e.g. `data_file("github", "webhooks")`.

    A Traversable rather than a Path because an installed package need not be a directory;
    `read_text`, `read_bytes`, `iterdir` and `/` work either way.
    """
    return files(__name__).joinpath(*parts)
