"""The CLI starts without the cyclic collector and hands it back after start-up."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from mlops_cli.startup import collect_cycles_after_startup


@pytest.fixture
def collector() -> Iterator[None]:
    was = gc.isenabled()
    yield
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_during_start_up_then_on_with_the_survivors_frozen(collector):
    gc.enable()
    gc.unfreeze()
    collect_cycles_after_startup(0.2)
    assert not gc.isenabled()
    deadline = time.monotonic() + 10
    while not gc.isenabled() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gc.isenabled()  # long-running commands collect cycles as usual
    assert gc.get_freeze_count() > 0  # start-up's objects are out of its way


def test_a_collector_someone_turned_off_stays_off(collector):
    gc.disable()
    collect_cycles_after_startup(0.05)
    time.sleep(0.3)
    assert not gc.isenabled()
