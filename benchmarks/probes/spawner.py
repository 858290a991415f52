"""Start cold processes from a small parent, one per request line, and time them.

Why a separate launcher: Linux carries a parent's peak RSS into a child's `ru_maxrss` across
fork/vfork + exec, so children of the (large) harness would all report its 150 MiB. From this
9 MiB process they report their own. Protocol: one JSON line in
`{"argv": [...], "env": {...}}`, one JSON line out
`{"start_ns", "end_ns", "exit", "maxrss_kb", "stderr"}` (CLOCK_MONOTONIC, shared by all
processes). Stdlib only; run it as `python -I -S spawner.py`.
"""

import json
import os
import sys
import tempfile
import time


def spawn(argv, env):
    with tempfile.TemporaryFile() as err:
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            actions = [
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, devnull, 1),
                (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
            ]
            start = time.monotonic_ns()
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
            _, status, usage = os.wait4(pid, 0)
            end = time.monotonic_ns()
        finally:
            os.close(devnull)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return {
        "start_ns": start,
        "end_ns": end,
        "exit": os.waitstatus_to_exitcode(status),
        "maxrss_kb": usage.ru_maxrss,
        "stderr": text[-4000:],
    }


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        sys.stdout.write(json.dumps(spawn(request["argv"], request["env"])) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
