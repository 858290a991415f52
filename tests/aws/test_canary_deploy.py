"""`deploy --strategy canary` against moto: the whole flow through `deploy`, `status` and
`rollback`, baking on a simulated clock while errors are injected into AWS/Lambda."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from mlops_cli.console import NullReporter
from mlops_cli.targets.aws import canary, deploy, rollback, status
from tests.aws.conftest import make_cfg, make_package
from tests.aws.test_canary import FN, Killed, SimClock, put_lambda

CANARY = make_cfg(deploy__strategy="canary", deploy__canary_percent=20, deploy__bake="5m",
                  deploy__max_error_rate=0.05)


def _deploy(cfg, store, tmp_path, content: str, ctx, clock: SimClock | None = None,
            **kw: Any) -> dict[str, Any]:
    clock = clock or SimClock()
    package = make_package(tmp_path / content, content, model_id=f"m-{content}")
    return deploy(cfg, store, package, NullReporter(), smoke_test=False, ctx=ctx,
                  clock=clock, sleep=clock.sleep, **kw)


def _alias() -> dict[str, Any]:
    return boto3.client("lambda").get_alias(FunctionName=FN, Name="live")


def _weights() -> dict[str, float]:
    return (_alias().get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def test_the_first_deploy_goes_all_at_once(store, tmp_path, ctx) -> None:
    result = _deploy(CANARY, store, tmp_path, "v1", ctx)
    assert result["strategy"] == "all_at_once" and "canary" not in result
    assert _alias()["FunctionVersion"] == "1" and not _weights()


def test_a_healthy_canary_deploy_is_promoted(store, tmp_path, ctx) -> None:
    _deploy(CANARY, store, tmp_path, "v1", ctx)
    during: list[dict[str, float]] = []

    def world(n: int) -> None:
        during.append(_weights())
        put_lambda("2", 100, 1)

    clock = SimClock(world)
    result = _deploy(CANARY, store, tmp_path, "v2", ctx, clock)
    assert during[0] == {"2": 0.2}
    assert sum(clock.sleeps) == 300
    assert result["canary"]["outcome"] == "promoted" and result["version"] == "2"
    assert _alias()["FunctionVersion"] == "2" and not _weights()
    assert store.read_record("dev")["version"] == "2"


def test_errors_during_the_bake_roll_the_deploy_back(store, tmp_path, ctx) -> None:
    _deploy(CANARY, store, tmp_path, "v1", ctx)
    clock = SimClock(lambda n: put_lambda("2", 10, 3))
    with pytest.raises(canary.CanaryRolledBack) as failed:
        _deploy(CANARY, store, tmp_path, "v2", ctx, clock)
    assert failed.value.exit_code == 1
    assert "30.00% > max_error_rate 5.00%" in str(failed.value)
    assert _alias()["FunctionVersion"] == "1" and not _weights()
    assert store.read_record("dev")["version"] == "1"  # the record still names what serves


def test_ctrl_c_during_the_deploys_bake_rolls_back(store, tmp_path, ctx) -> None:
    _deploy(CANARY, store, tmp_path, "v1", ctx)

    def world(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(canary.CanaryRolledBack) as stopped:
        _deploy(CANARY, store, tmp_path, "v2", ctx, SimClock(world))
    assert stopped.value.exit_code == 130
    assert _alias()["FunctionVersion"] == "1" and not _weights()


def _killed_canary(store, tmp_path, ctx) -> None:
    _deploy(CANARY, store, tmp_path, "v1", ctx)

    def world(n: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        _deploy(CANARY, store, tmp_path, "v2", ctx, SimClock(world))


def test_status_shows_a_killed_deploys_canary_and_the_next_deploy_resolves_it(
    store, tmp_path, ctx
) -> None:
    _killed_canary(store, tmp_path, ctx)
    shown = status(CANARY, store, ctx=ctx)["canary"]
    assert shown["stable_version"] == "1" and shown["canary_version"] == "2"
    assert shown["weight_percent"] == 20 and shown["since"].endswith("Z")

    # the next deploy (all at once this time) first puts live back on 1, then deploys v3
    result = _deploy(make_cfg(), store, tmp_path, "v3", ctx)
    assert result["resolved_canary"]["canary_version"] == "2"
    assert _alias()["FunctionVersion"] == result["version"] == "3" and not _weights()
    assert status(make_cfg(), store, ctx=ctx)["canary"] is None


def test_rollback_resolves_a_killed_deploys_canary(store, tmp_path, ctx) -> None:
    _killed_canary(store, tmp_path, ctx)
    result = rollback(CANARY, store, NullReporter(), None, ctx=ctx)
    assert result["resolved_canary"]["canary_version"] == "2"
    assert (result["from"], result["to"], result["model_id"]) == ("1", "1", "m-v1")
    assert _alias()["FunctionVersion"] == "1" and not _weights()


def test_plan_shows_the_canary_and_changes_nothing(store, tmp_path, ctx, calls) -> None:
    _deploy(CANARY, store, tmp_path, "v1", ctx)
    calls.reset()
    result = _deploy(CANARY, store, tmp_path, "v2", ctx, plan_only=True)
    actions = [c["action"] for c in result["plan"]]
    assert "update_alias" not in actions and actions[-1] == "canary"
    assert "20% to the new version for 5m" in result["plan"][-1]["reason"]
    assert calls.mutating == []
    assert _alias()["FunctionVersion"] == "1"


def test_a_redeploy_with_nothing_changed_starts_no_canary(store, tmp_path, ctx, calls) -> None:
    _deploy(CANARY, store, tmp_path, "v1", ctx)
    calls.reset()
    result = _deploy(CANARY, store, tmp_path, "v1", ctx)
    assert result["up_to_date"] and "canary" not in result
    assert calls.mutating == []
