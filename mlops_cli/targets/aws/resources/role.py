"""The Lambda execution role and its inline logs policy.

The role is ours only with both our tags; its trust policy, tags and inline policy are compared
with the desired ones, so an unchanged role costs no mutating call. Teardown deletes the inline
policies and detaches any managed policy first (IAM refuses to delete a role that still has
either, with DeleteConflict); the managed policies themselves are not ours and stay.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.targets.aws.desired import (
    INLINE_POLICY_NAME,
    DesiredState,
    is_ours,
    normalize_policy,
    tag_list_to_dict,
    tags_missing,
)
from mlops_cli.targets.aws.model import Deletion, Foreign, Plan, PlannedCall
from mlops_cli.targets.aws.session import AwsContext, get_or_none, is_not_found


def find(ctx: AwsContext, d: DesiredState) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The role and its tags, or None when there is no role of that name."""
    iam = ctx.client("iam")
    got = get_or_none(lambda: iam.get_role(RoleName=d.role_name))
    if got is None:
        return None
    role = got["Role"]
    tags = role.get("Tags")
    if tags is None:  # some endpoints omit Tags from GetRole
        tags = iam.list_role_tags(RoleName=d.role_name).get("Tags")
    return role, tag_list_to_dict(tags)


def plan(ctx: AwsContext, d: DesiredState, plan: Plan) -> None:
    iam = ctx.client("iam")
    resource = f"iam role {d.role_name}"
    found = find(ctx, d)
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
    if found is None:
        plan.observe(resource, "missing")
        plan.add(
            PlannedCall(
                "iam",
                "create_role",
                {
                    "RoleName": d.role_name,
                    "AssumeRolePolicyDocument": json.dumps(d.trust_policy),
                    "Description": d.role_description,
                    "Tags": [{"Key": k, "Value": v} for k, v in d.tags.items()],
                },
                resource,
                "missing",
            )
        )
        plan.add(policy_call)
        return
    role, tag_dict = found
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


def teardown(ctx: AwsContext, d: DesiredState, foreign: Foreign) -> list[Deletion]:
    iam = ctx.client("iam")
    found = find(ctx, d)
    if found is None:
        return []
    _, tags = found
    if not is_ours(d, tags):
        foreign("iam role", d.role_name, tags)
        return []
    steps = [
        Deletion(
            "iam role policy",
            f"{d.role_name}/{name}",
            lambda name=name: iam.delete_role_policy(RoleName=d.role_name, PolicyName=name),
        )
        for name in iam.list_role_policies(RoleName=d.role_name).get("PolicyNames", [])
    ]
    # Managed policies someone (or another tool) attached: IAM refuses to delete a role that
    # still has any (DeleteConflict). They are detached, never deleted: they are not ours.
    steps += [
        Deletion(
            "iam managed policy attachment",
            f"{d.role_name} <- {arn}",
            lambda arn=arn: iam.detach_role_policy(RoleName=d.role_name, PolicyArn=arn),
        )
        for arn in _attached_policy_arns(iam, d.role_name)
    ]
    steps.append(Deletion("iam role", d.role_name, lambda: iam.delete_role(RoleName=d.role_name)))
    return steps


def _attached_policy_arns(iam: Any, role_name: str) -> list[str]:
    pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name)
    return [p["PolicyArn"] for page in pages for p in page.get("AttachedPolicies", [])]
