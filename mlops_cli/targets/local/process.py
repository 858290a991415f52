"""Is the recorded server still ours, and how to stop it with everything it started.

A deployment record outlives its process (reboots, kill -9), and a pid can be reused by another
program, so "alive" means: the process exists, is not a zombie, and its command line is our
server module serving the recorded root. A zombie counts as gone — on this kind of machine PID 1
may take seconds to reap orphans.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_cli.targets.local.spec import SERVER_MODULE

_PROC = Path("/proc")


def proc_state(pid: int) -> str | None:
    """The one-letter state (`R`, `S`, `Z`...) or None when there is no such process."""
    if pid <= 0:
        return None
    if _PROC.is_dir():
        try:
            text = (_PROC / str(pid) / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
            return None
        # the command name (field 2) may hold spaces or parentheses: the state follows the last ')'
        return text.rsplit(")", 1)[1].split()[0]
    try:
        out = subprocess.run(
            ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[:1] or None


def proc_cmdline(pid: int) -> list[str] | None:
    if _PROC.is_dir():
        try:
            raw = (_PROC / str(pid) / "cmdline").read_bytes()
        except OSError:
            return None
        return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]
    try:
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.split() or None


def is_alive(pid: int, state: Callable[[int], str | None] = proc_state) -> bool:
    current = state(pid)
    return current is not None and current not in ("Z", "X")


def is_our_server(cmdline: list[str] | None, root: str | None) -> bool:
    """True when `cmdline` is a local server (for `root`, when given)."""
    if not cmdline or SERVER_MODULE not in cmdline:
        return False
    if root is None:
        return True
    return "--root" in cmdline and root in cmdline


def record_server_alive(
    record: dict[str, Any] | None,
    state: Callable[[int], str | None] = proc_state,
    cmdline: Callable[[int], list[str] | None] = proc_cmdline,
) -> bool:
    """Whether the server a deployment record names is running (a stale record is not)."""
    if not record:
        return False
    pid = record.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    root = record.get("root")
    return is_alive(pid, state) and is_our_server(cmdline(pid), root if root else None)


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (tests, a failed deploy)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(pid)
        if not is_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _live_processes() -> list[tuple[int, list[str]]]:
    """(pid, stat fields after the command: state, ppid, pgrp, ...) of every live process."""
    found: list[tuple[int, list[str]]] = []
    if not _PROC.is_dir():
        return found
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            found.append((int(entry.name), fields))
    return found


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group, from /proc (empty where it is absent)."""
    return [pid for pid, fields in _live_processes() if fields[2] == str(pgid)]


def server_processes(pid: int) -> list[int]:
    """A running server and its live workers (its children: each has a session of its own)."""
    if not is_alive(pid):
        return []
    children = sorted(child for child, fields in _live_processes() if fields[1] == str(pid))
    return [pid, *children]


def stop_group(pid: int, grace: float = 5.0) -> bool:
    """SIGTERM the server (the leader of its own group), then SIGKILL the group after `grace`.

    The server stops its workers on SIGTERM. Workers die with the server anyway (`spawn.py`:
    they have sessions of their own), so the group kill is for whatever else the server's group
    holds, and for workers where that tie is not available. Returns whether the server was
    running.
    """
    if not is_alive(pid):
        return False
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    group = pgid if pgid == pid else None  # only a group the server leads is ours to kill
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, grace):
        with contextlib.suppress(ProcessLookupError):
            if group is not None:
                os.killpg(group, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        wait_gone(pid, 2.0)
    if group is not None:
        deadline = time.monotonic() + 2.0
        while group_members(group) and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            time.sleep(0.02)
    return True
