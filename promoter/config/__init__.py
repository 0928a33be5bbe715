"""Configuration: the schema of promoter's YAML files and how they are loaded and validated."""

from promoter.config.loader import (
    ConfigSource,
    DirectorySource,
    DryConfig,
    LoadedSettings,
    find_settings_file,
    load_dry_config,
    load_settings,
)
from promoter.config.schema import (
    EnvironmentSpec,
    MetricThreshold,
    ModelSpec,
    PolicySpec,
    Settings,
)

__all__ = [
    "ConfigSource",
    "DirectorySource",
    "DryConfig",
    "EnvironmentSpec",
    "LoadedSettings",
    "MetricThreshold",
    "ModelSpec",
    "PolicySpec",
    "Settings",
    "find_settings_file",
    "load_dry_config",
    "load_settings",
]
