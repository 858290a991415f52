"""Real AWS semantics that moto lacks, modelled by tests/aws/behaviour.py: each test fails on a
deploy that ignores the behaviour, and passes in ONE run of the tool with it handled."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError

from mlops_cli.console import NullReporter
from mlops_cli.errors import IrisError, UsageError
from mlops_cli.targets.aws import deploy, rollback, status, teardown
from tests.aws.behaviour import AwsBehaviour, modelled_context
from tests.aws.conftest import REGION, make_cfg, make_package

FN = "iris-mlops-dev"


class Lines(NullReporter):
    """A reporter that keeps what it prints (the progress a user would see)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    def warn(self, message: str) -> None:
        self.lines.append(message)


def _deploy(cfg, store, package, ctx, clock, **kw: Any) -> dict[str, Any]:
    kw.setdefault("smoke_test", False)
    reporter = kw.pop("reporter", NullReporter())
    return deploy(cfg, store, package, reporter, ctx=ctx, sleep=clock.sleep, **kw)


@pytest.fixture
def behaviour(clock) -> AwsBehaviour:
    return AwsBehaviour(clock=clock)


@pytest.fixture
def mctx(aws, cfg, behaviour, calls) -> Any:
    return modelled_context(cfg, behaviour, calls)


def _count_everything(region: str = REGION) -> dict[str, Any]:
    iam, lam = boto3.client("iam", region_name=region), boto3.client("lambda", region_name=region)
    gw, logs = (boto3.client(s, region_name=region) for s in ("apigatewayv2", "logs"))
    apis = [a for a in gw.get_apis()["Items"] if a["Name"] == FN]
    out: dict[str, Any] = {"apis": len(apis)}
    if apis:
        api_id = apis[0]["ApiId"]
        out["integrations"] = len(gw.get_integrations(ApiId=api_id)["Items"])
        out["routes"] = len(gw.get_routes(ApiId=api_id)["Items"])
        out["stages"] = len(gw.get_stages(ApiId=api_id)["Items"])
    out["roles"] = sum(r["RoleName"] == FN for r in iam.list_roles()["Roles"])
    out["log_groups"] = len(
        logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{FN}")["logGroups"]
    )
    out["functions"] = sum(f["FunctionName"] == FN for f in lam.list_functions()["Functions"])
    if out["functions"]:
        out["aliases"] = len(lam.list_aliases(FunctionName=FN)["Aliases"])
        policy = json.loads(lam.get_policy(FunctionName=FN, Qualifier="live")["Policy"])
        out["statements"] = len(policy["Statement"])
    return out


ONE_OF_EACH = {
    "apis": 1,
    "integrations": 1,
    "routes": 2,
    "stages": 1,
    "roles": 1,
    "log_groups": 1,
    "functions": 1,
    "aliases": 1,
    "statements": 2,  # one invoke permission per route
}


# 1. partitions ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]
)
def test_deploy_status_rollback_and_teardown_work_in_other_partitions(
    region, partition, monkeypatch, store, package, aws, clock, tmp_path
):
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    cfg = make_cfg(aws__region=region)
    model = AwsBehaviour(clock=clock, region=region)
    ctx = modelled_context(cfg, model)

    first = _deploy(cfg, store, package, ctx, clock)
    _deploy(cfg, store, make_package(tmp_path / "v2", content="v2"), ctx, clock)

    lam, gw = (
        boto3.client("lambda", region_name=region),
        boto3.client("apigatewayv2", region_name=region),
    )
    (api,) = [a for a in gw.get_apis()["Items"] if a["Name"] == FN]
    assert first["url"] == api["ApiEndpoint"]
    conf = lam.get_function(FunctionName=FN)["Configuration"]
    assert conf["Role"].startswith(f"arn:{partition}:iam::")
    (integration,) = gw.get_integrations(ApiId=api["ApiId"])["Items"]
    assert integration["IntegrationUri"].startswith(f"arn:{partition}:lambda:{region}:")
    policy = json.loads(lam.get_policy(FunctionName=FN, Qualifier="live")["Policy"])
    source = policy["Statement"][0]["Condition"]["ArnLike"]["AWS:SourceArn"]
    assert source.startswith(f"arn:{partition}:execute-api:{region}:")
    logs_doc = model.plain("iam").get_role_policy(RoleName=FN, PolicyName="iris-mlops-logs")[
        "PolicyDocument"
    ]
    assert logs_doc["Statement"][0]["Resource"].startswith(f"arn:{partition}:logs:{region}:")

    seen = status(cfg, store, ctx=ctx)
    assert seen["deployed"] and seen["url"] == api["ApiEndpoint"] and seen["drift"] == []
    assert rollback(cfg, store, NullReporter(), None, ctx=ctx)["to"] == "1"
    teardown(cfg, store, NullReporter(), ctx=ctx)
    assert [f for f in lam.list_functions()["Functions"] if f["FunctionName"] == FN] == []
    assert [a for a in gw.get_apis()["Items"] if a["Name"] == FN] == []


# 2. function states ----------------------------------------------------------------------------
def test_a_pending_new_function_is_waited_for_before_publishing(
    cfg, store, package, mctx, behaviour, clock
):
    _deploy(cfg, store, package, mctx, clock)

    assert behaviour.conflicts == {}
    assert _count_everything() == ONE_OF_EACH


def test_a_rerun_right_after_a_killed_update_waits_before_publishing(
    store, package, mctx, behaviour, clock, calls
):
    _deploy(make_cfg(), store, package, mctx, clock)
    changed = make_cfg(lambda__memory_mb=1024)

    class Killed(BaseException):
        pass

    def kill(model: Any, **_: Any) -> None:
        if model.name == "UpdateFunctionConfiguration":
            raise Killed

    lam = mctx.client("lambda")
    lam.meta.events.register_last("after-call.lambda", kill)
    with pytest.raises(Killed):
        _deploy(changed, store, package, mctx, clock)
    lam.meta.events.unregister("after-call.lambda", kill)
    assert behaviour._state(FN) == "InProgress"

    result = _deploy(changed, store, package, mctx, clock)  # at once: still InProgress

    assert [c["action"] for c in result["plan"]] == ["publish_version", "update_alias"]
    assert behaviour.conflicts == {}
    assert boto3.client("lambda").get_alias(FunctionName=FN, Name="live")["FunctionVersion"] == "2"


def test_code_and_configuration_changes_wait_between_updates(
    store, package, mctx, behaviour, clock, tmp_path
):
    _deploy(make_cfg(), store, package, mctx, clock)
    new = make_package(tmp_path / "v2", content="v2")

    result = _deploy(make_cfg(lambda__memory_mb=1024), store, new, mctx, clock)

    assert [c["action"] for c in result["plan"]][:2] == [
        "update_function_code",
        "update_function_configuration",
    ]
    assert behaviour.conflicts == {}


# 3. tags of a function -------------------------------------------------------------------------
def test_get_function_without_tags_reads_them_with_list_tags(
    cfg, store, package, mctx, behaviour, clock, calls
):
    _deploy(cfg, store, package, mctx, clock)
    behaviour.tags_hidden = True
    calls.reset()

    result = _deploy(cfg, store, package, mctx, clock)

    assert result["up_to_date"] and calls.mutating == []
    assert "ListTags" in calls.read_only


def test_denied_list_tags_stops_with_a_message_naming_the_permission(
    cfg, store, package, mctx, behaviour, clock, calls
):
    _deploy(cfg, store, package, mctx, clock)
    behaviour.tags_hidden = behaviour.list_tags_denied = True
    calls.reset()

    with pytest.raises(UsageError, match="lambda:ListTags"):
        _deploy(cfg, store, package, mctx, clock)
    with pytest.raises(UsageError, match="lambda:ListTags"):
        teardown(cfg, store, NullReporter(), ctx=mctx)
    assert calls.mutating == []
    assert _count_everything() == ONE_OF_EACH


def test_teardown_keeps_role_and_log_group_of_a_function_it_cannot_confirm_as_ours(
    cfg, store, package, mctx, clock
):
    _deploy(cfg, store, package, mctx, clock)
    lam = boto3.client("lambda")
    arn = lam.get_function(FunctionName=FN)["Configuration"]["FunctionArn"]
    lam.untag_resource(Resource=arn, TagKeys=["iris-mlops:project", "iris-mlops:env"])

    result = teardown(cfg, store, NullReporter(), ctx=mctx)

    left = _count_everything()
    assert left["functions"] == 1 and left["roles"] == 1 and left["log_groups"] == 1
    kept = {s["resource"] for s in result["skipped_foreign"]}
    assert {"lambda function", "iam role", "log group"} <= kept


# 5. answers lost after AWS applied the call ----------------------------------------------------
@pytest.mark.parametrize(
    "operation",
    [
        "CreateRole",
        "PutRolePolicy",
        "CreateLogGroup",
        "PutRetentionPolicy",
        "CreateFunction",
        "CreateAlias",
        "CreateApi",
        "CreateIntegration",
        "CreateRoute",
        "CreateStage",
        "AddPermission",
    ],
)
def test_a_lost_answer_is_adopted_in_the_same_run_without_duplicates(
    operation, cfg, store, package, mctx, behaviour, clock, calls
):
    behaviour.lose_answers = {operation}

    _deploy(cfg, store, package, mctx, clock)

    assert behaviour.lost[operation] == 1
    assert _count_everything() == ONE_OF_EACH
    calls.reset()
    assert _deploy(cfg, store, package, mctx, clock)["up_to_date"] and calls.mutating == []


def test_a_lost_answer_to_deleting_an_old_version_does_not_fail_the_deploy(
    store, mctx, behaviour, clock, calls, tmp_path
):
    """DeleteFunction applied, its answer lost: botocore's retry then hears the version is
    gone, which is what the deploy wanted (as every delete of a deploy or a teardown)."""
    cfg = make_cfg(lambda__keep_versions=1)
    _deploy(cfg, store, make_package(tmp_path / "p1", "v1", "m-1"), mctx, clock)
    behaviour.lose_answers = {"DeleteFunction"}

    _deploy(cfg, store, make_package(tmp_path / "p2", "v2", "m-2"), mctx, clock)
    _deploy(cfg, store, make_package(tmp_path / "p3", "v3", "m-3"), mctx, clock)

    assert behaviour.lost["DeleteFunction"] == 1
    lam = boto3.client("lambda")
    versions = lam.list_versions_by_function(FunctionName=FN)["Versions"]
    # 1 went (its DeleteFunction's answer lost); 2 stays: it was live when the deploy planned
    assert sorted(v["Version"] for v in versions if v["Version"] != "$LATEST") == ["2", "3"]
    assert lam.get_alias(FunctionName=FN, Name="live")["FunctionVersion"] == "3"


def test_a_lost_answer_to_removing_a_stale_statement_does_not_fail_the_deploy(
    cfg, store, package, mctx, behaviour, clock, calls
):
    """The API was deleted by hand: the next deploy removes the statements naming it, and one
    RemovePermission's answer is lost after it was applied; the same run still ends with one
    statement per route, each naming the new API."""
    _deploy(cfg, store, package, mctx, clock)
    gw = boto3.client("apigatewayv2")
    (old,) = [a["ApiId"] for a in gw.get_apis()["Items"] if a["Name"] == FN]
    gw.delete_api(ApiId=old)
    behaviour.lose_answers = {"RemovePermission"}

    _deploy(cfg, store, package, mctx, clock)

    assert behaviour.lost["RemovePermission"] == 1
    (new,) = [a["ApiId"] for a in gw.get_apis()["Items"] if a["Name"] == FN]
    policy = boto3.client("lambda").get_policy(FunctionName=FN, Qualifier="live")["Policy"]
    arns = [st["Condition"]["ArnLike"]["AWS:SourceArn"] for st in json.loads(policy)["Statement"]]
    assert len(arns) == 2 and all(f":{new}/" in arn for arn in arns), arns
    calls.reset()
    assert _deploy(cfg, store, package, mctx, clock)["up_to_date"] and calls.mutating == []


def test_a_lost_bucket_creation_is_adopted(store, mctx, behaviour, clock, tmp_path):
    behaviour.lose_answers = {"CreateBucket"}
    big = make_package(tmp_path / "big", content="big", size_bytes=60 * 1024 * 1024)

    _deploy(make_cfg(), store, big, mctx, clock)

    assert behaviour.lost["CreateBucket"] == 1
    buckets = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    assert len([b for b in buckets if b.startswith("iris-mlops-artifacts-")]) == 1


def test_a_same_named_role_of_someone_else_is_not_adopted_after_a_conflict(
    cfg, store, package, mctx, clock
):
    from mlops_cli.targets.aws.executor import Executor
    from mlops_cli.targets.aws.model import PlannedCall

    boto3.client("iam").create_role(RoleName=FN, AssumeRolePolicyDocument="{}")
    call = PlannedCall(
        "iam",
        "create_role",
        {
            "RoleName": FN,
            "AssumeRolePolicyDocument": "{}",
            "Tags": [
                {"Key": "iris-mlops:project", "Value": "iris-mlops"},
                {"Key": "iris-mlops:env", "Value": "dev"},
            ],
        },
        f"iam role {FN}",
        "missing",
    )
    with pytest.raises(IrisError, match="not tagged"):
        Executor(mctx, NullReporter(), sleep=clock.sleep).run([call], {})


# 6. IAM propagation ----------------------------------------------------------------------------
def test_first_deploy_waits_out_a_60_second_iam_delay_with_progress(
    cfg, store, package, mctx, behaviour, clock, calls
):
    behaviour.iam_delay_s = 60
    lines = Lines()

    _deploy(cfg, store, package, mctx, clock, reporter=lines)

    assert behaviour.role_refusals >= 1 and 60 <= clock.now < 120
    assert any("IAM" in line and "s" in line for line in lines.lines)
    assert _count_everything() == ONE_OF_EACH
    print(
        f"\nfirst deploy through a 60 s IAM delay: {clock.now:.0f} s simulated, "
        f"{len(calls.mutating)} mutating + {len(calls.read_only)} read-only calls"
    )


def test_iam_delay_is_retried_for_at_least_two_minutes_then_says_what_to_do(
    cfg, store, package, mctx, behaviour, clock
):
    behaviour.iam_delay_s = 10_000
    with pytest.raises(IrisError, match="run the deploy again"):
        _deploy(cfg, store, package, mctx, clock)
    assert clock.now >= 120


# 7. account quotas -----------------------------------------------------------------------------
def _account(total: int, unreserved: int) -> dict[str, Any]:
    return {
        "AccountLimit": {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": total,
            "UnreservedConcurrentExecutions": unreserved,
        },
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
    }


def test_reserved_concurrency_a_new_account_cannot_give_is_refused_before_any_change(
    store, package, mctx, behaviour, clock, calls
):
    behaviour.account = _account(10, 10)
    cfg = make_cfg(lambda__reserved_concurrency=5)

    with pytest.raises(UsageError) as caught:
        _deploy(cfg, store, package, mctx, clock)

    message = str(caught.value)
    assert "reserved_concurrency" in message and "10" in message and "100" in message
    assert calls.mutating == []


def test_reserved_concurrency_within_the_account_is_applied(store, package, mctx, behaviour, clock):
    behaviour.account = _account(1000, 1000)
    _deploy(make_cfg(lambda__reserved_concurrency=5), store, package, mctx, clock)
    got = boto3.client("lambda").get_function_concurrency(FunctionName=FN)
    assert got["ReservedConcurrentExecutions"] == 5


def test_an_endpoint_without_get_account_settings_skips_the_check_with_a_note(
    store, package, mctx, clock
):
    lines = Lines()
    _deploy(make_cfg(lambda__reserved_concurrency=5), store, package, mctx, clock, reporter=lines)
    assert any("GetAccountSettings" in line for line in lines.lines)


# 8. stages -------------------------------------------------------------------------------------
def test_on_aws_a_stage_change_uses_update_stage(store, package, mctx, clock, calls):
    _deploy(make_cfg(), store, package, mctx, clock)
    calls.reset()
    _deploy(make_cfg(api__throttle_rate=5), store, package, mctx, clock)
    assert calls.mutating == ["UpdateStage"]


def test_on_aws_a_failed_update_stage_never_deletes_the_live_stage(
    store, package, mctx, behaviour, clock, calls
):
    _deploy(make_cfg(), store, package, mctx, clock)
    behaviour.model_update_stage = False  # the call fails (here: moto does not implement it)
    calls.reset()

    with pytest.raises(IrisError):
        _deploy(make_cfg(api__throttle_rate=5), store, package, mctx, clock)

    assert "DeleteStage" not in calls.mutating
    assert _count_everything()["stages"] == 1


# 9. the smoke test's Invoke --------------------------------------------------------------------
def test_smoke_invoke_is_sent_once_with_a_read_timeout_above_the_function_timeout(
    cfg, store, package, mctx, clock
):
    from mlops_cli.targets.aws.deploy import invoke_version

    _deploy(cfg, store, package, mctx, clock)
    sent: list[float] = []
    original = type(mctx).client

    def client(self, service: str, **options: Any) -> Any:
        made = original(self, service, **options)
        if service == "lambda" and not getattr(made, "_timeout_hook", False):
            made._timeout_hook = True

            def time_out(request: Any, **_: Any) -> None:
                if "/invocations" in request.url:
                    sent.append(made.meta.config.read_timeout)
                    raise ReadTimeoutError(endpoint_url=request.url)

            made.meta.events.register_first("before-send.lambda.Invoke", time_out)
        return made

    type(mctx).client = client
    try:
        with pytest.raises(IrisError):
            invoke_version(mctx, FN, "1", {"instances": [[1, 2, 3, 4]]}, timeout_s=10)
    finally:
        type(mctx).client = original
    assert len(sent) == 1
    assert sent[0] >= 10 + 5


# 4. the model's permission conflict (the fix lives with the permission resource, issue 11) -----
def test_the_model_answers_409_to_a_duplicate_statement_id(cfg, store, package, mctx, clock):
    _deploy(cfg, store, package, mctx, clock)
    lam = mctx.client("lambda")
    statement = json.loads(lam.get_policy(FunctionName=FN, Qualifier="live")["Policy"])[
        "Statement"
    ][0]

    with pytest.raises(lam.exceptions.ResourceConflictException, match="already exists"):
        lam.add_permission(
            FunctionName=FN, Qualifier="live", StatementId=statement["Sid"],
            Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
        )
    assert _count_everything()["statements"] == 2  # one per route, no duplicate appended
