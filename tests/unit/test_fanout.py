"""`fanout.plan_parts`: resources read at the same time still make the plan one pass makes."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from mlops_cli.targets.aws.fanout import Part, plan_parts, together
from mlops_cli.targets.aws.model import Plan, PlannedCall


class FakeContext:
    """Records which thread made each client (a boto3 session must not be used concurrently)."""

    def __init__(self) -> None:
        self.made: dict[str, str] = {}

    def client(self, service: str) -> str:
        self.made.setdefault(service, threading.current_thread().name)
        return service


def _part(name: str, delay: float, log: list[str]) -> Part:
    def run(plan: Plan) -> None:
        time.sleep(delay)  # later parts finish first
        log.append(name)
        plan.observe(f"thing {name}", "found")
        plan.add(PlannedCall("svc", f"update_{name}", {}, f"thing {name}", "differs"))
        plan.variables[f"{name}_id"] = name
        plan.notes.append(f"note {name}")

    return Part((f"svc-{name}",), run)


def test_parts_merge_in_the_given_order_whatever_order_they_finish_in() -> None:
    ctx = FakeContext()
    finished: list[str] = []
    parts = [_part("a", 0.15, finished), _part("b", 0.05, finished), _part("c", 0.0, finished)]

    plan = plan_parts(ctx, parts)  # type: ignore[arg-type]

    assert finished != ["a", "b", "c"]  # they did run at the same time
    assert [c.operation for c in plan.calls] == ["update_a", "update_b", "update_c"]
    assert [o.resource for o in plan.observed] == ["thing a", "thing b", "thing c"]
    assert plan.notes == ["note a", "note b", "note c"]
    assert plan.variables == {"a_id": "a", "b_id": "b", "c_id": "c"}


def test_every_client_is_made_in_the_calling_thread() -> None:
    ctx = FakeContext()
    plan_parts(ctx, [_part(n, 0.0, []) for n in "abc"])  # type: ignore[arg-type]
    assert set(ctx.made.values()) == {threading.current_thread().name}


def test_the_first_failed_part_in_order_is_raised_after_all_parts_ran() -> None:
    ran: list[str] = []

    def fail(message: str, delay: float) -> Any:
        def run(plan: Plan) -> None:
            time.sleep(delay)
            ran.append(message)
            raise RuntimeError(message)

        return run

    parts = [
        _part("ok", 0.0, ran),
        Part((), fail("first in order", 0.1)),
        Part((), fail("first to fail", 0.0)),
        _part("last", 0.2, ran),
    ]
    with pytest.raises(RuntimeError, match="first in order"):
        plan_parts(FakeContext(), parts)  # type: ignore[arg-type]
    assert sorted(ran) == ["first in order", "first to fail", "last", "ok"]


def test_live_version_comes_from_the_part_that_read_it() -> None:
    def alias(plan: Plan) -> None:
        plan.live_version, plan.live_model_id = "7", "model-x"

    plan = plan_parts(FakeContext(), [Part((), alias), Part((), lambda plan: None)])  # type: ignore[arg-type]
    assert (plan.live_version, plan.live_model_id) == ("7", "model-x")


def test_together_answers_in_order_and_raises_the_first_failure_in_order() -> None:
    def slow(value: int) -> Any:
        return lambda: (time.sleep(0.05 * (3 - value)), value)[1]

    assert together(slow(1), slow(2), slow(3)) == [1, 2, 3]

    def boom(message: str) -> Any:
        def read() -> None:
            raise ValueError(message)

        return read

    with pytest.raises(ValueError, match="second"):
        together(slow(1), boom("second"), boom("third"))
