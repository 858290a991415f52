"""The documents that keep the AWS target least-privileged, as pure data (no AWS calls).

What holds:
- API Gateway may invoke the function only through the routes we serve: one Lambda permission
  statement per route, its SourceArn naming the API, the method and the path
  (`arn:<partition>:execute-api:<region>:<account>:<api-id>/*/POST/predict`), never `/*/*/*`.
  A statement id is stable per route, so a redeploy finds it and changes nothing.
- Statements are ours by their id prefix (`iris-mlops-apigw`); one of ours that does not match
  what is wanted (another API's id, the old `/*/*/*` form, another route) is stale and removed.
  Statements that others added to the alias are never touched.
- After an ambiguous failure of AddPermission (the call may have been applied), an existing
  statement is adopted only when it grants exactly what we asked for (same SourceArn): AWS
  answers 409 for an existing statement id whatever it grants, so "it exists" proves nothing.
- The artifact bucket denies every request made without TLS, on the bucket and its objects.
Every ARN comes from the session's partition (`aws`, `aws-cn`, `aws-us-gov`) through `arn()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PERMISSION_SID_PREFIX = "iris-mlops-apigw"
APIGW_PRINCIPAL = "apigateway.amazonaws.com"
INVOKE_ACTION = "lambda:InvokeFunction"


def arn(partition: str, service: str, region: str, account: str, resource: str) -> str:
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


def route_sid(route_key: str) -> str:
    """`POST /predict` -> `iris-mlops-apigw-post-predict` (ids allow [A-Za-z0-9-_])."""
    method, path = route_key.split(" ", 1)
    tail = "-".join(p for p in path.strip("/").split("/") if p) or "root"
    return f"{PERMISSION_SID_PREFIX}-{method.lower()}-{tail}"


def route_source_arn(
    partition: str, region: str, account: str, api_id: str, route_key: str
) -> str:
    """Any stage, exactly this method and path of exactly this API."""
    method, path = route_key.split(" ", 1)
    return arn(partition, "execute-api", region, account, f"{api_id}/*/{method}/{path.lstrip('/')}")


def is_our_sid(sid: str | None) -> bool:
    return bool(sid) and (
        sid == PERMISSION_SID_PREFIX or str(sid).startswith(PERMISSION_SID_PREFIX + "-")
    )


@dataclass(frozen=True)
class WantedStatement:
    sid: str
    route_key: str
    source_arn: str | None  # None while the API does not exist yet (its id is unknown)

    def add_permission_params(self, function_name: str, qualifier: str) -> dict[str, Any]:
        return {
            "FunctionName": function_name,
            "Qualifier": qualifier,
            "StatementId": self.sid,
            "Action": INVOKE_ACTION,
            "Principal": APIGW_PRINCIPAL,
            "SourceArn": self.source_arn,
        }


def wanted_statements(
    route_keys: Iterable[str], partition: str, region: str, account: str, api_id: str | None
) -> list[WantedStatement]:
    return [
        WantedStatement(
            route_sid(key),
            key,
            route_source_arn(partition, region, account, api_id, key) if api_id else None,
        )
        for key in route_keys
    ]


def statement_source_arn(statement: Mapping[str, Any]) -> str | None:
    condition = statement.get("Condition") or {}
    for operator in ("ArnLike", "ArnEquals", "StringEquals", "StringLike"):
        value = (condition.get(operator) or {}).get("AWS:SourceArn")
        if value:
            return str(value[0] if isinstance(value, list) else value)
    return None


def _principal(statement: Mapping[str, Any]) -> Any:
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        principal = principal.get("Service")
    return principal[0] if isinstance(principal, list) and len(principal) == 1 else principal


def _action(statement: Mapping[str, Any]) -> Any:
    action = statement.get("Action")
    return action[0] if isinstance(action, list) and len(action) == 1 else action


def statement_grants(
    statement: Mapping[str, Any], source_arn: str | None, resource: str | None = None
) -> bool:
    """Whether an existing statement grants exactly the wanted invoke (the adoption rule)."""
    return (
        source_arn is not None
        and statement.get("Effect", "Allow") == "Allow"
        and _action(statement) == INVOKE_ACTION
        and _principal(statement) == APIGW_PRINCIPAL
        and statement_source_arn(statement) == source_arn
        and (resource is None or statement.get("Resource") in (None, resource))
    )


@dataclass(frozen=True)
class StatementChanges:
    remove: list[tuple[str, str]]  # (sid, why)
    add: list[tuple[WantedStatement, str]]  # (statement, why)


def statement_changes(
    existing: Iterable[Mapping[str, Any]], wanted: list[WantedStatement], resource: str
) -> StatementChanges:
    """Which of our statements go (stale) and which are added, so that afterwards exactly the
    wanted ones exist. Removals come first: a statement id can only be added once it is free."""
    by_sid = {str(s.get("Sid")): s for s in existing if is_our_sid(s.get("Sid"))}
    wanted_by_sid = {w.sid: w for w in wanted}
    remove: list[tuple[str, str]] = []
    kept: set[str] = set()
    for sid, statement in by_sid.items():
        want = wanted_by_sid.get(sid)
        have = statement_source_arn(statement) or "no SourceArn"
        if want is None:
            remove.append((sid, f"stale: grants {have}, not one of the served routes"))
        elif want.source_arn is None:
            remove.append((sid, f"stale: grants {have}, an API being replaced"))
        elif not statement_grants(statement, want.source_arn, resource):
            remove.append((sid, f"stale: grants {have}, wanted {want.source_arn}"))
        else:
            kept.add(sid)
    add = [
        (w, "replaces a stale statement" if w.sid in by_sid else "missing")
        for w in wanted
        if w.sid not in kept
    ]
    return StatementChanges(remove=remove, add=add)


def tls_only_bucket_policy(partition: str, bucket: str) -> dict[str, Any]:
    """Deny any request to the bucket or its objects that does not come over TLS."""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
