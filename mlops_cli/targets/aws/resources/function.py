"""The Lambda function ($LATEST), its published versions and the `live` alias.

`plan` compares $LATEST with the desired code (CodeSha256), configuration, architecture,
reserved concurrency and tags; `plan_version_and_alias` publishes a version only when $LATEST
changed or the version behind `live` differs from the desired one, smoke-tests it, then moves
`live`. Deleting the function deletes its versions and alias with it, so teardown is one call.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.targets.aws.desired import (
    ALIAS,
    DesiredState,
    architecture_diff,
    function_config_diff,
    is_ours,
    model_id_from_description,
    tags_missing,
)
from mlops_cli.targets.aws.model import Deletion, FileBytes, Foreign, Plan, PlannedCall, Var
from mlops_cli.targets.aws.session import AwsContext, get_or_none, is_not_found

FUNCTION_WAIT = {"WaiterConfig": {"Delay": 1, "MaxAttempts": 300}}
VERSION_WAIT = {"WaiterConfig": {"Delay": 2, "MaxAttempts": 150}}


def find(ctx: AwsContext, d: DesiredState) -> dict[str, Any] | None:
    """GetFunction's answer for our function name, or None when there is no such function."""
    lam = ctx.client("lambda")
    return get_or_none(lambda: lam.get_function(FunctionName=d.function_name))


def zip_code(d: DesiredState) -> dict[str, Any]:
    """The `Code` of a zip uploaded directly (the bucket module gives the S3 one)."""
    return {"ZipFile": FileBytes(d.zip_path)} if d.zip_path else {}


def plan(ctx: AwsContext, d: DesiredState, plan: Plan, code: dict[str, Any]) -> bool:
    """Plan $LATEST changes; return whether a new version must be published for them."""
    fn = d.function_name
    resource = f"lambda function {fn}"
    got = find(ctx, d)
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


def plan_version_and_alias(
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


def teardown(ctx: AwsContext, d: DesiredState, foreign: Foreign) -> list[Deletion]:
    got = find(ctx, d)
    if got is None:
        return []
    fn = d.function_name
    if not is_ours(d, got.get("Tags")):
        foreign("lambda function", fn, got.get("Tags"))
        return []
    lam = ctx.client("lambda")
    return [
        Deletion(
            "lambda function",
            f"{fn} (with its versions and alias {ALIAS})",
            lambda: lam.delete_function(FunctionName=fn),
        )
    ]
