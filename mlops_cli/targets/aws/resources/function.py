"""The Lambda function ($LATEST), its published versions and the `live` alias.

`plan` compares $LATEST with the desired code (CodeSha256), configuration, architecture,
reserved concurrency and tags; `plan_version_and_alias` publishes a version only when $LATEST
changed or the version behind `live` differs from the desired one, smoke-tests it, then moves
`live`, and then deletes the oldest published versions beyond `lambda.keep_versions` (never
one `live` points or routes to). Deleting the function deletes its versions and alias with it,
so teardown is one call.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.errors import UsageError
from mlops_cli.targets.aws.desired import (
    ALIAS,
    FUNCTION_DESCRIPTION,
    DesiredState,
    architecture_diff,
    function_config_diff,
    is_ours,
    model_id_from_description,
    tags_missing,
)
from mlops_cli.targets.aws.model import (
    AliasRead,
    Deletion,
    FileBytes,
    Foreign,
    Plan,
    PlannedCall,
    Var,
)
from mlops_cli.targets.aws.retention import protected_versions, versions_to_delete
from mlops_cli.targets.aws.session import AwsContext, error_code, get_or_none

FUNCTION_WAIT = {"WaiterConfig": {"Delay": 1, "MaxAttempts": 300}}

VERSION_WAIT = {"WaiterConfig": {"Delay": 2, "MaxAttempts": 150}}


# Lambda refuses reservations that leave fewer unreserved concurrent executions than this.
UNRESERVED_MINIMUM = 100


def ready_wait(fn: str) -> tuple[str, dict[str, Any]]:
    """Wait until the function is Active and no update is InProgress: while it is Pending or
    updating, AWS answers PublishVersion, UpdateFunctionCode, UpdateFunctionConfiguration and
    Invoke with 409 ResourceConflictException. Put before every one of those calls, whatever
    state the planner saw (a deploy killed right after an update leaves it InProgress)."""
    return ("function_ready", {"FunctionName": fn, **FUNCTION_WAIT})


def find(ctx: AwsContext, d: DesiredState) -> dict[str, Any] | None:
    """GetFunction's answer for our function name with its `Tags`, or None when there is no
    such function.

    AWS returns `Tags` from GetFunction only to a caller allowed lambda:ListTags; others get
    `TagsError` instead. A function without `Tags` in the answer is not foreign: its tags are
    read with ListTags, and when that is denied we stop (a function we cannot identify is
    neither adopted nor deleted, and neither is anything that may belong to it).
    """
    lam = ctx.client("lambda")
    got = get_or_none(lambda: lam.get_function(FunctionName=d.function_name))
    if got is None or got.get("Tags") is not None:
        return got
    arn = got.get("Configuration", {}).get("FunctionArn") or d.function_arn
    try:
        got["Tags"] = lam.list_tags(Resource=arn).get("Tags") or {}
    except ClientError as exc:
        code = error_code(exc)
        if code.startswith("AccessDenied") or code in {"UnauthorizedOperation", "403"}:
            raise UsageError(
                f"cannot tell whether function {d.function_name} belongs to env {d.env}: "
                f"GetFunction returned no tags ({(got.get('TagsError') or {}).get('ErrorCode')})"
                f" and ListTags was refused ({code}). Allow the caller lambda:ListTags on "
                f"{arn} and run the command again"
            ) from None
        raise
    return got


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
                    "Description": FUNCTION_DESCRIPTION,
                    "Tags": dict(d.tags),
                },
                resource,
                "missing",
                wait=("function_active_v2", {"FunctionName": fn, **FUNCTION_WAIT}),
            )
        )
        if d.reserved_concurrency is not None:
            check_concurrency_quota(ctx, d, plan, None)
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
                pre_wait=ready_wait(fn),
            )
        )
        changed = True
    diffs = function_config_diff(spec, conf)
    if diffs:
        plan.add(
            PlannedCall(
                "lambda",
                "update_function_configuration",
                {"FunctionName": fn, **spec.as_config_params()},
                resource,
                "; ".join(diffs),
                pre_wait=ready_wait(fn),
            )
        )
        changed = True
    have = (got.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
    if have != d.reserved_concurrency:
        check_concurrency_quota(ctx, d, plan, have)
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


def check_concurrency_quota(
    ctx: AwsContext, d: DesiredState, plan: Plan, current: int | None
) -> None:
    """Refuse (before any mutating call) a reserved concurrency the account cannot give.

    Lambda keeps at least UNRESERVED_MINIMUM concurrent executions unreserved; new accounts
    have only 10 in all, so any reservation fails there, and PutFunctionConcurrency would fail
    half-way through a deploy. GetAccountSettings says what is left.
    """
    if not d.reserved_concurrency:
        return
    try:
        limits = ctx.client("lambda").get_account_settings().get("AccountLimit") or {}
    except NotImplementedError:
        limits = None
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status not in (404, 500, 501) and error_code(exc) not in {"NotImplemented", "500"}:
            raise  # (moto answers 404 "Not yet implemented" in process, 500 as a server)
        limits = None
    if not limits or "UnreservedConcurrentExecutions" not in limits:
        plan.notes.append(
            "this endpoint does not answer GetAccountSettings: the account's concurrency quota "
            f"was not checked for reserved_concurrency {d.reserved_concurrency}"
        )
        return
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    left = unreserved + (current or 0) - d.reserved_concurrency
    if left < UNRESERVED_MINIMUM:
        plan.refusals.append(
            f"lambda.reserved_concurrency {d.reserved_concurrency} would leave {left} of this "
            f"account's concurrency unreserved, below Lambda's minimum of {UNRESERVED_MINIMUM} "
            f"(account {d.account_id} in {d.region}: ConcurrentExecutions "
            f"{limits.get('ConcurrentExecutions')}, UnreservedConcurrentExecutions {unreserved}). "
            "Lower or remove lambda.reserved_concurrency in the env config, or ask AWS for a "
            "higher concurrency quota (Service Quotas, Lambda concurrent executions)"
        )


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
    ctx: AwsContext,
    d: DesiredState,
    plan: Plan,
    latest_changed: bool,
    smoke_test: bool,
    known_alias: AliasRead | None = None,
) -> None:
    """Plan publish, smoke test and the move of `live`; `known_alias` is `live` as the caller
    already read it (then not read again)."""
    lam = ctx.client("lambda")
    fn = d.function_name
    resource = f"lambda alias {fn}:{ALIAS}"
    if any(
        o.state == "foreign" and o.resource.startswith("lambda function") for o in plan.observed
    ):
        return
    alias = None
    if plan.variables.get("function_exists"):
        if known_alias is not None:
            alias = known_alias.answer
        else:
            alias = get_or_none(lambda: lam.get_alias(FunctionName=fn, Name=ALIAS))
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
        plan_retention(ctx, d, plan, alias, pending=0)
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
            pre_wait=ready_wait(fn),
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
    # Only a changed $LATEST surely makes a new version (PublishVersion returns the existing one
    # when nothing changed): counting it otherwise could delete one version too many.
    plan_retention(ctx, d, plan, alias, pending=1 if latest_changed else 0)


def published_versions(lam: Any, fn: str) -> list[dict[str, Any]]:
    """Every published version of the function (not `$LATEST`), oldest first."""
    out: list[dict[str, Any]] = []
    for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=fn):
        out.extend(v for v in page.get("Versions", []) if v.get("Version") != "$LATEST")
    return sorted(out, key=lambda v: int(v["Version"]))


def plan_retention(
    ctx: AwsContext, d: DesiredState, plan: Plan, alias: dict[str, Any] | None, pending: int
) -> None:
    """Delete the oldest published versions beyond `lambda.keep_versions`, after `live` moved;
    never one that `live` points or routes traffic to (see `retention`)."""
    if not plan.variables.get("function_exists"):
        return
    fn = d.function_name
    versions = [v["Version"] for v in published_versions(ctx.client("lambda"), fn)]
    doomed = versions_to_delete(versions, d.keep_versions, protected_versions(alias), pending)
    for version in doomed:
        plan.add(
            PlannedCall(
                "lambda",
                "delete_function",
                {"FunctionName": fn, "Qualifier": version},
                f"lambda version {fn}:{version}",
                f"beyond lambda.keep_versions = {d.keep_versions} (the newest are kept, and "
                "what live points or routes to)",
            )
        )


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
