"""Read independent resources at the same time, and still plan exactly as one pass would.

A deploy's read-only calls are round trips that wait on AWS; read one after another they are most
of a no-change deploy's time. The role, the log group, the function (with its bucket, versions,
alias and policy) and the HTTP API do not depend on one another's state, so each is read in its
own thread. What holds:
- Each thread plans onto its own `Plan`; the parts are merged in the order they were given
  (dependency order), so the calls, observations and notes come out in the same order as a
  sequential pass — `--plan` and the executor see no difference.
- botocore clients are thread-safe, sessions are not: every client a part needs is created here,
  in the calling thread, before that part starts (the next part's client is created while the
  earlier parts wait on AWS).
- Every part runs to its end before anything is returned or raised; a failure is raised from the
  first failed part in the given order, so the error a user sees does not depend on timing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mlops_cli.targets.aws.model import Plan
from mlops_cli.targets.aws.session import AwsContext


@dataclass(frozen=True)
class Part:
    """One independent read-and-plan: the clients it uses and what it does with its Plan."""

    services: tuple[str, ...]
    run: Callable[[Plan], None]


def plan_parts(ctx: AwsContext, parts: Sequence[Part]) -> Plan:
    """Run `parts` concurrently; return their plans merged in the order given."""
    merged = Plan()
    if not parts:
        return merged
    running: list[tuple[Plan, Future[None]]] = []
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="aws-read") as pool:
        for part in parts:
            for service in part.services:
                ctx.client(service)  # created in this thread (see the module's contract)
            plan = Plan()
            running.append((plan, pool.submit(part.run, plan)))
    # Leaving the `with` waited for every part; raise the first failure in dependency order.
    for plan, done in running:
        done.result()
        merged.extend(plan)
    return merged


def together(*reads: Callable[[], Any]) -> list[Any]:
    """Run independent read-only calls at the same time (on clients that already exist);
    their answers in the order given, or the first failure in that order once all ended."""
    with ThreadPoolExecutor(max_workers=len(reads), thread_name_prefix="aws-read") as pool:
        running = [pool.submit(read) for read in reads]
    return [done.result() for done in running]
