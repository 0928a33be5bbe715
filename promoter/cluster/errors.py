"""Errors reading the cluster. None of them means a rollout failed: they mean promoter could
not tell, so callers must not roll back on them."""

from __future__ import annotations

from promoter.errors import PromoterError


class ClusterError(PromoterError):
    """The cluster could not be read or written (API error, bad credentials, RBAC)."""


class ClusterObjectNotFoundError(ClusterError):
    """A Flux or Argo CD object promoter expects does not exist."""


class ClusterShapeError(ClusterError):
    """A cluster object does not have the shape its CRD promises (a field of the wrong type)."""


class ClusterUnreachableError(ClusterError):
    """The API server did not answer (connection refused, DNS, timeout)."""
