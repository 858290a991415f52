"""Where the canary meets `deploy`: which strategy applies, the alias move taken out of the plan,
the bake shown as a progress bar.

Contract:
- `strategy: canary` applies only when `live` already serves an older version and the plan moves
  it; the first deploy of an env (nothing to compare with) goes all at once, and says so.
- The rest of the plan (publish, smoke test, API, permissions) runs unchanged before the canary
  starts: the smoke test still gates any traffic, and `--no-smoke-test` skips only it.
- A canary left by a killed deploy is resolved (back to its stable version) before planning, so
  the plan starts from a clean alias.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from mlops_cli.config import EnvConfig
from mlops_cli.console import Reporter
from mlops_cli.targets.aws import canary
from mlops_cli.targets.aws.model import AliasRead, PlannedCall
from mlops_cli.targets.aws.session import AwsContext


def policy_for(cfg: EnvConfig) -> canary.Policy | None:
    d = cfg.settings.deploy
    if d.strategy != "canary":
        return None
    return canary.Policy(d.canary_percent, d.bake_seconds, d.max_error_rate)


def resolve_leftover(
    ctx: AwsContext, fn: str, reporter: Reporter
) -> tuple[dict[str, Any] | None, AliasRead | None]:
    """(the canary rolled back, or None; `live` as read, when it was left as it was — the
    planner takes that answer instead of reading the alias again)."""
    read = canary.read_alias(ctx, fn)
    leftover = canary.read_canary(read.answer)
    if leftover is None:
        return None, read
    canary.move_alias(ctx, fn, leftover.stable, {})
    reporter.warn(
        f"an interrupted canary was still routing {leftover.weight:.0%} of {fn}:live to version "
        f"{leftover.candidate} (since {leftover.since or 'unknown'}): rolled back to version "
        f"{leftover.stable}"
    )
    return leftover.to_dict(), None


def split_alias_move(
    calls: list[PlannedCall], live_version: str | None, policy: canary.Policy | None,
    reporter: Reporter,
) -> tuple[list[PlannedCall], PlannedCall | None]:
    """(calls to run now, the alias move the canary replaces, or None for all at once)."""
    moves = [
        c for c in calls
        if c.service == "lambda" and c.operation in {"update_alias", "create_alias"}
    ]
    if policy is None or not moves:
        return calls, None
    if live_version is None or moves[0].operation == "create_alias":
        reporter.info("[dim]first deploy of this env: no old version to compare with, so no "
                      "canary (all at once)[/dim]")
        return calls, None
    return [c for c in calls if c not in moves], moves[0]


def plan_entry(move: PlannedCall, policy: canary.Policy, bake: str) -> dict[str, str]:
    """What `--plan` shows in place of the alias move a canary replaces."""
    return {
        "action": "canary",
        "resource": move.resource,
        "reason": f"route {policy.percent:g}% to the new version for {bake}, then promote, or "
        f"roll back above an error rate of {policy.max_error_rate:.2%}",
    }


@contextlib.contextmanager
def bake_progress(reporter: Reporter, version: str) -> Iterator[canary.Progress]:
    """A Rich progress bar over the bake (stderr), or plain lines when not a terminal."""
    console = reporter.console
    if reporter.quiet:
        yield lambda *_: None
        return
    if not console.is_terminal:
        def line(done: float, total: float, figures: canary.Figures) -> None:
            console.print(f"bake {done:.0f}/{total:.0f}s: version {version}: {figures}")

        yield line
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]bake[/bold] version " + version),
        BarColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[figures]}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("bake", total=1.0, figures="")

        def update(done: float, total: float, figures: canary.Figures) -> None:
            bar.update(task, total=total, completed=done, figures=str(figures))

        yield update


def run_canary(
    ctx: AwsContext,
    cfg: EnvConfig,
    stable: str,
    candidate: str,
    move: PlannedCall,
    policy: canary.Policy,
    reporter: Reporter,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    fn = cfg.function_name
    reporter.info(
        f"canary: {fn}:live stays on version {stable} and sends {policy.percent:g}% to version "
        f"{candidate} for {cfg.settings.deploy.bake}; rolls back above an error rate of "
        f"{policy.max_error_rate:.2%}"
    )
    with bake_progress(reporter, candidate) as progress:
        result = canary.rollout(
            ctx, fn, cfg.env, stable, candidate, policy,
            clock=clock, sleep=sleep, progress=progress,
            candidate_description=str(move.params.get("Description") or ""),
        )
    reporter.done(f"canary promoted: {fn}:live on version {candidate} ({result['reason']})")
    return result
