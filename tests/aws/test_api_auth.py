"""`api.auth` on the aws target (moto): `iam` puts AWS_IAM on both routes, a change is a planned
update of exactly the routes, and an unchanged env makes no mutating call."""

from __future__ import annotations

from typing import Any

import boto3

from mlops_cli.console import NullReporter
from mlops_cli.targets.aws import deploy
from tests.aws.conftest import make_cfg

FN = "iris-mlops-dev"


def _deploy(cfg, store, package, ctx, **kw: Any) -> dict[str, Any]:
    return deploy(cfg, store, package, NullReporter(), smoke_test=False, ctx=ctx, **kw)


def _route_auth() -> dict[str, str]:
    gw = boto3.client("apigatewayv2")
    (api,) = [a for a in gw.get_apis()["Items"] if a["Name"] == FN]
    routes = gw.get_routes(ApiId=api["ApiId"])["Items"]
    return {r["RouteKey"]: r["AuthorizationType"] for r in routes}


def test_iam_puts_aws_iam_on_both_routes_from_the_first_deploy(store, package, ctx):
    _deploy(make_cfg(api__auth="iam"), store, package, ctx)
    assert _route_auth() == {"POST /predict": "AWS_IAM", "GET /health": "AWS_IAM"}


def test_the_default_leaves_the_routes_public(cfg, store, package, ctx):
    _deploy(cfg, store, package, ctx)
    assert _route_auth() == {"POST /predict": "NONE", "GET /health": "NONE"}


def test_an_unchanged_iam_env_makes_no_mutating_call(store, package, ctx, calls):
    _deploy(make_cfg(api__auth="iam"), store, package, ctx)
    calls.reset()
    again = _deploy(make_cfg(api__auth="iam"), store, package, ctx)
    assert again["up_to_date"] and again["plan"] == []
    assert calls.mutating == []


def test_switching_auth_is_a_planned_update_of_the_two_routes_only(store, package, ctx, calls):
    _deploy(make_cfg(), store, package, ctx)
    calls.reset()

    planned = deploy(make_cfg(api__auth="iam"), store, package, NullReporter(), plan_only=True,
                     ctx=ctx)
    assert [(p["action"], p["reason"]) for p in planned["plan"]] == [
        ("update_route", "authorization NONE -> AWS_IAM"),
        ("update_route", "authorization NONE -> AWS_IAM"),
    ]
    assert calls.mutating == [] and _route_auth()["POST /predict"] == "NONE"

    _deploy(make_cfg(api__auth="iam"), store, package, ctx)
    assert calls.mutating == ["UpdateRoute", "UpdateRoute"]
    assert set(_route_auth().values()) == {"AWS_IAM"}

    calls.reset()
    _deploy(make_cfg(api__auth="none"), store, package, ctx)
    assert calls.mutating == ["UpdateRoute", "UpdateRoute"]
    assert set(_route_auth().values()) == {"NONE"}
