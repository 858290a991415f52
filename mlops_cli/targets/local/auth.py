"""The local endpoint's `api.auth` gate: what the HTTP front asks before a request reaches a worker.

With `api.auth: iam` every request must carry a SigV4 signature made with the deploy-time
credentials (see `sigv4`); a refused one gets API Gateway's answer to a request an `AWS_IAM`
route does not authorise, 403 `{"message":"Forbidden"}`, and never reaches the function. The
reason goes to the server log only, as AWS keeps it out of the response too. With `none` there is
no gate at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mlops_cli.targets.local.events import HttpResponse, _split_target, json_response
from mlops_cli.targets.local.sigv4 import Credentials, verify
from mlops_cli.targets.local.spec import ServerSpec

# (method, request target as sent, headers, body, request id) -> None to pass, or the 403
Gate = Callable[[str, str, list[tuple[str, str]], bytes, str], HttpResponse | None]


def forbidden(request_id: str) -> HttpResponse:
    return json_response(403, {"message": "Forbidden"}, request_id)


def gate_for(spec: ServerSpec, log: Callable[[str], None]) -> Gate | None:
    """None for a public endpoint; a refusing gate for `iam` without credentials (fail closed)."""
    if spec.auth != "iam":
        return None
    raw = spec.credentials or {}
    credentials = (
        Credentials(str(raw["access_key"]), str(raw["secret_key"]), raw.get("token"))
        if raw.get("access_key") and raw.get("secret_key")
        else None
    )

    def gate(
        method: str, target: str, headers: list[tuple[str, str]], body: bytes, request_id: str
    ) -> HttpResponse | None:
        if credentials is None:
            log(f"403 {request_id}: api.auth is iam but the server was given no credentials")
            return forbidden(request_id)
        path, query = _split_target(target)
        verdict = verify(
            method=method, raw_path=path, raw_query=query, headers=headers, body=body,
            credentials=credentials, region=spec.region, now=time.time(),
        )
        if verdict.ok:
            return None
        log(f"403 {request_id}: {verdict.reason}")
        return forbidden(request_id)

    return gate
