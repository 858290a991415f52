"""`export`: the env's AWS resources as a CloudFormation or AWS SAM template, built from the very
`DesiredState` that `deploy` plans from.

What holds: every name, tag, policy, setting and permission in the template comes from
`desired.py` — the desired state is built with CloudFormation's pseudo parameters in place of the
region, the account and the partition (`${AWS::Region}`, `${AWS::AccountId}`,
`${AWS::Partition}`), so the strings deploy would send become `Fn::Sub` strings that
CloudFormation resolves in whichever account, region and partition the stack lands. Nothing here
describes a resource a second time; when the desired state changes (a new route, another
permission, auth on the routes), the template follows.
A test compares the template with deploy's plan against an empty account, property by property.

Why pure: a template is data. Building it needs no AWS call, no credentials and no network, so a
pipeline can export from a machine that cannot reach AWS (`--code-uri`), and tests and cfn-lint
check it offline. Uploading the zip (`--code-bucket`) is the caller's I/O (`export.py`).

Templates are JSON: CloudFormation reads it as well as YAML, and JSON needs no custom dumper for
the intrinsic functions.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from mlops_cli.config import EnvConfig
from mlops_cli.errors import UsageError
from mlops_cli.packaging.result import PackageInfo
from mlops_cli.targets.aws.desired import (
    ALIAS,
    FUNCTION_DESCRIPTION,
    INLINE_POLICY_NAME,
    PAYLOAD_FORMAT_VERSION,
    DesiredState,
    build_desired,
)

FORMATS = ("cloudformation", "sam")
REGION = "${AWS::Region}"
ACCOUNT = "${AWS::AccountId}"
PARTITION = "${AWS::Partition}"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"

# Logical ids. The API's id is also the `${HttpApi}` that SourceArns substitute with its ApiId.
ROLE = "FunctionRole"
LOG_GROUP = "LogGroup"
FUNCTION = "Function"
ALIAS_ID = "LiveAlias"
SAM_ALIAS_ID = f"{FUNCTION}Alias{ALIAS}"  # what SAM names the alias AutoPublishAlias makes
API = "HttpApi"
INTEGRATION = "Integration"
STAGE_ID = "DefaultStage"
API_ID_VAR = "${" + API + "}"

PARAM_BUCKET = "CodeS3Bucket"
PARAM_KEY = "CodeS3Key"
PARAM_SHA = "CodeSha256"


@dataclass(frozen=True)
class CodeLocation:
    """Where the function's zip lives in S3."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @classmethod
    def parse(cls, uri: str) -> CodeLocation:
        match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)", uri.strip())
        if not match:
            raise UsageError(
                f"--code-uri {uri!r} is not an S3 object URI: give s3://BUCKET/KEY "
                "(the zip `iris-mlops package` built, uploaded by you)"
            )
        return cls(match.group(1), match.group(2))


def template_state(cfg: EnvConfig, package: PackageInfo) -> DesiredState:
    """Deploy's desired state, with the stack's region and account standing in for real ones."""
    return build_desired(cfg, REGION, ACCOUNT, package, partition=PARTITION)


def build_template(
    cfg: EnvConfig, package: PackageInfo, code: CodeLocation, fmt: str
) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of: {', '.join(FORMATS)}")
    d = template_state(cfg, package)
    build = _cloudformation if fmt == "cloudformation" else _sam
    return build(d, code)


def render(template: dict[str, Any]) -> str:
    return json.dumps(template, indent=2) + "\n"


# intrinsic functions ----------------------------------------------------------------------------
def sub(value: str) -> Any:
    """A string of the desired state as CloudFormation resolves it: `${...}` placeholders (the
    stack's partition, region, account, the API's id) through Fn::Sub; a plain string stays
    plain."""
    return {"Fn::Sub": value} if "${" in value else value


def _ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _subs(doc: Any) -> Any:
    """`sub` applied to every string of a policy document."""
    if isinstance(doc, dict):
        return {k: _subs(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_subs(v) for v in doc]
    return sub(doc) if isinstance(doc, str) else doc


def logical_id(*words: str) -> str:
    """`POST /predict` → `PostPredict`: CloudFormation ids are alphanumeric."""
    parts = re.split(r"[^A-Za-z0-9]+", " ".join(words))
    return "".join(p[:1].upper() + p[1:].lower() for p in parts if p)


# parts both formats share -----------------------------------------------------------------------
def _parameters(d: DesiredState, code: CodeLocation, *, pin_sha: bool) -> dict[str, Any]:
    params = {
        PARAM_BUCKET: {
            "Type": "String",
            "Default": code.bucket,
            "Description": "S3 bucket holding the function's zip (built by iris-mlops package)",
        },
        PARAM_KEY: {
            "Type": "String",
            "Default": code.key,
            "Description": "S3 key of the function's zip",
        },
    }
    if pin_sha:  # AWS::Lambda::Version can refuse other code; SAM's generated version cannot
        params[PARAM_SHA] = {
            "Type": "String",
            "Default": d.code_sha256 or "",
            "Description": "base64 SHA-256 of that zip (Lambda's CodeSha256): a version is "
            "published only when the code matches it",
        }
    return params


def _role(d: DesiredState) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": d.role_name,
            "AssumeRolePolicyDocument": d.trust_policy,
            "Description": d.role_description,
            "Policies": [
                {"PolicyName": INLINE_POLICY_NAME, "PolicyDocument": _subs(d.inline_policy)}
            ],
            "Tags": _tag_list(d.tags),
        },
    }


def _log_group(d: DesiredState) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": d.log_group,
            "RetentionInDays": d.retention_days,
            "Tags": _tag_list(d.tags),
        },
    }


def _function_settings(d: DesiredState) -> dict[str, Any]:
    """Properties spelled the same by AWS::Lambda::Function and AWS::Serverless::Function."""
    spec = d.function
    props: dict[str, Any] = {
        "FunctionName": d.function_name,
        "Description": FUNCTION_DESCRIPTION,
        "Runtime": spec.runtime,
        "Handler": spec.handler,
        "Role": sub(spec.role_arn),
        "MemorySize": spec.memory_mb,
        "Timeout": spec.timeout_s,
        "Architectures": list(spec.architectures),
    }
    if spec.environment:
        props["Environment"] = {"Variables": dict(spec.environment)}
    if d.reserved_concurrency is not None:
        props["ReservedConcurrentExecutions"] = d.reserved_concurrency
    return props


def _permissions(d: DesiredState, depends_on: str) -> dict[str, Any]:
    """One AWS::Lambda::Permission per statement deploy adds to the alias's policy (CloudFormation
    picks the statement ids itself)."""
    out: dict[str, Any] = {}
    for params in d.permission_params(API_ID_VAR):
        target = d.function_arn
        if params.get("Qualifier"):
            target += f":{params['Qualifier']}"
        out[logical_id("Permission", params["StatementId"])] = {
            "Type": "AWS::Lambda::Permission",
            "DependsOn": [depends_on],
            "Properties": {
                "FunctionName": sub(target),
                "Action": params["Action"],
                "Principal": params["Principal"],
                "SourceArn": sub(params["SourceArn"]),
            },
        }
    return out


def _outputs(alias_ref: dict[str, Any]) -> dict[str, Any]:
    return {
        "EndpointUrl": {
            "Description": "Base URL of the HTTP API",
            "Value": {"Fn::GetAtt": [API, "ApiEndpoint"]},
        },
        "PredictUrl": {
            "Description": "POST {\"features\": [4 numbers]} here",
            "Value": {"Fn::Sub": "${" + API + ".ApiEndpoint}/predict"},
        },
        "FunctionArn": {"Value": {"Fn::GetAtt": [FUNCTION, "Arn"]}},
        "AliasArn": {"Description": f"The `{ALIAS}` alias the API invokes", "Value": alias_ref},
    }


def _description(d: DesiredState, fmt: str) -> str:
    return (
        f"iris-mlops env {d.env}: {d.function_name} (model {d.model_id}) behind an HTTP API "
        f"- exported as {fmt}; the same resources `iris-mlops deploy --env {d.env}` manages"
    )


def _version_id(d: DesiredState, function_props: dict[str, Any]) -> str:
    """A new logical id whenever the code or the function's configuration changes, so that
    CloudFormation publishes a new version then — what deploy does (SAM does the same for
    AutoPublishAlias)."""
    digest = hashlib.sha256(
        json.dumps([function_props, d.code_sha256], sort_keys=True).encode()
    ).hexdigest()
    return f"{FUNCTION}Version{digest[:10]}"


# CloudFormation ---------------------------------------------------------------------------------
def _cloudformation(d: DesiredState, code: CodeLocation) -> dict[str, Any]:
    function_props = {
        **_function_settings(d),
        "Code": {"S3Bucket": _ref(PARAM_BUCKET), "S3Key": _ref(PARAM_KEY)},
        "PackageType": "Zip",
        "Tags": _tag_list(d.tags),
    }
    version_id = _version_id(d, function_props)
    resources: dict[str, Any] = {
        ROLE: _role(d),
        LOG_GROUP: _log_group(d),
        FUNCTION: {
            "Type": "AWS::Lambda::Function",
            "DependsOn": [ROLE, LOG_GROUP],
            "Properties": function_props,
        },
        version_id: {
            "Type": "AWS::Lambda::Version",
            # Older versions stay, as after deploy: `iris-mlops rollback` can move back to them.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "FunctionName": _ref(FUNCTION),
                "Description": d.version_description,
                "CodeSha256": _ref(PARAM_SHA),
            },
        },
        ALIAS_ID: {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "FunctionName": _ref(FUNCTION),
                "Name": ALIAS,
                "FunctionVersion": {"Fn::GetAtt": [version_id, "Version"]},
                "Description": d.version_description,
            },
        },
        API: {
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": d.api(),
        },
        INTEGRATION: {
            "Type": "AWS::ApiGatewayV2::Integration",
            "DependsOn": [ALIAS_ID],
            "Properties": {"ApiId": _ref(API), **_subs(d.integration())},
        },
    }
    for route in d.routes():
        resources[logical_id("Route", route["RouteKey"])] = {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": _ref(API),
                **route,
                "Target": {"Fn::Sub": "integrations/${" + INTEGRATION + "}"},
            },
        }
    resources[STAGE_ID] = {
        "Type": "AWS::ApiGatewayV2::Stage",
        "Properties": {"ApiId": _ref(API), **d.stage(), "Tags": dict(d.tags)},
    }
    resources.update(_permissions(d, ALIAS_ID))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": _description(d, "CloudFormation"),
        "Parameters": _parameters(d, code, pin_sha=True),
        "Resources": resources,
        "Outputs": _outputs(_ref(ALIAS_ID)),
    }


# AWS SAM ----------------------------------------------------------------------------------------
def _sam(d: DesiredState, code: CodeLocation) -> dict[str, Any]:
    function_props = {
        **_function_settings(d),
        "CodeUri": {"Bucket": _ref(PARAM_BUCKET), "Key": _ref(PARAM_KEY)},
        "Tags": dict(d.tags),
        # SAM publishes a version (and moves the alias) when the code or any property changes,
        # as deploy does.
        "AutoPublishAlias": ALIAS,
        "AutoPublishAliasAllProperties": True,
        "VersionDescription": d.version_description,
    }
    api_props: dict[str, Any] = {  # name and description: the OpenAPI body's info
        "DefinitionBody": _openapi(d),
        "DefaultRouteSettings": d.stage()["DefaultRouteSettings"],
        "Tags": dict(d.tags),
        "FailOnWarnings": True,
    }
    cors = d.cors()
    if cors:
        api_props["CorsConfiguration"] = cors
    resources: dict[str, Any] = {
        ROLE: _role(d),
        LOG_GROUP: _log_group(d),
        FUNCTION: {
            "Type": "AWS::Serverless::Function",
            "DependsOn": [ROLE, LOG_GROUP],
            "Properties": function_props,
        },
        API: {"Type": "AWS::Serverless::HttpApi", "Properties": api_props},
    }
    resources.update(_permissions(d, SAM_ALIAS_ID))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": SAM_TRANSFORM,
        "Description": _description(d, "AWS SAM"),
        "Parameters": _parameters(d, code, pin_sha=False),
        "Resources": resources,
        "Outputs": _outputs(_ref(SAM_ALIAS_ID)),
    }


def _openapi(d: DesiredState) -> dict[str, Any]:
    """The routes as the OpenAPI document an HTTP API imports: each route to the integration,
    and routes with AWS_IAM authorization marked as SigV4-signed."""
    integration = d.integration()
    target = {
        "type": integration["IntegrationType"].lower(),
        "httpMethod": integration["IntegrationMethod"],
        "uri": sub(integration["IntegrationUri"]),
        "payloadFormatVersion": integration.get("PayloadFormatVersion", PAYLOAD_FORMAT_VERSION),
    }
    paths: dict[str, Any] = {}
    needs_sigv4 = False
    for route in d.routes():
        method, path = route["RouteKey"].split(" ", 1)
        operation: dict[str, Any] = {
            "x-amazon-apigateway-integration": dict(target),
            "responses": {"default": {"description": "the function's answer"}},
        }
        if route.get("AuthorizationType") == "AWS_IAM":
            operation["security"] = [{"sigv4": []}]
            needs_sigv4 = True
        paths.setdefault(path, {})[method.lower()] = operation
    body: dict[str, Any] = {
        "openapi": "3.0.1",
        "info": {"title": d.api_name, "description": d.api_description, "version": "1.0"},
        "paths": paths,
    }
    if needs_sigv4:
        body["components"] = {
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            }
        }
    return body
