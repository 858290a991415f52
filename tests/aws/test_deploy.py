"""Deploy against moto: creates everything once, then converges with the fewest calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops_cli.console import NullReporter
from mlops_cli.errors import IrisError, UsageError
from mlops_cli.targets.aws import deploy, endpoint, invoke_direct, status
from tests.aws.conftest import REGION, CallLog, counted_context, make_cfg, make_package

FN = "iris-mlops-dev"


def _deploy(cfg, store, package, ctx, **kw: Any) -> dict[str, Any]:
    return deploy(cfg, store, package, NullReporter(), smoke_test=False, ctx=ctx, **kw)


def _api(name: str = FN) -> list[dict[str, Any]]:
    return [a for a in boto3.client("apigatewayv2").get_apis()["Items"] if a["Name"] == name]


def test_first_deploy_creates_every_resource_tagged_and_wired(cfg, store, package, ctx, calls):
    result = _deploy(cfg, store, package, ctx)

    assert result["applied"] and not result["up_to_date"]
    assert result["version"] == "1" and result["alias"] == "live"
    apis = _api()
    assert len(apis) == 1
    api_id = apis[0]["ApiId"]
    assert result["url"] == f"https://{api_id}.execute-api.{REGION}.amazonaws.com"
    assert result["invoke_url"] == result["url"] + "/predict"
    tags = {"iris-mlops:project": "iris-mlops", "iris-mlops:env": "dev", "owner": "ml-team"}

    iam = boto3.client("iam")
    role = iam.get_role(RoleName=FN)["Role"]
    assert {t["Key"]: t["Value"] for t in role["Tags"]} == tags
    assert iam.list_attached_role_policies(RoleName=FN)["AttachedPolicies"] == []
    policy = iam.get_role_policy(RoleName=FN, PolicyName="iris-mlops-logs")["PolicyDocument"]
    (statement,) = policy["Statement"]
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert (
        statement["Resource"] == f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/{FN}:*"
    )

    group = boto3.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{FN}")
    assert group["logGroups"][0]["retentionInDays"] == 14

    lam = boto3.client("lambda")
    fn = lam.get_function(FunctionName=FN)
    conf = fn["Configuration"]
    assert conf["CodeSha256"] == package.code_sha256_b64
    assert (conf["MemorySize"], conf["Timeout"], conf["Runtime"]) == (512, 10, "python3.12")
    assert conf["Handler"] == "iris_runtime.handler.lambda_handler"
    assert fn["Tags"] == tags
    assert lam.get_alias(FunctionName=FN, Name="live")["FunctionVersion"] == "1"
    version = lam.get_function_configuration(FunctionName=FN, Qualifier="1")
    assert version["Description"] == "iris-mlops model m-test"

    gw = boto3.client("apigatewayv2")
    assert apis[0]["Tags"] == tags
    assert apis[0]["CorsConfiguration"]["AllowOrigins"] == ["*"]
    (integration,) = gw.get_integrations(ApiId=api_id)["Items"]
    assert integration["IntegrationUri"].endswith(f":function:{FN}:live")
    assert integration["PayloadFormatVersion"] == "2.0"
    routes = {r["RouteKey"]: r["Target"] for r in gw.get_routes(ApiId=api_id)["Items"]}
    assert routes == {
        "POST /predict": f"integrations/{integration['IntegrationId']}",
        "GET /health": f"integrations/{integration['IntegrationId']}",
    }
    (stage,) = gw.get_stages(ApiId=api_id)["Items"]
    assert stage["StageName"] == "$default" and stage["AutoDeploy"]
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 50.0
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 100

    perm = json.loads(lam.get_policy(FunctionName=FN, Qualifier="live")["Policy"])
    assert {s["Sid"]: s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in perm["Statement"]} == {
        "iris-mlops-apigw-post-predict": (
            f"arn:aws:execute-api:{REGION}:123456789012:{api_id}/*/POST/predict"
        ),
        "iris-mlops-apigw-get-health": (
            f"arn:aws:execute-api:{REGION}:123456789012:{api_id}/*/GET/health"
        ),
    }
    assert store.read_record("dev")["url"] == result["url"]
    print(
        f"\nfirst deploy: {len(calls.mutating)} mutating + {len(calls.read_only)} read-only calls"
    )
    assert len(calls.calls) <= 25


def test_second_deploy_with_nothing_changed_makes_no_mutating_call(cfg, store, package, ctx, calls):
    first = _deploy(cfg, store, package, ctx)
    calls.reset()

    again = _deploy(cfg, store, package, ctx)

    assert again["up_to_date"] and again["plan"] == []
    assert calls.mutating == []
    assert again["url"] == first["url"] and again["version"] == "1"
    # every resource is still read, and none twice (the canary check's alias read is reused)
    assert len(calls.read_only) == len(set(calls.read_only)), calls.read_only
    assert {"GetRole", "DescribeLogGroups", "GetFunction", "GetAlias", "GetApis",
            "GetPolicy"} <= set(calls.read_only)
    print(f"\nno-change redeploy: {len(calls.read_only)} read-only calls")


def test_changing_memory_is_one_update_then_publish_and_alias_move(store, package, ctx, calls):
    _deploy(make_cfg(), store, package, ctx)
    calls.reset()

    result = _deploy(make_cfg(lambda__memory_mb=1024), store, package, ctx)

    assert [p["action"] for p in result["plan"]] == [
        "update_function_configuration",
        "publish_version",
        "update_alias",
    ]
    assert result["plan"][0]["reason"] == "memory 512 -> 1024"
    assert calls.mutating == ["UpdateFunctionConfiguration", "PublishVersion", "UpdateAlias"]
    lam = boto3.client("lambda")
    assert lam.get_alias(FunctionName=FN, Name="live")["FunctionVersion"] == "2"
    assert lam.get_function_configuration(FunctionName=FN, Qualifier="live")["MemorySize"] == 1024
    print(f"\none-field change: {len(calls.mutating)} mutating + {len(calls.read_only)} read-only")


def test_new_code_updates_code_and_moves_live_to_a_new_version(
    cfg, store, package, ctx, calls, tmp_path
):
    _deploy(cfg, store, package, ctx)
    calls.reset()
    newer = make_package(tmp_path / "pkg2", content="v2", model_id="m-two")

    result = _deploy(cfg, store, newer, ctx)

    assert calls.mutating == ["UpdateFunctionCode", "PublishVersion", "UpdateAlias"]
    assert result["version"] == "2" and result["model_id"] == "m-two"
    live = boto3.client("lambda").get_function_configuration(FunctionName=FN, Qualifier="live")
    assert live["CodeSha256"] == newer.code_sha256_b64


def test_environment_and_concurrency_changes_are_applied(store, package, ctx, calls):
    _deploy(make_cfg(), store, package, ctx)
    calls.reset()

    cfg = make_cfg(lambda__environment={"LOG_LEVEL": "debug"}, lambda__reserved_concurrency=3)
    _deploy(cfg, store, package, ctx)

    assert sorted(calls.mutating) == sorted(
        ["UpdateFunctionConfiguration", "PutFunctionConcurrency", "PublishVersion", "UpdateAlias"]
    )
    calls.reset()
    assert _deploy(cfg, store, package, ctx)["up_to_date"]
    assert calls.mutating == []


def test_throttle_change_recreates_stage_when_a_custom_endpoint_lacks_update_stage(
    store, package, ctx, calls
):
    _deploy(make_cfg(), store, package, ctx)
    calls.reset()
    # An emulator's endpoint (moto has no UpdateStage); the clients made above keep talking to
    # the in-process moto. On AWS (no endpoint) the stage is never recreated: see
    # test_aws_semantics.py.
    ctx.endpoint_url = "http://127.0.0.1:4566"

    cfg = make_cfg(api__throttle_rate=5, api__throttle_burst=10)
    result = _deploy(cfg, store, package, ctx)

    assert [p["action"] for p in result["plan"]] == ["update_stage"]
    (stage,) = boto3.client("apigatewayv2").get_stages(ApiId=_api()[0]["ApiId"])["Items"]
    assert stage["DefaultRouteSettings"] == {"ThrottlingRateLimit": 5.0, "ThrottlingBurstLimit": 10}
    calls.reset()
    assert _deploy(cfg, store, package, ctx)["up_to_date"] and calls.mutating == []


def test_cors_change_updates_the_api_only(store, package, ctx, calls):
    _deploy(make_cfg(), store, package, ctx)
    calls.reset()

    cfg = make_cfg(api__cors_origins=["https://example.org"])
    _deploy(cfg, store, package, ctx)

    assert calls.mutating == ["UpdateApi"]
    assert _api()[0]["CorsConfiguration"]["AllowOrigins"] == ["https://example.org"]


def test_plan_only_lists_calls_and_changes_nothing(cfg, store, package, ctx, calls):
    result = deploy(cfg, store, package, NullReporter(), plan_only=True, ctx=ctx)

    actions = [p["action"] for p in result["plan"]]
    assert actions[:2] == ["create_role", "put_role_policy"]
    assert "invoke" in actions  # the smoke test is part of the plan
    assert actions.index("invoke") < actions.index("create_alias")
    assert calls.mutating == [] and not result["applied"]
    assert _api() == [] and store.read_record("dev") is None


def test_lost_record_does_not_create_a_second_api(cfg, store, package, ctx, calls):
    first = _deploy(cfg, store, package, ctx)
    store.delete_record("dev")
    calls.reset()

    again = _deploy(cfg, store, package, ctx)

    assert len(_api()) == 1 and again["url"] == first["url"]
    assert calls.mutating == []
    assert store.read_record("dev")["url"] == first["url"]


def test_foreign_role_with_our_name_stops_the_deploy_untouched(cfg, store, package, ctx, calls):
    iam = boto3.client("iam")
    iam.create_role(
        RoleName=FN,
        AssumeRolePolicyDocument="{}",
        Tags=[{"Key": "iris-mlops:project", "Value": "iris-mlops"}],
    )

    with pytest.raises(UsageError, match=f"iam role {FN}"):
        _deploy(cfg, store, package, ctx)

    assert calls.mutating == []
    assert iam.get_role(RoleName=FN)["Role"]["AssumeRolePolicyDocument"] == {}


def test_api_of_another_env_with_the_same_name_is_left_alone_beside_ours(
    cfg, store, package, ctx, calls
):
    gw = boto3.client("apigatewayv2")
    theirs = gw.create_api(
        Name=FN,
        ProtocolType="HTTP",
        Tags={"iris-mlops:project": "iris-mlops", "iris-mlops:env": "prod"},
    )["ApiId"]

    result = _deploy(cfg, store, package, ctx)

    assert len(_api()) == 2 and theirs not in result["url"]
    assert gw.get_api(ApiId=theirs)["Tags"]["iris-mlops:env"] == "prod"
    assert gw.get_routes(ApiId=theirs)["Items"] == []  # nothing added to theirs
    assert gw.get_integrations(ApiId=theirs)["Items"] == []
    assert gw.get_stages(ApiId=theirs)["Items"] == []


def test_status_reports_resources_version_model_and_drift(cfg, store, package, ctx):
    result = _deploy(cfg, store, package, ctx)
    assert status(cfg, store, ctx=ctx)["drift"] == []
    boto3.client("lambda").update_function_configuration(FunctionName=FN, Timeout=30)

    report = status(cfg, store, ctx=ctx)

    assert report["live_version"] == "1" and report["model_id"] == "m-test"
    assert report["url"] == result["url"] and report["deployed"]
    assert {r["state"] for r in report["resources"]} == {"found"}
    assert any("timeout 30 -> 10" in d["reason"] for d in report["drift"])


def test_status_of_an_env_never_deployed_lists_everything_missing(cfg, store, ctx):
    report = status(cfg, store, ctx=ctx)
    assert not report["deployed"] and report["url"] is None
    assert f"lambda function {FN}" in report["missing"]


def test_endpoint_and_direct_invoke_reach_the_live_alias(cfg, store, package, ctx):
    result = _deploy(cfg, store, package, ctx)
    assert endpoint(cfg, store, ctx=ctx) == result["url"]
    # moto echoes the event back instead of running the handler
    assert invoke_direct(cfg, store, {"instances": [[1, 2, 3, 4]]}, ctx=ctx) == {
        "instances": [[1, 2, 3, 4]]
    }


def test_large_zip_goes_through_a_private_versioned_encrypted_bucket(
    cfg, store, ctx, calls, tmp_path: Path
):
    big = make_package(tmp_path / "big", size_bytes=60 * 1024 * 1024)

    _deploy(cfg, store, big, ctx)

    s3 = boto3.client("s3")
    bucket = f"iris-mlops-artifacts-123456789012-{REGION}"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert {"Key": "iris-mlops:project", "Value": "iris-mlops"} in s3.get_bucket_tagging(
        Bucket=bucket
    )["TagSet"]
    conf = boto3.client("lambda").get_function(FunctionName=FN)["Configuration"]
    assert conf["CodeSha256"] == big.code_sha256_b64
    calls.reset()
    assert _deploy(cfg, store, big, ctx)["up_to_date"] and calls.mutating == []


def test_missing_package_file_is_a_clear_error(cfg, store, package, ctx):
    package.path.unlink()
    with pytest.raises(IrisError, match="iris-mlops package --env dev"):
        _deploy(cfg, store, package, ctx)


def test_call_counts_of_a_full_lifecycle(cfg, store, package, aws, tmp_path):
    """Counts including the sts lookup in connect(), for the report."""
    from mlops_cli.targets.aws import teardown

    log = CallLog()
    c = counted_context(cfg, log)
    _deploy(cfg, store, package, c)
    first = (len(log.mutating), len(log.read_only) + 1)
    log.reset()
    _deploy(cfg, store, package, c)
    again = (len(log.mutating), len(log.read_only) + 1)
    log.reset()
    _deploy(make_cfg(lambda__memory_mb=1024), store, package, c)
    change = (len(log.mutating), len(log.read_only) + 1)
    log.reset()
    teardown(cfg, store, NullReporter(), ctx=c)
    down = (len(log.mutating), len(log.read_only) + 1)
    print(
        f"\ncalls (mutating, read-only incl. sts): first {first}, no-change {again}, "
        f"memory change {change}, teardown {down}"
    )
    assert again[0] == 0 and first[0] + first[1] <= 25
