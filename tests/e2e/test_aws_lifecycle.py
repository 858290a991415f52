"""The AWS target end to end: the real CLI against a moto server, as a new user would run it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.e2e.conftest import queue_lambda_results

pytestmark = pytest.mark.e2e

FN = "iris-mlops-dev"
TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})


def _bystanders(boto) -> dict[str, str]:
    """Unrelated resources a user already has; teardown must never touch them."""
    iam, lam, api = boto("iam"), boto("lambda"), boto("apigatewayv2")
    role = iam.create_role(RoleName="unrelated-role", AssumeRolePolicyDocument=TRUST)["Role"]
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(e, c):\n    return e\n")
    lam.create_function(
        FunctionName="unrelated-fn", Runtime="python3.12", Role=role["Arn"],
        Handler="app.handler", Code={"ZipFile": buf.getvalue()},
    )
    api_id = api.create_api(Name="unrelated-api", ProtocolType="HTTP")["ApiId"]
    return {"role": "unrelated-role", "function": "unrelated-fn", "api": api_id}


def _our_state(boto) -> dict[str, object]:
    lam, api, iam, logs = boto("lambda"), boto("apigatewayv2"), boto("iam"), boto("logs")
    apis = [a for a in api.get_apis()["Items"] if a["Name"] == FN]
    state: dict[str, object] = {"apis": len(apis)}
    if apis:
        api_id = apis[0]["ApiId"]
        state["routes"] = sorted(r["RouteKey"] for r in api.get_routes(ApiId=api_id)["Items"])
        state["integrations"] = len(api.get_integrations(ApiId=api_id)["Items"])
        state["stages"] = [s["StageName"] for s in api.get_stages(ApiId=api_id)["Items"]]
        state["api_tags"] = apis[0].get("Tags", {})
    try:
        fn = lam.get_function(FunctionName=FN)
        state["memory"] = fn["Configuration"]["MemorySize"]
        state["fn_tags"] = fn.get("Tags", {})
        versions = lam.list_versions_by_function(FunctionName=FN)["Versions"]
        state["versions"] = len([v for v in versions if v["Version"] != "$LATEST"])
        state["alias"] = lam.get_alias(FunctionName=FN, Name="live")["FunctionVersion"]
        policy = json.loads(lam.get_policy(FunctionName=FN, Qualifier="live")["Policy"])
        state["permissions"] = len(policy["Statement"])
    except lam.exceptions.ResourceNotFoundException:
        state["function"] = "missing"
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    state["role"] = FN in roles
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{FN}")["logGroups"]
    state["log_groups"] = len(groups)
    return state


def _deploy(run_cli: RunCli, aws_env: dict[str, str], *extra: str) -> dict:
    result = run_cli("deploy", "--env", "dev", "--no-smoke-test", "--json", *extra, env=aws_env)
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def test_deploy_is_idempotent_changes_one_field_and_teardown_spares_bystanders(
    project: Path, run_cli: RunCli, aws_env: dict[str, str], boto, moto_url: str,
    trained_project: Path,
) -> None:
    bystanders = _bystanders(boto)

    first = _deploy(run_cli, aws_env)
    assert re.fullmatch(
        r"https://[a-z0-9]+\.execute-api\.eu-west-1\.amazonaws\.com/predict", first["invoke_url"]
    )
    state = _our_state(boto)
    assert state["apis"] == 1 and state["role"] and state["log_groups"] == 1
    assert state["routes"] == ["GET /health", "POST /predict"]
    assert state["integrations"] == 1 and state["stages"] == ["$default"]
    assert state["alias"] != "$LATEST" and state["permissions"] == 2  # one per route
    assert state["fn_tags"]["iris-mlops:env"] == "dev"
    assert state["api_tags"]["iris-mlops:project"] == "iris-mlops"

    second = _deploy(run_cli, aws_env)
    assert second["up_to_date"] is True and second["plan"] == []
    assert _our_state(boto) == state, "a no-change deploy must create nothing"

    plan = run_cli("deploy", "--env", "dev", "--plan", "--json", env=aws_env)
    assert json.loads(plan.stdout)["plan"] == []

    # A lost local record must not duplicate anything: AWS is the source of truth.
    (project / "artifacts" / "deployments" / "dev.json").unlink()
    assert _deploy(run_cli, aws_env)["up_to_date"] is True
    assert _our_state(boto)["apis"] == 1

    cfg = project / "configs" / "dev.yaml"
    cfg.write_text(cfg.read_text().replace("memory_mb: 512", "memory_mb: 1024"))
    planned = json.loads(run_cli("deploy", "--env", "dev", "--plan", "--json",
                                 env=aws_env).stdout)["plan"]
    assert any("1024" in str(call.get("reason", "")) for call in planned)
    assert not any(str(c["action"]).startswith("create") for c in planned)
    _deploy(run_cli, aws_env)
    changed = _our_state(boto)
    assert changed["memory"] == 1024
    assert changed["versions"] == state["versions"] + 1
    assert changed["apis"] == 1 and changed["permissions"] == 2

    # A bare invoke reaches the env of the most recent deploy (moto runs no code: queue a reply).
    queue_lambda_results(moto_url, [{"prediction": 0, "class_name": "setosa",
                                     "probabilities": [0.98, 0.02, 0.0], "latency_ms": 0.1,
                                     "model_id": first["model_id"]}])
    invoked = run_cli("invoke", "5.1", "3.5", "1.4", "0.2", env=aws_env)
    assert invoked.returncode == 0, invoked.stderr
    assert "dev" in invoked.stderr and "setosa" in invoked.stdout

    no_yes = run_cli("teardown", "--env", "dev", env=aws_env)
    assert no_yes.returncode == 2 and "--yes" in no_yes.stderr

    down = run_cli("teardown", "--env", "dev", "--yes", env=aws_env)
    assert down.returncode == 0, down.stderr
    gone = _our_state(boto)
    assert gone["apis"] == 0 and gone["function"] == "missing" and not gone["role"]
    assert gone["log_groups"] == 0
    again = run_cli("teardown", "--env", "dev", "--yes", env=aws_env)
    assert again.returncode == 0, again.stderr

    assert bystanders["role"] in [r["RoleName"] for r in boto("iam").list_roles()["Roles"]]
    boto("lambda").get_function(FunctionName=bystanders["function"])
    assert bystanders["api"] in [a["ApiId"] for a in boto("apigatewayv2").get_apis()["Items"]]


def test_a_foreign_role_with_our_name_stops_deploy_and_survives_teardown(
    run_cli: RunCli, aws_env: dict[str, str], boto, trained_project: Path
) -> None:
    boto("iam").create_role(RoleName=FN, AssumeRolePolicyDocument=TRUST)
    result = run_cli("deploy", "--env", "dev", "--no-smoke-test", env=aws_env)
    assert result.returncode != 0
    assert FN in result.stderr and "Traceback" not in result.stderr
    assert run_cli("teardown", "--env", "dev", "--yes", env=aws_env).returncode == 0
    assert boto("iam").get_role(RoleName=FN)["Role"]["RoleName"] == FN


def test_protected_env_refuses_teardown_without_force(run_cli: RunCli,
                                                     aws_env: dict[str, str]) -> None:
    result = run_cli("teardown", "--env", "prod", "--yes", env=aws_env)
    assert result.returncode == 2
    assert "--force" in result.stderr


def test_missing_credentials_is_one_clear_line_exit_2(
    run_cli: RunCli, project: Path, trained_project: Path
) -> None:
    env = {"AWS_CONFIG_FILE": str(project / "none"), "AWS_SHARED_CREDENTIALS_FILE":
           str(project / "none"), "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    result = run_cli("deploy", "--env", "dev", "--no-smoke-test", env=env)
    assert result.returncode == 2, result.stderr
    assert "credentials" in result.stderr.lower()
    assert "Traceback" not in result.stderr
