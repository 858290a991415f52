"""Day-2 operations on a deployed env: status, rollback, logs, direct invoke, endpoint lookup."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig
from mlops_cli.console import Reporter
from mlops_cli.durations import parse_since
from mlops_cli.errors import IrisError, UsageError
from mlops_cli.targets.aws import canary
from mlops_cli.targets.aws.deploy import invoke_version
from mlops_cli.targets.aws.desired import ALIAS, build_desired, is_ours, model_id_from_description
from mlops_cli.targets.aws.planner import find_apis, plan_deploy
from mlops_cli.targets.aws.resources.function import published_versions
from mlops_cli.targets.aws.session import AwsContext, aws_errors, connect, is_not_found

LOG_POLL_SECONDS = 2.0


def status(
    cfg: EnvConfig, store: ArtifactStore, *, ctx: AwsContext | None = None
) -> dict[str, Any]:
    """What exists, what drifted from the config (code is not compared: no package here)."""
    ctx = ctx or connect(cfg)
    d = build_desired(cfg, ctx.region, ctx.account_id, partition=ctx.partition)
    plan = plan_deploy(ctx, d, smoke_test=False, raise_on_foreign=False)
    api_id = plan.variables.get("api_id")
    record = store.read_record(cfg.env) or {}
    drift = [
        c.to_dict()
        for c in plan.calls
        if c.reason != "missing" and c.operation not in {"publish_version", "create_alias"}
    ]
    return {
        "env": cfg.env,
        "target": "aws",
        "region": ctx.region,
        "function_name": d.function_name,
        "resources": [
            {"resource": o.resource, "state": o.state, **_plain(o.detail)} for o in plan.observed
        ],
        "missing": [o.resource for o in plan.observed if o.state == "missing"],
        "foreign": [o.resource for o in plan.observed if o.state in ("foreign", "bystander")],
        "drift": drift,
        "live_version": plan.live_version,
        "model_id": plan.live_model_id,
        "url": (plan.variables.get("api_endpoint") or d.url(api_id)) if api_id else None,
        "deployed": bool(api_id and plan.live_version),
        "canary": _canary_of(ctx, d.function_name) if plan.live_version else None,
        "record": record or None,
        "notes": plan.notes,
    }


def _canary_of(ctx: AwsContext, fn: str) -> dict[str, Any] | None:
    """A canary still routing traffic (a deploy killed during its bake): versions, weight, since."""
    found = canary.current_canary(ctx, fn)
    return found.to_dict() if found else None


def _plain(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in detail.items() if isinstance(v, str | int | float | bool | dict | None)
    }


def rollback(
    cfg: EnvConfig,
    store: ArtifactStore,
    reporter: Reporter,
    to_version: str | None,
    *,
    ctx: AwsContext | None = None,
) -> dict[str, Any]:
    ctx = ctx or connect(cfg)
    fn = cfg.function_name
    lam = ctx.client("lambda")
    with aws_errors(f"read the versions of {fn}", ctx):
        _require_ours(ctx, cfg)
    leftover = canary.resolve_leftover(ctx, fn)  # an interrupted canary: back to its stable
    if leftover is not None:
        reporter.done(
            f"cleared the canary of version {leftover.candidate} ({leftover.weight:.0%} since "
            f"{leftover.since or 'unknown'}): {fn}:{ALIAS} serves version {leftover.stable} only"
        )
        if to_version is None:
            with aws_errors(f"read version {leftover.stable} of {fn}", ctx):
                conf = lam.get_function_configuration(FunctionName=fn, Qualifier=leftover.stable)
            return {"env": cfg.env, "from": leftover.stable, "to": leftover.stable,
                    "resolved_canary": leftover.to_dict(),
                    "model_id": model_id_from_description(conf.get("Description"))}
    with aws_errors(f"read the versions of {fn}", ctx):
        try:
            current = lam.get_alias(FunctionName=fn, Name=ALIAS)["FunctionVersion"]
        except Exception as exc:
            if is_not_found(exc):
                raise IrisError(
                    f"{fn} has no `{ALIAS}` alias: deploy env {cfg.env} first"
                ) from None
            raise
        versions = published_versions(lam, fn)
    numbers = sorted(int(v["Version"]) for v in versions)
    if to_version is not None:
        if not to_version.isdigit() or int(to_version) not in numbers:
            raise UsageError(
                f"{fn} has no published version {to_version!r}; versions kept: "
                f"{', '.join(map(str, numbers)) or 'none'} (deploy keeps the newest "
                f"lambda.keep_versions = {cfg.settings.lambda_.keep_versions})"
            )
        target = str(int(to_version))
    else:
        older = [n for n in numbers if n < int(current)]
        if not older:
            raise IrisError(f"{fn}: `{ALIAS}` is at version {current} and there is no earlier one")
        target = str(older[-1])
    kept = _kept_versions(versions, cfg.settings.lambda_.keep_versions)
    if target == current:
        reporter.done(f"{fn}:{ALIAS} already at version {current}")
        return {
            "env": cfg.env,
            "from": current,
            "to": target,
            "model_id": _model_of(versions, target),
            **kept,
        }
    with aws_errors(f"move {fn}:{ALIAS} to version {target}", ctx):
        description = next((v.get("Description") for v in versions if v["Version"] == target), "")
        lam.update_alias(
            FunctionName=fn, Name=ALIAS, FunctionVersion=target, Description=description or ""
        )
    model_id = _model_of(versions, target)
    reporter.done(f"{fn}:{ALIAS} moved from version {current} to {target}")
    record = store.read_record(cfg.env)
    if record is not None:
        record.update(version=target, model_id=model_id)
        store.write_record(cfg.env, record)
    return {"env": cfg.env, "from": current, "to": target, "model_id": model_id, **kept}


def _kept_versions(versions: list[dict[str, Any]], keep: int) -> dict[str, Any]:
    """What rollback can move to: the published versions deploy's retention kept (newest first),
    with the setting that bounds them, so a user sees why an old version is no longer there."""
    listed = [
        {"version": v["Version"], "model_id": model_id_from_description(v.get("Description"))}
        for v in sorted(versions, key=lambda v: int(v["Version"]), reverse=True)
    ]
    return {"versions_kept": listed, "keep_versions": keep}


def _model_of(versions: list[dict[str, Any]], version: str) -> str | None:
    for v in versions:
        if v["Version"] == version:
            return model_id_from_description(v.get("Description"))
    return None


def _require_ours(ctx: AwsContext, cfg: EnvConfig) -> None:
    from mlops_cli.targets.aws.resources import function

    d = build_desired(cfg, ctx.region, ctx.account_id, partition=ctx.partition)
    got = function.find(ctx, d)
    if got is None:
        raise IrisError(f"function {d.function_name} does not exist: deploy env {cfg.env} first")
    if not is_ours(d, got.get("Tags")):
        raise UsageError(
            f"function {d.function_name} is not tagged as env {cfg.env}'s: refusing to touch it"
        )


# logs ------------------------------------------------------------------------------------------
def logs(
    cfg: EnvConfig,
    store: ArtifactStore,
    since: str,
    follow: bool,
    sink: Callable[[dict[str, Any]], None],
    *,
    ctx: AwsContext | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
    max_polls: int | None = None,
) -> None:
    """Print events since `since`; with follow, poll every 2 s until interrupted (Ctrl-C)."""
    ctx = ctx or connect(cfg)
    group = f"/aws/lambda/{cfg.function_name}"
    start_ms = int((now() - parse_since(since)) * 1000)
    seen: set[str] = set()
    polls = 0
    client = ctx.client("logs")
    try:
        while True:
            newest = start_ms
            with aws_errors(f"read log group {group}", ctx):
                try:
                    for event in _filter_pages(client, group, start_ms):
                        key = (
                            event.get("eventId")
                            or f"{event.get('timestamp')}:{event.get('message')}"
                        )
                        newest = max(newest, int(event.get("timestamp", 0)))
                        if key in seen:
                            continue
                        seen.add(key)
                        sink(
                            {
                                "timestamp": event.get("timestamp"),
                                "stream": event.get("logStreamName"),
                                "message": str(event.get("message", "")).rstrip("\n"),
                            }
                        )
                except Exception as exc:
                    if is_not_found(exc):
                        raise IrisError(
                            f"log group {group} does not exist: deploy env {cfg.env} first"
                        ) from None
                    raise
            polls += 1
            if not follow or (max_polls is not None and polls >= max_polls):
                return
            start_ms = newest  # events at the same millisecond are deduplicated by id
            sleep(LOG_POLL_SECONDS)
    except KeyboardInterrupt:
        return


def _filter_pages(client: Any, group: str, start_ms: int) -> Any:
    token = None
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
        if token:
            kwargs["nextToken"] = token
        page = client.filter_log_events(**kwargs)
        yield from page.get("events", [])
        token = page.get("nextToken")
        if not token:
            return


# invoke / endpoint -----------------------------------------------------------------------------
def invoke_direct(
    cfg: EnvConfig, store: ArtifactStore, payload: dict[str, Any], *, ctx: AwsContext | None = None
) -> dict[str, Any]:
    ctx = ctx or connect(cfg)
    result = invoke_version(
        ctx, cfg.function_name, ALIAS, payload, timeout_s=cfg.settings.lambda_.timeout_s
    )
    if not isinstance(result, dict):
        raise IrisError(
            f"{cfg.function_name}:{ALIAS} answered something that is not an object: "
            f"{str(result)[:200]}"
        )
    return result


def endpoint(cfg: EnvConfig, store: ArtifactStore, *, ctx: AwsContext | None = None) -> str | None:
    """The base URL from AWS (by name + our tags); the cached record when AWS is unreachable."""
    record = store.read_record(cfg.env) or {}
    try:
        ctx = ctx or connect(cfg)
        d = build_desired(cfg, ctx.region, ctx.account_id, partition=ctx.partition)
        with aws_errors(f"find the HTTP API of env {cfg.env}", ctx):
            apis = [a for a in find_apis(ctx, d.api_name) if is_ours(d, a.get("Tags"))]
    except UsageError:
        raise
    except IrisError:
        return record.get("url")
    if not apis:
        return None
    apis.sort(key=lambda a: str(a.get("CreatedDate")))
    return apis[0].get("ApiEndpoint") or d.url(apis[0]["ApiId"])
