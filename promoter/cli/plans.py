"""`promoter propose --dry-run`: what `propose` would write, found by reading only.

The promotion service has no planning call for proposals, so this module asks the same
questions `promoter.promotion.proposing.Proposer.propose` asks, in the same order and with the
same errors, through public reads: the render of the dry branch's head (`hydrate`), the
upstream gate (`decide_upstream`), what the environment runs, the open pull request and the
proposal branch's head. What it cannot tell without writing: the proposal commit's sha, and
whether an open PR's commit would be reused byte for byte (it says "update" when the PR
proposes another version or other manifests, "unchanged" when it proposes exactly these).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from promoter.config.loader import LoadedSettings
from promoter.errors import PromotionError
from promoter.policy import decide_upstream
from promoter.promotion.conventions import ROLLBACK_LABEL
from promoter.promotion.hydrate import hydrate
from promoter.promotion.service import PromotionService
from promoter.render.metadata import METADATA_FILE, HydratorMetadata, MetadataError
from promoter.wiring import Adapters

_KEPT = (METADATA_FILE, "README.md")
"""Files of an environment branch that are not rendered manifests."""


@dataclass(frozen=True, slots=True)
class ProposalPlan:
    environment: str
    model: str
    version: int
    digest: str
    action: str
    """`open`, `update`, `unchanged` or `none` (the environment already runs it)."""
    head_branch: str
    base_branch: str
    base_head: str | None
    """The environment branch's commit the proposal would sit on; None: it would be created."""
    pull_request: int | None
    changed_files: tuple[str, ...]

    def describe(self) -> str:
        what = f"{self.model} v{self.version} ({self.digest[:19]}) to {self.environment}"
        if self.action == "none":
            return (f"dry run: {self.environment} already runs {self.model} v{self.version}; "
                    "propose would write nothing")
        verb = {"open": "open a PR", "update": f"update PR #{self.pull_request}",
                "unchanged": f"leave PR #{self.pull_request} as it is"}[self.action]
        base = (f"{self.base_branch}@{self.base_head[:12]}" if self.base_head
                else f"{self.base_branch} (created first, with a README)")
        lines = [f"dry run: propose would {verb}: promote {what}"]
        if self.action != "unchanged":
            lines.append(f"  one commit on {self.head_branch}, on top of {base}")
        if self.changed_files:
            lines.append("  changes: " + ", ".join(self.changed_files))
        lines.append("  nothing was written")
        return "\n".join(lines)

    def document(self) -> dict[str, Any]:
        return {"dryRun": True, "environment": self.environment, "model": self.model,
                "version": self.version, "digest": self.digest, "action": self.action,
                "headBranch": self.head_branch, "baseBranch": self.base_branch,
                "baseHead": self.base_head, "pullRequest": self.pull_request,
                "changedFiles": list(self.changed_files)}


def plan_proposal(loaded: LoadedSettings, adapters: Adapters, service: PromotionService, *,
                  environment: str, model: str, version: int) -> ProposalPlan:
    """What `service.propose(environment, model, version)` would do now. Raises what it
    would raise for bad input (BadInputError subclasses), before anything else."""
    repo, forge = adapters.repo, adapters.forge
    _, dry = service.dry_config()
    hydrated = hydrate(dry, loaded.settings, adapters.store, environment=environment,
                       model=model, version=version, config_file=str(loaded.path))
    env, candidate, rendered = hydrated.environment, hydrated.version, hydrated.manifests
    upstream = dry.environment(env.promotes_from) if env.promotes_from else None
    gate = decide_upstream(model=model, version=version, digest=candidate.digest,
                           promotes_from=env.promotes_from,
                           upstream=service.deployed(upstream) if upstream else None)
    if not gate.passed:
        raise PromotionError(f"cannot propose {model} v{version} to {env.name}: "
                             f"{gate.description}",
                             fix=f"promote {model} v{version} to {env.promotes_from} first")
    base_head = repo.branch_head(env.branch)
    deployed = service.deployed(env)

    def plan(action: str, pull: int | None, changed: tuple[str, ...]) -> ProposalPlan:
        return ProposalPlan(environment=env.name, model=model, version=version,
                            digest=candidate.digest, action=action,
                            head_branch=env.proposal_branch, base_branch=env.branch,
                            base_head=base_head, pull_request=pull, changed_files=changed)

    if deployed is not None and deployed.manifests_digest == rendered.digest():
        return plan("none", None, ())
    current: dict[str, bytes | None] = {}
    if base_head is not None:
        current = {p: repo.read_file(base_head, p) for p in repo.list_files(base_head)
                   if p not in _KEPT}
    changed = tuple(p for p in sorted(set(current) | set(rendered.files))
                    if current.get(p) != rendered.files.get(p))
    existing = forge.find_open_pull_request(head=env.proposal_branch, base=env.branch)
    if existing is None:
        return plan("open", None, changed)
    if ROLLBACK_LABEL in existing.labels:
        raise PromotionError(f"a rollback of {env.name} is open as PR #{existing.number}",
                             fix="merge or close the rollback first; a promotion would "
                                 "overwrite it")
    next_head = repo.branch_head(env.proposal_branch)
    if next_head is not None and next_head != existing.head_sha:
        raise PromotionError(
            f"{env.proposal_branch} is at {next_head[:12]} but promoter last wrote "
            f"{existing.head_sha[:12]}: someone else pushed to the proposal branch (propose "
            "would refuse too, and say so on the PR)",
            fix=f"look at the extra commits on {env.proposal_branch}, then close "
                f"PR #{existing.number} and delete the branch to start over")
    raw = repo.read_file(existing.head_sha, METADATA_FILE)
    try:
        proposed = (HydratorMetadata.from_json(raw, where=existing.head_branch)
                    if raw is not None else None)
    except MetadataError:
        proposed = None
    same = (proposed is not None and proposed.deployed.digest == candidate.digest
            and proposed.deployed.version == version
            and proposed.deployed.manifests_digest == rendered.digest()
            and repo.commit_info(existing.head_sha).parents == (base_head,))
    return plan("unchanged" if same else "update", existing.number, changed)
