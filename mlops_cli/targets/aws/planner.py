"""Read what exists in AWS (read-only calls only) and emit the mutating calls that close the gap.

Resources are found by name and checked by tags, never by the local deployment record, so a lost
record cannot make a second API, and a resource of the same name that is not tagged as ours (same
project AND env) is reported as foreign instead of being modified.

Every decision compares against AWS's current state, so rerunning after a crash at any point
plans only what is still missing (convergence): e.g. code updated but no version published yet →
the live alias still points at old code → publish + alias move are planned again.

Resources are read concurrently (see `fanout`): the role, the log group, the function chain
(bucket → function → version and alias, its permission statements read meanwhile) and the HTTP
API; the permission decision, which needs the API id and every observation, is made after the
merge.
"""

from __future__ import annotations

from typing import Any

from mlops_cli.errors import UsageError
from mlops_cli.targets.aws.desired import TAG_ENV, TAG_PROJECT, DesiredState
from mlops_cli.targets.aws.fanout import Part, plan_parts, together
from mlops_cli.targets.aws.model import AliasRead, Observation, Plan
from mlops_cli.targets.aws.resources import api, bucket, function, log_group, permission, role
from mlops_cli.targets.aws.resources.api import find_apis
from mlops_cli.targets.aws.session import AwsContext, aws_errors

__all__ = ["Observation", "Plan", "find_apis", "foreign_error", "plan_deploy"]


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
    alias: AliasRead | None = None,
) -> Plan:
    """Each resource module reads its resource and plans its calls; the parts are merged in
    dependency order: the role and log group before the function, the function's alias before
    the API's integration and permission that point at it. `alias`: `live` as the caller already
    read it (not read again)."""
    statements: list[list[dict[str, Any]]] = []

    def function_chain(plan: Plan) -> None:
        code = bucket.plan(ctx, d, plan) if d.use_s3 else function.zip_code(d)
        publish = function.plan(ctx, d, plan, code)

        def version_and_alias() -> None:
            function.plan_version_and_alias(ctx, d, plan, publish, smoke_test, alias)

        if plan.variables.get("function_exists"):  # its policy is read meanwhile
            statements.append(together(version_and_alias, lambda: permission.find(ctx, d))[1])
        else:
            version_and_alias()

    parts = [
        Part(("iam",), lambda plan: role.plan(ctx, d, plan)),
        Part(("logs",), lambda plan: log_group.plan(ctx, d, plan)),
        Part(("s3", "lambda") if d.use_s3 else ("lambda",), function_chain),
        Part(("apigatewayv2",), lambda plan: api.plan(ctx, d, plan)),
    ]
    with aws_errors(f"read the current state of env {d.env!r}", ctx):
        plan = plan_parts(ctx, parts)
        permission.plan(ctx, d, plan, statements[0] if statements else None)
    if plan.foreign and raise_on_foreign:
        raise foreign_error(plan)
    if plan.refusals and raise_on_foreign:
        raise UsageError("refusing to deploy: " + "; ".join(plan.refusals))
    plan.notes.extend(plan.refusals)
    return plan
