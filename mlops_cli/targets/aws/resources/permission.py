"""The Lambda permissions that let API Gateway invoke the `live` alias: one statement per route.

What holds:
- Each served route has its own statement (sid `iris-mlops-apigw-<method>-<path>`) whose
  SourceArn names this API, the method and the path (`<api-arn>/*/POST/predict`), so the API can
  invoke the function through those routes only — never `/*/*/*`.
- A redeploy with the same API finds every statement as wanted and plans nothing. A statement of
  ours (by sid prefix) that grants anything else — another API's id after the API was recreated,
  the old catch-all form, a route no longer served — is stale: it is removed and the wanted one
  added in the same run. Removal comes first because AWS answers 409 to AddPermission with an
  existing statement id (moto appends a duplicate instead; the test layer models AWS).
- Statements others put on the alias are never touched.
- After an ambiguous AddPermission (it may have been applied), or a 409 for its statement id, an
  existing statement is adopted only when it grants exactly the wanted SourceArn; a stale one
  with that id is replaced, never adopted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.targets.aws.desired import ALIAS, ROUTE_KEYS, DesiredState
from mlops_cli.targets.aws.least_privilege import (
    WantedStatement,
    is_our_sid,
    statement_changes,
    statement_grants,
    wanted_statements,
)
from mlops_cli.targets.aws.model import Deletion, Fmt, Plan, PlannedCall
from mlops_cli.targets.aws.session import AwsContext, error_code, is_not_found


def _resource(d: DesiredState, sid: str) -> str:
    return f"lambda permission {d.function_name}:{ALIAS}/{sid}"


def wanted(d: DesiredState, api_id: str | None) -> list[WantedStatement]:
    return wanted_statements(ROUTE_KEYS, d.partition, d.region, d.account_id, api_id)


def plan(
    ctx: AwsContext, d: DesiredState, plan: Plan, existing: list[dict[str, Any]] | None = None
) -> None:
    """Plan the statements; runs after the function and api modules have planned (it needs the
    alias and the API id they found; no API id means the API is about to be created).
    `existing`: the statements as already read (`find`) while the function was read."""
    if any(o.state == "foreign" for o in plan.observed):
        return
    api_id = plan.variables.get("api_id")
    if existing is None:
        existing = find(ctx, d) if plan.variables.get("function_exists") else []
    changes = statement_changes(existing, wanted(d, api_id), d.alias_arn)
    for sid, why in changes.remove:
        plan.add(
            PlannedCall(
                "lambda",
                "remove_permission",
                {"FunctionName": d.function_name, "Qualifier": ALIAS, "StatementId": sid},
                _resource(d, sid),
                why,
            )
        )
    for statement, why in changes.add:
        params = statement.add_permission_params(d.function_name, ALIAS)
        if statement.source_arn is None:
            params["SourceArn"] = Fmt(d.route_source_arn("{api_id}", statement.route_key))
        plan.add(PlannedCall("lambda", "add_permission", params, _resource(d, statement.sid), why))


def find(ctx: AwsContext, d: DesiredState) -> list[dict[str, Any]]:
    """Every statement of the alias's resource policy ([] when it has none)."""
    return _statements(ctx.client("lambda"), d.function_name)


def _statements(lam: Any, function_name: str, qualifier: str = ALIAS) -> list[dict[str, Any]]:
    try:
        raw = lam.get_policy(FunctionName=function_name, Qualifier=qualifier)
    except ClientError as exc:
        if is_not_found(exc):
            return []
        raise
    policy = json.loads(raw.get("Policy") or "{}")
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def adoptable(ctx: AwsContext, params: dict[str, Any]) -> dict[str, Any] | None:
    """The existing statement an AddPermission with `params` may be taken as having made: same
    statement id AND granting the same SourceArn (an id alone proves nothing: AWS answers 409
    for any existing id). None otherwise."""
    lam = ctx.client("lambda")
    for statement in _statements(lam, params["FunctionName"], params.get("Qualifier", ALIAS)):
        if statement.get("Sid") == params["StatementId"] and statement_grants(
            statement, params.get("SourceArn")
        ):
            return {"Statement": json.dumps(statement)}
    return None


def add(ctx: AwsContext, params: dict[str, Any], call: Callable[[], Any]) -> Any:
    """Run AddPermission (`call`); on AWS's 409 for an existing statement id, adopt the statement
    when it grants what is wanted, else replace it (remove, then add once more)."""
    try:
        return call()
    except ClientError as exc:
        if error_code(exc) != "ResourceConflictException":
            raise
        lam = ctx.client("lambda")
        statements = _statements(lam, params["FunctionName"], params.get("Qualifier", ALIAS))
        same_id = [s for s in statements if s.get("Sid") == params["StatementId"]]
        if not same_id:
            raise  # a 409 for another reason (the function is being updated)
        if statement_grants(same_id[0], params.get("SourceArn")):
            return {"Statement": json.dumps(same_id[0])}
        lam.remove_permission(
            FunctionName=params["FunctionName"],
            Qualifier=params.get("Qualifier"),
            StatementId=params["StatementId"],
        )
        return call()


def teardown(ctx: AwsContext, d: DesiredState) -> list[Deletion]:
    """Remove our statements; called only for a function confirmed as ours."""
    lam = ctx.client("lambda")
    fn = d.function_name
    ours = [str(s["Sid"]) for s in find(ctx, d) if is_our_sid(s.get("Sid"))]
    return [
        Deletion(
            "lambda permission",
            f"{fn}:{ALIAS}/{sid}",
            lambda sid=sid: lam.remove_permission(
                FunctionName=fn, Qualifier=ALIAS, StatementId=sid
            ),
        )
        for sid in ours
    ]
