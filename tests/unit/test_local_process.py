"""Deciding whether a deployment record's server is still running (and still ours)."""

from __future__ import annotations

import os
import subprocess
import sys

from mlops_cli.targets.local.process import is_alive, proc_state, record_server_alive
from mlops_cli.targets.local.spec import SERVER_MODULE

ROOT = "/cache/local/abc"
OURS = ["python", "-P", "-m", SERVER_MODULE, "--env", "local", "--root", ROOT, "--ready-fd", "5"]


def _alive(record, state="S", cmdline=OURS):
    return record_server_alive(record, state=lambda pid: state, cmdline=lambda pid: cmdline)


def test_a_running_server_with_the_recorded_root_is_alive():
    assert _alive({"pid": 123, "root": ROOT})


def test_no_record_or_a_bad_pid_is_not_alive():
    assert not _alive(None)
    assert not _alive({})
    assert not _alive({"pid": "123"})
    assert not _alive({"pid": True})
    assert not _alive({"pid": -1})


def test_a_dead_or_zombie_pid_is_stale():
    assert not _alive({"pid": 123, "root": ROOT}, state=None)
    assert not _alive({"pid": 123, "root": ROOT}, state="Z")


def test_a_pid_reused_by_another_program_is_stale():
    assert not _alive({"pid": 123, "root": ROOT}, cmdline=["bash"])
    other_root = [*OURS[:-3], "/cache/local/other", "--ready-fd", "5"]
    assert not _alive({"pid": 123, "root": ROOT}, cmdline=other_root)


def test_proc_state_sees_this_process_and_a_reaped_child_as_gone():
    assert is_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert proc_state(child.pid) is None
    assert not is_alive(child.pid)


def test_an_unreaped_child_is_a_zombie_and_counts_as_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
        assert proc_state(child.pid) == "Z"
        assert not is_alive(child.pid)
    finally:
        child.wait()
