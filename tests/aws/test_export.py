"""`export`: the template's content, and the code upload to S3 (moto) with the expected owner."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from mlops_cli.console import NullReporter
from mlops_cli.errors import UsageError
from mlops_cli.targets.aws.export import check_request, export
from mlops_cli.targets.aws.template import CodeLocation, build_template
from tests.aws.conftest import REGION, make_cfg, make_package

TAGGABLE = {
    "AWS::IAM::Role",
    "AWS::Logs::LogGroup",
    "AWS::Lambda::Function",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
    "AWS::Serverless::Function",
    "AWS::Serverless::HttpApi",
}
CODE = CodeLocation("my-bucket", "iris-mlops-dev/x.zip")


def _tags(value: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in value} if isinstance(value, list) else dict(value)


# the template ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["cloudformation", "sam"])
def test_everything_that_takes_tags_carries_project_and_env(fmt, package) -> None:
    template = build_template(make_cfg(), package, CODE, fmt)

    tagged = [r for r in template["Resources"].values() if r["Type"] in TAGGABLE]
    assert len(tagged) == (5 if fmt == "cloudformation" else 4)
    for resource in tagged:
        tags = _tags(resource["Properties"]["Tags"])
        assert tags["iris-mlops:project"] == "iris-mlops"
        assert tags["iris-mlops:env"] == "dev"
        assert tags["owner"] == "ml-team"


@pytest.mark.parametrize("fmt", ["cloudformation", "sam"])
def test_code_location_is_a_parameter_defaulting_to_the_given_object(fmt, package) -> None:
    template = build_template(make_cfg(), package, CODE, fmt)

    params = template["Parameters"]
    assert params["CodeS3Bucket"]["Default"] == "my-bucket"
    assert params["CodeS3Key"]["Default"] == "iris-mlops-dev/x.zip"
    if fmt == "cloudformation":
        assert params["CodeSha256"]["Default"] == package.code_sha256_b64
    else:
        assert "CodeSha256" not in params, "SAM's generated version cannot pin the code"
    assert {"EndpointUrl", "FunctionArn", "AliasArn"} <= set(template["Outputs"])


def test_templates_name_no_account_region_or_partition_of_their_own(package) -> None:
    for fmt in ("cloudformation", "sam"):
        text = json.dumps(build_template(make_cfg(), package, CODE, fmt))
        assert "arn:aws:" not in text and REGION not in text and "123456789012" not in text
        assert "${AWS::Partition}" in text and "${AWS::AccountId}" in text


def test_sam_template_publishes_live_through_autopublishalias(package) -> None:
    template = build_template(make_cfg(), package, CODE, "sam")

    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    fn = template["Resources"]["Function"]["Properties"]
    assert fn["AutoPublishAlias"] == "live"
    assert fn["CodeUri"] == {"Bucket": {"Ref": "CodeS3Bucket"}, "Key": {"Ref": "CodeS3Key"}}
    api = template["Resources"]["HttpApi"]
    assert api["Type"] == "AWS::Serverless::HttpApi"
    paths = api["Properties"]["DefinitionBody"]["paths"]
    assert set(paths) == {"/predict", "/health"}
    assert set(paths["/predict"]) == {"post"} and set(paths["/health"]) == {"get"}
    target = paths["/predict"]["post"]["x-amazon-apigateway-integration"]
    assert target["payloadFormatVersion"] == "2.0" and target["type"] == "aws_proxy"
    assert target["uri"]["Fn::Sub"].endswith(":function:iris-mlops-dev:live")


def test_a_new_version_is_published_when_code_or_configuration_changes(tmp_path) -> None:
    def version_id(cfg, package) -> str:
        resources = build_template(cfg, package, CODE, "cloudformation")["Resources"]
        (vid,) = [k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Version"]
        return vid

    v1 = make_package(tmp_path / "a", "v1")
    base = version_id(make_cfg(), v1)
    assert version_id(make_cfg(), v1) == base, "same inputs, same version: nothing republished"
    assert version_id(make_cfg(), make_package(tmp_path / "b", "v2")) != base
    assert version_id(make_cfg(lambda__memory_mb=1024), v1) != base


def test_usage_errors_are_caught_before_anything_is_built() -> None:
    with pytest.raises(UsageError, match="exactly one"):
        check_request(make_cfg(), "sam", None, None)
    with pytest.raises(UsageError, match="exactly one"):
        check_request(make_cfg(), "sam", "b", "s3://b/k")
    with pytest.raises(UsageError, match="not one of"):
        check_request(make_cfg(), "terraform", "b", None)
    with pytest.raises(UsageError, match="s3://BUCKET/KEY"):
        check_request(make_cfg(), "sam", None, "https://b/k")
    with pytest.raises(UsageError, match="aws env"):
        check_request(make_cfg(target="local"), "sam", "b", None)


# the upload ------------------------------------------------------------------------------------
class S3Calls:
    """The parameters of every S3 call the tool makes (before botocore serializes them)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))


def _ctx(cfg, log: S3Calls):
    from mlops_cli.targets.aws.session import connect

    ctx = connect(cfg)
    ctx.client("s3").meta.events.register("provide-client-params.s3", log.hook)
    return ctx


def _bucket(name: str = "team-artifacts", region: str = REGION) -> None:
    boto3.client("s3", region_name=region).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
    )


def test_code_bucket_uploads_the_zip_once_keyed_by_its_sha256_with_the_expected_owner(
    aws, package
) -> None:
    _bucket()
    cfg, log = make_cfg(), S3Calls()
    ctx = _ctx(cfg, log)

    text, summary = export(
        cfg, package, NullReporter(), fmt="cloudformation", code_bucket="team-artifacts", ctx=ctx
    )

    key = f"iris-mlops-dev/{package.sha256}.zip"
    assert summary["uploaded"] is True and summary["code_uri"] == f"s3://team-artifacts/{key}"
    body = boto3.client("s3").get_object(Bucket="team-artifacts", Key=key)["Body"].read()
    assert body == package.path.read_bytes()
    template = json.loads(text)
    assert template["Parameters"]["CodeS3Bucket"]["Default"] == "team-artifacts"
    assert template["Parameters"]["CodeS3Key"]["Default"] == key
    assert [op for op, _ in log.calls] == ["GetBucketLocation", "HeadObject", "PutObject"]
    for op, params in log.calls:
        assert params.get("ExpectedBucketOwner") == ctx.account_id, op

    log.calls.clear()
    _, again = export(
        cfg, package, NullReporter(), fmt="sam", code_bucket="team-artifacts", ctx=ctx
    )
    assert again["uploaded"] is False
    assert [op for op, _ in log.calls] == ["GetBucketLocation", "HeadObject"]


def test_a_bucket_in_another_region_or_missing_is_refused_clearly(aws, package) -> None:
    _bucket("far-away", "us-west-2")
    cfg, log = make_cfg(), S3Calls()
    ctx = _ctx(cfg, log)

    with pytest.raises(UsageError, match="us-west-2"):
        export(cfg, package, NullReporter(), fmt="sam", code_bucket="far-away", ctx=ctx)
    with pytest.raises(UsageError, match="does not exist"):
        export(cfg, package, NullReporter(), fmt="sam", code_bucket="no-such-bucket", ctx=ctx)
    assert "PutObject" not in [op for op, _ in log.calls]


def test_a_bucket_of_another_account_is_never_written(aws, package) -> None:
    """S3 answers 403 when ExpectedBucketOwner is not the owner (modelled: moto ignores it)."""
    _bucket()
    cfg, log = make_cfg(), S3Calls()
    ctx = _ctx(cfg, log)
    owner = ctx.account_id
    ctx.account_id = "999999999999"  # the caller is another account than the bucket's owner

    def deny(params: dict[str, Any], model: Any, **_: Any) -> None:
        if params.get("ExpectedBucketOwner") != owner:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                 "ResponseMetadata": {"HTTPStatusCode": 403}},
                model.name,
            )

    ctx.client("s3").meta.events.register("provide-client-params.s3", deny)
    with pytest.raises(UsageError, match="another account owns it"):
        export(cfg, package, NullReporter(), fmt="sam", code_bucket="team-artifacts", ctx=ctx)
    assert "PutObject" not in [op for op, _ in log.calls]
    listed = boto3.client("s3").list_objects_v2(Bucket="team-artifacts").get("KeyCount")
    assert listed == 0


def test_code_uri_makes_no_aws_call(package, tmp_path, monkeypatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "deep" / "template.json"

    text, summary = export(
        make_cfg(), package, NullReporter(), fmt="cloudformation",
        code_uri="s3://pipeline-bucket/builds/42/iris.zip", output=out,
    )

    assert out.read_text() == text
    assert summary["uploaded"] is False and summary["output"] == str(out)
    assert json.loads(text)["Parameters"]["CodeS3Key"]["Default"] == "builds/42/iris.zip"


@pytest.mark.parametrize("fmt", ["cloudformation", "sam"])
def test_api_auth_iam_is_exported_as_sigv4_only_routes_and_lint_clean(fmt, package) -> None:
    """api.auth: iam puts AWS_IAM on deploy's routes (desired state), so on the template's."""
    from tests.aws.test_export_lint import lint

    template = build_template(make_cfg(api__auth="iam"), package, CODE, fmt)

    resources = template["Resources"]
    if fmt == "cloudformation":
        routes = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
        assert len(routes) == 2
        assert all(r["Properties"]["AuthorizationType"] == "AWS_IAM" for r in routes)
    else:
        body = resources["HttpApi"]["Properties"]["DefinitionBody"]
        operations = [op for methods in body["paths"].values() for op in methods.values()]
        assert len(operations) == 2
        assert all(op["security"] == [{"sigv4": []}] for op in operations)
        scheme = body["components"]["securitySchemes"]["sigv4"]
        assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
        from tests.aws.test_export_drift import sam_transform

        sam_transform(template)  # AWS's translator accepts it
    assert lint(json.dumps(template), REGION) == []
