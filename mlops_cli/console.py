"""Rich output in one place: results on stdout, progress and warnings on stderr.

Keeping progress on stderr is what lets `--json` promise exactly one JSON object on stdout, and
lets core code report progress through `Reporter` without knowing whether anyone is watching.
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


out = Console(no_color=_no_color(), highlight=False, soft_wrap=False)
err = Console(stderr=True, no_color=_no_color(), highlight=False)


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


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    err.print(f"[bold red]error:[/bold red] {escape(message)}")
