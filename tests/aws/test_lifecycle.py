"""Teardown, rollback, logs, verified rollout, retries and crash recovery against moto."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import boto3
import joblib
import pytest
from botocore.awsrequest import AWSResponse

from mlops_cli.console import NullReporter
from mlops_cli.errors import IrisError, UsageError
from mlops_cli.targets.aws import (
    check_teardown_allowed,
    deploy,
    endpoint,
    logs,
    rollback,
    teardown,
)
from mlops_cli.targets.aws.executor import ROLE_RETRY_DELAYS
from mlops_cli.targets.aws.session import connect
from tests.aws.conftest import make_cfg, make_package

FN = "iris-mlops-dev"
TAGS = {"iris-mlops:project": "iris-mlops", "iris-mlops:env": "dev"}


def _deploy(cfg, store, package, ctx, **kw: Any) -> dict[str, Any]:
    kw.setdefault("smoke_test", False)
    return deploy(cfg, store, package, NullReporter(), ctx=ctx, **kw)


def _apis(name: str = FN) -> list[dict[str, Any]]:
    return [a for a in boto3.client("apigatewayv2").get_apis()["Items"] if a["Name"] == name]


def _live() -> str:
    return boto3.client("lambda").get_alias(FunctionName=FN, Name="live")["FunctionVersion"]


# teardown ------------------------------------------------------------------------------------
def _bystanders() -> dict[str, Any]:
    iam, lam, gw = boto3.client("iam"), boto3.client("lambda"), boto3.client("apigatewayv2")
    role = iam.create_role(RoleName="someone-else", AssumeRolePolicyDocument="{}")["Role"]
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("h.py", "x = 1")
    lam.create_function(
        FunctionName="someone-else",
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="h.h",
        Code={"ZipFile": buf.getvalue()},
    )
    api = gw.create_api(Name="someone-else", ProtocolType="HTTP")
    return {"api_id": api["ApiId"]}


def test_teardown_deletes_only_this_env_and_succeeds_twice(cfg, store, package, ctx, calls):
    others = _bystanders()
    prod = make_cfg(env="prod")
    _deploy(cfg, store, package, ctx)
    _deploy(prod, store, package, ctx)
    calls.reset()

    first = teardown(cfg, store, NullReporter(), ctx=ctx)
    second = teardown(cfg, store, NullReporter(), ctx=ctx)

    deleted = {d["resource"] for d in first["deleted"]}
    assert {
        "lambda permission",
        "http api",
        "lambda function",
        "log group",
        "iam role policy",
        "iam role",
    } <= deleted
    assert second["deleted"] == [] and second["skipped_foreign"] == []
    lam, iam = boto3.client("lambda"), boto3.client("iam")
    names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert names == {"someone-else", "iris-mlops-prod"}
    roles = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert {"someone-else", "iris-mlops-prod"} <= roles and FN not in roles
    assert boto3.client("apigatewayv2").get_api(ApiId=others["api_id"])["Name"] == "someone-else"
    assert len(_apis("iris-mlops-prod")) == 1 and _apis() == []
    assert store.read_record("dev") is None
    print(f"\nteardown: {len(calls.mutating)} mutating + {len(calls.read_only)} read-only calls")


def test_teardown_plan_only_lists_and_deletes_nothing(cfg, store, package, ctx, calls):
    _deploy(cfg, store, package, ctx)
    calls.reset()

    result = teardown(cfg, store, NullReporter(), plan_only=True, ctx=ctx)

    assert [p["resource"] for p in result["plan"]][:3] == [
        "lambda permission", "lambda permission", "http api"  # one statement per route
    ]
    assert result["deleted"] == [] and calls.mutating == []
    assert len(_apis()) == 1


def test_teardown_skips_and_reports_same_named_resources_it_does_not_own(cfg, store, ctx):
    iam, gw = boto3.client("iam"), boto3.client("apigatewayv2")
    iam.create_role(
        RoleName=FN, AssumeRolePolicyDocument="{}", Tags=[{"Key": "iris-mlops:env", "Value": "dev"}]
    )
    gw.create_api(Name=FN, ProtocolType="HTTP", Tags={"owner": "web-team"})
    boto3.client("logs").create_log_group(logGroupName=f"/aws/lambda/{FN}")

    result = teardown(cfg, store, NullReporter(), ctx=ctx)

    assert result["deleted"] == []
    assert {s["resource"] for s in result["skipped_foreign"]} == {
        "iam role",
        "http api",
        "log group",
    }
    assert iam.get_role(RoleName=FN) and len(_apis()) == 1


def test_protected_env_teardown_needs_force():
    prod = make_cfg(env="prod", protected=True)
    with pytest.raises(UsageError, match="--force"):
        check_teardown_allowed(prod, force=False)
    check_teardown_allowed(prod, force=True)
    check_teardown_allowed(make_cfg(), force=False)


def test_endpoint_is_none_after_teardown(cfg, store, package, ctx):
    _deploy(cfg, store, package, ctx)
    teardown(cfg, store, NullReporter(), ctx=ctx)
    assert endpoint(cfg, store, ctx=ctx) is None


def test_teardown_with_bucket_removes_this_envs_packages(cfg, store, ctx, tmp_path):
    big = make_package(tmp_path / "big", size_bytes=60 * 1024 * 1024)
    _deploy(cfg, store, big, ctx)
    result = teardown(cfg, store, NullReporter(), include_bucket=True, ctx=ctx)
    assert "s3 bucket" in {d["resource"] for d in result["deleted"]}
    names = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    assert names == []


# rollback ------------------------------------------------------------------------------------
def test_rollback_moves_live_to_the_previous_version_and_back(store, package, ctx, tmp_path):
    _deploy(make_cfg(), store, package, ctx)
    newer = make_package(tmp_path / "pkg2", content="v2", model_id="m-two")
    _deploy(make_cfg(), store, newer, ctx)
    assert _live() == "2"

    back = rollback(make_cfg(), store, NullReporter(), None, ctx=ctx)
    assert {k: back[k] for k in ("env", "from", "to", "model_id")} == {
        "env": "dev", "from": "2", "to": "1", "model_id": "m-test"
    }
    assert _live() == "1"
    with pytest.raises(IrisError, match="no earlier one"):
        rollback(make_cfg(), store, NullReporter(), None, ctx=ctx)
    assert rollback(make_cfg(), store, NullReporter(), "2", ctx=ctx)["to"] == "2"
    with pytest.raises(UsageError, match="no published version '9'"):
        rollback(make_cfg(), store, NullReporter(), "9", ctx=ctx)


def test_redeploy_after_rollback_moves_live_forward_without_new_version(
    store, package, ctx, tmp_path
):
    _deploy(make_cfg(), store, package, ctx)
    newer = make_package(tmp_path / "pkg2", content="v2", model_id="m-two")
    _deploy(make_cfg(), store, newer, ctx)
    rollback(make_cfg(), store, NullReporter(), None, ctx=ctx)

    result = _deploy(make_cfg(), store, newer, ctx)

    assert result["version"] == "2" and _live() == "2"


def test_rollback_without_deploy_is_a_clear_error(cfg, store, ctx):
    with pytest.raises(IrisError, match="deploy env dev first"):
        rollback(cfg, store, NullReporter(), None, ctx=ctx)


# logs ----------------------------------------------------------------------------------------
def test_logs_since_returns_recent_events_and_follow_polls(cfg, store, package, ctx):
    _deploy(cfg, store, package, ctx)
    client = boto3.client("logs")
    group = f"/aws/lambda/{FN}"
    client.create_log_stream(logGroupName=group, logStreamName="s1")
    now_ms = int(time.time() * 1000)
    client.put_log_events(
        logGroupName=group,
        logStreamName="s1",
        logEvents=[
            {"timestamp": now_ms - 3 * 3600 * 1000, "message": "old"},
            {"timestamp": now_ms - 1000, "message": '{"path": "/predict"}'},
        ],
    )
    seen: list[dict[str, Any]] = []
    logs(cfg, store, "10m", False, seen.append, ctx=ctx)
    assert [e["message"] for e in seen] == ['{"path": "/predict"}']

    followed: list[dict[str, Any]] = []
    sleeps: list[float] = []
    logs(cfg, store, "2h", True, followed.append, ctx=ctx, sleep=sleeps.append, max_polls=3)
    assert len(followed) == 1 and sleeps == [2.0, 2.0]


def test_logs_rejects_a_bad_duration(cfg, store, ctx):
    with pytest.raises(UsageError, match="30s, 10m"):
        logs(cfg, store, "soon", False, print, ctx=ctx)


# verified rollout ----------------------------------------------------------------------------
@pytest.fixture
def trained(store) -> str:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model_dir = store.model_dir("m-test")
    model_dir.mkdir(parents=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), model_dir / "model.joblib")
    return "m-test"


def _answer(predictions: list[int]) -> Any:
    def invoker(ctx, fn, qualifier, event):
        assert qualifier.isdigit() and len(event["instances"]) == len(predictions)
        return {"predictions": [{"prediction": p} for p in predictions]}

    return invoker


def test_smoke_test_agreement_moves_live(cfg, store, package, ctx, trained):
    from mlops_cli.targets.aws.smoke import SMOKE_ROWS, local_predictions

    right = local_predictions(store, trained, SMOKE_ROWS)
    result = _deploy(cfg, store, package, ctx, smoke_test=True, invoker=_answer(right))
    assert result["version"] == "1" and _live() == "1"


def test_smoke_test_disagreement_leaves_live_where_it_was(store, package, ctx, trained, calls):
    from mlops_cli.targets.aws.smoke import SMOKE_ROWS, local_predictions

    right = local_predictions(store, trained, SMOKE_ROWS)
    _deploy(make_cfg(), store, package, ctx, smoke_test=True, invoker=_answer(right))
    wrong = [(p + 1) % 3 for p in right]
    calls.reset()

    with pytest.raises(IrisError, match="live` was not moved") as info:
        _deploy(
            make_cfg(lambda__memory_mb=1024),
            store,
            package,
            ctx,
            smoke_test=True,
            invoker=_answer(wrong),
        )

    assert "[5.1, 3.5, 1.4, 0.2]" in str(info.value)
    assert _live() == "1"
    assert "UpdateAlias" not in calls.mutating
    # fixed answer → the same published version is verified and promoted, none duplicated
    result = _deploy(
        make_cfg(lambda__memory_mb=1024),
        store,
        package,
        ctx,
        smoke_test=True,
        invoker=_answer(right),
    )
    assert result["version"] == "2" and _live() == "2"


def test_first_deploy_failing_smoke_test_creates_no_alias_and_no_api(
    cfg, store, package, ctx, trained
):
    with pytest.raises(IrisError, match="smoke test"):
        _deploy(cfg, store, package, ctx, smoke_test=True, invoker=lambda *a: {"error": "x"})
    with pytest.raises(Exception, match="not"):
        boto3.client("lambda").get_alias(FunctionName=FN, Name="live")
    assert _apis() == []


# retries and failures ------------------------------------------------------------------------
def _fail_first(client: Any, event: str, times: int, code: str, message: str) -> list[int]:
    count = [0]

    def handler(**_: Any) -> Any:
        if count[0] < times:
            count[0] += 1
            body = {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            return SimpleNamespace(status_code=400), body
        return None

    client.meta.events.register_first(event, handler)
    return count


def test_create_function_is_retried_while_the_new_role_cannot_be_assumed(cfg, store, package, ctx):
    lam = ctx.client("lambda")
    count = _fail_first(
        lam,
        "before-call.lambda.CreateFunction",
        2,
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
    )
    sleeps: list[float] = []

    _deploy(cfg, store, package, ctx, sleep=sleeps.append)

    assert count[0] == 2 and sleeps == [2.0, 4.0]
    assert _live() == "1"


def test_role_retry_is_bounded_and_says_what_to_do(cfg, store, package, ctx):
    _fail_first(
        ctx.client("lambda"),
        "before-call.lambda.CreateFunction",
        99,
        "InvalidParameterValueException",
        "The role cannot be assumed by Lambda.",
    )
    sleeps: list[float] = []
    with pytest.raises(IrisError, match="run the deploy again"):
        _deploy(cfg, store, package, ctx, sleep=sleeps.append)
    assert len(sleeps) == len(ROLE_RETRY_DELAYS) and sum(sleeps) >= 120


def test_other_invalid_parameters_are_not_retried(cfg, store, package, ctx):
    _fail_first(
        ctx.client("lambda"),
        "before-call.lambda.CreateFunction",
        1,
        "InvalidParameterValueException",
        "Unsupported runtime",
    )
    with pytest.raises(IrisError, match="Unsupported runtime"):
        _deploy(cfg, store, package, ctx, sleep=lambda s: pytest.fail("slept"))


def test_throttled_calls_are_retried_by_botocore(cfg, store, package, ctx, monkeypatch):
    import botocore.retries.standard as standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, c: 0)
    gw = ctx.client("apigatewayv2")
    sent = [0]

    def throttle(request: Any, **_: Any) -> Any:
        if sent[0] < 2:
            sent[0] += 1
            return AWSResponse(
                request.url,
                429,
                {"x-amzn-ErrorType": "TooManyRequestsException"},
                SimpleNamespace(stream=lambda: iter([b"{}"]), content=b"{}", read=lambda: b"{}"),
            )
        return None

    # a read: moto applies a mutating call before this hook could answer for it
    gw.meta.events.register_first("before-send.apigatewayv2.GetApis", throttle)

    result = _deploy(cfg, store, package, ctx)

    assert sent[0] == 2 and len(_apis()) == 1 and result["url"]


def test_interrupted_deploy_converges_on_rerun_without_duplicates(cfg, store, package, ctx):
    # creates go through the client that never retries blindly; hook both to be sure
    clients = (ctx.client("apigatewayv2"), ctx.client("apigatewayv2", retries=False))

    def interrupt(**_: Any) -> None:
        raise KeyboardInterrupt

    for gw in clients:
        gw.meta.events.register("before-call.apigatewayv2.CreateRoute", interrupt,
                                unique_id="crash")
    with pytest.raises(KeyboardInterrupt):
        _deploy(cfg, store, package, ctx)
    for gw in clients:
        gw.meta.events.unregister("before-call.apigatewayv2.CreateRoute", unique_id="crash")

    result = _deploy(cfg, store, package, ctx)

    assert len(_apis()) == 1
    api_id = _apis()[0]["ApiId"]
    client = boto3.client("apigatewayv2")
    assert len(client.get_integrations(ApiId=api_id)["Items"]) == 1
    assert sorted(r["RouteKey"] for r in client.get_routes(ApiId=api_id)["Items"]) == [
        "GET /health",
        "POST /predict",
    ]
    assert result["version"] == "1"
    assert _deploy(cfg, store, package, ctx)["up_to_date"]


def test_crash_between_code_update_and_publish_is_finished_by_the_next_deploy(
    cfg, store, package, ctx, tmp_path
):
    _deploy(cfg, store, package, ctx)
    newer = make_package(tmp_path / "pkg2", content="v2")

    def interrupt(**_: Any) -> None:
        raise KeyboardInterrupt

    lam = ctx.client("lambda")
    lam.meta.events.register("before-call.lambda.PublishVersion", interrupt, unique_id="crash")
    with pytest.raises(KeyboardInterrupt):
        _deploy(cfg, store, newer, ctx)
    lam.meta.events.unregister("before-call.lambda.PublishVersion", unique_id="crash")

    result = _deploy(cfg, store, newer, ctx)

    assert [p["action"] for p in result["plan"]] == ["publish_version", "update_alias"]
    assert _live() == "2"


def test_missing_credentials_and_region_are_usage_errors(monkeypatch, aws):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(UsageError, match="no AWS credentials"):
        connect(make_cfg())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(UsageError, match="no AWS region"):
        connect(make_cfg(aws={"region": None}))


def test_unknown_profile_is_a_usage_error():
    with pytest.raises(UsageError, match="profile 'nope'"):
        connect(make_cfg(aws={"region": "eu-west-1", "profile": "nope"}))


def test_unreachable_endpoint_is_an_actionable_error():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    cfg = make_cfg(aws={"region": "eu-west-1", "endpoint_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(IrisError, match="cannot reach AWS"):
        connect(cfg, max_attempts=1)


def test_direct_invoke_function_error_is_reported(cfg, store, package, ctx):
    from mlops_cli.targets.aws.deploy import INVOKE_MARGIN_S, invoke_version

    _deploy(cfg, store, package, ctx)
    # Invoke goes through its own client: no retries, a read timeout above the function's.
    lam = ctx.client("lambda", retries=False, read_timeout=10 + INVOKE_MARGIN_S)

    def failing(**_: Any) -> Any:
        payload = SimpleNamespace(read=lambda: json.dumps({"errorMessage": "boom"}).encode())
        return SimpleNamespace(status_code=200), {
            "FunctionError": "Unhandled",
            "Payload": payload,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    lam.meta.events.register_first("before-call.lambda.Invoke", failing)
    with pytest.raises(IrisError, match="boom"):
        invoke_version(ctx, FN, "live", {"instances": [[1, 2, 3, 4]]}, timeout_s=10)
