"""Load and validate promoter's configuration from a directory or a git commit.

The dry source (`environments/`, `policies/`, `manifests/`) is read through a `ConfigSource`, so
the same code validates a working tree (`promoter validate`) and the protected dry branch at an
exact commit (`propose`, `reconcile`): a pull request can never weaken its own gate because the
gate is never read from the pull request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from promoter.config.schema import EnvironmentSpec, PolicySpec, Settings
from promoter.config.yaml_documents import kind_of, parse_yaml, validate_model
from promoter.errors import ConfigError

DEFAULT_CONFIG_FILE = "promoter.yaml"
CONFIG_ENV_VAR = "PROMOTER_CONFIG"

class ConfigSource(Protocol):
    """Read-only view of a tree of configuration files (a directory or a git commit)."""

    def read_text(self, path: str) -> str | None:
        """Return the file at `path` (POSIX, relative to the root), or None if it is absent."""
        ...

    def list_files(self, directory: str) -> list[str]:
        """Return the relative paths of the files under `directory`, sorted; [] if absent."""
        ...

    def describe(self) -> str:
        """Say where the files come from, for messages (e.g. `main@1a2b3c4`)."""
        ...


@dataclass(frozen=True, slots=True)
class DirectorySource:
    """A `ConfigSource` over a directory on disk."""

    root: Path

    def read_text(self, path: str) -> str | None:
        file = self.root / path
        try:
            return file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError as exc:
            raise ConfigError(path, f"not UTF-8 text ({exc.reason})") from exc

    def list_files(self, directory: str) -> list[str]:
        base = self.root / directory
        if not base.is_dir():
            return []
        return sorted(
            PurePosixPath(p.relative_to(self.root)).as_posix()
            for p in base.rglob("*")
            if p.is_file()
        )

    def describe(self) -> str:
        return str(self.root)


@dataclass(frozen=True, slots=True)
class DryConfig:
    """Environments, policies and manifest templates from one dry-source revision."""

    environments: dict[str, EnvironmentSpec]
    """By name, in promotion order."""
    policies: dict[str, PolicySpec]
    templates: dict[str, str]
    """`manifests/` files by path relative to `manifests/` (e.g. `serving/deployment.yaml`)."""
    source: str
    """Where this was read from (`DirectorySource`/git commit description)."""
    settings: Settings | None = None
    """promoter.yaml as this revision has it, when it holds one at its root: the models'
    settings (task, signature, output, labelColumn...) are read from here, at the same exact
    commit as the policies, so what a verdict was judged with is pinned too. None: the
    revision has no promoter.yaml and the running one's apply."""
    crds: Mapping[str, str] = field(default_factory=dict)
    """The user's CustomResourceDefinitions: every `*.yaml`/`*.yml` file under
    `render.crdDirectory`, by path from the root (e.g. `crds/widget.yaml`) to text. Read at the
    same revision as the templates, so objects are validated against the CRDs they were
    rendered with; {} when no directory is configured."""

    def model_settings(self, fallback: Settings) -> Settings:
        """The settings whose `models` apply to this revision (see `settings`)."""
        return self.settings or fallback

    def environment(self, name: str) -> EnvironmentSpec:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.environments)
            raise ConfigError(
                f"environments/{name}.yaml", f"no environment named {name!r}",
                fix=f"use one of: {known}",
            ) from None

    def policy_for(self, environment: EnvironmentSpec) -> PolicySpec:
        return self.policies[environment.policy]


@dataclass(frozen=True, slots=True)
class LoadedSettings:
    """`promoter.yaml` and the directory its relative paths are resolved against."""

    settings: Settings
    path: Path
    """The promoter.yaml file itself."""

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, path: str) -> Path:
        """Resolve a path from the configuration relative to promoter.yaml's directory."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()


def find_settings_file(explicit: str | None) -> Path:
    """Pick promoter.yaml: `--config`, else `$PROMOTER_CONFIG`, else `./promoter.yaml`."""
    chosen = explicit or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_FILE
    return Path(chosen).expanduser().resolve()


def load_settings(path: Path) -> LoadedSettings:
    """Read and validate promoter.yaml. Raises ConfigError naming the file and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(path), "file not found",
            fix=f"create it, pass --config PATH, or set {CONFIG_ENV_VAR}",
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            str(path), "is a directory, not a promoter.yaml file",
            fix=f"pass the file itself (--config or {CONFIG_ENV_VAR}), e.g. "
                f"{path / DEFAULT_CONFIG_FILE}",
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file ({exc.strerror or exc})",
                          fix="check the path and its permissions") from exc
    data = parse_yaml(text, str(path))
    settings = validate_model(Settings, data, str(path))
    return LoadedSettings(settings=settings, path=path)


def load_dry_config(source: ConfigSource, settings: Settings) -> DryConfig:
    """Read and cross-check every environment, policy and template from `source`.

    Raises ConfigError on the first problem; callers must not have written anything yet.
    """
    environments: dict[str, EnvironmentSpec] = {}
    order = list(settings.environments)
    for index, name in enumerate(order):
        file = f"environments/{name}.yaml"
        data = _read_mapping(source, file, fix=f"create {file} or remove {name!r} from "
                             "environments in promoter.yaml")
        data.setdefault("name", name)
        if index > 0:
            data.setdefault("promotesFrom", order[index - 1])
        env = validate_model(EnvironmentSpec, data, file)
        if env.name != name:
            raise ConfigError(file, f"expected {name!r} (the file's name), got {env.name!r}",
                              field="name")
        if env.promotes_from is not None and env.promotes_from not in order[:index]:
            raise ConfigError(
                file, f"{env.promotes_from!r} is not an environment before {name!r}",
                field="promotesFrom", fix=f"use one of: {', '.join(order[:index]) or 'none'}",
            )
        environments[name] = env
    _require_distinct_branches(environments, settings.repository.dry_branch)

    unused = [f for f in source.list_files("environments")
              if f.endswith((".yaml", ".yml")) and PurePosixPath(f).stem not in environments]
    if unused:
        raise ConfigError(
            unused[0], "environment file not listed in promoter.yaml's environments",
            fix="add it to environments in promoter.yaml or delete the file",
        )

    policies: dict[str, PolicySpec] = {}
    for env in environments.values():
        if env.policy in policies:
            continue
        file = f"policies/{env.policy}.yaml"
        data = _read_mapping(source, file, fix=f"create {file} or change 'policy' in "
                             f"environments/{env.name}.yaml")
        data.setdefault("name", env.policy)
        policy = validate_model(PolicySpec, data, file)
        if policy.name != env.policy:
            raise ConfigError(file, f"expected {env.policy!r}, got {policy.name!r}",
                              field="name")
        policies[env.policy] = policy

    revision = _settings_at(source)
    templates = {}
    for file in source.list_files("manifests"):
        text = source.read_text(file)
        if text is not None:
            templates[PurePosixPath(file).relative_to("manifests").as_posix()] = text
    if not templates:
        raise ConfigError("manifests/", "no manifest templates found",
                          fix="add manifests/serving/*.yaml and manifests/training/*.yaml")
    return DryConfig(environments=environments, policies=policies, templates=templates,
                     source=source.describe(), settings=revision,
                     crds=_read_crd_files(source, revision or settings))


def _read_crd_files(source: ConfigSource, settings: Settings) -> dict[str, str]:
    """The files under `render.crdDirectory` (of the revision's promoter.yaml, as the models'
    settings are); a configured directory without a YAML file is a mistake, not "no CRDs"."""
    directory = settings.render.crd_directory
    if directory is None:
        return {}
    crds = {}
    for file in source.list_files(directory):
        if file.endswith((".yaml", ".yml")):
            text = source.read_text(file)
            if text is not None:
                crds[file] = text
    if not crds:
        raise ConfigError(
            DEFAULT_CONFIG_FILE, f"{directory}/ holds no YAML file in {source.describe()}",
            field="render.crdDirectory",
            fix=f"add the CustomResourceDefinitions your templates use to {directory}/, or "
                "remove render.crdDirectory",
        )
    return crds


def _settings_at(source: ConfigSource) -> Settings | None:
    """promoter.yaml of the revision itself, validated like the running one."""
    text = source.read_text(DEFAULT_CONFIG_FILE)
    if text is None:
        return None
    where = f"{DEFAULT_CONFIG_FILE} ({source.describe()})"
    return validate_model(Settings, parse_yaml(text, where), where)


def _read_mapping(source: ConfigSource, file: str, *, fix: str) -> dict[str, Any]:
    text = source.read_text(file)
    if text is None:
        raise ConfigError(file, f"file not found in {source.describe()}", fix=fix)
    data = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise ConfigError(file, f"expected a mapping at the top level, got {kind_of(data)}")
    return data


def _require_distinct_branches(environments: dict[str, EnvironmentSpec],
                               dry_branch: str) -> None:
    """Every environment writes its own two branches and nothing else.

    Promoter merges hydrated manifests into `branch` and rewrites `<branch>-next`: either one
    being the dry branch would replace the dry source (promoter.yaml, policies) with
    generated output, and a branch nested under another cannot exist beside it in git.
    """
    for env in environments.values():
        example = f"environments/{env.name}"
        if dry_branch in (example, f"{example}-next"):
            example = f"deploy/{env.name}"
        for kind, branch in (("branch", env.branch), ("proposal branch", env.proposal_branch)):
            if branch == dry_branch:
                raise ConfigError(
                    f"environments/{env.name}.yaml",
                    f"the {kind} {branch!r} is the dry branch (repository.dryBranch in "
                    "promoter.yaml): hydrated manifests written there would replace the dry "
                    "source", field="branch",
                    fix=f"give {env.name} a branch of its own, e.g. {example}",
                )
        for inner, outer in ((env.branch, dry_branch), (dry_branch, env.branch)):
            if inner.startswith(outer + "/"):
                raise ConfigError(
                    f"environments/{env.name}.yaml",
                    f"branch {env.branch!r} and the dry branch {dry_branch!r} "
                    "(repository.dryBranch in promoter.yaml) cannot both exist in git: one "
                    "lives under the other", field="branch",
                    fix=f"use a sibling name such as {example}",
                )
    owner: dict[str, str] = {}
    for env in environments.values():
        for branch in (env.branch, env.proposal_branch):
            if branch in owner:
                raise ConfigError(
                    f"environments/{env.name}.yaml",
                    f"branch {branch!r} is already used by environment {owner[branch]!r}",
                    field="branch", fix="give every environment its own branch",
                )
            owner[branch] = env.name
    for env in environments.values():
        for other in environments.values():
            if other is not env and other.branch.startswith(env.branch + "/"):
                raise ConfigError(
                    f"environments/{other.name}.yaml",
                    f"branch {other.branch!r} cannot live under {env.branch!r} in git",
                    field="branch", fix="use sibling names such as environments/<env>",
                )
