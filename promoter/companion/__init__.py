"""Flux and Argo CD companion objects: what a cluster needs to sync promoter's branches.

Pure and deterministic: environment specs and a repository URL in, YAML files out
(`generate_flux`, `generate_argo`). Nothing here talks to a cluster; `promoter.cluster` reads
the objects these files create back.
"""

from promoter.companion.argo import TFJOB_HEALTH_KEY, generate_argo, tfjob_health_lua
from promoter.companion.common import CompanionFiles, github_address, repository_url_for
from promoter.companion.flux import (
    RECEIVER_SECRET,
    STATUS_PROVIDER_SECRET,
    generate_flux,
    tfjob_health_exprs,
)

__all__ = [
    "RECEIVER_SECRET",
    "STATUS_PROVIDER_SECRET",
    "TFJOB_HEALTH_KEY",
    "CompanionFiles",
    "generate_argo",
    "generate_flux",
    "github_address",
    "repository_url_for",
    "tfjob_health_exprs",
    "tfjob_health_lua",
]
