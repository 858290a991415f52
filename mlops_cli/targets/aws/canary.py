"""Canary rollout: `live` keeps the old version and sends a share of traffic to the new one
(alias RoutingConfig.AdditionalVersionWeights) while CloudWatch judges the new version.

Contract:
- Only the alias moves; nothing is created or deleted. Every state in between is one UpdateAlias
  away from either end: start (old + weight on new), promote (new, routing cleared), roll back
  (old, routing cleared). Lambda itself splits the traffic — no CodeDeploy, no extra resource.
- The new version is judged on what AWS counts for exactly it: `Errors` / `Invocations` in
  AWS/Lambda with dimensions FunctionName, Resource `<fn>:live`, ExecutedVersion = the new
  version, plus our handler's own `server_errors` for that version (a 500 from our code is a
  successful invocation to Lambda). Error rate = (Errors + server_errors) / Invocations.
- Above `max_error_rate` at any read → roll back at once (no point baking a failing version).
  Otherwise, at the end of the bake → promote. No traffic during the bake is no evidence
  against: promote, and say so.
- Ctrl-C during the bake rolls back before the command exits. A killed deploy leaves the canary
  routing in place; the alias Description records the canary and its start time, so `status` on
  any machine shows it, and the next `deploy` or `rollback` resolves it (back to the old version:
  an interrupted canary never earned a promotion).
- The clock, the sleep and the progress sink are injected, so tests bake on a simulated clock.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlops_cli.errors import IrisError
from mlops_cli.runtime.emf import NAMESPACE
from mlops_cli.targets.aws.desired import ALIAS
from mlops_cli.targets.aws.model import AliasRead
from mlops_cli.targets.aws.session import AwsContext, aws_errors, get_or_none

POLL_SECONDS = 30.0
_MARK = re.compile(r"^iris-mlops canary: version (\S+) at ([\d.]+)% since (\S+)")

Clock = Callable[[], float]
Sleep = Callable[[float], None]
Progress = Callable[[float, float, "Figures"], None]


@dataclass(frozen=True)
class Policy:
    percent: float
    bake_s: float
    max_error_rate: float
    poll_s: float = POLL_SECONDS


@dataclass(frozen=True)
class Canary:
    """A canary in place on the alias: `stable` serves, `candidate` gets `weight` (0..1)."""

    stable: str
    candidate: str
    weight: float
    since: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stable_version": self.stable,
            "canary_version": self.candidate,
            "weight_percent": round(self.weight * 100, 3),
            "since": self.since,
        }


@dataclass(frozen=True)
class Figures:
    invocations: float = 0.0
    errors: float = 0.0
    server_errors: float = 0.0

    @property
    def error_rate(self) -> float:
        return (self.errors + self.server_errors) / self.invocations if self.invocations else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "invocations": int(self.invocations),
            "errors": int(self.errors),
            "server_errors": int(self.server_errors),
            "error_rate": round(self.error_rate, 6),
        }

    def __str__(self) -> str:
        return (
            f"{int(self.errors)} errors + {int(self.server_errors)} server errors in "
            f"{int(self.invocations)} invocations = {self.error_rate:.2%}"
        )


@dataclass(frozen=True)
class Verdict:
    promote: bool
    figures: Figures
    reason: str


class CanaryRolledBack(IrisError):
    """The canary failed (exit 1) or was interrupted (exit 130); `live` is on the old version."""

    def __init__(self, message: str, result: dict[str, Any], exit_code: int = 1) -> None:
        super().__init__(message)
        self.result = result
        self.exit_code = exit_code


# -- the alias -------------------------------------------------------------------------------
def read_canary(alias: dict[str, Any] | None) -> Canary | None:
    weights = ((alias or {}).get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    if not weights:
        return None
    candidate, weight = next(iter(weights.items()))
    mark = _MARK.match((alias or {}).get("Description") or "")
    since = mark.group(3) if mark and mark.group(1) == candidate else None
    return Canary(str(alias["FunctionVersion"]), str(candidate), float(weight), since)


def canary_description(candidate: str, percent: float, started: float) -> str:
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"iris-mlops canary: version {candidate} at {percent:g}% since {stamp}"


def read_alias(ctx: AwsContext, fn: str) -> AliasRead:
    """`live` as AWS has it now (answer None: no function or no alias yet, so no canary)."""
    lam = ctx.client("lambda")
    with aws_errors(f"read alias {fn}:{ALIAS}", ctx):
        return AliasRead(get_or_none(lambda: lam.get_alias(FunctionName=fn, Name=ALIAS)))


def current_canary(ctx: AwsContext, fn: str) -> Canary | None:
    return read_canary(read_alias(ctx, fn).answer)


def move_alias(ctx: AwsContext, fn: str, version: str, weights: dict[str, float],
               description: str | None = None) -> None:
    """One UpdateAlias: `live` on `version` with exactly `weights` (empty = routing cleared)."""
    lam = ctx.client("lambda")
    with aws_errors(f"update alias {fn}:{ALIAS}", ctx):
        if description is None:
            conf = lam.get_function_configuration(FunctionName=fn, Qualifier=version)
            description = conf.get("Description") or ""
        lam.update_alias(
            FunctionName=fn,
            Name=ALIAS,
            FunctionVersion=version,
            Description=description,
            RoutingConfig={"AdditionalVersionWeights": weights},
        )


def resolve_leftover(ctx: AwsContext, fn: str) -> Canary | None:
    """A canary left by an interrupted deploy goes back to its stable version; returns it."""
    leftover = current_canary(ctx, fn)
    if leftover is not None:
        move_alias(ctx, fn, leftover.stable, {})
    return leftover


# -- the figures -----------------------------------------------------------------------------
def _query(qid: str, namespace: str, metric: str, dims: dict[str, str], period: int) -> dict:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            },
            "Period": period,
            "Stat": "Sum",
        },
    }


def read_figures(
    ctx: AwsContext, fn: str, env: str, version: str, since: float, now: float
) -> Figures:
    """The new version's sums from a minute before the canary started until now."""
    start = math.floor(since / 60) * 60 - 60
    end = math.ceil(now / 60) * 60 + 60
    lam_dims = {"FunctionName": fn, "Resource": f"{fn}:{ALIAS}", "ExecutedVersion": version}
    queries = [
        _query("inv", "AWS/Lambda", "Invocations", lam_dims, 60),
        _query("err", "AWS/Lambda", "Errors", lam_dims, 60),
        _query("srv", NAMESPACE, "server_errors", {"env": env, "version": version}, 60),
    ]
    sums = {"inv": 0.0, "err": 0.0, "srv": 0.0}
    request: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": datetime.fromtimestamp(start, UTC),
        "EndTime": datetime.fromtimestamp(end, UTC),
    }
    cw = ctx.client("cloudwatch")
    with aws_errors(f"read the canary's metrics (version {version})", ctx):
        while True:
            page = cw.get_metric_data(**request)
            for result in page.get("MetricDataResults", []):
                sums[result["Id"]] += sum(v for v in result.get("Values", []) if v is not None)
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    return Figures(sums["inv"], sums["err"], sums["srv"])


# -- the bake --------------------------------------------------------------------------------
def bake(
    read: Callable[[], Figures], policy: Policy, clock: Clock, sleep: Sleep, progress: Progress
) -> Verdict:
    """Read the figures every `poll_s` until the bake ends or the error rate is too high."""
    start = clock()
    deadline = start + policy.bake_s
    while True:
        now = clock()
        figures = read()
        progress(min(now - start, policy.bake_s), policy.bake_s, figures)
        if figures.invocations and figures.error_rate > policy.max_error_rate:
            return Verdict(
                False,
                figures,
                f"error rate {figures.error_rate:.2%} > max_error_rate "
                f"{policy.max_error_rate:.2%} ({figures})",
            )
        if now >= deadline:
            if not figures.invocations:
                return Verdict(True, figures, "no traffic reached the new version during the "
                               "bake: nothing spoke against it")
            return Verdict(True, figures, f"error rate {figures.error_rate:.2%} <= "
                           f"{policy.max_error_rate:.2%} ({figures})")
        sleep(max(0.0, min(policy.poll_s, deadline - now)))


def rollout(
    ctx: AwsContext,
    fn: str,
    env: str,
    stable: str,
    candidate: str,
    policy: Policy,
    *,
    clock: Clock = time.time,
    sleep: Sleep = time.sleep,
    progress: Progress | None = None,
    candidate_description: str | None = None,
) -> dict[str, Any]:
    """Start the canary, bake it, then promote or roll back. Raises `CanaryRolledBack` when the
    new version lost (or the user pressed Ctrl-C); `live` is on the old version then."""
    started = clock()
    move_alias(ctx, fn, stable, {candidate: round(policy.percent / 100.0, 6)},
               canary_description(candidate, policy.percent, started))
    result: dict[str, Any] = {
        "strategy": "canary",
        "stable_version": stable,
        "canary_version": candidate,
        "canary_percent": policy.percent,
        "bake_s": policy.bake_s,
        "max_error_rate": policy.max_error_rate,
    }

    def read() -> Figures:
        return read_figures(ctx, fn, env, candidate, started, clock())

    try:
        verdict = bake(read, policy, clock, sleep, progress or (lambda *_: None))
    except KeyboardInterrupt:
        move_alias(ctx, fn, stable, {})
        result.update(outcome="rolled_back", reason="interrupted (Ctrl-C) during the bake")
        raise CanaryRolledBack(
            f"interrupted during the bake: rolled back, `{ALIAS}` stays on version {stable} "
            f"(version {candidate} gets no traffic)",
            result,
            exit_code=130,
        ) from None
    result["figures"] = verdict.figures.to_dict()
    if not verdict.promote:
        move_alias(ctx, fn, stable, {})
        result.update(outcome="rolled_back", reason=verdict.reason)
        raise CanaryRolledBack(
            f"canary of version {candidate} rolled back: {verdict.reason}; `{ALIAS}` stays on "
            f"version {stable}",
            result,
        )
    move_alias(ctx, fn, candidate, {}, candidate_description)
    result.update(outcome="promoted", reason=verdict.reason)
    return result
