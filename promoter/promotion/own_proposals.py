"""Promoter's own proposals: the files it writes for a version, and whether a commit is one.

Every proposal commit must be recognisable later without trusting its contents: a reconcile
checks that the head of `<env>-next` is still exactly what promoter renders, a re-run of a
killed `propose` takes over the commit it left, discovery asks what a closed proposal
proposed. All of them compare a commit with a fresh render (`expected_files`, cached) here;
`proposing` writes proposals, this module only renders and reads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from promoter.domain.model_versions import ModelVersion
from promoter.domain.pull_requests import login_key
from promoter.errors import BadInputError, GitError
from promoter.promotion.authorship import authors_in, trailers
from promoter.promotion.context import PromotionContext, Target
from promoter.promotion.conventions import ENV_BRANCH_README
from promoter.promotion.hydrate import hydrate
from promoter.render import RenderedManifests
from promoter.render.metadata import (
    METADATA_FILE,
    DeployedModel,
    HydratorMetadata,
    MetadataError,
)

_RENDER_CACHE_SIZE = 512
"""Renders kept for the reconcile's check (a few per environment, at most)."""


class OwnProposals:
    """Renders proposals and recognises the commits that are exactly one of them."""

    def __init__(self, context: PromotionContext) -> None:
        self._ctx = context
        # Renders are pure functions of these inputs; every reconcile checks its head against
        # one, so recent ones are kept (bounded, thread-safe: a whole value per key).
        self._renders: dict[tuple[str, str, str, int, str, str], dict[str, bytes]] = {}
        self._renders_lock = threading.Lock()

    def files_of(self, target: Target, rendered: RenderedManifests,
                 candidate: ModelVersion) -> dict[str, bytes]:
        """Every file of the proposal of `candidate`, whose render is `rendered`: the
        manifests, README and hydrator.metadata; remembered for `expected_files`."""
        files = self._proposal_files(target, rendered, candidate)
        self._remember(target, candidate, files)
        return files

    def _proposal_files(self, target: Target, rendered: RenderedManifests,
                        candidate: ModelVersion) -> dict[str, bytes]:
        deployed = DeployedModel(
            environment=target.environment.name, model=candidate.name,
            version=candidate.version, digest=candidate.digest, model_uri=candidate.uri,
            promoted_from=target.environment.promotes_from,
            manifests_digest=rendered.digest(),
        )
        metadata = self._metadata(target.dry_sha, deployed, repo_url=self._ctx.repo.url)
        return {**rendered.files, "README.md": ENV_BRANCH_README,
                METADATA_FILE: metadata.to_json()}

    def _metadata(self, dry_sha: str, deployed: DeployedModel, *,
                  repo_url: str) -> HydratorMetadata:
        """hydrator.metadata for `deployed`, rendered from the dry commit `dry_sha`."""
        dry_commit = self._ctx.repo.commit_info(dry_sha)
        return HydratorMetadata(
            repo_url=repo_url, dry_sha=dry_sha,
            author=f"{dry_commit.author.name} <{dry_commit.author.email}>",
            date=dry_commit.authored_at.isoformat(), subject=dry_commit.subject,
            body=dry_commit.body, deployed=deployed,
        )

    def expected_files(self, target: Target, *, model: str, version: int) -> dict[str, bytes]:
        """Every file of the proposal promoter would write now for `model` `version`: the
        render of the dry source at `target.dry_sha`, README and hydrator.metadata.

        Raises what hydration raises (BadInputError subclasses) for inputs that no longer
        render, e.g. a version removed from the store."""
        ctx = self._ctx
        # The render is a function of the dry commit, the environment, the version's bytes
        # (its digest, which the manifests pin) and the repository URL in the metadata.
        key = self._render_key(target, ctx.store.get(model, version))
        with self._renders_lock:
            cached = self._renders.get(key)
        if cached is not None:
            return dict(cached)
        hydrated = hydrate(target.dry, ctx.settings.settings, ctx.store,
                           environment=target.environment.name, model=model, version=version,
                           config_file=str(ctx.settings.path))
        return self.files_of(target, hydrated.manifests, hydrated.version)

    def _render_key(self, target: Target, version: ModelVersion
                    ) -> tuple[str, str, str, int, str, str]:
        return (target.dry_sha, target.environment.name, version.name, version.version,
                version.digest, self._ctx.repo.url)

    def _remember(self, target: Target, version: ModelVersion,
                  files: Mapping[str, bytes]) -> None:
        with self._renders_lock:
            if len(self._renders) >= _RENDER_CACHE_SIZE:
                self._renders.pop(next(iter(self._renders)))
            self._renders[self._render_key(target, version)] = dict(files)

    def holds_exactly(self, commit: str, env_head: str, files: Mapping[str, bytes]) -> bool:
        """True if `commit` is the proposal promoter writes: directly on `env_head`, with
        exactly `files` byte for byte.

        The one allowed difference is in hydrator.metadata's description of the dry commit
        it was rendered from: an earlier commit of the dry branch (the render it produced is
        the same bytes) or another repository URL (the repository moved). Everything that is
        deployed, every manifest and every model field must be identical. So a commit left by
        a killed `propose` is taken over, a proposal survives an unrelated dry-branch commit
        (and keeps its approvals), and a look-alike with one changed file is refused.
        """
        repo = self._ctx.repo
        if repo.commit_info(commit).parents != (env_head,):
            return False
        if repo.tree_id(commit) == repo.tree_of(files):
            return True  # byte for byte: the common case, without reading a file back
        if repo.list_files(commit) != sorted(files):
            return False
        if not all(repo.read_file(commit, path) == data for path, data in files.items()
                   if path != METADATA_FILE):
            return False
        actual = repo.read_file(commit, METADATA_FILE)
        expected = HydratorMetadata.from_json(files[METADATA_FILE], where="render")
        if actual == files[METADATA_FILE]:
            return True
        try:
            claimed = HydratorMetadata.from_json(actual or b"", where=f"proposal {commit[:12]}")
        except MetadataError:
            return False
        if claimed.deployed != expected.deployed or not _is_hex_sha(claimed.dry_sha):
            return False
        try:
            if not repo.is_ancestor(claimed.dry_sha, expected.dry_sha):
                return False
            described = self._metadata(claimed.dry_sha, expected.deployed,
                                       repo_url=claimed.repo_url)
        except GitError:
            return False  # names a commit this repository does not have
        return described.to_json() == actual

    def own_proposal_at(self, target: Target, commit: str) -> DeployedModel | None:
        """What `commit` proposes if it is a proposal promoter writes: one parent, in the
        environment branch's history, and byte for byte promoter's render now of the version
        its hydrator.metadata names (`holds_exactly`, against that parent). None for anything
        else: a commit someone else wrote (its metadata alone proves nothing), one this
        repository lacks, or a version that no longer renders."""
        repo, env = self._ctx.repo, target.environment
        try:
            parents = repo.commit_info(commit).parents
            meta = self._ctx.metadata_at(commit, where=env.proposal_branch)
        except (GitError, MetadataError):
            return None
        env_head = repo.branch_head(env.branch)
        if (meta is None or len(parents) != 1 or env_head is None
                or meta.deployed.environment != env.name
                or not repo.is_ancestor(parents[0], env_head)):
            return None
        try:
            files = self.expected_files(target, model=meta.deployed.model,
                                        version=meta.deployed.version)
        except BadInputError:
            return None
        return meta.deployed if self.holds_exactly(commit, parents[0], files) else None

    def is_own_commit(self, commit: str, env_head: str, files: Mapping[str, bytes],
                      target: Target, candidate: ModelVersion,
                      authors: tuple[str, ...]) -> bool:
        """True if `commit` is exactly the proposal commit promoter writes: its tree is
        `files` (`holds_exactly`) and its message is promoter's, naming at least `authors`.
        A commit a killed `propose` left passes; a copy whose message drops an author (to
        launder who proposed it) does not."""
        if not self.holds_exactly(commit, env_head, files):
            return False
        info = self._ctx.repo.commit_info(commit)
        listed = authors_in(info.body)
        if not {login_key(a) for a in authors} <= {login_key(a) for a in listed}:
            return False
        subject, _, body = self.commit_message(target, candidate, env_head,
                                               listed).partition("\n\n")
        return (info.subject, info.body) == (subject, body.rstrip("\n"))

    @staticmethod
    def commit_message(target: Target, candidate: ModelVersion, env_head: str,
                       authors: tuple[str, ...]) -> str:
        """The proposal commit's message: what it hydrates, from where, and who proposed it
        (one `Proposed-by:` trailer each)."""
        return (
            f"Hydrate {candidate.name} v{candidate.version} for {target.environment.name}\n\n"
            f"Model digest: {candidate.digest}\n"
            f"Dry source: {target.dry_sha}\n"
            f"Environment branch: {target.environment.branch}@{env_head}\n\n"
            f"{trailers(authors)}"
        )


def _is_hex_sha(value: str) -> bool:
    return len(value) == 40 and all(c in "0123456789abcdef" for c in value)
