"""`hydrator.metadata`: what an environment branch's commit was rendered from.

The top-level fields follow Argo CD's source hydrator and GitOps Promoter (`repoURL`, `drySha`,
`author`, `date`, `subject`, `body`), so their tooling can read promoter's branches. Promoter's
own fields sit under the `promoter` key: they are how promoter knows which model version an
environment runs (the baseline for evaluation, the source of the next promotion).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from promoter.errors import PromoterError

METADATA_FILE = "hydrator.metadata"
SCHEMA_VERSION = 1


class MetadataError(PromoterError):
    """A branch's hydrator.metadata is missing fields or is not JSON."""


@dataclass(frozen=True, slots=True)
class DeployedModel:
    """The model version an environment branch's commit deploys."""

    environment: str
    model: str
    version: int
    digest: str
    """`sha256:` content digest of the SavedModel directory."""
    model_uri: str
    """Where promoter found the SavedModel when it rendered this commit."""
    promoted_from: str | None
    """Environment the version came from (None for the first environment)."""
    manifests_digest: str
    """`sha256:` over the rendered manifests, so a reader can tell a re-render changed nothing."""


@dataclass(frozen=True, slots=True)
class HydratorMetadata:
    repo_url: str
    dry_sha: str
    author: str
    date: str
    """RFC 3339 time of the dry commit."""
    subject: str
    body: str
    deployed: DeployedModel

    def to_json(self) -> bytes:
        """Serialize with sorted keys and a trailing newline, so equal metadata is equal bytes."""
        data: dict[str, Any] = {
            "repoURL": self.repo_url,
            "drySha": self.dry_sha,
            "author": self.author,
            "date": self.date,
            "subject": self.subject,
            "body": self.body,
            "promoter": {
                "schemaVersion": SCHEMA_VERSION,
                "environment": self.deployed.environment,
                "model": self.deployed.model,
                "version": self.deployed.version,
                "digest": self.deployed.digest,
                "modelURI": self.deployed.model_uri,
                "promotedFrom": self.deployed.promoted_from,
                "manifestsDigest": self.deployed.manifests_digest,
            },
        }
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, *, where: str) -> HydratorMetadata:
        """Parse metadata read from `where` (e.g. `environments/prod@1a2b3c4`)."""
        try:
            data = json.loads(raw)
            own = data["promoter"]
            return cls(
                repo_url=str(data["repoURL"]),
                dry_sha=str(data["drySha"]),
                author=str(data.get("author", "")),
                date=str(data.get("date", "")),
                subject=str(data.get("subject", "")),
                body=str(data.get("body", "")),
                deployed=DeployedModel(
                    environment=str(own["environment"]),
                    model=str(own["model"]),
                    version=int(own["version"]),
                    digest=str(own["digest"]),
                    model_uri=str(own.get("modelURI", "")),
                    promoted_from=own.get("promotedFrom"),
                    manifests_digest=str(own.get("manifestsDigest", "")),
                ),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise MetadataError(
                f"{where}: {METADATA_FILE} is not valid promoter metadata ({exc!r})",
                fix="re-propose the environment with `promoter propose` to rewrite it",
            ) from exc
