"""Shared by the AWS fault and safety tests: a fresh moto per scenario, fault injection through
botocore's event hooks on the tool's own clients, and a snapshot of an env's resources that
counts everything a duplicate would show up in (APIs, routes, integrations, stages, permission
statements, versions, aliases, log groups, roles and their policies).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig
from mlops_cli.console import NullReporter
from mlops_cli.packaging.result import PackageInfo
from mlops_cli.targets.aws import deploy, teardown
from tests.aws.conftest import READ_ONLY_PREFIXES, REGION

FN = "iris-mlops-dev"
OUR_TAGS = {"iris-mlops:project": "iris-mlops", "iris-mlops:env": "dev"}


@contextlib.contextmanager
def fresh_aws() -> Iterator[None]:
    """A new, empty moto account (entering mock_aws resets every backend)."""
    from moto import mock_aws

    from tests.aws.realities import lambda_version_numbers_never_reused, s3_requests_over_tls

    with (
        mock_aws(config={"lambda": {"use_docker": False}}),
        s3_requests_over_tls(),
        lambda_version_numbers_never_reused(),
    ):
        yield


class Killed(BaseException):
    """The process dies here: nothing in the tool may catch it (it is not an Exception)."""


def _is_mutating(operation: str) -> bool:
    return not operation.startswith(READ_ONLY_PREFIXES)


@dataclass
class Faults:
    """Hooks on every client the tool creates.

    - `kill_after`: raise `Killed` right after the Nth mutating call returned (AWS applied it);
      `kill_before`: right before the Nth mutating call is sent (AWS never saw it).
    - `inject`: operation name → list of faults ("throttle" | "5xx") answered instead of
      sending (nothing applied), one per attempt, before the real call goes through.
      `persistent` ops fail on every attempt.
    """

    kill_after: int | None = None
    kill_before: int | None = None
    inject: dict[str, list[str]] = field(default_factory=dict)
    persistent: dict[str, str] = field(default_factory=dict)
    mutating: list[str] = field(default_factory=list)
    sent_mutating: int = 0
    calls: list[str] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)

    def after_call(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)
        if _is_mutating(model.name):
            self.mutating.append(model.name)
            if self.kill_after is not None and len(self.mutating) == self.kill_after:
                raise Killed(f"killed after mutating call #{self.kill_after} ({model.name})")

    def before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        if self.kill_before is not None and _is_mutating(operation):
            self.sent_mutating += 1
            if self.sent_mutating == self.kill_before:
                raise Killed(f"killed before mutating call #{self.kill_before} ({operation})")
        kind = self.persistent.get(operation)
        if kind is None:
            pending = self.inject.get(operation)
            if not pending:
                return None
            kind = pending.pop(0)
        self.injected[kind] += 1
        response = fault_response(request.url, service, kind)
        # botocore runs every before-send handler and uses the first answer; moto's would still
        # apply the call. Pointing the request elsewhere makes moto pass, so the fault is what
        # AWS does when it throttles: nothing applied.
        request.url = "https://fault-injected.invalid/"
        return response


def fault_response(url: str, service: str, kind: str) -> AWSResponse:
    """What AWS answers when it throttles (400/429 + a throttling code) or fails (503)."""
    status = 503 if kind == "5xx" else (400 if service in ("iam", "sts") else 429)
    message = "Service Unavailable" if kind == "5xx" else "Rate exceeded"
    if service in ("iam", "sts", "s3"):
        code = "ServiceUnavailable" if kind == "5xx" else "Throttling"
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml"}
    else:
        code = "ServiceUnavailableException" if kind == "5xx" else "TooManyRequestsException"
        if service == "logs":
            code = "ServiceUnavailableException" if kind == "5xx" else "ThrottlingException"
        body = json.dumps({"message": message, "__type": code}).encode()
        headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json"}
    raw = SimpleNamespace(stream=lambda **_: iter([body]), content=body, read=lambda *_: body)
    return AWSResponse(url, status, headers, raw)


class _Current:
    faults = Faults()


_CURRENT = _Current()
_CONTEXT: list[Any] = []


def faulty_context(cfg: EnvConfig, faults: Faults) -> Any:
    """An AwsContext whose clients carry the fault hooks (like tests/aws's counted_context).

    One context (and one set of clients) serves every scenario of the run: creating botocore
    clients dominates a moto deploy's cost. Its hooks act for the `faults` of the latest call.
    The account and region are moto's and the fake environment's, the same in every account.
    """
    from mlops_cli.targets.aws.session import AwsContext, connect

    _CURRENT.faults = faults
    if _CONTEXT:
        return _CONTEXT[0]
    base = connect(cfg)

    class Faulty(AwsContext):
        def on_new_client(self, client: Any) -> None:
            client.meta.events.register("after-call", lambda **kw: _CURRENT.faults.after_call(**kw))
            client.meta.events.register_first(
                "before-send", lambda **kw: _CURRENT.faults.before_send(**kw)
            )

    _CONTEXT.append(Faulty(session=base.session, region=base.region, account_id=base.account_id))
    return _CONTEXT[0]


def run_deploy(cfg: EnvConfig, store: ArtifactStore, package: PackageInfo, faults: Faults,
               **kw: Any) -> dict[str, Any]:
    kw.setdefault("smoke_test", False)
    kw.setdefault("sleep", lambda _s: None)
    return deploy(cfg, store, package, NullReporter(), ctx=faulty_context(cfg, faults), **kw)


def run_teardown(cfg: EnvConfig, store: ArtifactStore, faults: Faults) -> dict[str, Any]:
    return teardown(cfg, store, NullReporter(), ctx=faulty_context(cfg, faults))


# -- what exists --------------------------------------------------------------------------------
def _get(call: Callable[[], Any]) -> Any:
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError:
        return None


_CLIENTS: dict[str, Any] = {}


def aws_client(service: str) -> Any:
    """Plain boto3 clients for looking at what exists, created once (they serve every moto)."""
    if service not in _CLIENTS:
        _CLIENTS[service] = boto3.client(service, region_name=REGION)
    return _CLIENTS[service]


def snapshot(name: str = FN) -> dict[str, Any]:
    """Everything of one env that AWS holds, with counts (so duplicates show), minus random ids."""
    iam, lam = aws_client("iam"), aws_client("lambda")
    gw, logs = aws_client("apigatewayv2"), aws_client("logs")
    apis = [a for a in gw.get_apis()["Items"] if a["Name"] == name]
    api_views = []
    for api in apis:
        api_id = api["ApiId"]
        integrations = gw.get_integrations(ApiId=api_id)["Items"]
        api_views.append({
            "tags": api.get("Tags", {}),
            "routes": sorted(r["RouteKey"] for r in gw.get_routes(ApiId=api_id)["Items"]),
            "integrations": sorted(
                (i["IntegrationType"], i["IntegrationUri"], i.get("PayloadFormatVersion"))
                for i in integrations
            ),
            "stages": sorted(s["StageName"] for s in gw.get_stages(ApiId=api_id)["Items"]),
        })
    function = _get(lambda: lam.get_function(FunctionName=name))
    view: dict[str, Any] = {"apis": api_views, "function": None}
    if function:
        conf = function["Configuration"]
        versions = [
            v["Version"]
            for v in lam.list_versions_by_function(FunctionName=name)["Versions"]
            if v["Version"] != "$LATEST"
        ]
        alias = _get(lambda: lam.get_alias(FunctionName=name, Name="live"))
        policy = _get(lambda: lam.get_policy(FunctionName=name, Qualifier="live"))
        statements = json.loads(policy["Policy"])["Statement"] if policy else []
        view["function"] = {
            "tags": function.get("Tags", {}),
            "code": conf["CodeSha256"],
            "memory": conf["MemorySize"],
            "role": conf["Role"],
            "versions": len(versions),
            "aliases": sorted(a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]),
            "live_is_latest_version": bool(alias) and alias["FunctionVersion"] == max(
                versions, key=int, default=None
            ),
            "permission_statements": sorted(s["Sid"] for s in statements),
            "source_arns": sorted(
                s.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn", "")
                for s in statements
            ),
        }
    role = _get(lambda: iam.get_role(RoleName=name))
    view["role"] = None
    if role:
        view["role"] = {
            "tags": {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]},
            "inline_policies": iam.list_role_policies(RoleName=name)["PolicyNames"],
            "attached": iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"],
        }
    groups = [
        g for g in logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
        if g["logGroupName"] == f"/aws/lambda/{name}"
    ]
    view["log_groups"] = [g.get("retentionInDays") for g in groups]
    return view


def normalized(view: dict[str, Any]) -> dict[str, Any]:
    """The snapshot without values that legitimately differ between accounts/runs (API ids)."""
    out = json.loads(json.dumps(view))
    if out.get("function"):
        out["function"]["source_arns"] = [
            arn.rsplit(":", 1)[0] + ":<api>/" + arn.rsplit(":", 1)[1].split("/", 1)[1]
            if arn else arn
            for arn in out["function"]["source_arns"]
        ]
    for api in out["apis"]:
        api["integrations"] = [[t, u.split(":function:")[-1], p] for t, u, p in api["integrations"]]
    return out


def nothing_of(view: dict[str, Any]) -> bool:
    return not view["apis"] and view["function"] is None and view["role"] is None and not view[
        "log_groups"
    ]
