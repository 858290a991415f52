"""`deploy`: desired state → plan (read-only) → apply (mutating), then cache the outputs locally."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig
from mlops_cli.console import Reporter
from mlops_cli.errors import IrisError
from mlops_cli.packaging.result import PackageInfo
from mlops_cli.targets.aws import canary_deploy, smoke
from mlops_cli.targets.aws.desired import ALIAS, DesiredState, build_desired
from mlops_cli.targets.aws.executor import Executor
from mlops_cli.targets.aws.limits import require_within_limits
from mlops_cli.targets.aws.planner import plan_deploy
from mlops_cli.targets.aws.session import AwsContext, aws_errors, connect

ContextFactory = Callable[[EnvConfig], AwsContext]


def deploy(
    cfg: EnvConfig,
    store: ArtifactStore,
    package: PackageInfo,
    reporter: Reporter,
    *,
    plan_only: bool = False,
    smoke_test: bool = True,
    ctx: AwsContext | None = None,
    sleep: Callable[[float], None] = time.sleep,
    invoker: Callable[[AwsContext, str, str, dict[str, Any]], Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Converge env `cfg.env` on AWS to the config + package. `ctx`, `sleep`, `clock` and
    `invoker` are seams for tests (moto does not run Lambda code, so the smoke test invoke is
    injectable; a canary bakes on the injected clock)."""
    require_within_limits(cfg)  # before any AWS call (the CLI checks before building too)
    ctx = ctx or connect(cfg)
    if not package.path.is_file():
        raise IrisError(
            f"package {package.path} is missing: run `iris-mlops package --env {cfg.env}`"
        )
    desired = build_desired(cfg, ctx.region, ctx.account_id, package, ctx.partition)
    resolved, alias = (None, None) if plan_only else canary_deploy.resolve_leftover(
        ctx, desired.function_name, reporter
    )
    with reporter.step(f"reading AWS state of env {cfg.env} ({ctx.region})"):
        plan = plan_deploy(ctx, desired, smoke_test=smoke_test, alias=alias)
    policy = canary_deploy.policy_for(cfg)
    calls, alias_move = canary_deploy.split_alias_move(plan.calls, plan.live_version, policy,
                                                       reporter)
    for note in plan.notes:
        reporter.warn(note)
    result: dict[str, Any] = {
        "env": cfg.env,
        "target": "aws",
        "region": ctx.region,
        "plan": [c.to_dict() for c in calls],
        "applied": False,
        "up_to_date": not plan.calls,
        "function_name": desired.function_name,
        "alias": ALIAS,
        "model_id": package.model_id,
        "package_sha256": package.sha256,
        "version": plan.live_version,
        "strategy": "canary" if alias_move else "all_at_once",
        "notes": list(plan.notes),
    }
    if alias_move is not None and policy is not None:
        result["plan"].append(
            canary_deploy.plan_entry(alias_move, policy, cfg.settings.deploy.bake)
        )
    if resolved:
        result["resolved_canary"] = resolved
    api_id = plan.variables.get("api_id")
    if plan_only:
        result.update(_urls(desired, plan.variables))
        return result
    variables = dict(plan.variables)
    if plan.calls:
        check = None
        if smoke_test:
            expected = smoke.local_predictions(store, package.model_id, smoke.SMOKE_ROWS)
            call = invoker or invoke_version
            invoke_options = {} if invoker else {"timeout_s": desired.function.timeout_s}

            def check(version: str) -> None:
                smoke.check(
                    lambda event: call(
                        ctx, desired.function_name, version, event, **invoke_options
                    ),
                    expected,
                    smoke.SMOKE_ROWS,
                    version,
                )

        executor = Executor(ctx, reporter, sleep=sleep, smoke_check=check, stage_tags=desired.tags)
        executor.run(calls, variables)
        result["applied"] = True
        if alias_move is not None and policy is not None and plan.live_version is not None:
            new = str(variables.get("version"))
            if new == plan.live_version:
                executor.run([alias_move], variables)  # nothing new to bake
            else:
                result["canary"] = canary_deploy.run_canary(
                    ctx, cfg, plan.live_version, new, alias_move, policy, reporter,
                    clock=clock, sleep=sleep,
                )
    else:
        reporter.done(f"env {cfg.env} is up to date: no changes")
    api_id = variables.get("api_id")
    result["version"] = variables.get("version")
    result.update(_urls(desired, variables))
    store.write_record(
        cfg.env,
        {
            "env": cfg.env,
            "target": "aws",
            "region": ctx.region,
            "function_name": desired.function_name,
            "alias": ALIAS,
            "api_id": api_id,
            "url": result["url"],
            "invoke_url": result["invoke_url"],
            "version": result["version"],
            "model_id": package.model_id,
            "package_sha256": package.sha256,
            "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    return result


def _urls(desired: DesiredState, variables: dict[str, Any]) -> dict[str, str | None]:
    """The API's own `ApiEndpoint` (its DNS suffix depends on the partition); built from the id
    only when an endpoint did not say."""
    api_id = variables.get("api_id")
    if not api_id:
        return {"url": None, "invoke_url": None}
    url = variables.get("api_endpoint") or desired.url(api_id)
    return {"url": url, "invoke_url": url + "/predict"}


# Seconds beyond the function's own timeout that a synchronous Invoke may take to answer
# (cold start, init, the network).
INVOKE_MARGIN_S = 30


def invoke_version(
    ctx: AwsContext,
    function_name: str,
    qualifier: str,
    event: dict[str, Any],
    *,
    timeout_s: int | None = None,
) -> Any:
    """Invoke one version/alias synchronously, ONCE; a function error becomes an IrisError.

    Invoke is not idempotent: botocore must not repeat it after a read timeout (the function may
    be running it), so the client has no retries and waits for the function's timeout plus a
    margin rather than botocore's default.
    """
    read_timeout = (timeout_s or 900) + INVOKE_MARGIN_S
    with aws_errors(f"invoke {function_name}:{qualifier}", ctx):
        response = ctx.client("lambda", retries=False, read_timeout=read_timeout).invoke(
            FunctionName=function_name,
            Qualifier=qualifier,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode("utf-8"),
        )
    raw = response["Payload"].read()
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        payload = raw.decode("utf-8", "replace")
    if response.get("FunctionError"):
        detail = payload.get("errorMessage") if isinstance(payload, dict) else payload
        raise IrisError(
            f"{function_name}:{qualifier} failed ({response['FunctionError']}): {detail}; "
            f"see `iris-mlops logs --env ...`"
        )
    return payload
