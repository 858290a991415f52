"""Figure 4 — deploy calls: AWS API calls per lifecycle step against a moto server, split into
read-only (Get/List/Describe/Head) and mutating.

The aws target runs in-process with `AWS_ENDPOINT_URL` pointing at a `ThreadedMotoServer` on
127.0.0.1. Calls are counted with a botocore `before-call` hook on every session the target
creates (its `session.connect` builds `boto3.Session`), so retries of one call count once and
waiters' polls count as the read-only calls they are. The deploy's post-publish smoke test is off
(moto does not run Lambda code), as with `deploy --no-smoke-test`.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import types
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

from benchmarks.common import Figure, Row, Unavailable
from benchmarks.workspace import Workspace

READ_PREFIXES = ("Get", "List", "Describe", "Head")
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


class CallCounter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def hook(self, event_name: str, **_: Any) -> None:
        # event_name is "before-call.<service>.<Operation>"
        _, service, operation = event_name.split(".", 2)
        self.calls.append((service, operation))

    def take(self) -> dict[str, Any]:
        calls, self.calls = self.calls, []
        reads = [c for c in calls if c[1].startswith(READ_PREFIXES)]
        writes = [c for c in calls if not c[1].startswith(READ_PREFIXES)]
        return {
            "total": len(calls),
            "read_only": len(reads),
            "mutating": len(writes),
            "mutating_calls": [f"{s}:{o}" for s, o in writes],
            "read_only_calls": dict(Counter(f"{s}:{o}" for s, o in reads)),
        }


@contextlib.contextmanager
def _environ(values: dict[str, str], drop: tuple[str, ...]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in (*values, *drop)}
    try:
        for k in drop:
            os.environ.pop(k, None)
        os.environ.update(values)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _counted_sessions(counter: CallCounter) -> Iterator[None]:
    """Every boto3.Session the aws target makes gets the counting hook before any client."""
    import boto3

    from mlops_cli.targets.aws import session as session_mod

    real = session_mod.boto3

    def make_session(*args: Any, **kwargs: Any) -> Any:
        s = boto3.Session(*args, **kwargs)
        s.events.register("before-call", counter.hook)
        return s

    session_mod.boto3 = types.SimpleNamespace(Session=make_session)  # type: ignore[assignment]
    try:
        yield
    finally:
        session_mod.boto3 = real


def _moto_server() -> tuple[Any, str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise Unavailable(f"moto is not installed ({exc})") from None
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per AWS call
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    request = urllib.request.Request(
        f"{url}/moto-api/config", data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"content-type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
        response.read()
    return server, url


def run(ws: Workspace) -> Figure:
    fig = Figure("deploy_calls", "Deploy calls against moto: read-only vs mutating")
    steps = [("first deploy", None), ("no-change redeploy", None),
             ("one-field change (lambda.memory_mb)", {"lambda.memory_mb": 1024}),
             ("teardown", None)]
    try:
        from mlops_cli.targets.aws import deploy, teardown

        info = ws.package("portable", env="dev").info
        server, url = _moto_server()
    except Exception as exc:
        status = f"unavailable: {exc}"
        fig.status = status
        fig.rows = [Row.missing(name, status, "calls") for name, _ in steps]
        return fig
    counter = CallCounter()
    kwargs: dict[str, Any] = {"smoke_test": False}
    if "sleep" in inspect.signature(deploy).parameters:
        kwargs["sleep"] = lambda _s: None
    results: dict[str, dict[str, Any]] = {}
    try:
        with _environ({**FAKE_ENV, "AWS_ENDPOINT_URL": url},
                      ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")), _counted_sessions(counter):
            for name, overrides in steps:
                cfg = ws.cfg("dev", overrides)
                try:
                    if name == "teardown":
                        teardown(cfg, ws.store, ws.reporter())
                    else:
                        deploy(cfg, ws.store, info, ws.reporter(), **kwargs)
                except Exception as exc:
                    results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                    counter.take()
                    break
                results[name] = counter.take()
    finally:
        server.stop()
    for name, _ in steps:
        got = results.get(name)
        if got is None or "error" in got:
            reason = got["error"] if got else "not reached: an earlier step failed"
            fig.rows.append(Row.missing(name, f"unavailable: {reason[:300]}", "calls"))
            continue
        row = Row(f"{name} ({got['read_only']} read-only + {got['mutating']} mutating)", "calls",
                  float(got["total"]), n=1, extra=got)
        if name == "first deploy":
            row.check("≤ 25 calls in all", got["total"] <= 25)
        elif name == "no-change redeploy":
            row.check("0 mutating", got["mutating"] == 0)
        fig.rows.append(row)
        if got["mutating_calls"]:
            fig.notes.append(f"{name} mutating: {', '.join(got['mutating_calls'])}")
    fig.notes.append("counts include sts:GetCallerIdentity made by each command's connect()")
    return fig
