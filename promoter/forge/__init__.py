"""The forge: where promotions are proposed, gated, approved and merged.

`Forge` and `ReviewRecorder` are the ports (`promoter.forge.base`), with optional capabilities
in `promoter.forge.capabilities`; `LocalForge` (`promoter.forge.local`) and `GitHubForge`
(`promoter.forge.github`) are the adapters. The values they exchange are in
`promoter.domain.pull_requests`. Importing this package imports no adapter (no SQLite, no
PyGithub): code that needs only the port pays for no implementation.
"""
