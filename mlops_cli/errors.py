"""The two kinds of failure a user sees: exit 1 (the operation failed) and exit 2 (bad usage or
config). Core code raises these with a complete, actionable message; the CLI prints it as one
`error:` line — never a traceback."""

from __future__ import annotations


class IrisError(Exception):
    """An operation failed (exit 1). The message says what happened and what to do next."""

    exit_code = 1

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message)
        # Facts a script may want beside the message (e.g. an endpoint's status and answer);
        # `--json` puts them into the error object.
        self.details = details


class UsageError(IrisError):
    """Bad usage, config or environment, e.g. missing credentials (exit 2)."""

    exit_code = 2
