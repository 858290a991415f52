"""Canary rollout against moto: its alias keeps RoutingConfig and its CloudWatch takes
PutMetricData in AWS/Lambda, so errors can be injected while the bake runs on a simulated clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from mlops_cli.console import NullReporter
from mlops_cli.targets.aws import canary, deploy
from tests.aws.conftest import make_package

FN = "iris-mlops-dev"
POLICY = canary.Policy(percent=10, bake_s=300, max_error_rate=0.05, poll_s=30)


class SimClock:
    """Starts at the real time (moto stamps metrics with it) and moves only when slept on;
    `on_sleep` runs at each sleep, as the world would act while the bake waits."""

    def __init__(self, on_sleep=None) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


def put_lambda(version: str, invocations: float, errors: float) -> None:
    dims = [
        {"Name": "FunctionName", "Value": FN},
        {"Name": "Resource", "Value": f"{FN}:live"},
        {"Name": "ExecutedVersion", "Value": version},
    ]
    now = datetime.now(UTC)
    boto3.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now, "Value": invocations},
        {"MetricName": "Errors", "Dimensions": dims, "Timestamp": now, "Value": errors},
    ])


@pytest.fixture
def two_versions(cfg, store, ctx, tmp_path) -> Any:
    """Version 1 live, version 2 published (what deploy has done when the canary starts)."""
    for content in ("v1", "v2"):
        deploy(cfg, store, make_package(tmp_path / content, content, model_id=f"m-{content}"),
               NullReporter(), smoke_test=False, ctx=ctx)
    boto3.client("lambda").update_alias(FunctionName=FN, Name="live", FunctionVersion="1")
    return ctx


def _alias() -> dict[str, Any]:
    return boto3.client("lambda").get_alias(FunctionName=FN, Name="live")


def test_a_healthy_canary_is_promoted_after_the_bake(two_versions) -> None:
    seen: list[dict] = []

    def world(n: int) -> None:
        seen.append(_alias())
        put_lambda("2", invocations=50, errors=1)  # 2 % < 5 %

    clock = SimClock(world)
    result = canary.rollout(two_versions, FN, "dev", "1", "2", POLICY, clock=clock,
                            sleep=clock.sleep, candidate_description="iris-mlops model m-v2")
    # during the bake: live on 1, 10 % to 2, and the alias says since when
    assert seen[0]["FunctionVersion"] == "1"
    assert seen[0]["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.1}
    assert seen[0]["Description"].startswith("iris-mlops canary: version 2 at 10% since ")
    assert sum(clock.sleeps) == 300 and max(clock.sleeps) <= 30
    alias = _alias()
    assert alias["FunctionVersion"] == "2"
    assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert alias["Description"] == "iris-mlops model m-v2"
    assert result["outcome"] == "promoted"
    assert result["figures"]["invocations"] == 500 and result["figures"]["errors"] == 10


def test_injected_errors_roll_back_at_once_with_the_figures(two_versions) -> None:
    clock = SimClock(lambda n: put_lambda("2", 20, 4) if n == 2 else None)
    with pytest.raises(canary.CanaryRolledBack) as failed:
        canary.rollout(two_versions, FN, "dev", "1", "2", POLICY, clock=clock, sleep=clock.sleep)
    message = str(failed.value)
    assert "rolled back" in message and "20.00% > max_error_rate 5.00%" in message
    assert "4 errors + 0 server errors in 20 invocations" in message
    assert failed.value.exit_code == 1
    assert len(clock.sleeps) == 2  # decided at the first read after the errors, not at the end
    alias = _alias()
    assert alias["FunctionVersion"] == "1"
    assert not alias["RoutingConfig"]["AdditionalVersionWeights"]
    assert alias["Description"] == "iris-mlops model m-v1"


def test_our_own_server_errors_count_against_the_version(two_versions) -> None:
    def world(n: int) -> None:
        put_lambda("2", 10, 0)
        boto3.client("cloudwatch").put_metric_data(Namespace="iris-mlops", MetricData=[{
            "MetricName": "server_errors", "Value": 3.0, "Timestamp": datetime.now(UTC),
            "Dimensions": [{"Name": "env", "Value": "dev"}, {"Name": "version", "Value": "2"}],
        }])

    clock = SimClock(world)
    with pytest.raises(canary.CanaryRolledBack, match="0 errors \\+ 3 server errors"):
        canary.rollout(two_versions, FN, "dev", "1", "2", POLICY, clock=clock, sleep=clock.sleep)
    assert _alias()["FunctionVersion"] == "1"


def test_errors_of_the_old_version_do_not_count_against_the_new(two_versions) -> None:
    clock = SimClock(lambda n: put_lambda("1", 10, 10))
    result = canary.rollout(two_versions, FN, "dev", "1", "2", POLICY, clock=clock,
                            sleep=clock.sleep)
    assert result["outcome"] == "promoted" and "no traffic" in result["reason"]
    assert _alias()["FunctionVersion"] == "2"


def test_ctrl_c_during_the_bake_rolls_back(two_versions) -> None:
    def world(n: int) -> None:
        if n == 3:
            raise KeyboardInterrupt

    clock = SimClock(world)
    with pytest.raises(canary.CanaryRolledBack, match="interrupted") as stopped:
        canary.rollout(two_versions, FN, "dev", "1", "2", POLICY, clock=clock, sleep=clock.sleep)
    assert stopped.value.exit_code == 130
    alias = _alias()
    assert alias["FunctionVersion"] == "1"
    assert not alias["RoutingConfig"]["AdditionalVersionWeights"]


class Killed(BaseException):
    """SIGKILL: nothing of the process runs after it."""


def test_a_killed_bake_leaves_the_canary_visible_until_resolved(two_versions) -> None:
    def world(n: int) -> None:
        raise Killed

    clock = SimClock(world)
    with pytest.raises(Killed):
        canary.rollout(two_versions, FN, "dev", "1", "2", POLICY, clock=clock, sleep=clock.sleep)
    left = canary.current_canary(two_versions, FN)
    assert left is not None
    assert (left.stable, left.candidate, left.weight) == ("1", "2", 0.1)
    assert left.since and left.since.endswith("Z")
    resolved = canary.resolve_leftover(two_versions, FN)
    assert resolved == left
    assert canary.current_canary(two_versions, FN) is None
    assert _alias()["FunctionVersion"] == "1"


def test_no_alias_means_no_canary(ctx) -> None:
    assert canary.current_canary(ctx, FN) is None
    assert canary.resolve_leftover(ctx, FN) is None


@pytest.mark.parametrize("rate,promoted", [(0.0, True), (0.05, True), (0.0501, False)])
def test_the_threshold_is_inclusive(rate: float, promoted: bool) -> None:
    figures = canary.Figures(invocations=10000, errors=rate * 10000)
    clock = SimClock()
    verdict = canary.bake(lambda: figures, POLICY, clock, clock.sleep, lambda *_: None)
    assert verdict.promote is promoted
