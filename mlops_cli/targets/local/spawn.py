"""How a worker process is started: scheduled as its own unit, never outliving its server.

A worker is one Lambda execution environment. What holds for each one:
- **It never preempts the server that feeds it.** It runs under `SCHED_BATCH`, the policy Linux
  has for processes that are CPU-bound and not interactive; any user may choose it for their own
  processes, and it only ever makes them less eager. Without it, every event the server sends
  woke a worker that took the server's CPU at once (0.9 involuntary switches of the server per
  request, measured with 8 keep-alive clients on 2 cores), while the server still had sockets
  to serve; the other core idled for a fifth of the time.
- **It has a session of its own**, as each Lambda sandbox (and each `sam local` container) is
  on its own. With the kernel's autogroups, a session is what the scheduler shares CPU time
  between: in the server's session, its workers and the server split one share. Ctrl-C in a
  terminal never reaches a worker either; the pool alone decides when they stop.
- **It dies with its server**, whatever kills the server (SIGKILL, the OOM killer, a crash):
  `PR_SET_PDEATHSIG` has the kernel send it SIGKILL when the server exits, so no worker is left
  behind — not even one in the middle of an invocation. A worker started after its server is
  gone exits at once.
Where `prctl` cannot be reached (an interpreter built without ctypes), the worker stays in the
server's process group instead, which the teardown kills as a whole, and keeps SCHED_BATCH.
Linux only, as is the rest of the local target (pidfds, /proc).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, loaded once in the server (never in a freshly forked child)."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (ImportError, OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def popen_options() -> dict[str, Any]:
    """`subprocess.Popen` keyword arguments that start a worker as described above."""
    if _PRCTL is None:
        return {}
    parent = os.getpid()
    prctl = _PRCTL

    def die_with_parent() -> None:  # runs in the child, between fork and exec
        if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != parent:
            os._exit(70)  # cannot be tied to the server, or it is already gone: do not run

    return {"start_new_session": True, "preexec_fn": die_with_parent}


def started(pid: int) -> None:
    """Called once a worker is spawned: it yields to the server (see the module's docstring)."""
    with contextlib.suppress(OSError, AttributeError):  # a sandbox that forbids it: no harm
        os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))
