"""The `iris-mlops` command line: parse, call the core, render. Nothing else lives here."""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from mlops_cli import __version__, render
from mlops_cli.artifacts import ArtifactStore
from mlops_cli.console import (
    Reporter,
    begin_command,
    err,
    error,
    out,
    print_json,
    print_json_error,
)
from mlops_cli.errors import IrisError, UsageError

if TYPE_CHECKING:
    from mlops_cli.config import EnvConfig

# The same value as config.DEFAULT_ENV (a test keeps them equal). config.py imports pydantic and
# yaml, about half of the CLI's start-up: `--version`, `--help` and usage errors never need them.
DEFAULT_ENV = "local"

app = typer.Typer(
    name="iris-mlops",
    help="Train, evaluate, package and deploy an Iris classifier to AWS Lambda or a local "
    "emulator on 127.0.0.1 — one command per lifecycle step.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
config_app = typer.Typer(help="Inspect env configs (configs/<env>.yaml).", no_args_is_help=True)
app.add_typer(config_app, name="config")


@dataclass
class AppState:
    config_dir: str | None = None
    artifacts_dir: str | None = None

    @property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.artifacts_dir)


STATE = AppState()

EnvOpt = Annotated[
    str | None,
    typer.Option("--env", "-e", help="Env name: configs/<env>.yaml.", show_default=False),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout, for scripts.")
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model id or unique prefix (default: latest trained)."),
]
FlavorOpt = Annotated[
    str | None,
    typer.Option("--flavor", help="portable (pure Python, KBs) or sklearn (full scikit-learn)."),
]


ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="AWS profile (aws envs; overrides aws.profile).")
]
RegionOpt = Annotated[
    str | None, typer.Option("--region", help="AWS region (aws envs; overrides aws.region).")
]


def _aws(profile: str | None, region: str | None) -> dict[str, Any]:
    return {"aws.profile": profile, "aws.region": region}


def _version(value: bool) -> None:
    if value:
        out.print(f"iris-mlops {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    config_dir: Annotated[
        str | None,
        typer.Option("--config-dir", envvar="IRIS_MLOPS_CONFIG_DIR",
                     help="Folder of env configs. \\[default: ./configs]"),
    ] = None,
    artifacts_dir: Annotated[
        str | None,
        typer.Option("--artifacts-dir", envvar="IRIS_MLOPS_ARTIFACTS",
                     help="Folder for models, packages and deployment records. "
                     "\\[default: ./artifacts]"),
    ] = None,
) -> None:
    begin_command()
    STATE.config_dir = config_dir
    STATE.artifacts_dir = artifacts_dir


@contextlib.contextmanager
def _handled(as_json: bool) -> Iterator[None]:
    """Turn our errors into one line and an exit code; never show a traceback to users."""
    try:
        yield
    except IrisError as exc:
        _fail(str(exc), exc.exit_code, as_json, getattr(exc, "details", None))
    except KeyboardInterrupt:
        _fail("interrupted", 130, as_json)
    except typer.Exit:
        raise
    except Exception as exc:
        if os.environ.get("IRIS_MLOPS_DEBUG"):
            raise
        _fail(
            f"internal error ({type(exc).__name__}: {exc}). This is a bug in iris-mlops; rerun "
            "with IRIS_MLOPS_DEBUG=1 for the traceback and report it.",
            1,
            as_json,
        )


def _fail(message: str, code: int, as_json: bool, details: dict[str, Any] | None = None) -> None:
    if as_json:
        print_json_error(message, code, **(details or {}))
    error(message)
    raise typer.Exit(code)


def _cfg(env: str | None, overrides: dict[str, Any] | None = None) -> EnvConfig:
    from mlops_cli.config import load_env

    return load_env(env or DEFAULT_ENV, STATE.config_dir, overrides)


def _http_api_unreachable(cfg: EnvConfig) -> bool:
    """An aws env behind a custom endpoint (moto, LocalStack): its execute-api URL is not real,
    so requests go to the function directly."""
    if cfg.settings.target != "aws":
        return False
    from mlops_cli.targets.aws.session import resolve_endpoint

    return resolve_endpoint(cfg) is not None


def _endpoint_url(cfg: EnvConfig) -> str | None:
    from mlops_cli.targets.aws.session import resolve_endpoint

    return resolve_endpoint(cfg)


def _deployment_env(env: str | None, reporter: Reporter) -> str:
    """Commands acting on a deployment default to the env most recently deployed — and say
    "the most recent deploy" only while that deploy still stands (its record is there and, for
    a local env, its server runs)."""
    if env:
        return env
    last = STATE.store.last_env()
    chosen = last or DEFAULT_ENV
    if not last:
        why = "the default; nothing deployed yet"
    elif _record_stands(last):
        why = "the most recent deploy"
    else:
        why = "the env deployed last; that deployment no longer stands"
    reporter.info(f"[dim]using env [bold]{chosen}[/bold] ({why}); pass --env to choose[/dim]")
    return chosen


def _record_stands(env: str) -> bool:
    record = STATE.store.read_record(env)
    if not record:
        return False
    if record.get("target", "local") != "local":
        return True  # an aws record is a cache; `status` asks AWS itself
    from mlops_cli.targets.local.process import record_server_alive

    return record_server_alive(record)


def _no_endpoint_message(cfg: EnvConfig) -> str:
    """Why there is no endpoint to call: never deployed, or deployed and no longer running."""
    if STATE.store.read_record(cfg.env) is None:
        return (f"nothing is deployed for env {cfg.env!r}: run `iris-mlops deploy --env "
                f"{cfg.env}` first")
    what = ("its server was stopped or killed" if cfg.settings.target == "local"
            else "its HTTP API is gone")
    return (f"the endpoint of env {cfg.env!r} is not running ({what}): run `iris-mlops deploy "
            f"--env {cfg.env}` again")


# --------------------------------------------------------------------------- train / evaluate
@app.command()
def train(
    env: EnvOpt = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides training.seed).")] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", "-k", metavar="KIND",
                     help="Model kind: logistic_regression, decision_tree, random_forest, "
                     "gradient_boosting (overrides model.kind)."),
    ] = None,
    old_model: Annotated[
        str | None,
        typer.Option("--model", hidden=True, help="Deprecated spelling of --kind."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train the env's model on Iris; writes artifacts/models/<model_id>/ and points latest at it.

    The same seed and config give a byte-identical model.joblib and the same model_id.
    """
    with _handled(as_json):
        from mlops_cli.training.train import train as run_train

        # `--model` names a model id on every other command; on train it once meant the kind.
        if old_model is not None:
            if kind is not None:
                raise UsageError("give --kind only (--model is its deprecated spelling)")
            Reporter(quiet=as_json).warn("`train --model KIND` is deprecated: use --kind KIND")
        model = kind or old_model

        overrides: dict[str, Any] = {"training.seed": seed, "model.kind": model}
        if model:
            overrides["model.params"] = {}  # the file's params belong to the file's kind
            base = _cfg(env)
            if base.settings.model.kind == model:
                overrides.pop("model.params")
        cfg = _cfg(env, overrides)
        result = run_train(cfg, STATE.store, Reporter(quiet=as_json))
        print_json(result) if as_json else render.train_result(result)


@app.command()
def evaluate(env: EnvOpt = None, model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """Score a model on the held-out split, cross-validate it, and apply the env's quality gate.

    Writes evaluation.json next to the model; exits 1 when the gate is missed.
    """
    with _handled(as_json):
        from mlops_cli.training.evaluate import evaluate as run_evaluate

        cfg = _cfg(env)
        report = run_evaluate(cfg, STATE.store, Reporter(quiet=as_json), model)
        print_json(report) if as_json else render.evaluation(report)
        if not report["passed"]:
            if not as_json:
                error(f"model {report['model_id']} fails the quality gate of env {cfg.env!r}")
            raise typer.Exit(1)


# --------------------------------------------------------------------------- package
@app.command()
def package(
    env: EnvOpt = None,
    model: ModelOpt = None,
    flavor: FlavorOpt = None,
    force: Annotated[bool, typer.Option(help="Rebuild even when an identical zip exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build the reproducible Lambda zip for the env's runtime and architecture, with a size report.

    Refuses a model that was not evaluated or misses the env's quality gate.
    """
    with _handled(as_json):
        from mlops_cli.packaging.build import PackageTooLarge, build_package

        cfg = _cfg(env)
        try:
            report = build_package(cfg, STATE.store, Reporter(quiet=as_json), model, flavor, force)
        except PackageTooLarge as exc:
            if not as_json:
                render.resources(
                    [{"entry": k, "bytes": f"{v:,}"} for k, v in list(exc.breakdown.items())[:10]],
                    "Largest top-level entries",
                )
            raise
        data = report.to_dict()
        print_json(data) if as_json else render.package_report(data)


def _check_lambda_limits(cfg: EnvConfig, reporter: Reporter) -> None:
    """aws envs: Lambda's fixed limits, before anything is built or called (exit 2 otherwise)."""
    if cfg.settings.target != "aws":
        return
    from mlops_cli.targets.aws.limits import require_within_limits

    for warning in require_within_limits(cfg).warnings:
        reporter.warn(warning)


def _ensure_package(cfg: EnvConfig, model: str | None, flavor: str | None, reporter: Reporter):
    from mlops_cli.packaging.build import build_package

    report = build_package(cfg, STATE.store, reporter, model, flavor)
    verb = "Reusing" if report.reused else "Built"
    reporter.done(
        f"{verb} package {report.info.path.name} ({render.size_of(report.info.size_bytes)} "
        "zipped)"
    )
    return report.info


# --------------------------------------------------------------------------- deploy
@app.command()
def deploy(
    env: EnvOpt = None,
    model: ModelOpt = None,
    flavor: FlavorOpt = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="Show the calls deploy would make; make none.")
    ] = False,
    smoke_test: Annotated[
        bool,
        typer.Option("--smoke-test/--no-smoke-test",
                     help="Invoke the new version with known rows before moving `live` (aws)."),
    ] = True,
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="aws: all_at_once, or canary (route --canary-percent "
                     "to the new version for --bake, roll back on errors) [default: "
                     "deploy.strategy]."),
    ] = None,
    canary_percent: Annotated[
        float | None,
        typer.Option("--canary-percent", help="Share of traffic the new version gets during "
                     "the bake [default: deploy.canary_percent, 10]."),
    ] = None,
    bake: Annotated[
        str | None,
        typer.Option("--bake", help="How long to watch the canary: 30s, 5m, 1h [default: "
                     "deploy.bake, 5m]."),
    ] = None,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or update, idempotently, everything the endpoint needs, and print its URL.

    local envs: start the zip on 127.0.0.1 in the background. aws envs: IAM role, log group,
    Lambda function + `live` alias, HTTP API — planned from what exists, then applied.
    """
    with _handled(as_json):
        from mlops_cli.targets import target_module

        reporter = Reporter(quiet=as_json)
        rollout = {"deploy.strategy": strategy, "deploy.canary_percent": canary_percent,
                   "deploy.bake": bake}
        cfg = _cfg(env, {**_aws(profile, region), **rollout})
        target = target_module(cfg)
        if cfg.settings.target != "aws" and cfg.settings.deploy.strategy == "canary":
            reporter.warn("the canary strategy applies to aws envs (Lambda alias routing); "
                          f"the local env {cfg.env!r} is deployed all at once")
        if plan and cfg.settings.target != "aws":
            raise UsageError("--plan applies to aws envs; a local deploy changes nothing "
                             "outside this machine")
        _check_lambda_limits(cfg, reporter)
        aws_ctx = None
        if cfg.settings.target == "aws":
            # fail fast: credentials and region before anything is built
            from mlops_cli.targets.aws.session import connect

            aws_ctx = connect(cfg)
        emulated = _http_api_unreachable(cfg)
        info = _ensure_package(cfg, model, flavor, reporter)
        with STATE.store.lock(cfg.env):
            if cfg.settings.target == "aws":
                try:
                    result = target.deploy(
                        cfg, STATE.store, info, reporter, plan_only=plan, smoke_test=smoke_test,
                        ctx=aws_ctx,
                    )
                except IrisError as exc:
                    if emulated and smoke_test and str(exc).startswith("smoke test"):
                        raise type(exc)(
                            f"{exc}. Against a custom endpoint such as moto, whose Lambda runs "
                            "no code, deploy with --no-smoke-test", **exc.details
                        ) from None
                    raise
            else:
                result = target.deploy(cfg, STATE.store, info, reporter)
        result.setdefault("auth", cfg.settings.api.auth)
        if as_json:
            print_json(result)
            return
        if cfg.settings.target == "aws":
            render.plan(result.get("plan", []), f"Plan for env {cfg.env}")
            if plan:
                return
            if result.get("up_to_date"):
                out.print(f"[green]env {cfg.env} is up to date[/green] — no changes made")
        elif not result.get("changed", True):
            out.print(f"[green]env {cfg.env} is up to date[/green] — same package already running")
        url = result.get("invoke_url") or str(result.get("url")).rstrip("/") + "/predict"
        out.print(f"[bold]endpoint[/bold] {escape(url)}")
        out.print(_auth_line(cfg))
        if emulated:
            out.print(f"[dim]custom AWS endpoint {escape(str(_endpoint_url(cfg)))}: this URL is "
                      "not served there, and an emulated Lambda may not run the model[/dim]")
        else:
            out.print(f"try: iris-mlops invoke 5.1 3.5 1.4 0.2 --env {cfg.env}")


def _auth_line(cfg: EnvConfig) -> str:
    """What `deploy` says about who may call the endpoint (api.auth)."""
    if cfg.settings.api.auth == "iam":
        from mlops_cli.signing import signing_region

        return (
            "[bold]auth[/bold] iam — only SigV4-signed requests are served (service "
            f"execute-api, region {signing_region(cfg)}); `invoke` signs with your AWS "
            "credentials"
        )
    return (
        "[bold]auth[/bold] [yellow]none — the endpoint is public: anyone with the URL can call "
        "it[/yellow] (set api.auth: iam to require signed requests)"
    )


# --------------------------------------------------------------------------- invoke
@app.command(context_settings={"ignore_unknown_options": True})
def invoke(
    features: Annotated[
        list[str] | None,
        typer.Argument(help="Four numbers: sepal length, sepal width, petal length, petal width "
                       "(cm)."),
    ] = None,
    env: EnvOpt = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="CSV of rows (4 numbers each) to send "
                                  "as one batch.")
    ] = None,
    direct: Annotated[
        bool, typer.Option("--direct", help="aws envs: invoke the Lambda alias with boto3, "
                           "not over HTTP.")
    ] = False,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a prediction request to the deployed endpoint; show class, probabilities, latency.

    Defaults to the env of the most recent deploy.
    """
    with _handled(as_json):
        from mlops_cli import invoke as core
        from mlops_cli.targets import target_module

        reporter = Reporter(quiet=as_json)
        if file is not None:
            if features:
                raise UsageError("give either four numbers or --file, not both")
            payload: dict[str, Any] = {"instances": core.read_rows(file)}
        else:
            payload = {"features": core.parse_features(features or [])}
        cfg = _cfg(_deployment_env(env, reporter), _aws(profile, region))
        target = target_module(cfg)
        if cfg.settings.target == "aws" and (direct or _http_api_unreachable(cfg)):
            if not direct:
                reporter.info("[dim]custom AWS endpoint configured: invoking the function "
                              "directly (its HTTP API is not reachable)[/dim]")
            import time

            started = time.perf_counter()
            body = target.invoke_direct(cfg, STATE.store, payload)
            elapsed, url, status = (time.perf_counter() - started) * 1000, "lambda:live", 200
            if isinstance(body, dict) and "error" in body:
                internal = isinstance(body["error"], dict) and body["error"].get(
                    "code") == "internal_error"
                status = 500 if internal else 400
        else:
            base = target.endpoint(cfg, STATE.store)
            if not base:
                raise IrisError(_no_endpoint_message(cfg))
            from mlops_cli.signing import signer_for

            url = base.rstrip("/") + "/predict"
            status, body, elapsed = core.post_json(url, payload, sign=signer_for(cfg))
        if status == 403 and isinstance(body, dict) and body.get("message") == "Forbidden":
            raise IrisError(_forbidden_hint(cfg), status=status, response=body)
        core.require_prediction(status, body)
        if as_json:
            print_json(body)
        else:
            render.prediction(body, elapsed, url)


def _forbidden_hint(cfg: EnvConfig) -> str:
    if cfg.settings.api.auth != "iam":
        return (
            f"the endpoint answered 403 Forbidden: it requires SigV4-signed requests, but env "
            f"{cfg.env!r} has api.auth: none. Set api.auth: iam in its config (then `invoke` "
            "signs), or deploy it again"
        )
    where = (
        "the local endpoint accepts only the credentials in effect when it was deployed: run "
        f"`iris-mlops deploy --env {cfg.env}` again to hand it the current ones"
        if cfg.settings.target == "local"
        else "the caller needs execute-api:Invoke on the API's routes (see the README's "
        "'Calling a protected endpoint')"
    )
    return (
        f"the endpoint answered 403 Forbidden to a request signed with your AWS credentials: "
        f"{where}"
    )


# --------------------------------------------------------------------------- teardown
@app.command()
def teardown(
    env: EnvOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Allow tearing down a protected env (prod).")
    ] = False,
    plan: Annotated[bool, typer.Option("--plan", help="Show what would be deleted.")] = False,
    include_bucket: Annotated[
        bool, typer.Option("--include-bucket", help="aws: also delete the artifact bucket.")
    ] = False,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete exactly what deploy created for the env — nothing else. Safe to run twice."""
    with _handled(as_json):
        from mlops_cli.targets import target_module

        reporter = Reporter(quiet=as_json)
        cfg = _cfg(env, _aws(profile, region))
        target = target_module(cfg)
        if cfg.settings.target == "aws":
            target.check_teardown_allowed(cfg, force)
            if not plan and not yes:
                if not sys.stdin.isatty():
                    raise UsageError(
                        f"teardown of aws env {cfg.env!r} deletes cloud resources: pass --yes "
                        "to confirm (no terminal to ask on)"
                    )
                if not typer.confirm(f"Delete every iris-mlops resource of env {cfg.env!r}?"):
                    raise UsageError("teardown cancelled")
            with STATE.store.lock(cfg.env):
                result = target.teardown(
                    cfg, STATE.store, reporter, plan_only=plan, include_bucket=include_bucket
                )
        else:
            with STATE.store.lock(cfg.env):
                result = target.teardown(cfg, STATE.store, reporter)
        if as_json:
            print_json(result)
            return
        if cfg.settings.target == "aws":
            if plan:
                render.plan(result.get("plan", []), f"Teardown plan for env {cfg.env}")
                return
            render.resources(result.get("deleted", []), f"Deleted from env {cfg.env}")
            for foreign in result.get("skipped_foreign", []):
                out.print(f"[yellow]left alone (not ours):[/yellow] {foreign}")
            if not result.get("deleted"):
                out.print(f"nothing of env {cfg.env} was left to delete")
        elif result.get("stopped"):
            out.print(f"stopped the local endpoint of env {cfg.env} (pid {result.get('pid')})")
        else:
            out.print(f"nothing was running for env {cfg.env}")


# ------------------------------------------------------------------ status / logs / rollback
@app.command()
def status(
    env: EnvOpt = None, profile: ProfileOpt = None, region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What is deployed for the env: URL, model, package, health and (aws) drift."""
    with _handled(as_json):
        from mlops_cli.targets import target_module

        reporter = Reporter(quiet=as_json)
        cfg = _cfg(_deployment_env(env, reporter), _aws(profile, region))
        result = target_module(cfg).status(cfg, STATE.store)
        if as_json:
            print_json(result)
        else:
            render.key_values(f"Status of env {cfg.env}", result)
            if isinstance(result.get("resources"), list):
                render.resource_states(result["resources"])
            labels = {"missing": "missing", "foreign": "not ours", "drift": "drift",
                      "notes": "note"}
            for key, label in labels.items():
                for item in result.get(key) or []:
                    text = render.plan_line(item) if isinstance(item, dict) else str(item)
                    out.print(f"[yellow]{label}:[/yellow] {escape(text)}")
            if result.get("canary"):
                c = result["canary"]
                out.print(
                    f"[yellow]canary in place:[/yellow] live serves version "
                    f"{c['stable_version']} and routes {c['weight_percent']:g}% to version "
                    f"{c['canary_version']} since {c['since'] or 'an unknown time'} (a deploy "
                    "stopped during its bake); the next `deploy` or `rollback` resolves it"
                )
        if result.get("deployed") and result.get("running") is False:
            message = (f"the endpoint of env {cfg.env!r} is not running (its server was stopped "
                       f"or killed): run `iris-mlops deploy --env {cfg.env}` again")
            if as_json:
                error(message)
                raise typer.Exit(1)
            raise IrisError(message)


@app.command()
def logs(
    env: EnvOpt = None,
    since: Annotated[str, typer.Option(help="How far back: 30s, 10m, 2h, 1d.")] = "10m",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the function's log lines (aws: its CloudWatch log group; local: the server log).

    One record per line, never wrapped; --json prints JSON Lines (one object per record).
    """
    with _handled(as_json):
        import json as _json
        from datetime import UTC, datetime

        from mlops_cli.targets import target_module

        reporter = Reporter(quiet=as_json)
        cfg = _cfg(_deployment_env(env, reporter), _aws(profile, region))
        shown = 0

        def sink(event: dict[str, Any]) -> None:
            # Written as is, never through Rich: a record stays one line, byte for byte (tabs
            # and all), however narrow the terminal or wherever stdout goes.
            nonlocal shown
            shown += 1
            if as_json:
                line = _json.dumps(event)
            else:
                stamp = event.get("timestamp")
                when = (
                    datetime.fromtimestamp(stamp / 1000, UTC).strftime("%H:%M:%S")
                    if isinstance(stamp, (int, float)) else ""
                )
                line = f"{when} {event.get('message', '')}"
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

        target = target_module(cfg)
        if not hasattr(target, "logs"):
            raise UsageError(f"the {cfg.settings.target} target has no logs command")
        target.logs(cfg, STATE.store, since, follow, sink)
        if not shown:
            # stderr, so stdout stays empty (or valid JSON Lines) for scripts
            err.print(f"no log lines since {since} for env {cfg.env}", markup=False)


@app.command()
def rollback(
    env: EnvOpt = None,
    to: Annotated[str | None, typer.Option("--to", help="Version to move `live` to "
                                           "(default: the previous one).")] = None,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move the `live` alias back to the previous (or a given) published version (aws envs)."""
    with _handled(as_json):
        from mlops_cli.targets import target_module

        reporter = Reporter(quiet=as_json)
        cfg = _cfg(_deployment_env(env, reporter), _aws(profile, region))
        if cfg.settings.target != "aws":
            raise UsageError(
                f"env {cfg.env!r} is a local env: redeploy another model with "
                "`iris-mlops deploy --model ID` instead of rollback"
            )
        result = target_module(cfg).rollback(cfg, STATE.store, reporter, to)
        if as_json:
            print_json(result)
        elif result.get("resolved_canary") and result.get("from") == result.get("to"):
            left = result["resolved_canary"]
            out.print(f"canary of version {left['canary_version']} cleared: live serves version "
                      f"{result.get('to')} only")
        else:
            out.print(f"live moved from version {result.get('from')} to {result.get('to')}")
            kept = ", ".join(
                f"{v['version']} ({v.get('model_id') or 'model unknown'})"
                + (" <- live" if v["version"] == result.get("to") else "")
                for v in result.get("versions_kept", [])
            )
            if kept:
                out.print(f"versions kept (lambda.keep_versions = {result.get('keep_versions')}): "
                          f"{kept}")


# --------------------------------------------------------------------------- metrics
@app.command()
def metrics(
    env: EnvOpt = None,
    since: Annotated[str, typer.Option(help="Window: 30m, 1h, 6h, 1d.")] = "1h",
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What the endpoint served: requests, rows per class, latency p50/p99, errors, sparklines.

    Rows per class are shown beside the training split's class mix. aws: CloudWatch (the
    handler's metrics, Lambda's and the HTTP API's); local: the server log.
    """
    with _handled(as_json):
        from mlops_cli.metrics.view import render as render_metrics
        from mlops_cli.targets import target_module

        reporter = Reporter(quiet=as_json)
        cfg = _cfg(_deployment_env(env, reporter), _aws(profile, region))
        result = target_module(cfg).metrics(cfg, STATE.store, since)
        print_json(result) if as_json else render_metrics(result)


# --------------------------------------------------------------------------- serve / up
@app.command()
def serve(
    env: EnvOpt = None,
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (0 = any free).")] = None,
    model: ModelOpt = None,
    flavor: FlavorOpt = None,
) -> None:
    """Run the local endpoint in the foreground with a request log, like `sam local start-api`.

    Stops cleanly on Ctrl-C.
    """
    with _handled(False):
        from mlops_cli.targets import local

        reporter = Reporter()
        cfg = _cfg(env)
        info = _ensure_package(cfg, model, flavor, reporter)
        local.serve(cfg, STATE.store, info, reporter, port)


@app.command()
def up(
    env: EnvOpt = None, profile: ProfileOpt = None, region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The one-command path: train (if no model yet), evaluate, package, deploy, invoke once."""
    with _handled(as_json):
        from mlops_cli import invoke as core
        from mlops_cli.targets import target_module
        from mlops_cli.training.evaluate import evaluate as run_evaluate
        from mlops_cli.training.train import train as run_train

        reporter = Reporter(quiet=as_json)
        cfg = _cfg(env, _aws(profile, region))
        _check_lambda_limits(cfg, reporter)
        store = STATE.store
        summary: dict[str, Any] = {"env": cfg.env}
        if store.latest_model_id() is None:
            summary["train"] = run_train(cfg, store, reporter)
        report = run_evaluate(cfg, store, reporter)
        summary["evaluate"] = {k: report[k] for k in ("model_id", "accuracy", "f1_macro", "passed")}
        if not report["passed"]:
            raise IrisError(f"model {report['model_id']} fails the quality gate: "
                            + "; ".join(report["failures"]))
        info = _ensure_package(cfg, None, None, reporter)
        summary["package"] = info.to_dict()
        with store.lock(cfg.env):
            result = target_module(cfg).deploy(cfg, store, info, reporter)
        summary["deploy"] = result
        url = result.get("url")
        example = [5.1, 3.5, 1.4, 0.2]
        if _http_api_unreachable(cfg):
            body = target_module(cfg).invoke_direct(cfg, store, {"features": example})
            elapsed = 0.0
        else:
            from mlops_cli.signing import signer_for

            _, body, elapsed = core.post_json(str(url).rstrip("/") + "/predict",
                                              {"features": example}, sign=signer_for(cfg))
        summary["invoke"] = body
        if as_json:
            print_json(summary)
        else:
            predict_url = result.get("invoke_url") or str(url).rstrip("/") + "/predict"
            out.print(f"[bold]endpoint[/bold] {escape(str(predict_url))}")
            render.prediction(body, elapsed, str(predict_url))


# --------------------------------------------------------------------------- export
@app.command()
def export(
    env: EnvOpt = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="cloudformation (plain AWS::* resources) or sam "
                     "(AWS::Serverless::Function with AutoPublishAlias, "
                     "AWS::Serverless::HttpApi)."),
    ] = "cloudformation",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the template to this file (default: stdout)."),
    ] = None,
    code_bucket: Annotated[
        str | None,
        typer.Option("--code-bucket", help="Upload the env's zip to this bucket (same region, "
                     "your account), keyed by its sha256, and point the template at it."),
    ] = None,
    code_uri: Annotated[
        str | None,
        typer.Option("--code-uri", help="s3://BUCKET/KEY of the zip, uploaded by you: no AWS "
                     "call, no credentials needed."),
    ] = None,
    model: ModelOpt = None,
    flavor: FlavorOpt = None,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the env's AWS resources as a CloudFormation or AWS SAM template (JSON).

    The template holds what `deploy` builds for the env, from the same desired state: role, log
    group, function, version + alias `live`, HTTP API, stage, permissions. Deploy it with
    `aws cloudformation deploy --capabilities CAPABILITY_NAMED_IAM` or `sam deploy`.
    """
    with _handled(as_json):
        from mlops_cli.targets.aws.export import check_request
        from mlops_cli.targets.aws.export import export as run_export

        reporter = Reporter(quiet=as_json)
        cfg = _cfg(env, _aws(profile, region))
        check_request(cfg, fmt, code_bucket, code_uri)
        info = _ensure_package(cfg, model, flavor, reporter)
        text, summary = run_export(
            cfg, info, reporter, fmt=fmt, code_bucket=code_bucket, code_uri=code_uri,
            output=output,
        )
        if as_json:
            if output is None:
                import json as _json

                summary["template"] = _json.loads(text)
            print_json(summary)
        elif output is None:
            sys.stdout.write(text)
        else:
            render.resources(summary["resources"], f"{fmt} template of env {cfg.env}")
            out.print(f"[bold]template[/bold] {output}  [dim]code {summary['code_uri']}[/dim]")
            how = (
                f"sam deploy --template-file {output} --stack-name {cfg.function_name} "
                "--capabilities CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND"
                if fmt == "sam" else
                f"aws cloudformation deploy --template-file {output} --stack-name "
                f"{cfg.function_name} --capabilities CAPABILITY_NAMED_IAM"
            )
            out.print(f"deploy it: {how}", soft_wrap=True)  # one line, to copy


# --------------------------------------------------------------------------- config
@config_app.command("show")
def config_show(env: EnvOpt = None, as_json: JsonOpt = False) -> None:
    """Print the env's resolved config (file values over defaults)."""
    with _handled(as_json):
        import yaml

        cfg = _cfg(env)
        data = cfg.to_dict()
        if as_json:
            print_json(data)
            return
        source = str(cfg.path) if cfg.path else "built-in defaults (no file)"
        out.print(f"[bold]env[/bold] {cfg.env}  [dim]from {source}[/dim]")
        out.print(yaml.safe_dump(data, sort_keys=False), markup=False, highlight=False)


@config_app.command("list")
def config_list(as_json: JsonOpt = False) -> None:
    """List the envs found in the configs folder."""
    with _handled(as_json):
        from mlops_cli.config import available_envs, config_dir

        envs = available_envs(config_dir(STATE.config_dir))
        if DEFAULT_ENV not in envs:
            envs.append(DEFAULT_ENV)
        if as_json:
            print_json({"envs": envs})
        else:
            for name in envs:
                out.print(name)


def readable_metavars(command: Any) -> Any:
    """Name each value in --help (`--env ENV`) instead of the Python type recent Typer prints
    (`<str>`, `<bool>`), and show nothing for flags. Applied to the whole command tree, so
    commands and options added later get it without declaring a metavar."""
    params = list(command.params)
    with contextlib.suppress(Exception):  # --help itself is made on demand (and cached)
        params.append(command.get_help_option(command.context_class(command)))
    for param in params:
        if param is None or param.metavar is not None or not param.name:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
        else:
            argument = param.param_type_name == "argument"
            many = argument and param.nargs != 1
            param.metavar = param.name.upper() + ("..." if many else "")
            if argument and hasattr(param, "display_type_rich"):
                param.display_type_rich = lambda ctx: None  # its type column ignores metavar
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)
    return command


def unwrapped_help(command: Any) -> Any:
    """Let Rich wrap each help paragraph to the terminal: in "rich" markup mode Typer keeps the
    docstring's own line breaks, which made ragged 80-column text on any other width. Blank
    lines still separate paragraphs; a paragraph starting with \\b keeps its lines."""
    if command.help:
        paragraphs = inspect.cleandoc(command.help).split("\n\n")
        command.help = "\n\n".join(
            p if p.startswith("\b") else " ".join(p.split("\n")) for p in paragraphs
        )
    for sub in getattr(command, "commands", {}).values():
        unwrapped_help(sub)
    return command


def main() -> None:
    from mlops_cli.startup import collect_cycles_after_startup

    collect_cycles_after_startup()
    command = unwrapped_help(readable_metavars(typer.main.get_command(app)))
    command(prog_name="iris-mlops")


if __name__ == "__main__":
    main()
