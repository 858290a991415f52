"""Run a plan's calls in order, one progress line each, feeding ids from earlier calls on.

Two AWS realities are handled here rather than in the planner, because they are about *how* a
call runs, not *whether* it is needed:
- IAM propagation: a freshly created role is often not assumable by Lambda for some seconds, and
  `create_function` fails with InvalidParameterValueException "...cannot be assumed...". Those
  calls are retried with bounded exponential backoff (the sleep is injectable for tests).
- Creates that are not idempotent (a second `create_api` makes a second API) are never retried
  blindly: if one fails in a way that may or may not have been applied (throttling, 5xx, a lost
  connection), the executor first looks for what it would have created and adopts it, and only
  retries when it is not there. botocore's own retries would repeat such a call unseen.
- apigatewayv2 `update_stage` is not implemented by moto (NotImplementedError in-process, HTTP
  500 from its server). Real AWS gets `update_stage` (no gap in service); on an endpoint that
  lacks it we fall back to delete + create of the `$default` stage, which converges to the same
  state. Documented choice: correctness on AWS first, emulators still converge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli.console import Reporter
from mlops_cli.errors import IrisError
from mlops_cli.targets.aws.model import PlannedCall, resolve
from mlops_cli.targets.aws.resources import permission
from mlops_cli.targets.aws.session import AwsContext, aws_errors, error_code, is_transient

ROLE_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)  # ~31 s in all, then give up
_RETRY_ON_ROLE = frozenset({"create_function", "update_function_configuration"})
# Creates whose blind repetition would duplicate a resource, and the delays of their checked
# retries (the same budget botocore's standard mode gives every other call).
NOT_IDEMPOTENT = frozenset({"create_api", "create_integration", "create_route", "add_permission"})
CHECKED_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0)

SmokeCheck = Callable[[str], None]


def role_not_assumable(exc: BaseException) -> bool:
    if error_code(exc) != "InvalidParameterValueException":
        return False
    message = str(exc.response.get("Error", {}).get("Message", ""))  # type: ignore[attr-defined]
    return "cannot be assumed" in message or "assume" in message.lower()


class Executor:
    def __init__(
        self,
        ctx: AwsContext,
        reporter: Reporter,
        *,
        sleep: Callable[[float], None] = time.sleep,
        smoke_check: SmokeCheck | None = None,
        role_retry_delays: Sequence[float] = ROLE_RETRY_DELAYS,
        checked_retry_delays: Sequence[float] = CHECKED_RETRY_DELAYS,
        stage_tags: dict[str, str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.reporter = reporter
        self.sleep = sleep
        self.smoke_check = smoke_check
        self.role_retry_delays = tuple(role_retry_delays)
        self.checked_retry_delays = tuple(checked_retry_delays)
        self.stage_tags = dict(stage_tags or {})
        self.calls_made: list[str] = []

    def run(self, calls: Sequence[PlannedCall], variables: dict[str, Any]) -> dict[str, Any]:
        for call in calls:
            self._run_one(call, variables)
        return variables

    def _run_one(self, call: PlannedCall, variables: dict[str, Any]) -> None:
        doing = f"{call.operation.replace('_', ' ')} ({call.resource})"
        if call.kind == "smoke_test":
            version = str(resolve(call.params["Qualifier"], variables))
            if self.smoke_check is not None:
                with self.reporter.step(f"smoke test of {call.resource} version {version}"):
                    self.smoke_check(version)
            return
        with aws_errors(doing, self.ctx):
            client = self.ctx.client(call.service)
            if call.pre_wait:
                self._wait(client, call.pre_wait, variables)
            params = resolve(call.params, variables)
            response = self._call(client, call, params)
            for var, key in call.store.items():
                variables[var] = response[key]
            if call.wait:
                self._wait(client, call.wait, variables)
        self.calls_made.append(call.operation)
        self.reporter.done(f"{call.operation} {call.resource} ({call.reason})")

    def _call(self, client: Any, call: PlannedCall, params: dict[str, Any]) -> dict[str, Any]:
        if call.operation == "update_stage":
            return self._update_stage(client, params)
        if call.operation == "add_permission":
            return permission.add(self.ctx, params, lambda: self._create_once(call, params))
        if call.operation in NOT_IDEMPOTENT:
            return self._create_once(call, params)
        if call.operation not in _RETRY_ON_ROLE:
            return getattr(client, call.operation)(**params)
        delays = list(self.role_retry_delays)
        attempt = 0
        while True:
            try:
                return getattr(client, call.operation)(**params)
            except ClientError as exc:
                if not role_not_assumable(exc) or attempt >= len(delays):
                    if role_not_assumable(exc):
                        raise IrisError(
                            f"{call.operation} ({call.resource}): the IAM role still cannot be "
                            f"assumed by Lambda after {attempt + 1} attempts; IAM may be slow to "
                            "propagate — run the deploy again in a minute"
                        ) from None
                    raise
                delay = delays[attempt]
                attempt += 1
                self.reporter.info(
                    f"IAM role not assumable yet (new roles take seconds to propagate); "
                    f"retry {attempt}/{len(delays)} of {call.operation} in {delay:g}s"
                )
                self.sleep(delay)

    def _create_once(self, call: PlannedCall, params: dict[str, Any]) -> dict[str, Any]:
        client = self.ctx.client(call.service, retries=False)
        delays = list(self.checked_retry_delays)
        for attempt in range(len(delays) + 1):
            try:
                return getattr(client, call.operation)(**params)
            except (ClientError, BotoCoreError) as exc:
                if not is_transient(exc) or attempt == len(delays):
                    raise
                existing = find_created(self.ctx, call.operation, params)
                if existing is not None:
                    self.reporter.info(
                        f"{call.operation} ({call.resource}) failed ({error_code(exc) or exc}) "
                        "but had been applied: using what it created"
                    )
                    return existing
                self.reporter.info(
                    f"{call.operation} ({call.resource}) failed ({error_code(exc) or exc}) and "
                    f"was not applied; retry {attempt + 1}/{len(delays)} in {delays[attempt]:g}s"
                )
                self.sleep(delays[attempt])
        raise AssertionError("unreachable")

    def _update_stage(self, client: Any, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return client.update_stage(**params)
        except NotImplementedError:
            pass
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status not in (500, 501) and error_code(exc) not in {"NotImplemented", "500"}:
                raise
        self.reporter.warn(
            "this endpoint does not implement update_stage; recreating the $default stage"
        )
        client.delete_stage(ApiId=params["ApiId"], StageName=params["StageName"])
        tags = {"Tags": self.stage_tags} if self.stage_tags else {}
        return client.create_stage(**params, **tags)

    def _wait(
        self, client: Any, wait: tuple[str, dict[str, Any]], variables: dict[str, Any]
    ) -> None:
        name, params = wait
        client.get_waiter(name).wait(**resolve(params, variables))


def find_created(ctx: AwsContext, operation: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """What a non-idempotent create would have made, if it exists (read-only calls only)."""
    if operation == "create_api":
        from mlops_cli.targets.aws.planner import find_apis

        wanted = params.get("Tags") or {}
        for api in find_apis(ctx, params["Name"]):
            tags = api.get("Tags") or {}
            if all(tags.get(k) == v for k, v in wanted.items()):
                return api
        return None
    gw = ctx.client("apigatewayv2")
    if operation == "create_integration":
        items = gw.get_integrations(ApiId=params["ApiId"]).get("Items", [])
        return next((i for i in items if i.get("IntegrationUri") == params["IntegrationUri"]),
                    None)
    if operation == "create_route":
        items = gw.get_routes(ApiId=params["ApiId"]).get("Items", [])
        return next((r for r in items if r.get("RouteKey") == params["RouteKey"]), None)
    if operation == "add_permission":
        return permission.adoptable(ctx, params)
    raise ValueError(f"no existence check for {operation}")
