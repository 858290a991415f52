"""`api.auth: iam` through the real CLI on the local target: deploy says who may call, `invoke`
signs with the credentials of the boto3 chain, an unsigned request gets API Gateway's 403."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import RunCli

pytestmark = pytest.mark.e2e

CREDS = {
    "AWS_ACCESS_KEY_ID": "AKIAE2EAUTHTEST",
    "AWS_SECRET_ACCESS_KEY": "e2e/auth+secret-0123456789abcdef",
    "AWS_SESSION_TOKEN": "e2e-session-token",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
}


def unsigned_post(url: str) -> tuple[int, object]:
    request = urllib.request.Request(url + "/predict", data=b'{"features": [5.1, 3.5, 1.4, 0.2]}',
                                     method="POST", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_invoke_signs_and_unsigned_requests_are_forbidden(
    run_cli: RunCli, project: Path, trained_project: Path
) -> None:
    (project / "configs" / "guarded.yaml").write_text(
        "target: local\napi: {auth: iam}\nlocal: {workers: 1}\n"
    )
    deployed = run_cli("deploy", "--env", "guarded", env=CREDS)
    try:
        assert deployed.returncode == 0, deployed.stderr
        assert "auth iam" in deployed.stdout and "SigV4" in deployed.stdout
        result = json.loads(run_cli("deploy", "--env", "guarded", "--json", env=CREDS).stdout)
        assert result["auth"] == "iam" and result["changed"] is False

        invoked = run_cli("invoke", "5.1", "3.5", "1.4", "0.2", "--env", "guarded", "--json",
                          env=CREDS)
        assert invoked.returncode == 0, invoked.stderr
        assert json.loads(invoked.stdout)["class_name"] == "setosa"

        assert unsigned_post(result["url"]) == (403, {"message": "Forbidden"})
        other = {**CREDS, "AWS_SECRET_ACCESS_KEY": "not-the-deployed-secret"}
        refused = run_cli("invoke", "5.1", "3.5", "1.4", "0.2", "--env", "guarded", env=other)
        assert refused.returncode == 1
        assert "403 Forbidden" in refused.stderr and "deploy --env guarded" in refused.stderr

        status = json.loads(run_cli("status", "--env", "guarded", "--json", env=CREDS).stdout)
        assert status["up"] is True and status["auth"] == "iam"
        for path in project.rglob("*"):
            if path.is_file():
                assert CREDS["AWS_SECRET_ACCESS_KEY"].encode() not in path.read_bytes(), path
    finally:
        run_cli("teardown", "--env", "guarded", "--yes", env=CREDS)
