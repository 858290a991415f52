"""The HTTP API: the API itself (CORS, tags), its AWS_PROXY integration (payload 2.0) to the
`live` alias, the routes of `ROUTE_KEYS`, and the auto-deployed `$default` stage with throttling.

APIs are found by name among all the account's APIs and adopted only with our tags; when several
of ours exist (e.g. after a lost CreateApi answer elsewhere) the oldest is used and the others are
named in a note. Deleting the API deletes its stage, routes and integration with it.
Its integrations, routes and stages are read at the same time (independent reads).
Both routes carry the env's `api.auth` as AuthorizationType (NONE, or AWS_IAM: only SigV4
requests from principals allowed execute-api:Invoke); a change is one UpdateRoute per route.
"""

from __future__ import annotations

from typing import Any

from mlops_cli.targets.aws.desired import (
    ROUTE_KEYS,
    STAGE,
    DesiredState,
    is_ours,
    normalize_cors,
    tags_missing,
)
from mlops_cli.targets.aws.fanout import together
from mlops_cli.targets.aws.model import Deletion, Fmt, Foreign, Plan, PlannedCall, Var
from mlops_cli.targets.aws.session import AwsContext


def find_apis(ctx: AwsContext, name: str) -> list[dict[str, Any]]:
    gw = ctx.client("apigatewayv2")
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"MaxResults": "100"}
        if token:
            kwargs["NextToken"] = token
        page = gw.get_apis(**kwargs)
        found.extend(a for a in page.get("Items", []) if a.get("Name") == name)
        token = page.get("NextToken")
        if not token:
            return found


def find(ctx: AwsContext, d: DesiredState) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(ours, oldest first; the others of the same name, which are not ours)."""
    apis = find_apis(ctx, d.api_name)
    ours = sorted(
        (a for a in apis if is_ours(d, a.get("Tags"))), key=lambda a: str(a.get("CreatedDate"))
    )
    return ours, [a for a in apis if not is_ours(d, a.get("Tags"))]


def _integration_params(d: DesiredState) -> dict[str, Any]:
    return d.integration()


def _stage_params(d: DesiredState, api_id: Any) -> dict[str, Any]:
    return {"ApiId": api_id, **d.stage(), "Tags": dict(d.tags)}


def plan(ctx: AwsContext, d: DesiredState, plan: Plan) -> None:
    """Plan the API; sets `plan.variables["api_id"]` when an API of ours exists."""
    resource = f"http api {d.api_name}"
    ours, others = find(ctx, d)
    for other in others:
        # API names are not unique: an API of our name without our tags (someone else's, or ours
        # after its tags were removed) is never adopted nor changed, and ours is made beside it.
        plan.observe(f"{resource} ({other['ApiId']})", "bystander", tags=other.get("Tags") or {})
        plan.notes.append(
            f"HTTP API {other['ApiId']} is named {d.api_name} but lacks our tags: it is left "
            "alone (this env uses its own API; delete that one yourself if it was ours)"
        )
    if len(ours) > 1:
        plan.notes.append(
            f"{len(ours)} HTTP APIs named {d.api_name} carry our tags; using {ours[0]['ApiId']}, "
            f"the oldest; delete the others: {', '.join(a['ApiId'] for a in ours[1:])}"
        )
    if not ours:
        plan.observe(resource, "missing")
        _plan_new(d, plan, resource)
        return
    api = ours[0]
    api_id = api["ApiId"]
    plan.variables["api_id"] = api_id
    plan.variables["api_endpoint"] = api.get("ApiEndpoint")
    plan.observe(resource, "found", api_id=api_id, url=api.get("ApiEndpoint"))
    _plan_api_settings(d, plan, resource, api)
    gw = ctx.client("apigatewayv2")
    integrations, routes, stages = together(
        lambda: gw.get_integrations(ApiId=api_id).get("Items", []),
        lambda: gw.get_routes(ApiId=api_id).get("Items", []),
        lambda: gw.get_stages(ApiId=api_id).get("Items", []),
    )
    _plan_integration(integrations, d, plan, resource, api_id)
    _plan_routes(routes, d, plan, resource, api_id)
    _plan_stage(stages, d, plan, resource, api_id)


def _plan_new(d: DesiredState, plan: Plan, resource: str) -> None:
    create = d.api()
    plan.add(
        PlannedCall(
            "apigatewayv2",
            "create_api",
            create,
            resource,
            "missing",
            store={"api_id": "ApiId", "api_endpoint": "ApiEndpoint"},
        )
    )
    plan.add(
        PlannedCall(
            "apigatewayv2",
            "create_integration",
            {"ApiId": Var("api_id"), **_integration_params(d)},
            f"{resource} integration",
            "missing",
            store={"integration_id": "IntegrationId"},
        )
    )
    for route in d.routes():
        plan.add(
            PlannedCall(
                "apigatewayv2",
                "create_route",
                {
                    "ApiId": Var("api_id"),
                    **route,
                    "Target": Fmt("integrations/{integration_id}"),
                },
                f"{resource} route {route['RouteKey']}",
                "missing",
            )
        )
    plan.add(
        PlannedCall(
            "apigatewayv2",
            "create_stage",
            _stage_params(d, Var("api_id")),
            f"{resource} stage {STAGE}",
            "missing",
        )
    )


def _plan_api_settings(d: DesiredState, plan: Plan, resource: str, api: dict[str, Any]) -> None:
    api_id = api["ApiId"]
    cors = d.cors()
    if normalize_cors(api.get("CorsConfiguration")) != normalize_cors(cors):
        if cors:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "update_api",
                    {"ApiId": api_id, "CorsConfiguration": cors},
                    resource,
                    "CORS differs",
                )
            )
        else:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "delete_cors_configuration",
                    {"ApiId": api_id},
                    resource,
                    "CORS no longer configured",
                )
            )
    missing = tags_missing(d.tags, api.get("Tags"))
    if missing:
        plan.add(
            PlannedCall(
                "apigatewayv2",
                "tag_resource",
                {"ResourceArn": d.api_arn(api_id), "Tags": missing},
                resource,
                f"tags {sorted(missing)} differ",
            )
        )


def _plan_integration(
    integrations: list[dict[str, Any]], d: DesiredState, plan: Plan, resource: str, api_id: str
) -> None:
    integration_params = _integration_params(d)
    good = [
        i
        for i in integrations
        if i.get("IntegrationType") == "AWS_PROXY"
        and i.get("IntegrationUri") == d.alias_arn
        and i.get("PayloadFormatVersion") == "2.0"
    ]
    if good:
        plan.variables["integration_id"] = good[0]["IntegrationId"]
    else:
        proxies = [i for i in integrations if i.get("IntegrationType") == "AWS_PROXY"]
        if proxies:
            plan.variables["integration_id"] = proxies[0]["IntegrationId"]
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "update_integration",
                    {
                        "ApiId": api_id,
                        "IntegrationId": proxies[0]["IntegrationId"],
                        **integration_params,
                    },
                    f"{resource} integration",
                    f"target {proxies[0].get('IntegrationUri')} payload "
                    f"{proxies[0].get('PayloadFormatVersion')} -> {d.alias_arn} payload 2.0",
                )
            )
        else:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "create_integration",
                    {"ApiId": api_id, **integration_params},
                    f"{resource} integration",
                    "missing",
                    store={"integration_id": "IntegrationId"},
                )
            )


def _plan_routes(
    routes: list[dict[str, Any]], d: DesiredState, plan: Plan, resource: str, api_id: str
) -> None:
    target = Fmt("integrations/{integration_id}")
    want_target = (
        f"integrations/{plan.variables['integration_id']}"
        if "integration_id" in plan.variables
        else None
    )
    for route in d.routes():
        key = route["RouteKey"]
        same = [r for r in routes if r.get("RouteKey") == key]
        if not same:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "create_route",
                    {"ApiId": api_id, **route, "Target": target},
                    f"{resource} route {key}",
                    "missing",
                )
            )
            continue
        first, *dupes = same
        changes: dict[str, Any] = {}
        reasons = []
        if first.get("Target") != want_target:
            changes["Target"] = target
            reasons.append(f"target {first.get('Target')} -> the Lambda integration")
        authorization = first.get("AuthorizationType") or "NONE"
        if authorization != d.route_authorization:
            changes["AuthorizationType"] = d.route_authorization
            reasons.append(f"authorization {authorization} -> {d.route_authorization}")
        if changes:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "update_route",
                    {"ApiId": api_id, "RouteId": first["RouteId"], **changes},
                    f"{resource} route {key}",
                    "; ".join(reasons),
                )
            )
        for dupe in dupes:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "delete_route",
                    {"ApiId": api_id, "RouteId": dupe["RouteId"]},
                    f"{resource} route {key}",
                    "duplicate route",
                )
            )
    for extra in routes:
        if extra.get("RouteKey") not in ROUTE_KEYS:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "delete_route",
                    {"ApiId": api_id, "RouteId": extra["RouteId"]},
                    f"{resource} route {extra.get('RouteKey')}",
                    "not in the config",
                )
            )


def _plan_stage(
    stages: list[dict[str, Any]], d: DesiredState, plan: Plan, resource: str, api_id: str
) -> None:
    stage = next((s for s in stages if s.get("StageName") == STAGE), None)
    if stage is None:
        plan.add(
            PlannedCall(
                "apigatewayv2",
                "create_stage",
                _stage_params(d, api_id),
                f"{resource} stage {STAGE}",
                "missing",
            )
        )
    else:
        settings = stage.get("DefaultRouteSettings") or {}
        diffs = []
        if float(settings.get("ThrottlingRateLimit") or 0) != d.throttle_rate:
            diffs.append(
                f"throttle rate {settings.get('ThrottlingRateLimit')} -> {d.throttle_rate}"
            )
        if int(settings.get("ThrottlingBurstLimit") or 0) != d.throttle_burst:
            diffs.append(
                f"throttle burst {settings.get('ThrottlingBurstLimit')} -> {d.throttle_burst}"
            )
        if not stage.get("AutoDeploy"):
            diffs.append("auto-deploy off -> on")
        if diffs:
            plan.add(
                PlannedCall(
                    "apigatewayv2",
                    "update_stage",
                    {
                        "ApiId": api_id,
                        "StageName": STAGE,
                        "AutoDeploy": True,
                        "DefaultRouteSettings": d.stage_route_settings(),
                    },
                    f"{resource} stage {STAGE}",
                    "; ".join(diffs),
                )
            )


def teardown(ctx: AwsContext, d: DesiredState, foreign: Foreign) -> list[Deletion]:
    ours, others = find(ctx, d)
    for other in others:
        foreign("http api", f"{d.api_name} ({other['ApiId']})", other.get("Tags"))
    gw = ctx.client("apigatewayv2")
    return [
        Deletion(
            "http api",
            f"{d.api_name} ({api['ApiId']}, with its stage, routes and integration)",
            lambda api_id=api["ApiId"]: gw.delete_api(ApiId=api_id),
        )
        for api in ours
    ]
