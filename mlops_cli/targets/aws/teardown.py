"""Teardown: delete exactly this env's resources, in dependency order, and nothing else.

A resource is deleted only when it carries both our tags (project AND env); one that only shares
the name is skipped and reported. NotFound counts as done, so a second teardown (or one after a
half-finished first) succeeds.

Deleting the HTTP API removes its stage, routes and integration with it, and deleting the
function removes its versions and alias, so those are not deleted one by one: fewer calls, and
no window where a route points at a deleted integration.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig
from mlops_cli.console import Reporter
from mlops_cli.errors import UsageError
from mlops_cli.targets.aws.desired import DesiredState, build_desired
from mlops_cli.targets.aws.model import Deletion
from mlops_cli.targets.aws.resources import api, bucket, function, log_group, permission, role
from mlops_cli.targets.aws.session import AwsContext, aws_errors, connect, is_not_found


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
    d = build_desired(cfg, ctx.region, ctx.account_id, partition=ctx.partition)
    skipped: list[dict[str, Any]] = []
    notes: list[str] = []
    with aws_errors(f"read the resources of env {cfg.env!r}", ctx):
        steps = _collect(ctx, d, skipped, include_bucket, notes)
    result: dict[str, Any] = {
        "env": cfg.env,
        "plan": [
            {"action": "delete", "resource": s.resource, "name": s.name,
             "reason": f"tagged iris-mlops:project={d.project}, iris-mlops:env={cfg.env}"}
            for s in steps
        ],
        "deleted": [],
        "skipped_foreign": skipped,
        "notes": notes,
    }
    for note in notes:
        reporter.warn(note)
    for item in skipped:
        why = item.get("reason") or (
            f"it is not tagged as this env's (tags {item.get('tags') or 'none'})"
        )
        reporter.warn(f"skipped {item['resource']} {item['name']}: {why}")
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


def _collect(
    ctx: AwsContext,
    d: DesiredState,
    skipped: list[dict[str, Any]],
    include_bucket: bool,
    notes: list[str],
) -> list[Deletion]:
    """Each resource module finds what is ours and returns its deletions; they run in dependency
    order: the permission (on the alias) before the API, the API before the function it invokes,
    the function before its log group and role."""

    def foreign(resource: str, name: str, tags: Any) -> None:
        skipped.append({"resource": resource, "name": name, "tags": tags or {}})

    function_steps = function.teardown(ctx, d, foreign)
    unconfirmed = any(item["resource"] == "lambda function" for item in skipped)
    api_steps = api.teardown(ctx, d, foreign)
    permission_steps = permission.teardown(ctx, d) if function_steps else []
    steps = [*permission_steps, *api_steps, *function_steps]
    if unconfirmed:
        # A function of our name that we cannot confirm as ours may run with this role and
        # write to this log group: deleting them would break it (and leave it dangling).
        why = f"kept because function {d.function_name} is not confirmed as this env's"
        for resource, name in (("log group", d.log_group), ("iam role", d.role_name)):
            skipped.append({"resource": resource, "name": name, "tags": {}, "reason": why})
        return steps
    steps += log_group.teardown(ctx, d, foreign)
    steps += role.teardown(ctx, d, foreign)
    steps += bucket.teardown(ctx, d, foreign, include_bucket=include_bucket, notes=notes)
    return steps
