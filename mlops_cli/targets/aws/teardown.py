"""Teardown: delete exactly this env's resources, in dependency order, and nothing else.

A resource is deleted only when it carries both our tags (project AND env); one that only shares
the name is skipped and reported. NotFound counts as done, so a second teardown (or one after a
half-finished first) succeeds.

Deleting the HTTP API removes its stage, routes and integration with it, and deleting the
function removes its versions and alias, so those are not deleted one by one: fewer calls, and
no window where a route points at a deleted integration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig
from mlops_cli.console import Reporter
from mlops_cli.errors import UsageError
from mlops_cli.targets.aws.desired import (
    ALIAS,
    PERMISSION_SID,
    TAG_PROJECT,
    DesiredState,
    artifact_bucket_name,
    build_desired,
    is_ours,
    tag_list_to_dict,
)
from mlops_cli.targets.aws.planner import find_apis
from mlops_cli.targets.aws.session import AwsContext, aws_errors, connect, error_code, is_not_found


@dataclass
class Deletion:
    resource: str
    name: str
    run: Callable[[], Any]


def check_teardown_allowed(cfg: EnvConfig, force: bool) -> None:
    if cfg.settings.protected and not force:
        where = cfg.path or f"the {cfg.env} config"
        raise UsageError(
            f"env {cfg.env!r} is protected (protected: true in {where}): "
            "pass --force to tear it down anyway"
        )


def teardown(
    cfg: EnvConfig,
    store: ArtifactStore,
    reporter: Reporter,
    *,
    plan_only: bool = False,
    include_bucket: bool = False,
    ctx: AwsContext | None = None,
) -> dict[str, Any]:
    ctx = ctx or connect(cfg)
    d = build_desired(cfg, ctx.region, ctx.account_id)
    skipped: list[dict[str, Any]] = []
    with aws_errors(f"read the resources of env {cfg.env!r}", ctx):
        steps = _collect(ctx, d, skipped, include_bucket)
    result: dict[str, Any] = {
        "env": cfg.env,
        "plan": [
            {"action": "delete", "resource": s.resource, "name": s.name,
             "reason": f"tagged iris-mlops:project={d.project}, iris-mlops:env={cfg.env}"}
            for s in steps
        ],
        "deleted": [],
        "skipped_foreign": skipped,
    }
    for item in skipped:
        reporter.warn(
            f"skipped {item['resource']} {item['name']}: it is not tagged as this env's "
            f"(tags {item.get('tags') or 'none'})"
        )
    if plan_only:
        return result
    for step in steps:
        with aws_errors(f"delete {step.resource} {step.name}", ctx):
            try:
                step.run()
            except ClientError as exc:
                if not is_not_found(exc):
                    raise
        result["deleted"].append({"resource": step.resource, "name": step.name})
        reporter.done(f"deleted {step.resource} {step.name}")
    if not steps:
        reporter.done(f"nothing of env {cfg.env} left to delete")
    store.delete_record(cfg.env)
    return result


def _get(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def _collect(
    ctx: AwsContext, d: DesiredState, skipped: list[dict[str, Any]], include_bucket: bool
) -> list[Deletion]:
    iam, logs, lam, gw = (ctx.client(s) for s in ("iam", "logs", "lambda", "apigatewayv2"))
    fn = d.function_name
    steps: list[Deletion] = []

    def foreign(resource: str, name: str, tags: Any) -> None:
        skipped.append({"resource": resource, "name": name, "tags": tags or {}})

    got = _get(lambda: lam.get_function(FunctionName=fn))
    function_ours = False
    if got is not None:
        function_ours = is_ours(d, got.get("Tags"))
        if not function_ours:
            foreign("lambda function", fn, got.get("Tags"))
    apis = find_apis(ctx, d.api_name)
    our_apis = [a for a in apis if is_ours(d, a.get("Tags"))]
    for other in apis:
        if other not in our_apis:
            foreign("http api", f"{d.api_name} ({other['ApiId']})", other.get("Tags"))

    if function_ours:
        has_alias = _get(lambda: lam.get_alias(FunctionName=fn, Name=ALIAS)) is not None
        if has_alias and _has_statement(lam, fn):
            steps.append(
                Deletion(
                    "lambda permission",
                    f"{fn}:{ALIAS}/{PERMISSION_SID}",
                    lambda: lam.remove_permission(
                        FunctionName=fn, Qualifier=ALIAS, StatementId=PERMISSION_SID
                    ),
                )
            )
    for api in our_apis:
        api_id = api["ApiId"]
        steps.append(
            Deletion(
                "http api",
                f"{d.api_name} ({api_id}, with its stage, routes and integration)",
                lambda api_id=api_id: gw.delete_api(ApiId=api_id),
            )
        )
    if function_ours:
        steps.append(
            Deletion(
                "lambda function",
                f"{fn} (with its versions and alias {ALIAS})",
                lambda: lam.delete_function(FunctionName=fn),
            )
        )
    groups = logs.describe_log_groups(logGroupNamePrefix=d.log_group).get("logGroups", [])
    group = next((g for g in groups if g.get("logGroupName") == d.log_group), None)
    if group is not None:
        arn = group.get("logGroupArn") or str(group.get("arn", "")).removesuffix(":*")
        tags = logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
        if is_ours(d, tags):
            steps.append(
                Deletion(
                    "log group",
                    d.log_group,
                    lambda: logs.delete_log_group(logGroupName=d.log_group),
                )
            )
        else:
            foreign("log group", d.log_group, tags)
    role = _get(lambda: iam.get_role(RoleName=d.role_name))
    if role is not None:
        role = role["Role"]
        tags = tag_list_to_dict(
            role.get("Tags")
            if role.get("Tags") is not None
            else iam.list_role_tags(RoleName=d.role_name).get("Tags")
        )
        if is_ours(d, tags):
            policies = iam.list_role_policies(RoleName=d.role_name).get("PolicyNames", [])
            for name in policies:
                steps.append(
                    Deletion(
                        "iam role policy",
                        f"{d.role_name}/{name}",
                        lambda name=name: iam.delete_role_policy(
                            RoleName=d.role_name, PolicyName=name
                        ),
                    )
                )
            steps.append(
                Deletion("iam role", d.role_name, lambda: iam.delete_role(RoleName=d.role_name))
            )
        else:
            foreign("iam role", d.role_name, tags)
    if include_bucket:
        steps.extend(_bucket_steps(ctx, d, foreign))
    return steps


def _has_statement(lam: Any, fn: str) -> bool:
    import json

    policy = _get(lambda: lam.get_policy(FunctionName=fn, Qualifier=ALIAS))
    if not policy:
        return False
    doc = json.loads(policy.get("Policy") or "{}")
    return any(s.get("Sid") == PERMISSION_SID for s in doc.get("Statement", []))


def _bucket_steps(ctx: AwsContext, d: DesiredState, foreign: Callable[..., None]) -> list[Deletion]:
    """Delete this env's packages from the shared artifact bucket; the bucket itself only when
    nothing else is left in it (other envs of the project may still use it)."""
    s3 = ctx.client("s3")
    bucket = artifact_bucket_name(ctx.account_id, ctx.region)
    try:
        tagset = s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])
    except ClientError as exc:
        if is_not_found(exc):
            return []
        if error_code(exc) not in {"NoSuchTagSet", "NoSuchTagSetError"}:
            raise
        tagset = []
    tags = tag_list_to_dict(tagset)
    if tags.get(TAG_PROJECT) != d.project:
        foreign("s3 bucket", bucket, tags)
        return []
    prefix = f"{d.function_name}/"
    versions = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    objects = [
        {"Key": v["Key"], "VersionId": v["VersionId"]}
        for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])
    ]
    steps = []
    if objects:
        steps.append(
            Deletion(
                "s3 objects",
                f"s3://{bucket}/{prefix} ({len(objects)})",
                lambda: s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": objects, "Quiet": True}
                ),
            )
        )

    def delete_bucket_if_empty() -> None:
        left = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
        if left.get("Versions") or left.get("DeleteMarkers"):
            return  # other envs' packages remain: keep the shared bucket
        s3.delete_bucket(Bucket=bucket)

    steps.append(Deletion("s3 bucket", f"{bucket} (if empty)", delete_bucket_if_empty))
    return steps
