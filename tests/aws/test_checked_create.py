"""A create that AWS applied but answered with a 5xx must not be repeated into a duplicate."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig
from mlops_cli.console import NullReporter
from mlops_cli.packaging.result import PackageInfo
from mlops_cli.targets.aws.deploy import deploy
from tests.aws.conftest import CallLog


def _fail_after_applying(operations: set[str], times: int) -> Any:
    """An after-call hook: the call reached AWS and was applied, then the answer is lost."""
    left = {op: times for op in operations}

    def hook(model: Any, **_: Any) -> None:
        if left.get(model.name, 0) > 0:
            left[model.name] -= 1
            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "injected"},
                 "ResponseMetadata": {"HTTPStatusCode": 500}},
                model.name,
            )

    return hook


def test_applied_but_failed_creates_are_adopted_not_duplicated(
    ctx: Any, cfg: EnvConfig, store: ArtifactStore, package: PackageInfo, calls: CallLog
) -> None:
    hook = _fail_after_applying({"CreateApi", "CreateIntegration", "CreateRoute",
                                 "AddPermission"}, times=1)
    for service in ("apigatewayv2", "lambda"):
        for retries in (True, False):
            ctx.client(service, retries=retries).meta.events.register("after-call", hook)
    result = deploy(cfg, store, package, NullReporter(), smoke_test=False, ctx=ctx,
                    sleep=lambda _s: None)
    gw = ctx.client("apigatewayv2")
    apis = [a for a in gw.get_apis()["Items"] if a["Name"] == cfg.function_name]
    assert len(apis) == 1
    api_id = apis[0]["ApiId"]
    assert result["url"].startswith(f"https://{api_id}.")
    assert sorted(r["RouteKey"] for r in gw.get_routes(ApiId=api_id)["Items"]) == [
        "GET /health", "POST /predict"]
    assert len(gw.get_integrations(ApiId=api_id)["Items"]) == 1
    assert calls.mutating.count("CreateApi") == 1
    again = deploy(cfg, store, package, NullReporter(), smoke_test=False, ctx=ctx)
    assert again["up_to_date"] is True
