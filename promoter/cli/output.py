"""How every `promoter` command answers: `-o text|json|yaml`, errors, colour and verbosity.

A command builds its answer twice, as a document (plain JSON values, camelCase keys, the shape
the REST API uses where it has one) and as text for people, and calls `emit`; errors go
through `emit_error`, so they are JSON (or YAML) on stderr exactly when the answer would be.

The global options (`--config`, `-o`, `--json`, `-v`) are accepted before the subcommand and
after it, like kubectl's: `add_global_options` gives every command its own copy, and their
callbacks store the values in `click.Context.meta`, which a command's context shares with the
group's. A value given after the subcommand wins over one given before it. Keeping them in
`meta` (not in `ctx.obj`) lets a command run under any context object, as the tests do.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

FORMAT_KEY = "promoter.output"
VERBOSITY_KEY = "promoter.verbosity"
REPORTS_ATTRIBUTE = "promoter_reports"
"""Set on a command that takes `-o`: it answers with `emit`."""


class Format(enum.StrEnum):
    TEXT = "text"
    JSON = "json"
    YAML = "yaml"


def current_format() -> Format:
    """The format the running command answers in (text outside a command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return Format.TEXT
    value = ctx.meta.get(FORMAT_KEY)
    return Format(value) if value is not None else Format.TEXT


def is_structured() -> bool:
    """True for -o json and -o yaml: stdout is one document, and nothing else is printed."""
    return current_format() is not Format.TEXT


def render_document(document: Mapping[str, Any], fmt: Format) -> str:
    if fmt is Format.YAML:
        import yaml

        return str(yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True))
    return json.dumps(document, indent=2)


def emit(document: Mapping[str, Any], text: str | Callable[[], str]) -> None:
    """Print the command's answer in the chosen format: `text` (a string, or a function that
    makes it, so the JSON path does not build it) or `document`."""
    fmt = current_format()
    if fmt is Format.TEXT:
        out = text() if callable(text) else text
        if out:
            click.echo(out)
        return
    click.echo(render_document(document, fmt), nl=fmt is Format.JSON)


def emit_error(message: str, *, fix: str | None = None, kind: str = "error",
               exit_code: int = 1, extra: Mapping[str, Any] | None = None) -> None:
    """Print one error on stderr: `error: MESSAGE` and `  fix: FIX` as text, or a document
    with the same fields (`error`, `fix`) plus `kind` and `exitCode` in JSON and YAML."""
    fmt = current_format()
    if fmt is Format.TEXT:
        click.echo(styled("error:", "bad", err=True) + f" {message}", err=True)
        if fix:
            click.echo(f"  fix: {fix}", err=True)
        return
    document = {"error": message, "fix": fix, "kind": kind, "exitCode": exit_code,
                **(extra or {})}
    click.echo(render_document(document, fmt), err=True, nl=fmt is Format.JSON)


def fail(message: str, *, fix: str | None = None, kind: str = "error",
         exit_code: int = 1) -> NoReturn:
    """`emit_error`, then exit with `exit_code`."""
    emit_error(message, fix=fix, kind=kind, exit_code=exit_code)
    sys.exit(exit_code)


# --- colour ------------------------------------------------------------------------------------

_COLOURS: dict[str, dict[str, Any]] = {
    "ok": {"fg": "green"},
    "bad": {"fg": "red", "bold": True},
    "wait": {"fg": "yellow"},
    "dim": {"dim": True},
    "title": {"bold": True},
}


def colour_enabled(stream: Any = None) -> bool:
    """Colour only for people: a terminal, text output, `NO_COLOR` unset or empty
    (https://no-color.org), and a terminal that is not `dumb`."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    if is_structured():
        return False
    return is_terminal(stream if stream is not None else sys.stdout)


def is_terminal(stream: Any) -> bool:
    """Whether `stream` is a terminal (a person reading), not a pipe or a file."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def styled(text: str, role: str, *, err: bool = False) -> str:
    """`text` coloured for `role` (ok, bad, wait, dim, title) when colour is on for stdout,
    or for stderr with `err`."""
    if role not in _COLOURS or not colour_enabled(sys.stderr if err else sys.stdout):
        return text
    return click.style(text, **_COLOURS[role])


def style() -> Callable[[str, str], str]:
    """The `style` argument of `promoter.plain_text`'s functions for stdout: colours when
    colour is on, the text unchanged otherwise."""
    if not colour_enabled():
        return _plain
    return lambda text, role: click.style(text, **_COLOURS[role]) if role in _COLOURS else text


def _plain(text: str, role: str) -> str:
    return text


# --- global options ------------------------------------------------------------------------------

def _store_format(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[FORMAT_KEY] = value


def _store_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[FORMAT_KEY] = Format.JSON.value


def _store_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if not value:
        return
    total = ctx.meta.get(VERBOSITY_KEY, 0) + value
    ctx.meta[VERBOSITY_KEY] = total
    configure_logging(total)


def _store_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    ctx.meta["promoter.config"] = value
    use_config = getattr(ctx.find_object(object), "use_config", None)
    if use_config is not None:
        use_config(value)


def configure_logging(verbosity: int) -> None:
    """Warnings by default, -v info, -vv debug, on stderr. Below -vv the HTTP client's own
    retry warnings are hidden: promoter logs one line per attempt of its own instead."""
    level = logging.WARNING - 10 * min(verbosity, 2)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, stream=sys.stderr,
                            format="%(levelname)s %(name)s: %(message)s")
    elif verbosity:  # configured by whoever runs us (a test, an embedding program)
        root.setLevel(level)
    logging.getLogger("urllib3").setLevel(logging.DEBUG if verbosity >= 2 else logging.ERROR)


def config_option() -> click.Option:
    return click.Option(["--config"], metavar="FILE", expose_value=False, is_eager=True,
                        callback=_store_config,
                        help="promoter.yaml to use [default: $PROMOTER_CONFIG or "
                             "./promoter.yaml].")


def verbosity_option() -> click.Option:
    return click.Option(["-v", "--verbose"], count=True, expose_value=False,
                        callback=_store_verbosity, help="Log more (-v info, -vv debug).")


def format_options(long_name: str | None = "--output") -> list[click.Option]:
    """`-o/--output FORMAT` and its alias `--json`. `long_name` None: `-o` and `--format`
    only (for `evaluate`, whose `--output` names the signature output)."""
    names = ["-o", long_name] if long_name else ["-o", "--format"]
    return [
        click.Option([*names, "output_format"], type=click.Choice([f.value for f in Format]),
                     default=None, expose_value=False, callback=_store_format,
                     metavar="text|json|yaml", help="Answer as text (default), JSON or YAML."),
        click.Option(["--json"], is_flag=True, expose_value=False, callback=_store_json,
                     help="The same as -o json."),
    ]


def reports(command: click.Command | None = None, *,
            long_name: str | None = "--output") -> Any:
    """Mark a command as one that answers with `emit`: it gets `-o` and `--json`.

    Usable as `@reports` above `@click.command` or called on a command object."""
    def apply(cmd: click.Command) -> click.Command:
        existing = {opt for p in cmd.params for opt in getattr(p, "opts", ())}
        cmd.params.extend(o for o in format_options(long_name)
                          if not existing.intersection(o.opts))
        setattr(cmd, REPORTS_ATTRIBUTE, True)
        return cmd

    if command is not None:
        return apply(command)
    return apply


def add_global_options(command: click.Command) -> None:
    """Give `command` and every subcommand below it `--config` and `-v`, so they can come
    after the subcommand too."""
    commands: Iterable[click.Command] = [command]
    if isinstance(command, click.Group):
        commands = [command, *command.commands.values()]
    for cmd in commands:
        if cmd is not command and isinstance(cmd, click.Group):
            add_global_options(cmd)
        existing = {opt for p in cmd.params for opt in getattr(p, "opts", ())}
        for option in (config_option(), verbosity_option()):
            if not existing.intersection(option.opts):
                cmd.params.append(option)


def requested_format(args: Sequence[str]) -> Format:
    """The format a command line asks for, read from the raw arguments: for errors found
    while parsing them, before any option callback has run."""
    fmt = Format.TEXT
    for index, arg in enumerate(args):
        if arg == "--":
            break
        value: str | None = None
        if arg == "--json":
            value = Format.JSON.value
        elif arg in ("-o", "--output", "--format") and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(("--output=", "--format=")):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-o") and len(arg) > 2:
            value = arg[2:].removeprefix("=")
        if value in {f.value for f in Format}:
            fmt = Format(value)
    return fmt
