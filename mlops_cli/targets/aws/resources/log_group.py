"""The function's CloudWatch log group, created by us (tagged, with retention) before the function
so Lambda never creates an untagged one with infinite retention."""

from __future__ import annotations

from typing import Any

from mlops_cli.targets.aws.desired import DesiredState, is_ours, tags_missing
from mlops_cli.targets.aws.model import Deletion, Foreign, Plan, PlannedCall
from mlops_cli.targets.aws.session import AwsContext


def find(ctx: AwsContext, d: DesiredState) -> tuple[dict[str, Any], str, dict[str, str]] | None:
    """The log group, its ARN and its tags, or None when there is none of that name."""
    logs = ctx.client("logs")
    groups = logs.describe_log_groups(logGroupNamePrefix=d.log_group).get("logGroups", [])
    group = next((g for g in groups if g.get("logGroupName") == d.log_group), None)
    if group is None:
        return None
    arn = group.get("logGroupArn") or str(group.get("arn", "")).removesuffix(":*")
    return group, arn, logs.list_tags_for_resource(resourceArn=arn).get("tags", {})


def plan(ctx: AwsContext, d: DesiredState, plan: Plan) -> None:
    resource = f"log group {d.log_group}"
    found = find(ctx, d)
    retention = PlannedCall(
        "logs",
        "put_retention_policy",
        {"logGroupName": d.log_group, "retentionInDays": d.retention_days},
        resource,
        f"retention -> {d.retention_days} days",
    )
    if found is None:
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
    group, arn, tags = found
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


def teardown(ctx: AwsContext, d: DesiredState, foreign: Foreign) -> list[Deletion]:
    found = find(ctx, d)
    if found is None:
        return []
    _, _, tags = found
    if not is_ours(d, tags):
        foreign("log group", d.log_group, tags)
        return []
    logs = ctx.client("logs")
    return [
        Deletion("log group", d.log_group, lambda: logs.delete_log_group(logGroupName=d.log_group))
    ]
