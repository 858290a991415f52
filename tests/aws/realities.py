"""Two things real AWS does and moto does not, as botocore hooks on a session (every client made
from it afterwards gets them); each is one small function so the shared AWS behaviour model can
absorb it as is.

- AddPermission with a statement id that already exists on the function (or qualifier) answers
  409 ResourceConflictException; moto appends a duplicate statement instead.
- A request carrying `ExpectedBucketOwner` for a bucket that another account owns answers 403;
  moto ignores the parameter (it has one account).
"""

from __future__ import annotations

import json
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
