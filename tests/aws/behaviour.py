"""A model of real AWS behaviour that moto 5.2.5 does not have, installed on the tool's own
botocore clients through event hooks (in process), on a simulated clock.

What AWS documents and this model answers (each switchable, so a test shows one at a time):
- function states: after CreateFunction the function is `Pending`, after UpdateFunctionCode /
  UpdateFunctionConfiguration its `LastUpdateStatus` is `InProgress`, for some simulated seconds;
  meanwhile PublishVersion, UpdateFunctionCode, UpdateFunctionConfiguration and Invoke answer
  409 ResourceConflictException ("An update is in progress for resource ...");
- GetFunction without `Tags` (a caller not allowed lambda:ListTags gets `TagsError` instead),
  and optionally ListTags denied (403 AccessDeniedException);
- AddPermission with a statement id that already exists answers 409 (moto appends a duplicate);
  CreateStage of an existing stage answers 409 ConflictException (moto adds a second one);
- answers lost after AWS applied the call: the first successful answer of the named operations
  is replaced by a 503, so botocore retries (or, on a client without retries, the caller sees
  the 503) while the resource exists;
- IAM propagation: CreateFunction with a role created less than `iam_delay_s` simulated seconds
  ago answers "The role defined for the function cannot be assumed by Lambda.";
- GetAccountSettings (moto lacks it) with a given account's figures;
- UpdateStage (moto lacks it), applied to moto's stage as AWS would.

Time: `SimClock.sleep` replaces `time.sleep` (botocore waiters and retries) and is handed to
the executor, so a 60 s IAM delay costs no real time and `clock.now` says how long it took.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3

from tests.aws.conftest import REGION

BUSY_OPERATIONS = frozenset(
    {"PublishVersion", "UpdateFunctionCode", "UpdateFunctionConfiguration", "Invoke"}
)


@dataclass
class SimClock:
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


def _answer(status: int, code: str = "", message: str = "", **body: Any) -> tuple[Any, dict]:
    """What botocore would have parsed from AWS's answer (a before-call short-circuit)."""
    parsed: dict[str, Any] = dict(body)
    parsed["ResponseMetadata"] = {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0}
    if code:
        parsed["Error"] = {"Code": code, "Message": message}
    return SimpleNamespace(status_code=status, headers={}, content=b""), parsed


def _moto_us_gov_iam(request: Any, **_: Any) -> None:
    """moto 5.2.5 files IAM calls sent to AWS GovCloud's IAM endpoint (iam.us-gov.amazonaws.com)
    under the `aws` partition, so its Lambda in us-gov-west-1 never finds the role. Naming the
    region in the host makes moto use `aws-us-gov`, as AWS does. (A moto gap, not AWS's.)"""
    request.url = request.url.replace(
        "://iam.us-gov.amazonaws.com", "://iam.us-gov-west-1.amazonaws.com"
    )


def _name(function: str) -> str:
    """A function name from a name or an ARN (with or without qualifier)."""
    if function.startswith("arn:"):
        return function.split(":")[6]
    return function.split(":")[0]


@dataclass
class AwsBehaviour:
    clock: SimClock = field(default_factory=SimClock)
    region: str = REGION
    pending_s: float = 4.0
    updating_s: float = 3.0
    iam_delay_s: float = 0.0
    tags_hidden: bool = False
    list_tags_denied: bool = False
    lose_answers: set[str] = field(default_factory=set)
    account: dict[str, Any] | None = None  # GetAccountSettings answer; None: not implemented
    model_update_stage: bool = True
    # what happened
    busy: dict[str, tuple[str, float]] = field(default_factory=dict)  # fn -> (kind, until)
    roles_made: dict[str, float] = field(default_factory=dict)
    conflicts: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    role_refusals: int = 0
    _plain: dict[str, Any] = field(default_factory=dict)

    # -- installation ---------------------------------------------------------------------------
    def install(self, client: Any) -> None:
        events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()
        events.register(f"before-parameter-build.{service}", self._stash_params)
        events.register_first(f"before-call.{service}", self._before_call)
        events.register(f"after-call.{service}", self._after_call)
        events.register_first(f"needs-retry.{service}", self._lose_answer)
        if service == "iam":
            events.register_first("before-send.iam", _moto_us_gov_iam)

    def plain(self, service: str) -> Any:
        """An unhooked client on the same moto (what AWS itself holds)."""
        if service not in self._plain:
            self._plain[service] = boto3.client(service, region_name=self.region)
            if service == "iam":
                self._plain[service].meta.events.register_first("before-send.iam", _moto_us_gov_iam)
        return self._plain[service]

    # -- hooks ----------------------------------------------------------------------------------
    @staticmethod
    def _stash_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["behaviour_params"] = dict(params)

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        op = model.name
        params = context.get("behaviour_params", {})
        if op in BUSY_OPERATIONS:
            fn = _name(str(params.get("FunctionName", "")))
            state = self._state(fn)
            if state is not None:
                self.conflicts[op] += 1
                arn = f"arn:aws:lambda:{self.region}:123456789012:function:{fn}"
                what = "The operation cannot be performed at this time. " + (
                    f"The function is currently in the following state: {state}"
                    if state == "Pending"
                    else f"An update is in progress for resource: {arn}"
                )
                return _answer(409, "ResourceConflictException", what)
        if op == "CreateFunction" and self.iam_delay_s:
            role = str(params.get("Role", "")).rsplit("/", 1)[-1]
            made = self.roles_made.get(role)
            if made is not None and self.clock.now < made + self.iam_delay_s:
                self.role_refusals += 1
                return _answer(
                    400,
                    "InvalidParameterValueException",
                    "The role defined for the function cannot be assumed by Lambda.",
                )
        if op == "ListTags" and self.list_tags_denied:
            return _answer(
                403,
                "AccessDeniedException",
                "User: arn:aws:iam::123456789012:user/deployer is not authorized to perform: "
                "lambda:ListTags on resource: " + str(params.get("Resource")),
            )
        if op == "AddPermission" and self._statement_exists(params):
            self.conflicts[op] += 1
            return _answer(
                409,
                "ResourceConflictException",
                f"The statement id ({params['StatementId']}) provided already exists. Please "
                "provide a new statement id, or remove the existing statement.",
            )
        if op == "CreateStage" and self._stage_exists(params):
            self.conflicts[op] += 1
            return _answer(409, "ConflictException", f"Stage already exists: {params['StageName']}")
        if op == "UpdateStage" and self.model_update_stage:
            return _answer(200, **self._update_stage(params))
        if op == "GetAccountSettings" and self.account is not None:
            return _answer(200, **json.loads(json.dumps(self.account)))
        return None

    def _after_call(
        self,
        model: Any,
        parsed: dict[str, Any],
        http_response: Any,
        context: dict[str, Any],
        **_: Any,
    ) -> None:
        op = model.name
        params = context.get("behaviour_params", {})
        if http_response.status_code < 300:
            self._applied(op, params)
        if op in ("GetFunction", "GetFunctionConfiguration") and http_response.status_code < 300:
            conf = parsed.get("Configuration", parsed) if op == "GetFunction" else parsed
            fn = _name(str(params.get("FunctionName", "")))
            qualifier = params.get("Qualifier")
            state = self._state(fn) if qualifier in (None, "$LATEST") else None
            if state == "Pending":
                conf["State"], conf["LastUpdateStatus"] = "Pending", "InProgress"
            elif state == "InProgress":
                conf["State"], conf["LastUpdateStatus"] = "Active", "InProgress"
            if op == "GetFunction" and self.tags_hidden:
                parsed.pop("Tags", None)
                parsed["TagsError"] = {
                    "ErrorCode": "AccessDeniedException",
                    "Message": "The caller is not authorized to perform lambda:ListTags, so "
                    "the function's tags are not returned by GetFunction.",
                }

    def _lose_answer(self, response: Any, operation: Any, **_: Any) -> None:
        """Replace the first successful answer of a chosen operation by a 503: AWS applied it,
        the caller never hears so (botocore's own retry handler runs after this one)."""
        if response is None or operation.name not in self.lose_answers:
            return None
        http, parsed = response
        if http.status_code >= 300 or self.lost[operation.name]:
            return None
        self.lost[operation.name] += 1
        http.status_code = 503
        parsed.clear()
        parsed.update(_answer(503, "ServiceUnavailableException", "Service Unavailable")[1])
        return None

    # -- state ----------------------------------------------------------------------------------
    def _applied(self, op: str, params: dict[str, Any]) -> None:
        if op == "CreateFunction":
            self.busy[str(params["FunctionName"])] = ("Pending", self.clock.now + self.pending_s)
        elif op in ("UpdateFunctionCode", "UpdateFunctionConfiguration"):
            fn = _name(str(params["FunctionName"]))
            self.busy[fn] = ("InProgress", self.clock.now + self.updating_s)
        elif op == "CreateRole":
            self.roles_made.setdefault(str(params["RoleName"]), self.clock.now)

    def _state(self, fn: str) -> str | None:
        kind, until = self.busy.get(fn, ("", 0.0))
        return kind if kind and self.clock.now < until else None

    def _statement_exists(self, params: dict[str, Any]) -> bool:
        lam = self.plain("lambda")
        where = {"FunctionName": params["FunctionName"]}
        if params.get("Qualifier"):
            where["Qualifier"] = params["Qualifier"]
        try:
            policy = json.loads(lam.get_policy(**where)["Policy"])
        except lam.exceptions.ResourceNotFoundException:
            return False
        return any(s.get("Sid") == params["StatementId"] for s in policy.get("Statement", []))

    def _stage_exists(self, params: dict[str, Any]) -> bool:
        gw = self.plain("apigatewayv2")
        stages = gw.get_stages(ApiId=params["ApiId"]).get("Items", [])
        return any(s["StageName"] == params["StageName"] for s in stages)

    def _update_stage(self, params: dict[str, Any]) -> dict[str, Any]:
        """UpdateStage as AWS applies it: the same stage, new settings (moto lacks the call)."""
        gw = self.plain("apigatewayv2")
        stage = gw.get_stage(ApiId=params["ApiId"], StageName=params["StageName"])
        keep = {
            k: stage[k]
            for k in ("AutoDeploy", "DefaultRouteSettings", "Tags", "StageVariables")
            if stage.get(k) is not None
        }
        changes = {k: v for k, v in params.items() if k not in ("ApiId", "StageName")}
        gw.delete_stage(ApiId=params["ApiId"], StageName=params["StageName"])
        made = gw.create_stage(
            ApiId=params["ApiId"], StageName=params["StageName"], **{**keep, **changes}
        )
        made.pop("ResponseMetadata", None)
        return made


def modelled_context(cfg: Any, behaviour: AwsBehaviour, log: Any = None) -> Any:
    """An AwsContext whose clients answer through the behaviour model (and, optionally, log
    every call like tests/aws's counted_context)."""
    from mlops_cli.targets.aws.session import AwsContext, connect

    base = connect(cfg)

    class Modelled(AwsContext):
        def on_new_client(self, client: Any) -> None:
            if log is not None:  # before the model, so it also sees the calls it answers
                service_id = client.meta.service_model.service_id.hyphenize()
                client.meta.events.register_first(f"before-call.{service_id}", log.hook)
            behaviour.install(client)

    return Modelled(session=base.session, region=base.region, account_id=base.account_id)
