"""export and deploy never drift apart: every call deploy plans against an empty account has its
resource in the exported template, with the same key properties, and the template holds nothing
deploy would not create.

The plan is deploy's own (`plan_deploy` against moto, read through its public output: service,
operation, params), so whatever changes in deploy — another permission statement, auth on the
routes, another property — fails here until the template says the same.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.config import EnvConfig, load_env
from mlops_cli.packaging.result import PackageInfo
from mlops_cli.targets.aws.desired import (
    build_desired,
    normalize_cors,
    normalize_policy,
    partition_for_region,
)
from mlops_cli.targets.aws.model import resolve
from mlops_cli.targets.aws.planner import plan_deploy
from mlops_cli.targets.aws.template import CodeLocation, build_template
from tests.aws.conftest import counted_context, make_cfg, make_package

REPO = Path(__file__).resolve().parents[2]
API_ID, INTEGRATION_ID, VERSION = "api0000001", "integ00001", "7"
CODE = CodeLocation("code-bucket", "iris-mlops-dev/abc.zip")


def shipped(env: str) -> EnvConfig:
    return load_env(env, REPO / "configs")


CONFIGS = {
    "test dev": lambda: make_cfg(),
    "shipped dev": lambda: shipped("dev"),
    "shipped prod": lambda: shipped("prod"),
    "env vars, no cors, concurrency": lambda: make_cfg(
        lambda__environment={"LOG_LEVEL": "debug", "TEMPLATE": "${literal}"},
        lambda__reserved_concurrency=3,
        api__cors_origins=[],
    ),
    "api.auth iam": lambda: make_cfg(api__auth="iam"),
    "China partition (cn-north-1)": lambda: make_cfg(aws__region="cn-north-1"),
    "GovCloud partition (us-gov-west-1)": lambda: make_cfg(aws__region="us-gov-west-1"),
}


# --- a small evaluator of the intrinsic functions the template uses ------------------------------
class Stack:
    """What CloudFormation would resolve the template's intrinsics to, for a known account."""

    def __init__(self, template: dict[str, Any], region: str, account: str) -> None:
        self.template = template
        self.resources = template["Resources"]
        self.values = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": partition_for_region(region),
            **{k: v.get("Default") for k, v in template.get("Parameters", {}).items()},
        }
        for name, res in self.resources.items():
            self.values[name] = self._ref(name, res)

    def _ref(self, name: str, res: dict[str, Any]) -> Any:
        kind, props = res["Type"], res.get("Properties", {})
        if kind == "AWS::ApiGatewayV2::Api":
            return API_ID
        if kind == "AWS::ApiGatewayV2::Integration":
            return INTEGRATION_ID
        if kind == "AWS::Lambda::Function":
            return props["FunctionName"]
        if kind == "AWS::Lambda::Alias":  # Ref of an alias is its ARN
            function = self.resolve(props["FunctionName"])
            partition = self.values["AWS::Partition"]
            region, account = self.values["AWS::Region"], self.values["AWS::AccountId"]
            return f"arn:{partition}:lambda:{region}:{account}:function:{function}:{props['Name']}"
        return name

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                return self.values[arg]
            if fn == "Fn::Sub":
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self.values[m.group(1)]), arg)
            if fn == "Fn::GetAtt":
                name, attribute = arg
                assert (self.resources[name]["Type"], attribute) == (
                    "AWS::Lambda::Version", "Version"
                ), f"unexpected GetAtt {arg}"
                return VERSION
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resolve(self.resources[logical_id].get("Properties", {}))

    def of_type(self, kind: str) -> list[str]:
        return [k for k, v in self.resources.items() if v["Type"] == kind]


def _tags(value: Any) -> dict[str, str]:
    if isinstance(value, list):
        return {t["Key"]: t["Value"] for t in value}
    return dict(value or {})


def _plan_calls(cfg: EnvConfig, package: PackageInfo, calls) -> tuple[list[Any], Any]:
    ctx = counted_context(cfg, calls)
    desired = build_desired(cfg, ctx.region, ctx.account_id, package)
    plan = plan_deploy(ctx, desired, smoke_test=False)
    variables = {"api_id": API_ID, "integration_id": INTEGRATION_ID, "version": VERSION}
    resolved = []
    for call in plan.mutating:
        params = {k: v for k, v in call.params.items() if k not in ("Code", "Body")}
        resolved.append((call.service, call.operation, resolve(params, variables)))
    return resolved, ctx


def _same(a: Any, b: Any, what: str) -> None:
    assert a == b, f"{what}: deploy plans {a!r}, the template says {b!r}"


def compare(
    plan_calls: list[Any],
    stack: Stack,
    function_name: str,
    unsupported: frozenset[str] = frozenset(),
) -> set[str]:
    """Assert each planned call against its resource; return the logical ids accounted for.

    `unsupported`: "operation Param" pairs the format cannot express (SAM's generated version
    and alias take no CodeSha256 or alias description).
    """
    seen: set[str] = set()

    def one(kind: str) -> str:
        ids = stack.of_type(kind)
        assert len(ids) == 1, f"the template has {len(ids)} {kind}, deploy creates one"
        seen.add(ids[0])
        return ids[0]

    for service, op, params in plan_calls:
        where = f"{service}.{op}"
        if (service, op) == ("iam", "create_role"):
            props = stack.props(one("AWS::IAM::Role"))
            _same(params["RoleName"], props["RoleName"], where)
            _same(params["Description"], props["Description"], where)
            _same(
                normalize_policy(params["AssumeRolePolicyDocument"]),
                normalize_policy(props["AssumeRolePolicyDocument"]),
                where,
            )
            _same(_tags(params["Tags"]), _tags(props["Tags"]), f"{where} tags")
        elif (service, op) == ("iam", "put_role_policy"):
            props = stack.props(one("AWS::IAM::Role"))
            inline = {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies", [])}
            assert params["PolicyName"] in inline, f"{where}: no inline policy in the template"
            _same(
                normalize_policy(params["PolicyDocument"]),
                normalize_policy(inline[params["PolicyName"]]),
                where,
            )
        elif (service, op) == ("logs", "create_log_group"):
            props = stack.props(one("AWS::Logs::LogGroup"))
            _same(params["logGroupName"], props["LogGroupName"], where)
            _same(_tags(params["tags"]), _tags(props["Tags"]), f"{where} tags")
        elif (service, op) == ("logs", "put_retention_policy"):
            props = stack.props(one("AWS::Logs::LogGroup"))
            _same(params["retentionInDays"], props["RetentionInDays"], where)
        elif (service, op) == ("lambda", "create_function"):
            props = stack.props(one("AWS::Lambda::Function"))
            for key, want in params.items():
                if key == "Publish":  # the template publishes with AWS::Lambda::Version
                    continue
                have = props.get(key)
                if key == "Tags":
                    want, have = _tags(want), _tags(have)
                if key == "Environment":
                    want = want.get("Variables") or None
                    have = (have or {}).get("Variables") or None
                _same(want, have, f"{where} {key}")
            extra = set(props) - set(params) - {"Code", "ReservedConcurrentExecutions"}
            assert not extra, f"{where}: the template sets {extra}, deploy does not"
            if "ReservedConcurrentExecutions" in props:
                assert ("lambda", "put_function_concurrency") in {
                    (s, o) for s, o, _ in plan_calls
                }, f"{where}: the template reserves concurrency, deploy does not"
        elif (service, op) == ("lambda", "put_function_concurrency"):
            props = stack.props(one("AWS::Lambda::Function"))
            _same(
                params["ReservedConcurrentExecutions"],
                props.get("ReservedConcurrentExecutions"),
                where,
            )
        elif (service, op) == ("lambda", "publish_version"):
            props = stack.props(one("AWS::Lambda::Version"))
            _same(params["FunctionName"], props["FunctionName"], where)
            _same(params["Description"], props["Description"], where)
            if f"{op} CodeSha256" not in unsupported:
                _same(params.get("CodeSha256"), props.get("CodeSha256"), f"{where} CodeSha256")
        elif (service, op) == ("lambda", "create_alias"):
            props = stack.props(one("AWS::Lambda::Alias"))
            for key in ("FunctionName", "Name", "FunctionVersion", "Description"):
                if f"{op} {key}" not in unsupported:
                    _same(params[key], props.get(key), f"{where} {key}")
        elif (service, op) == ("apigatewayv2", "create_api"):
            props = stack.props(one("AWS::ApiGatewayV2::Api"))
            for key, want in params.items():
                have = props.get(key)
                if key == "CorsConfiguration":
                    want, have = normalize_cors(want), normalize_cors(have)
                _same(want, have, f"{where} {key}")
            extra = set(props) - set(params)
            assert not extra, f"{where}: the template sets {extra}, deploy does not"
        elif (service, op) in {
            ("apigatewayv2", "create_integration"),
            ("apigatewayv2", "create_stage"),
        }:
            kind = {
                "create_integration": "AWS::ApiGatewayV2::Integration",
                "create_stage": "AWS::ApiGatewayV2::Stage",
            }[op]
            props = stack.props(one(kind))
            for key, want in params.items():
                _same(want, props.get(key), f"{where} {key}")
            extra = set(props) - set(params)
            assert not extra, f"{where}: the template sets {extra}, deploy does not"
        elif (service, op) == ("apigatewayv2", "create_route"):
            routes = {
                stack.props(r)["RouteKey"]: r for r in stack.of_type("AWS::ApiGatewayV2::Route")
            }
            assert params["RouteKey"] in routes, f"{where}: no route {params['RouteKey']}"
            logical = routes[params["RouteKey"]]
            seen.add(logical)
            props = stack.props(logical)
            _same(params, {k: props.get(k) for k in params}, where)
            extra = set(props) - set(params)
            assert not extra, f"{where}: the template's route sets {extra}, deploy does not"
        elif (service, op) == ("lambda", "add_permission"):
            by_source = {
                stack.props(p)["SourceArn"]: p for p in stack.of_type("AWS::Lambda::Permission")
            }
            assert params["SourceArn"] in by_source, (
                f"{where}: no permission for {params['SourceArn']}; the template has "
                f"{sorted(by_source)}"
            )
            logical = by_source[params["SourceArn"]]
            seen.add(logical)
            props = stack.props(logical)
            target = f":function:{params['FunctionName']}"
            if params.get("Qualifier"):
                target += f":{params['Qualifier']}"
            assert props["FunctionName"].endswith(target), f"{where}: {props['FunctionName']}"
            _same(params["Action"], props["Action"], where)
            _same(params["Principal"], props["Principal"], where)
        elif service == "s3":
            # deploy's artifact bucket for zips over the direct-upload limit: in a template the
            # code location is a parameter (--code-bucket uploads there, or --code-uri names it)
            continue
        else:
            pytest.fail(f"deploy plans {where}, which the exported template does not cover")
    return seen


@pytest.mark.parametrize("name", list(CONFIGS))
def test_cloudformation_export_holds_exactly_what_deploy_plans_for_an_empty_account(
    name, aws, package, calls
):
    cfg = CONFIGS[name]()
    plan_calls, ctx = _plan_calls(cfg, package, calls)
    template = build_template(cfg, package, CODE, "cloudformation")
    stack = Stack(template, ctx.region, ctx.account_id)

    seen = compare(plan_calls, stack, cfg.function_name)

    assert set(stack.resources) == seen, (
        f"the template holds resources deploy does not create: {set(stack.resources) - seen}"
    )
    assert json.dumps(template).count("arn:aws:") == 0, "ARNs must use ${AWS::Partition}"


def test_a_zip_deploy_uploads_through_its_bucket_exports_the_same_function(
    aws, calls, tmp_path
):
    """sklearn-flavor sized: deploy takes the code from its artifact bucket, export from the
    template's code parameters; everything else is compared as for a small zip."""
    big = make_package(tmp_path / "big", "big", size_bytes=60 * 1024 * 1024)
    cfg = make_cfg()
    plan_calls, ctx = _plan_calls(cfg, big, calls)
    assert ("s3", "put_object") in {(s, o) for s, o, _ in plan_calls}
    template = build_template(cfg, big, CODE, "cloudformation")
    stack = Stack(template, ctx.region, ctx.account_id)

    assert set(stack.resources) == compare(plan_calls, stack, cfg.function_name)
    code = stack.props("Function")["Code"]
    assert code == {"S3Bucket": CODE.bucket, "S3Key": CODE.key}


def test_a_change_deploy_would_make_shows_up_in_the_comparison(aws, package, calls):
    """The comparison is not vacuous: a template that differs from the plan fails it."""
    cfg = make_cfg()
    plan_calls, ctx = _plan_calls(cfg, package, calls)
    template = build_template(cfg, package, CODE, "cloudformation")
    template["Resources"]["Function"]["Properties"]["MemorySize"] = 1024
    with pytest.raises(AssertionError, match="MemorySize"):
        compare(plan_calls, Stack(template, ctx.region, ctx.account_id), cfg.function_name)

    template = build_template(cfg, package, CODE, "cloudformation")
    permission = next(
        k for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Permission"
    )
    template["Resources"][permission]["Properties"]["SourceArn"] = {
        "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
        "${HttpApi}/*"
    }
    with pytest.raises(AssertionError, match="no permission for"):
        compare(plan_calls, Stack(template, ctx.region, ctx.account_id), cfg.function_name)


# --- SAM: transformed by AWS's SAM translator, then compared the same way -----------------------
SAM_ADDED_TAGS = {"lambda:createdBy", "httpapi:createdBy"}
SAM_UNSUPPORTED = frozenset({"publish_version CodeSha256", "create_alias Description"})


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    """What CloudFormation's AWS::Serverless transform makes of the template."""
    import copy

    from samtranslator.translator.transform import transform

    class NoManagedPolicies:  # the template names no managed policy
        def load(self) -> dict[str, str]:
            return {}

    defaults = {k: v["Default"] for k, v in template.get("Parameters", {}).items()}
    return transform(copy.deepcopy(template), defaults, NoManagedPolicies())


def comparable(transformed: dict[str, Any]) -> dict[str, Any]:
    """The transformed SAM template in the shape deploy's calls take: the HTTP API's OpenAPI body
    as an Api, one Integration and its Routes; without the tags SAM adds of its own."""
    resources = transformed["Resources"]
    for res in resources.values():
        props = res.get("Properties", {})
        tags = props.get("Tags")
        if isinstance(tags, list):
            props["Tags"] = [t for t in tags if t["Key"] not in SAM_ADDED_TAGS]
        elif isinstance(tags, dict):
            props["Tags"] = {k: v for k, v in tags.items() if k not in SAM_ADDED_TAGS}
        if res["Type"] == "AWS::Lambda::Function":
            props.setdefault("PackageType", "Zip")  # CloudFormation's default
    (api_id,) = [k for k, v in resources.items() if v["Type"] == "AWS::ApiGatewayV2::Api"]
    body = resources[api_id]["Properties"].pop("Body")
    api: dict[str, Any] = {
        "Name": body["info"]["title"],
        "ProtocolType": "HTTP",
        "Description": body["info"].get("description"),
        "Tags": {
            t["name"]: t["x-amazon-apigateway-tag-value"]
            for t in body.get("tags", [])
            if t["name"] not in SAM_ADDED_TAGS
        },
    }
    cors = body.get("x-amazon-apigateway-cors")
    if cors:
        api["CorsConfiguration"] = {k[:1].upper() + k[1:]: v for k, v in cors.items()}
    resources[api_id]["Properties"] = {**api, **resources[api_id]["Properties"]}
    resources[api_id]["Properties"].pop("FailOnWarnings", None)
    targets = []
    for path, methods in body["paths"].items():
        for method, operation in methods.items():
            target = operation["x-amazon-apigateway-integration"]
            targets.append(json.dumps(target, sort_keys=True))
            route: dict[str, Any] = {
                "ApiId": {"Ref": api_id},
                "RouteKey": f"{method.upper()} {path}",
                "Target": {"Fn::Sub": "integrations/${Integration}"},
            }
            # an operation without security is open: AuthorizationType NONE
            signed = any("sigv4" in s for s in operation.get("security", []))
            route["AuthorizationType"] = "AWS_IAM" if signed else "NONE"
            resources[f"Route{method}{path}"] = {
                "Type": "AWS::ApiGatewayV2::Route", "Properties": route,
            }
    assert len(set(targets)) == 1, "every route must reach the one integration"
    target = json.loads(targets[0])
    resources["Integration"] = {
        "Type": "AWS::ApiGatewayV2::Integration",
        "Properties": {
            "ApiId": {"Ref": api_id},
            "IntegrationType": target["type"].upper(),
            "IntegrationUri": target["uri"],
            "PayloadFormatVersion": target["payloadFormatVersion"],
            "IntegrationMethod": target["httpMethod"],
        },
    }
    return transformed


@pytest.mark.parametrize("name", list(CONFIGS))
def test_sam_export_transforms_to_exactly_what_deploy_plans_for_an_empty_account(
    name, aws, package, calls
):
    cfg = CONFIGS[name]()
    plan_calls, ctx = _plan_calls(cfg, package, calls)
    template = build_template(cfg, package, CODE, "sam")
    stack = Stack(comparable(sam_transform(template)), ctx.region, ctx.account_id)

    seen = compare(plan_calls, stack, cfg.function_name, SAM_UNSUPPORTED)

    assert set(stack.resources) == seen, (
        f"the template holds resources deploy does not create: {set(stack.resources) - seen}"
    )


def test_the_transformed_sam_template_passes_cfn_lint_too(package):
    from tests.aws.test_export_lint import lint

    template = build_template(shipped("prod"), package, CODE, "sam")

    found = lint(json.dumps(sam_transform(template)), "eu-west-1")

    # The translator writes the code location's parameters into CodeUri (CloudFormation runs it
    # with the stack's parameter values), so they are left unused in its output.
    inlined = [f"W2001 line 1: Parameter {p} not used." for p in ("CodeS3Bucket", "CodeS3Key")]
    assert [line for line in found if line not in inlined] == []
