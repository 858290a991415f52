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
from mlops_cli.targets.aws.session import (
    AwsContext,
    aws_errors,
    error_code,
    is_not_found,
    is_transient,
)

# A new role can take minutes to become assumable by Lambda (Terraform's AWS provider retries
# for 2 minutes, Chalice for 150 s): 134 s in all, then give up saying what to do.
ROLE_RETRY_DELAYS: tuple[float, ...] = (2.0, 4.0, 8.0) + (15.0,) * 8
_RETRY_ON_ROLE = frozenset({"create_function", "update_function_configuration"})
# Creates whose blind repetition would duplicate a resource, and the delays of their checked
# retries (the same budget botocore's standard mode gives every other call).
NOT_IDEMPOTENT = frozenset({"create_api", "create_integration", "create_route", "add_permission"})
CHECKED_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0)

# "function_ready": Active (not Pending) and no update InProgress, the states in which Lambda
# accepts PublishVersion, UpdateFunctionCode/Configuration and Invoke (else 409).
FUNCTION_READY = ("function_active_v2", "function_updated_v2")

# Creates that answer "already exists" when a lost answer made botocore repeat them, and the
# codes they answer with (IAM, Logs, S3, Lambda, API Gateway spell it differently).
ADOPTABLE = frozenset(
    {
        "create_role",
        "create_log_group",
        "create_bucket",
        "create_function",
        "create_alias",
        "create_stage",
    }
)
ALREADY_EXISTS = frozenset(
    {
        "EntityAlreadyExists",
        "ResourceAlreadyExistsException",
        "BucketAlreadyOwnedByYou",
        "ResourceConflictException",
        "ConflictException",
    }
)

# A delete's goal is "it is not there": a not-found answer means the goal holds. That is what
# botocore's retry hears when the delete's first answer was lost after AWS applied it.
DELETE_PREFIXES = ("delete_", "remove_")

SmokeCheck = Callable[[str], None]


def role_not_assumable(exc: BaseException) -> bool:
    if error_code(exc) != "InvalidParameterValueException":
        return False
    message = str(exc.response.get("Error", {}).get("Message", ""))  # type: ignore[attr-defined]
    return "cannot be assumed" in message


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
            return self._send(client, call, params)
        delays = list(self.role_retry_delays)
        attempt, waited = 0, 0.0
        while True:
            try:
                return self._send(client, call, params)
            except ClientError as exc:
                if not role_not_assumable(exc) or attempt >= len(delays):
                    if role_not_assumable(exc):
                        raise IrisError(
                            f"{call.operation} ({call.resource}): the IAM role still cannot be "
                            f"assumed by Lambda after {waited:g}s ({attempt + 1} attempts). IAM "
                            "can be slow to propagate a new role: run the deploy again in a few "
                            "minutes (it resumes where it stopped); if it keeps failing, check "
                            "the role's trust policy allows lambda.amazonaws.com"
                        ) from None
                    raise
                delay = delays[attempt]
                attempt += 1
                self.reporter.info(
                    f"IAM role not assumable by Lambda yet (a new role can take minutes to "
                    f"propagate): waited {waited:g}s of up to {sum(delays):g}s, retrying "
                    f"{call.operation} in {delay:g}s ({attempt}/{len(delays)})"
                )
                self.sleep(delay)
                waited += delay

    def _send(self, client: Any, call: PlannedCall, params: dict[str, Any]) -> dict[str, Any]:
        """Make the call; a create answered "already exists" is adopted when what exists is ours,
        and a delete answered "not found" is done.

        A call can take effect and its answer still be lost (5xx, timeout, reset): botocore then
        retries it and the create answers that the resource already exists. That is success,
        once the resource is read back and carries our tags; anything else is not adopted.
        """
        try:
            return getattr(client, call.operation)(**params)
        except ClientError as exc:
            if call.operation.startswith(DELETE_PREFIXES) and is_not_found(exc):
                self.reporter.info(
                    f"{call.operation} ({call.resource}) answered {error_code(exc)}: it is "
                    "already gone (an earlier answer was lost, or it went meanwhile)"
                )
                return {}
            if call.operation not in ADOPTABLE or error_code(exc) not in ALREADY_EXISTS:
                raise
            if call.operation == "create_function" and "already exist" not in str(exc).lower():
                raise  # a 409 for another reason (e.g. an update in progress)
            existing = adopt_existing(self.ctx, call.operation, params)
            self.reporter.info(
                f"{call.operation} ({call.resource}) answered {error_code(exc)}: it had been "
                "applied (an earlier answer was lost); it carries our tags, adopting it"
            )
            return existing

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
        """UpdateStage; delete + create only on a custom endpoint (an emulator) that lacks it.

        On AWS the stage is live: deleting it takes the API down until it is recreated, and a
        failure in between leaves it down. So there a failed UpdateStage is an error, never a
        reason to recreate.
        """
        if not self.ctx.endpoint_url:
            return client.update_stage(**params)
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
        names = FUNCTION_READY if name == "function_ready" else (name,)
        for waiter in names:
            client.get_waiter(waiter).wait(**resolve(params, variables))


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
        return next((i for i in items if i.get("IntegrationUri") == params["IntegrationUri"]), None)
    if operation == "create_route":
        items = gw.get_routes(ApiId=params["ApiId"]).get("Items", [])
        return next((r for r in items if r.get("RouteKey") == params["RouteKey"]), None)
    if operation == "add_permission":
        return permission.adoptable(ctx, params)
    raise ValueError(f"no existence check for {operation}")


def _carries(wanted: dict[str, str], actual: dict[str, str] | None) -> bool:
    return all((actual or {}).get(k) == v for k, v in wanted.items())


def adopt_existing(ctx: AwsContext, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """What a create that answered "already exists" refers to, read back; raise unless it is ours
    (the create's own tags), so a stranger's resource of the same name is never adopted."""
    what = f"{operation.removeprefix('create_').replace('_', ' ')}"
    if operation == "create_role":
        iam = ctx.client("iam")
        role = iam.get_role(RoleName=params["RoleName"])["Role"]
        tags = role.get("Tags")
        if tags is None:
            tags = iam.list_role_tags(RoleName=params["RoleName"]).get("Tags")
        found, wanted = {t["Key"]: t["Value"] for t in tags or []}, params.get("Tags") or []
        if _carries({t["Key"]: t["Value"] for t in wanted}, found):
            return {"Role": role}
        name = params["RoleName"]
    elif operation == "create_log_group":
        logs = ctx.client("logs")
        name = params["logGroupName"]
        groups = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        group = next((g for g in groups if g.get("logGroupName") == name), {})
        arn = group.get("logGroupArn") or str(group.get("arn", "")).removesuffix(":*")
        tags = logs.list_tags_for_resource(resourceArn=arn).get("tags", {}) if arn else {}
        if group and _carries(params.get("tags") or {}, tags):
            return {}
    elif operation == "create_bucket":
        return {}  # BucketAlreadyOwnedByYou: this account made it; its tags are put next
    elif operation == "create_function":
        lam = ctx.client("lambda")
        name = params["FunctionName"]
        got = lam.get_function(FunctionName=name)
        tags = got.get("Tags")
        if tags is None:
            tags = lam.list_tags(Resource=got["Configuration"]["FunctionArn"]).get("Tags")
        if _carries(params.get("Tags") or {}, tags):
            return dict(got["Configuration"])
    elif operation == "create_alias":
        lam = ctx.client("lambda")  # the function was confirmed ours while planning
        alias = lam.get_alias(FunctionName=params["FunctionName"], Name=params["Name"])
        if alias.get("FunctionVersion") != params["FunctionVersion"]:
            return lam.update_alias(**params)
        return alias
    elif operation == "create_stage":
        gw = ctx.client("apigatewayv2")  # the API was confirmed ours while planning
        return gw.get_stage(ApiId=params["ApiId"], StageName=params["StageName"])
    else:
        raise ValueError(f"no adoption for {operation}")
    raise IrisError(
        f"{what} {name} already exists but is not tagged as this env's, so it is not adopted: "
        "another project or person owns it. Rename this env's function (lambda.function_name) "
        "or remove it yourself"
    )
