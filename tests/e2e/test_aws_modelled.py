"""The real CLI against moto behind a proxy that answers as real AWS does where moto does not
(tests/e2e/aws_model_proxy.py): Pending/InProgress functions with their 409s, GetFunction without
Tags, 409 on a duplicate permission statement id. Each step runs once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.e2e import aws_model_proxy

pytestmark = pytest.mark.e2e

FN = "iris-mlops-dev"


@pytest.fixture
def model(moto_url: str) -> Iterator[aws_model_proxy.ModelState]:
    server, state, url = aws_model_proxy.start(moto_url)
    state.url = url  # type: ignore[attr-defined]
    yield state
    server.shutdown()


def _deploy(run_cli: RunCli, env: dict[str, str]) -> dict:
    result = run_cli("deploy", "--env", "dev", "--no-smoke-test", "--json", env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def _api_ids(boto) -> list[str]:
    return [a["ApiId"] for a in boto("apigatewayv2").get_apis()["Items"] if a["Name"] == FN]


def test_lifecycle_through_the_aws_model_in_one_run_per_step(
    project, run_cli: RunCli, aws_env: dict[str, str], boto, model, trained_project: Path
) -> None:
    env = {**aws_env, "AWS_ENDPOINT_URL": model.url}

    first = _deploy(run_cli, env)  # the function is Pending right after CreateFunction
    assert first["applied"] and first["version"] == "1"
    assert model.conflicts == [], "a call was sent while the function was busy"

    model.calls.clear()
    again = _deploy(run_cli, env)  # GetFunction has no Tags: read with ListTags, not foreign
    assert again["up_to_date"] and model.mutating() == []
    assert "Get /2017-03-31/tags/" in " ".join(model.calls)

    cfg = project / "configs" / "dev.yaml"
    cfg.write_text(cfg.read_text().replace("memory_mb: 512", "memory_mb: 1024"))
    changed = _deploy(run_cli, env)  # InProgress after the update: publish waits
    assert changed["version"] == "2" and model.conflicts == []
    assert boto("lambda").get_function(FunctionName=FN)["Configuration"]["MemorySize"] == 1024

    down = run_cli("teardown", "--env", "dev", "--yes", env=env)
    assert down.returncode == 0, down.stderr
    assert _api_ids(boto) == []
    assert FN not in [r["RoleName"] for r in boto("iam").list_roles()["Roles"]]


def test_an_api_deleted_by_hand_is_recreated_with_its_permission_in_one_run(
    run_cli: RunCli, aws_env: dict[str, str], boto, model, trained_project: Path
) -> None:
    env = {**aws_env, "AWS_ENDPOINT_URL": model.url}
    _deploy(run_cli, env)
    (old,) = _api_ids(boto)
    boto("apigatewayv2").delete_api(ApiId=old)

    _deploy(run_cli, env)

    (new,) = _api_ids(boto)
    policy = json.loads(boto("lambda").get_policy(FunctionName=FN, Qualifier="live")["Policy"])
    sources = [s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in policy["Statement"]]
    assert any(f":{new}/" in s for s in sources) and not any(f":{old}/" in s for s in sources)
