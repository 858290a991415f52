"""Read what exists in AWS (read-only calls only) and emit the mutating calls that close the gap.

Resources are found by name and checked by tags, never by the local deployment record, so a lost
record cannot make a second API, and a resource of the same name that is not tagged as ours (same
project AND env) is reported as foreign instead of being modified.

Every decision compares against AWS's current state, so rerunning after a crash at any point
plans only what is still missing (convergence): e.g. code updated but no version published yet →
the live alias still points at old code → publish + alias move are planned again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.errors import UsageError
from mlops_cli.targets.aws.desired import (
    ALIAS,
    INLINE_POLICY_NAME,
    PERMISSION_SID,
    ROUTE_KEYS,
    STAGE,
    TAG_ENV,
    TAG_PROJECT,
    DesiredState,
    architecture_diff,
    function_config_diff,
    is_ours,
    model_id_from_description,
    normalize_cors,
    normalize_policy,
    tag_list_to_dict,
    tags_missing,
)
from mlops_cli.targets.aws.model import FileBytes, Fmt, PlannedCall, Var
from mlops_cli.targets.aws.session import AwsContext, aws_errors, error_code, is_not_found

FUNCTION_WAIT = {"WaiterConfig": {"Delay": 1, "MaxAttempts": 300}}
VERSION_WAIT = {"WaiterConfig": {"Delay": 2, "MaxAttempts": 150}}


@dataclass
class Observation:
    resource: str  # "lambda function iris-mlops-dev"
    state: str  # "found" | "missing" | "foreign"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    calls: list[PlannedCall] = field(default_factory=list)
    observed: list[Observation] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)  # ids already known from AWS
    live_version: str | None = None
    live_model_id: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def foreign(self) -> list[Observation]:
        return [o for o in self.observed if o.state == "foreign"]

    @property
    def mutating(self) -> list[PlannedCall]:
        return [c for c in self.calls if c.kind == "call"]

    def add(self, call: PlannedCall) -> None:
        self.calls.append(call)

    def observe(self, resource: str, state: str, **detail: Any) -> None:
        self.observed.append(Observation(resource, state, detail))


def foreign_error(plan: Plan) -> UsageError:
    names = "; ".join(f"{o.resource} (tags {o.detail.get('tags') or 'none'})" for o in plan.foreign)
    return UsageError(
        f"refusing to deploy: these resources have our names but not our tags "
        f"({TAG_PROJECT}/{TAG_ENV}), so another project or person owns them: {names}. "
        "Rename this env's function (lambda.function_name) or remove them yourself"
    )


def plan_deploy(
    ctx: AwsContext,
    d: DesiredState,
    *,
    smoke_test: bool = True,
    raise_on_foreign: bool = True,
) -> Plan:
    plan = Plan()
    with aws_errors(f"read the current state of env {d.env!r}", ctx):
        _plan_role(ctx, d, plan)
        _plan_log_group(ctx, d, plan)
        code = _plan_bucket(ctx, d, plan) if d.use_s3 else _zip_code(d)
        publish = _plan_function(ctx, d, plan, code)
        _plan_version_and_alias(ctx, d, plan, publish, smoke_test)
        _plan_api(ctx, d, plan)
    if plan.foreign and raise_on_foreign:
        raise foreign_error(plan)
    return plan


# IAM -------------------------------------------------------------------------------------------
def _plan_role(ctx: AwsContext, d: DesiredState, plan: Plan) -> None:
    iam = ctx.client("iam")
    resource = f"iam role {d.role_name}"
    try:
        role = iam.get_role(RoleName=d.role_name)["Role"]
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        role = None
    policy_call = PlannedCall(
        "iam",
        "put_role_policy",
        {
            "RoleName": d.role_name,
            "PolicyName": INLINE_POLICY_NAME,
            "PolicyDocument": json.dumps(d.inline_policy),
        },
        f"iam role policy {d.role_name}/{INLINE_POLICY_NAME}",
        "missing",
    )
    if role is None:
        plan.observe(resource, "missing")
        plan.add(
            PlannedCall(
                "iam",
                "create_role",
                {
                    "RoleName": d.role_name,
                    "AssumeRolePolicyDocument": json.dumps(d.trust_policy),
                    "Description": f"Lambda execution role of {d.function_name} (iris-mlops)",
                    "Tags": [{"Key": k, "Value": v} for k, v in d.tags.items()],
                },
                resource,
                "missing",
            )
        )
        plan.add(policy_call)
        return
    tags = role.get("Tags")
    if tags is None:  # some endpoints omit Tags from GetRole
        tags = iam.list_role_tags(RoleName=d.role_name).get("Tags")
    tag_dict = tag_list_to_dict(tags)
    if not is_ours(d, tag_dict):
        plan.observe(resource, "foreign", tags=tag_dict)
        return
    plan.observe(resource, "found", arn=role.get("Arn"))
    if normalize_policy(role.get("AssumeRolePolicyDocument")) != normalize_policy(d.trust_policy):
        plan.add(
            PlannedCall(
                "iam",
                "update_assume_role_policy",
                {"RoleName": d.role_name, "PolicyDocument": json.dumps(d.trust_policy)},
                resource,
                "trust policy differs",
            )
        )
    missing = tags_missing(d.tags, tag_dict)
    if missing:
        plan.add(
            PlannedCall(
                "iam",
                "tag_role",
                {
                    "RoleName": d.role_name,
                    "Tags": [{"Key": k, "Value": v} for k, v in missing.items()],
                },
                resource,
                f"tags {sorted(missing)} differ",
            )
        )
    try:
        doc = iam.get_role_policy(RoleName=d.role_name, PolicyName=INLINE_POLICY_NAME)
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        doc = None
    if doc is None:
        plan.add(policy_call)
    elif normalize_policy(doc.get("PolicyDocument")) != normalize_policy(d.inline_policy):
        policy_call.reason = "policy document differs"
        plan.add(policy_call)


# CloudWatch Logs -------------------------------------------------------------------------------
def _plan_log_group(ctx: AwsContext, d: DesiredState, plan: Plan) -> None:
    logs = ctx.client("logs")
    resource = f"log group {d.log_group}"
    groups = logs.describe_log_groups(logGroupNamePrefix=d.log_group).get("logGroups", [])
    group = next((g for g in groups if g.get("logGroupName") == d.log_group), None)
    retention = PlannedCall(
        "logs",
        "put_retention_policy",
        {"logGroupName": d.log_group, "retentionInDays": d.retention_days},
        resource,
        f"retention -> {d.retention_days} days",
    )
    if group is None:
        plan.observe(resource, "missing")
        plan.add(
            PlannedCall(
                "logs",
                "create_log_group",
                {"logGroupName": d.log_group, "tags": dict(d.tags)},
                resource,
                "missing",
            )
        )
        plan.add(retention)
        return
    arn = group.get("logGroupArn") or str(group.get("arn", "")).removesuffix(":*")
    tags = logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
    if not is_ours(d, tags):
        plan.observe(resource, "foreign", tags=tags)
        return
    plan.observe(resource, "found", retention_days=group.get("retentionInDays"))
    if group.get("retentionInDays") != d.retention_days:
        retention.reason = f"retention {group.get('retentionInDays')} -> {d.retention_days} days"
        plan.add(retention)
    missing = tags_missing(d.tags, tags)
    if missing:
        plan.add(
            PlannedCall(
                "logs",
                "tag_resource",
                {"resourceArn": arn, "tags": missing},
                resource,
                f"tags {sorted(missing)} differ",
            )
        )


# S3 artifact bucket (only for zips over the direct-upload limit) -------------------------------
def _zip_code(d: DesiredState) -> dict[str, Any]:
    return {"ZipFile": FileBytes(d.zip_path)} if d.zip_path else {}


def _plan_bucket(ctx: AwsContext, d: DesiredState, plan: Plan) -> dict[str, Any]:
    s3 = ctx.client("s3")
    bucket = d.bucket_name
    resource = f"s3 bucket {bucket}"
    exists = True
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in {"403", "AccessDenied", "Forbidden"}:
            plan.observe(resource, "foreign", tags="owned by another account")
            return {"S3Bucket": bucket, "S3Key": d.s3_key}
        if not is_not_found(exc):
            raise
        exists = False
    bucket_tags = {TAG_PROJECT: d.project}
    if not exists:
        plan.observe(resource, "missing")
        create: dict[str, Any] = {"Bucket": bucket}
        if d.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": d.region}
        plan.add(PlannedCall("s3", "create_bucket", create, resource, "missing (zip over 48 MiB)"))
        plan.add(
            PlannedCall(
                "s3",
                "put_public_access_block",
                {
                    "Bucket": bucket,
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "IgnorePublicAcls": True,
                        "BlockPublicPolicy": True,
                        "RestrictPublicBuckets": True,
                    },
                },
                resource,
                "block public access",
            )
        )
        plan.add(
            PlannedCall(
                "s3",
                "put_bucket_encryption",
                {
                    "Bucket": bucket,
                    "ServerSideEncryptionConfiguration": {
                        "Rules": [
                            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                },
                resource,
                "default encryption",
            )
        )
        plan.add(
            PlannedCall(
                "s3",
                "put_bucket_versioning",
                {"Bucket": bucket, "VersioningConfiguration": {"Status": "Enabled"}},
                resource,
                "versioning",
            )
        )
        plan.add(
            PlannedCall(
                "s3",
                "put_bucket_tagging",
                {
                    "Bucket": bucket,
                    "Tagging": {"TagSet": [{"Key": k, "Value": v} for k, v in bucket_tags.items()]},
                },
                resource,
                "tags",
            )
        )
    else:
        try:
            tagset = s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
        except ClientError as exc:
            if error_code(exc) not in {"NoSuchTagSet", "NoSuchTagSetError"}:
                raise
            tagset = []
        tags = tag_list_to_dict(tagset)
        if tags.get(TAG_PROJECT) != d.project:
            plan.observe(resource, "foreign", tags=tags)
            return {"S3Bucket": bucket, "S3Key": d.s3_key}
        plan.observe(resource, "found")
    key_exists = False
    if exists:
        try:
            s3.head_object(Bucket=bucket, Key=d.s3_key)
            key_exists = True
        except ClientError as exc:
            if not is_not_found(exc):
                raise
    if not key_exists:
        plan.add(
            PlannedCall(
                "s3",
                "put_object",
                {
                    "Bucket": bucket,
                    "Key": d.s3_key,
                    "Body": FileBytes(str(d.zip_path)),
                    "Tagging": f"{TAG_PROJECT}={d.project}&{TAG_ENV}={d.env}",
                },
                f"s3 object s3://{bucket}/{d.s3_key}",
                "package not uploaded yet",
            )
        )
    return {"S3Bucket": bucket, "S3Key": d.s3_key}


# Lambda function -------------------------------------------------------------------------------
def _plan_function(ctx: AwsContext, d: DesiredState, plan: Plan, code: dict[str, Any]) -> bool:
    """Plan $LATEST changes; return whether a new version must be published for them."""
    lam = ctx.client("lambda")
    fn = d.function_name
    resource = f"lambda function {fn}"
    try:
        got = lam.get_function(FunctionName=fn)
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        got = None
    spec = d.function
    if got is None:
        plan.observe(resource, "missing")
        plan.variables["function_exists"] = False
        plan.add(
            PlannedCall(
                "lambda",
                "create_function",
                {
                    "FunctionName": fn,
                    **spec.as_config_params(),
                    "Architectures": list(spec.architectures),
                    "Code": code,
                    "PackageType": "Zip",
                    "Publish": False,
                    "Description": "iris-mlops model endpoint",
                    "Tags": dict(d.tags),
                },
                resource,
                "missing",
                wait=("function_active_v2", {"FunctionName": fn, **FUNCTION_WAIT}),
            )
        )
        if d.reserved_concurrency is not None:
            plan.add(
                _concurrency_call(d, resource, f"reserved concurrency -> {d.reserved_concurrency}")
            )
        return True
    conf = got["Configuration"]
    tags = got.get("Tags") or {}
    if not is_ours(d, tags):
        plan.observe(resource, "foreign", tags=tags)
        return False
    plan.variables["function_exists"] = True
    plan.observe(
        resource,
        "found",
        code_sha256=conf.get("CodeSha256"),
        function_state=conf.get("State"),
        last_update=conf.get("LastUpdateStatus"),
    )
    busy = conf.get("State") == "Pending" or conf.get("LastUpdateStatus") == "InProgress"
    pre_wait = ("function_updated_v2", {"FunctionName": fn, **FUNCTION_WAIT}) if busy else None
    changed = False
    code_changed = bool(d.code_sha256) and conf.get("CodeSha256") != d.code_sha256
    arch = architecture_diff(spec, conf)
    if (code_changed or arch) and code:
        reasons = [r for r in ("code changed" if code_changed else "", arch or "") if r]
        plan.add(
            PlannedCall(
                "lambda",
                "update_function_code",
                {
                    "FunctionName": fn,
                    **_code_params(code),
                    "Architectures": list(spec.architectures),
                },
                resource,
                "; ".join(reasons),
                wait=("function_updated_v2", {"FunctionName": fn, **FUNCTION_WAIT}),
                pre_wait=pre_wait,
            )
        )
        changed, pre_wait = True, None
    diffs = function_config_diff(spec, conf)
    if diffs:
        plan.add(
            PlannedCall(
                "lambda",
                "update_function_configuration",
                {"FunctionName": fn, **spec.as_config_params()},
                resource,
                "; ".join(diffs),
                wait=("function_updated_v2", {"FunctionName": fn, **FUNCTION_WAIT}),
                pre_wait=pre_wait,
            )
        )
        changed = True
    have = (got.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
    if have != d.reserved_concurrency:
        plan.add(
            _concurrency_call(
                d, resource, f"reserved concurrency {have} -> {d.reserved_concurrency}"
            )
        )
    missing = tags_missing(d.tags, tags)
    if missing:
        plan.add(
            PlannedCall(
                "lambda",
                "tag_resource",
                {"Resource": d.function_arn, "Tags": missing},
                resource,
                f"tags {sorted(missing)} differ",
            )
        )
    return changed


def _code_params(code: dict[str, Any]) -> dict[str, Any]:
    return dict(code)  # ZipFile or S3Bucket/S3Key: the same keys in both APIs


def _concurrency_call(d: DesiredState, resource: str, reason: str) -> PlannedCall:
    if d.reserved_concurrency is None:
        return PlannedCall(
            "lambda",
            "delete_function_concurrency",
            {"FunctionName": d.function_name},
            resource,
            reason,
        )
    return PlannedCall(
        "lambda",
        "put_function_concurrency",
        {"FunctionName": d.function_name, "ReservedConcurrentExecutions": d.reserved_concurrency},
        resource,
        reason,
    )


def _plan_version_and_alias(
    ctx: AwsContext, d: DesiredState, plan: Plan, latest_changed: bool, smoke_test: bool
) -> None:
    lam = ctx.client("lambda")
    fn = d.function_name
    resource = f"lambda alias {fn}:{ALIAS}"
    if any(
        o.state == "foreign" and o.resource.startswith("lambda function") for o in plan.observed
    ):
        return
    alias = None
    if plan.variables.get("function_exists"):
        try:
            alias = lam.get_alias(FunctionName=fn, Name=ALIAS)
        except ClientError as exc:
            if not is_not_found(exc):
                raise
    reasons: list[str] = []
    if alias is None:
        plan.observe(resource, "missing")
        reasons.append("alias missing")
    else:
        live = alias["FunctionVersion"]
        plan.live_version = live
        plan.variables["version"] = live
        live_conf = lam.get_function_configuration(FunctionName=fn, Qualifier=live)
        plan.live_model_id = model_id_from_description(live_conf.get("Description"))
        plan.observe(resource, "found", version=live, model_id=plan.live_model_id)
        if latest_changed:
            reasons.append("function changed")
        else:
            if d.code_sha256 and live_conf.get("CodeSha256") != d.code_sha256:
                reasons.append(f"live version {live} runs other code")
            diffs = function_config_diff(d.function, live_conf)
            arch = architecture_diff(d.function, live_conf)
            if diffs or arch:
                reasons.append(
                    f"live version {live} has " + "; ".join([*diffs, arch or ""]).strip("; ")
                )
    if not reasons:
        return
    why = "; ".join(reasons)
    publish: dict[str, Any] = {"FunctionName": fn, "Description": d.version_description}
    if d.code_sha256:
        publish["CodeSha256"] = d.code_sha256  # refuses to publish code we did not just check
    plan.add(
        PlannedCall(
            "lambda",
            "publish_version",
            publish,
            f"lambda version {fn}",
            why,
            store={"version": "Version"},
            wait=(
                "published_version_active",
                {"FunctionName": fn, "Qualifier": Var("version"), **VERSION_WAIT},
            ),
        )
    )
    if smoke_test:
        plan.add(
            PlannedCall(
                "lambda",
                "invoke",
                {"FunctionName": fn, "Qualifier": Var("version")},
                f"lambda version {fn}",
                "smoke test: compare predictions with the local model",
                kind="smoke_test",
            )
        )
    params = {
        "FunctionName": fn,
        "Name": ALIAS,
        "FunctionVersion": Var("version"),
        "Description": d.version_description,
    }
    if alias is None:
        plan.add(PlannedCall("lambda", "create_alias", params, resource, "missing"))
    else:
        plan.add(
            PlannedCall(
                "lambda",
                "update_alias",
                params,
                resource,
                f"move from version {alias['FunctionVersion']} to the new version",
            )
        )
    plan.variables["alias_changes"] = True


# HTTP API --------------------------------------------------------------------------------------
def find_apis(ctx: AwsContext, name: str) -> list[dict[str, Any]]:
    gw = ctx.client("apigatewayv2")
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"MaxResults": "100"}
        if token:
            kwargs["NextToken"] = token
        page = gw.get_apis(**kwargs)
        found.extend(a for a in page.get("Items", []) if a.get("Name") == name)
        token = page.get("NextToken")
        if not token:
            return found


def _plan_api(ctx: AwsContext, d: DesiredState, plan: Plan) -> None:
    gw = ctx.client("apigatewayv2")
    resource = f"http api {d.api_name}"
    apis = find_apis(ctx, d.api_name)
    ours = sorted(
        (a for a in apis if is_ours(d, a.get("Tags"))), key=lambda a: str(a.get("CreatedDate"))
    )
    for other in apis:
        if not is_ours(d, other.get("Tags")):
            plan.observe(f"{resource} ({other['ApiId']})", "foreign", tags=other.get("Tags") or {})
    if len(ours) > 1:
        plan.notes.append(
            f"{len(ours)} HTTP APIs named {d.api_name} carry our tags; using {ours[0]['ApiId']}, "
            f"the oldest; delete the others: {', '.join(a['ApiId'] for a in ours[1:])}"
        )
    cors = d.cors()
    integration_params = {
        "IntegrationType": "AWS_PROXY",
        "IntegrationUri": d.alias_arn,
        "PayloadFormatVersion": "2.0",
        "IntegrationMethod": "POST",
    }
    stage_params = {
        "ApiId": Var("api_id"),
        "StageName": STAGE,
        "AutoDeploy": True,
        "DefaultRouteSettings": d.stage_route_settings(),
        "Tags": dict(d.tags),
    }
    if not ours:
        plan.observe(resource, "missing")
        create: dict[str, Any] = {
            "Name": d.api_name,
            "ProtocolType": "HTTP",
            "Description": f"iris-mlops endpoint for env {d.env}",
            "Tags": dict(d.tags),
        }
        if cors:
            create["CorsConfiguration"] = cors
        plan.add(
            PlannedCall(
                "apigatewayv2", "create_api", create, resource, "missing", store={"api_id": "ApiId"}
            )
        )
        plan.add(
            PlannedCall(
                "apigatewayv2",
                "create_integration",
                {"ApiId": Var("api_id"), **integration_params},
                f"{resource} integration",
                "missing",
                store={"integration_id": "IntegrationId"},
            )
        )
        for key in ROUTE_KEYS:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "create_route",
                    {
                        "ApiId": Var("api_id"),
                        "RouteKey": key,
                        "Target": Fmt("integrations/{integration_id}"),
                    },
                    f"{resource} route {key}",
                    "missing",
                )
            )
        plan.add(
            PlannedCall(
                "apigatewayv2", "create_stage", stage_params, f"{resource} stage {STAGE}", "missing"
            )
        )
        _plan_permission(ctx, d, plan, api_known=False)
        return
    api = ours[0]
    api_id = api["ApiId"]
    plan.variables["api_id"] = api_id
    plan.observe(resource, "found", api_id=api_id, url=api.get("ApiEndpoint"))
    if normalize_cors(api.get("CorsConfiguration")) != normalize_cors(cors):
        if cors:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "update_api",
                    {"ApiId": api_id, "CorsConfiguration": cors},
                    resource,
                    "CORS differs",
                )
            )
        else:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "delete_cors_configuration",
                    {"ApiId": api_id},
                    resource,
                    "CORS no longer configured",
                )
            )
    missing = tags_missing(d.tags, api.get("Tags"))
    if missing:
        plan.add(
            PlannedCall(
                "apigatewayv2",
                "tag_resource",
                {"ResourceArn": f"arn:aws:apigateway:{d.region}::/apis/{api_id}", "Tags": missing},
                resource,
                f"tags {sorted(missing)} differ",
            )
        )
    # integration
    integrations = gw.get_integrations(ApiId=api_id).get("Items", [])
    good = [
        i
        for i in integrations
        if i.get("IntegrationType") == "AWS_PROXY"
        and i.get("IntegrationUri") == d.alias_arn
        and i.get("PayloadFormatVersion") == "2.0"
    ]
    if good:
        plan.variables["integration_id"] = good[0]["IntegrationId"]
    else:
        proxies = [i for i in integrations if i.get("IntegrationType") == "AWS_PROXY"]
        if proxies:
            plan.variables["integration_id"] = proxies[0]["IntegrationId"]
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "update_integration",
                    {
                        "ApiId": api_id,
                        "IntegrationId": proxies[0]["IntegrationId"],
                        **integration_params,
                    },
                    f"{resource} integration",
                    f"target {proxies[0].get('IntegrationUri')} payload "
                    f"{proxies[0].get('PayloadFormatVersion')} -> {d.alias_arn} payload 2.0",
                )
            )
        else:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "create_integration",
                    {"ApiId": api_id, **integration_params},
                    f"{resource} integration",
                    "missing",
                    store={"integration_id": "IntegrationId"},
                )
            )
    # routes
    routes = gw.get_routes(ApiId=api_id).get("Items", [])
    target = Fmt("integrations/{integration_id}")
    want_target = (
        f"integrations/{plan.variables['integration_id']}"
        if "integration_id" in plan.variables
        else None
    )
    for key in ROUTE_KEYS:
        same = [r for r in routes if r.get("RouteKey") == key]
        if not same:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "create_route",
                    {"ApiId": api_id, "RouteKey": key, "Target": target},
                    f"{resource} route {key}",
                    "missing",
                )
            )
            continue
        first, *dupes = same
        if first.get("Target") != want_target:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "update_route",
                    {"ApiId": api_id, "RouteId": first["RouteId"], "Target": target},
                    f"{resource} route {key}",
                    f"target {first.get('Target')} -> the Lambda integration",
                )
            )
        for dupe in dupes:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "delete_route",
                    {"ApiId": api_id, "RouteId": dupe["RouteId"]},
                    f"{resource} route {key}",
                    "duplicate route",
                )
            )
    for extra in routes:
        if extra.get("RouteKey") not in ROUTE_KEYS:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "delete_route",
                    {"ApiId": api_id, "RouteId": extra["RouteId"]},
                    f"{resource} route {extra.get('RouteKey')}",
                    "not in the config",
                )
            )
    # stage
    stages = gw.get_stages(ApiId=api_id).get("Items", [])
    stage = next((s for s in stages if s.get("StageName") == STAGE), None)
    stage_params["ApiId"] = api_id
    if stage is None:
        plan.add(
            PlannedCall(
                "apigatewayv2", "create_stage", stage_params, f"{resource} stage {STAGE}", "missing"
            )
        )
    else:
        settings = stage.get("DefaultRouteSettings") or {}
        diffs = []
        if float(settings.get("ThrottlingRateLimit") or 0) != d.throttle_rate:
            diffs.append(
                f"throttle rate {settings.get('ThrottlingRateLimit')} -> {d.throttle_rate}"
            )
        if int(settings.get("ThrottlingBurstLimit") or 0) != d.throttle_burst:
            diffs.append(
                f"throttle burst {settings.get('ThrottlingBurstLimit')} -> {d.throttle_burst}"
            )
        if not stage.get("AutoDeploy"):
            diffs.append("auto-deploy off -> on")
        if diffs:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "update_stage",
                    {
                        "ApiId": api_id,
                        "StageName": STAGE,
                        "AutoDeploy": True,
                        "DefaultRouteSettings": d.stage_route_settings(),
                    },
                    f"{resource} stage {STAGE}",
                    "; ".join(diffs),
                )
            )
    _plan_permission(ctx, d, plan, api_known=True)


def _plan_permission(ctx: AwsContext, d: DesiredState, plan: Plan, *, api_known: bool) -> None:
    resource = f"lambda permission {d.function_name}:{ALIAS}/{PERMISSION_SID}"
    add = PlannedCall(
        "lambda",
        "add_permission",
        {
            "FunctionName": d.function_name,
            "Qualifier": ALIAS,
            "StatementId": PERMISSION_SID,
            "Action": "lambda:InvokeFunction",
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": Fmt(d.source_arn("{api_id}")),
        },
        resource,
        "missing",
    )
    alias_exists = plan.live_version is not None
    if not (api_known and alias_exists):
        if not any(o.state == "foreign" for o in plan.observed):
            plan.add(add)
        return
    statement = _find_statement(ctx, d)
    if statement is None:
        plan.add(add)
        return
    want = _permission_essentials(d.permission_statement(plan.variables["api_id"]))
    have = _permission_essentials(statement)
    if have != want:
        plan.add(
            PlannedCall(
                "lambda",
                "remove_permission",
                {
                    "FunctionName": d.function_name,
                    "Qualifier": ALIAS,
                    "StatementId": PERMISSION_SID,
                },
                resource,
                "statement differs",
            )
        )
        add.reason = "statement differs"
        plan.add(add)


def _find_statement(ctx: AwsContext, d: DesiredState) -> dict[str, Any] | None:
    try:
        raw = ctx.client("lambda").get_policy(FunctionName=d.function_name, Qualifier=ALIAS)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    policy = normalize_policy(raw.get("Policy") or "{}")
    statements = policy.get("Statement", []) if isinstance(policy, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    return next((s for s in statements if s.get("Sid") == PERMISSION_SID), None)


def _permission_essentials(statement: dict[str, Any]) -> Any:
    condition = statement.get("Condition") or {}
    source = (condition.get("ArnLike") or {}).get("AWS:SourceArn")
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        principal = principal.get("Service")
    return normalize_policy(
        {
            "Effect": statement.get("Effect"),
            "Action": statement.get("Action"),
            "Principal": principal,
            "Resource": statement.get("Resource"),
            "SourceArn": source,
        }
    )
