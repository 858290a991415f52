"""Two things real AWS does and moto does not, as botocore hooks on a session (every client made
from it afterwards gets them); each is one small function so the shared AWS behaviour model can
absorb it as is.

- AddPermission with a statement id that already exists on the function (or qualifier) answers
  409 ResourceConflictException; moto appends a duplicate statement instead.
- A request carrying `ExpectedBucketOwner` for a bucket that another account owns answers 403;
  moto ignores the parameter (it has one account).
- A bucket policy that denies requests made without TLS (`"Bool": {"aws:SecureTransport":
  "false"}`) does not apply to a request made over TLS; moto does not evaluate the `Bool`
  operator and denies every object request under such a policy.
- Lambda never reuses a version number: after versions are deleted, the next PublishVersion
  still gets the highest number ever issued plus one; moto numbers by how many versions remain,
  so it issues a number twice.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
from botocore.exceptions import ClientError


def _existing_sids(function_name: str, qualifier: str | None) -> set[str]:
    where = {"FunctionName": function_name, **({"Qualifier": qualifier} if qualifier else {})}
    try:
        policy = boto3.client("lambda").get_policy(**where)["Policy"]
    except Exception:  # no policy yet (ResourceNotFoundException)
        return set()
    return {str(s.get("Sid")) for s in json.loads(policy).get("Statement", [])}


def duplicate_statement_ids_conflict(session: Any) -> list[str]:
    """Install the 409 on `session`; returns the list of statement ids it refused."""
    refused: list[str] = []

    def add_permission(params: dict[str, Any], **_: Any) -> Any:
        body = json.loads(params.get("body") or b"{}")
        sid = body.get("StatementId")
        path = params["url_path"]  # /2015-03-31/functions/<name>/policy?Qualifier=live
        name = path.split("/functions/", 1)[1].split("/", 1)[0]
        qualifier = params.get("query_string", {}).get("Qualifier")
        if sid not in _existing_sids(name, qualifier):
            return None
        refused.append(sid)
        message = (
            f"The statement id ({sid}) provided already exists. Please provide a new statement "
            "id, or remove the existing statement."
        )
        return SimpleNamespace(status_code=409), {
            "Error": {"Code": "ResourceConflictException", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 409},
        }

    session.events.register_first("before-call.lambda.AddPermission", add_permission)
    return refused


def bucket_owned_by_another_account(session: Any, bucket: str) -> list[str]:
    """Make `bucket` (created in moto by the test) behave as another account's: a request that
    names us as the expected owner is refused with 403; one without the parameter goes through,
    as it would when that account's bucket policy lets us in (bucket sniping). Returns the
    operations refused."""
    refused: list[str] = []

    def check_owner(params: dict[str, Any], model: Any, **_: Any) -> None:
        if params.get("Bucket") != bucket or "ExpectedBucketOwner" not in params:
            return
        refused.append(model.name)
        code = "403" if model.name.startswith("Head") else "AccessDenied"
        raise ClientError(
            {"Error": {"Code": code, "Message": "Access Denied"},
             "ResponseMetadata": {"HTTPStatusCode": 403}},
            model.name,
        )

    session.events.register("before-parameter-build.s3", check_owner)
    return refused


def _denies_only_without_tls(statement: dict[str, Any]) -> bool:
    value = (statement.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")
    values = value if isinstance(value, list) else [value]
    return statement.get("Effect") == "Deny" and values == ["false"]


@contextlib.contextmanager
def s3_requests_over_tls() -> Iterator[None]:
    """Evaluate bucket policies as AWS does for a request made over TLS (in-process moto serves
    boto3's https endpoints): a statement that applies only without TLS does not apply."""
    from unittest import mock

    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        policy = json.loads(self.policy.decode())
        statements = policy.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        applying = [s for s in statements if not _denies_only_without_tls(s)]
        if not applying:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**policy, "Statement": applying})).is_action_permitted(
            action, resource
        )

    with mock.patch.object(FakeBucket, "get_permission", get_permission):
        yield


@contextlib.contextmanager
def lambda_version_numbers_never_reused() -> Iterator[None]:
    from unittest import mock

    from moto.awslambda.models import LambdaStorage

    original = LambdaStorage.publish_version

    def publish_version(self: Any, name_or_arn: str, description: str = "") -> Any:
        issued: dict[str, int] = self.__dict__.setdefault("_highest_version_issued", {})
        before = {id(v) for group in self._functions.values() for v in group["versions"]}
        fn = original(self, name_or_arn, description)
        if fn is None or id(fn) in before:  # nothing new was published
            return fn
        name = fn.function_name
        number = max(int(fn.version), issued.get(name, 0) + 1)
        if number != int(fn.version):
            self._arns.pop(fn.function_arn, None)
            fn.set_version(number)
            self._arns[fn.function_arn] = fn
        issued[name] = number
        return fn

    with mock.patch.object(LambdaStorage, "publish_version", publish_version):
        yield
