"""Progress of long work (training, scoring), on stderr, so stdout stays the answer.

On a terminal one live line (a spinner, the stage and its seconds) that is erased before the
next output; elsewhere one plain line per stage, so a log of a CI job shows where the time
went; with `-o json` or `-o yaml`, nothing (stderr is for errors there, as documents).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import click

from promoter.cli.output import is_structured, is_terminal, styled

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_FRAME_S = 0.1


class Progress:
    """Reports stages of long work; `echo` prints the command's own output between them."""

    def __init__(self, stream: IO[str], *, live: bool, quiet: bool) -> None:
        self._stream = stream
        self._live = live and not quiet
        self._quiet = quiet
        self._lock = threading.Lock()
        self._stage: str | None = None
        self._started = 0.0
        self._shown = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def stage(self, text: str) -> None:
        """A stage starts (the previous one, if any, is over)."""
        if self._quiet:
            return
        with self._lock:
            self._stage, self._started = text, time.monotonic()
            if not self._live:
                click.echo(styled(f"… {text}", "dim", err=True), file=self._stream)
                return
            self._draw(0)
        if self._thread is None:
            self._thread = threading.Thread(target=self._spin, name="promoter-progress",
                                            daemon=True)
            self._thread.start()

    def done(self) -> None:
        """The current stage is over: erase the live line."""
        with self._lock:
            self._stage = None
            self._erase()

    def echo(self, text: str) -> None:
        """Print a line of the command's output (stdout); it ends the current stage."""
        self.done()
        click.echo(text)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.done()

    def _spin(self) -> None:
        frame = 0
        while not self._stop.wait(_FRAME_S):
            frame += 1
            with self._lock:
                if self._stage is not None:
                    self._draw(frame)

    def _draw(self, frame: int) -> None:
        elapsed = time.monotonic() - self._started
        line = f"{_SPINNER[frame % len(_SPINNER)]} {self._stage} ({elapsed:.0f}s)"
        self._stream.write("\r\x1b[2K" + styled(line, "dim", err=True))
        self._stream.flush()
        self._shown = True

    def _erase(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
            self._shown = False


@contextmanager
def progress_for(stream: IO[str] | None = None, *, live_only: bool = False
                 ) -> Iterator[Progress]:
    """A Progress on `stream` (default stderr): live on a terminal, one line per stage
    elsewhere (none with `live_only`: for a command whose one stage is all it does, the
    line would say nothing its answer does not), and quiet for documents."""
    stream = stream if stream is not None else sys.stderr
    live = is_terminal(stream)
    progress = Progress(stream, live=live, quiet=is_structured() or (live_only and not live))
    try:
        yield progress
    finally:
        progress.close()
