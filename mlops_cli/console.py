"""Rich output in one place: results on stdout, progress and warnings on stderr.

Keeping progress on stderr is what lets `--json` promise exactly one JSON object on stdout, and
lets core code report progress through `Reporter` without knowing whether anyone is watching.
`print_json` keeps that promise for every command: a second object is a bug and raises, and
`print_json_error` writes the error object only when nothing was written yet.

Output that is not a terminal (a pipe, a file, CI's log) is never wrapped: a path, a URL or a
JSON log line cut at column 80 cannot be copied or parsed, and a reader's pager or editor wraps
better than we can. Tables then take the width their cells need.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


# Width for output that is not a terminal: wide enough that no table cell or line is folded.
UNWRAPPED_WIDTH = 10_000


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def make_console(stderr: bool = False) -> Console:
    """A terminal wraps to its width; anything else gets whole lines (see the module doc)."""
    tty = _isatty(sys.stderr if stderr else sys.stdout)
    return Console(
        stderr=stderr, no_color=_no_color(), highlight=False, soft_wrap=not tty,
        width=None if tty else UNWRAPPED_WIDTH,
    )


out = make_console()
err = make_console(stderr=True)


class Reporter:
    """Progress sink handed to core code. `quiet` (used with --json) keeps only warnings."""

    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or err

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message)

    def done(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[green]✓[/green] {message}")

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/yellow] {escape(message)}")

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[None]:
        """A spinner while a step runs, then a tick (or nothing when quiet or not a terminal)."""
        if self.quiet:
            yield
            return
        if self.console.is_terminal:
            with self.console.status(message):
                yield
        else:
            yield
        self.console.print(f"[green]✓[/green] {message}")


class NullReporter(Reporter):
    def __init__(self) -> None:
        super().__init__(quiet=True, console=Console(file=open(os.devnull, "w")))  # noqa: SIM115

    def warn(self, message: str) -> None:
        pass


_json_written = False


def begin_command() -> None:
    """A new command starts with nothing on stdout (matters when one process runs several)."""
    global _json_written
    _json_written = False


def print_json(data: Any) -> None:
    """The one JSON object of a `--json` run; a second one would break `json.load(stdout)`."""
    global _json_written
    if _json_written:
        raise RuntimeError("a second JSON object was about to be written to stdout")
    _json_written = True
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def print_json_error(message: str, exit_code: int, **details: Any) -> None:
    """`{"error": {...}}` on stdout — unless the run already wrote its object there."""
    if not _json_written:
        print_json({"error": {"message": message, "exit_code": exit_code, **details}})


def error(message: str) -> None:
    err.print(f"[bold red]error:[/bold red] {escape(message)}")
