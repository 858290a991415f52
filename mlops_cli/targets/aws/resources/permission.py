"""The Lambda permission that lets API Gateway invoke the `live` alias, scoped to our API.

One statement (sid `PERMISSION_SID`) on the alias's resource policy; it is compared on its
essentials (effect, action, principal, resource, source ARN) and replaced when they differ.
Statements with other sids are never touched.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.targets.aws.desired import ALIAS, PERMISSION_SID, DesiredState, normalize_policy
from mlops_cli.targets.aws.model import Deletion, Fmt, Plan, PlannedCall
from mlops_cli.targets.aws.session import AwsContext, get_or_none, is_not_found


def plan(ctx: AwsContext, d: DesiredState, plan: Plan) -> None:
    """Plan the statement; runs after the function and api modules have planned (it needs the
    alias and the API id they found)."""
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
    api_known = "api_id" in plan.variables
    alias_exists = plan.live_version is not None
    if not (api_known and alias_exists):
        if not any(o.state == "foreign" for o in plan.observed):
            plan.add(add)
        return
    statement = find(ctx, d)
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


def find(ctx: AwsContext, d: DesiredState) -> dict[str, Any] | None:
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


def teardown(ctx: AwsContext, d: DesiredState) -> list[Deletion]:
    """Remove our statement; called only for a function confirmed as ours."""
    lam = ctx.client("lambda")
    fn = d.function_name
    if get_or_none(lambda: lam.get_alias(FunctionName=fn, Name=ALIAS)) is None:
        return []
    if find(ctx, d) is None:
        return []
    return [
        Deletion(
            "lambda permission",
            f"{fn}:{ALIAS}/{PERMISSION_SID}",
            lambda: lam.remove_permission(
                FunctionName=fn, Qualifier=ALIAS, StatementId=PERMISSION_SID
            ),
        )
    ]
