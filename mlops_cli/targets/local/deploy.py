"""The `local` target's lifecycle: deploy (detached server), teardown, status, serve, endpoint.

The deployment record is a cache of what was started (pid, URL, package); the truth is the
process table, so every reader checks the recorded pid is still our server before trusting it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import mlops_cli
from mlops_cli.artifacts import cache_dir, sha256_file
from mlops_cli.errors import IrisError, UsageError
from mlops_cli.interpreters import Interpreter, current_interpreter, find_interpreter
from mlops_cli.targets.local.process import record_server_alive, stop_group
from mlops_cli.targets.local.ric import ensure_client
from mlops_cli.targets.local.spec import SERVER_MODULE, ServerSpec
from mlops_cli.targets.local.unpack import unpack

if TYPE_CHECKING:
    from mlops_cli.artifacts import ArtifactStore
    from mlops_cli.config import EnvConfig
    from mlops_cli.console import Reporter
    from mlops_cli.packaging.result import PackageInfo
    from mlops_cli.signing import Signer

START_TIMEOUT_S = 30.0
HEALTH_TIMEOUT_S = 5.0
STOP_GRACE_S = 5.0
TARGET = "local"


# helpers ------------------------------------------------------------------------------------
def unpack_dir() -> Path:
    return cache_dir() / "local"


def log_path(cfg: EnvConfig, store: ArtifactStore) -> Path:
    return (store.deployments_dir / f"{cfg.env}.log").absolute()


def _prepare(package: PackageInfo, reporter: Reporter) -> Path:
    if not package.path.is_file():
        raise IrisError(f"package {package.path} not found: run `iris-mlops package` first")
    with reporter.step(f"Unpacking {package.path.name}"):
        actual = sha256_file(package.path)
        if actual != package.sha256:
            raise IrisError(
                f"{package.path} changed since it was built (sha256 {actual[:12]}…, expected "
                f"{package.sha256[:12]}…): run `iris-mlops package` again"
            )
        return unpack(package.path, package.sha256, unpack_dir()).absolute()


def resolve_python(cfg: EnvConfig, runtime: str, reporter: Reporter) -> Interpreter:
    """The runtime's interpreter, or the current one with a warning that names the runtime."""
    configured = cfg.settings.local.python
    found = find_interpreter(runtime, configured)
    if found is not None:
        return found
    current = current_interpreter()
    wanted = runtime.removeprefix("python")
    why = (
        f"local.python {configured!r} is not a working Python {wanted}"
        if configured
        else f"no Python {wanted} interpreter was found (PATH, pyenv)"
    )
    reporter.warn(
        f"{why}: running the {runtime} package with Python {current.version} ({current.path}), "
        f"which may behave differently from Lambda's {runtime}. Install Python {wanted} or set "
        "local.python in the env config."
    )
    return current


def build_spec(
    cfg: EnvConfig, package: PackageInfo, root: Path, python: Interpreter, port: int,
    signer: Signer | None = None,
    runtime_client: Path | None = None,
) -> ServerSpec:
    """`signer` (api.auth: iam) holds the credentials the server will verify signatures with."""
    from mlops_cli.signing import LOCAL_DEFAULT_REGION

    s = cfg.settings
    return ServerSpec(
        env=cfg.env,
        root=str(root),
        handler=package.handler,
        python=python.path,
        runtime=package.runtime,
        port=port,
        workers=s.local.workers,
        timeout_s=s.lambda_.timeout_s,
        memory_mb=s.lambda_.memory_mb,
        function_name=cfg.function_name,
        region=s.aws.region or LOCAL_DEFAULT_REGION,
        environment=dict(s.lambda_.environment),
        auth=s.api.auth,
        credentials=signer.credentials_dict() if signer is not None else None,
        runtime_client=str(runtime_client) if runtime_client is not None else "",
        python_version=python.version,
    )


def http_get(
    url: str, path: str, timeout: float, sign: Signer | None = None
) -> tuple[int, bytes] | None:
    """GET on loopback only: a record is a file anyone could edit, not a reason to go online.
    `sign`: SigV4-sign it, for an endpoint deployed with api.auth: iam."""
    parts = urlsplit(url)
    if parts.hostname != "127.0.0.1" or not parts.port:
        return None
    headers = sign("GET", url.rstrip("/") + path, b"", {}) if sign is not None else {}
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _read_ready(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any] | None:
    """The server's one-line ready message; None when it died or stayed silent too long."""
    import json

    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if not readable:
            if proc.poll() is not None:
                return None
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    try:
        message = json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def server_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """The CLI's environment without its AWS settings and credentials.

    The server outlives the CLI, and a process's environment stays readable (/proc, crash
    dumps, `ps e`) for as long as it runs: the deployer's keys must not sit there. The server
    needs none of them — `api.auth: iam` gets its credentials in the spec, and workers get
    Lambda's variables only.
    """
    return {k: v for k, v in parent.items() if not k.startswith("AWS_")}


def start_detached(spec: ServerSpec, log: Path) -> tuple[int, dict[str, Any]]:
    """Start the server in its own session (it outlives the CLI) and wait for its ready line.

    Raises IrisError with the log's tail when it does not come up; nothing is left running then.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    env = server_environment(os.environ)
    package_parent = str(Path(mlops_cli.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    read_fd, write_fd = os.pipe()
    try:
        with log.open("ab") as log_fh:
            proc = subprocess.Popen(
                # -P: never import from the cwd; the server must not see the package's modules
                [sys.executable, "-P", "-m", SERVER_MODULE, "--env", spec.env,
                 "--root", spec.root, "--ready-fd", str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=log_fh,
                stderr=log_fh,
                pass_fds=(write_fd,),
                start_new_session=True,
                cwd="/",
                env=env,
            )
        os.close(write_fd)
        write_fd = -1
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(spec.to_json().encode("utf-8"))
            proc.stdin.close()
        message = _read_ready(read_fd, proc, START_TIMEOUT_S)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)

    if message is not None and message.get("ok"):
        return proc.pid, message
    stop_group(proc.pid, grace=1.0)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    if message is None:
        state = (
            "exited"
            if proc.poll() is not None
            else f"did not start within {START_TIMEOUT_S:.0f} s"
        )
        raise IrisError(
            f"the local server {state}. Last lines of {log}:\n{log_tail(log)}"
        )
    error = str(message.get("error", "unknown error"))
    if message.get("init_error"):
        raise IrisError(
            f"the package failed to initialise, as it would on Lambda: {error}\n"
            f"Every invocation would fail this way; fix the package and deploy again "
            f"(worker log: {log})"
        )
    hint = " (set local.port to a free port, or 0 for any)" if "cannot listen" in error else ""
    raise IrisError(f"the local server could not start: {error}{hint} (log: {log})")


def _result(record: dict[str, Any], changed: bool) -> dict[str, Any]:
    keys = ("env", "url", "pid", "package_sha256", "model_id", "flavor", "python",
            "python_version", "log", "workers", "auth")
    out = {key: record.get(key) for key in keys}
    out["target"] = TARGET
    out["changed"] = changed
    return out


# the interface ------------------------------------------------------------------------------
def deploy(
    cfg: EnvConfig, store: ArtifactStore, package: PackageInfo, reporter: Reporter
) -> dict[str, Any]:
    """Serve `package` on 127.0.0.1 in the background; a no-op when it already is.

    With api.auth: iam the server checks signatures against the credentials of the boto3 chain
    now in effect; the running server is kept only if it accepts a request signed with them."""
    from mlops_cli.signing import signer_for

    root = _prepare(package, reporter)
    python = resolve_python(cfg, package.runtime, reporter)
    client = ensure_client(python.version, reporter)
    signer = signer_for(cfg)
    spec = build_spec(cfg, package, root, python, cfg.settings.local.port, signer,
                      runtime_client=client)

    previous = store.read_record(cfg.env)
    old_alive = record_server_alive(previous) and (previous or {}).get("target") == TARGET
    if old_alive and previous is not None:
        same = (
            previous.get("package_sha256") == package.sha256
            and previous.get("spec_digest") == spec.digest()
        )
        healthy = http_get(str(previous.get("url")), "/health", HEALTH_TIMEOUT_S, signer)
        if same and healthy is not None and healthy[0] == 200:
            return _result(previous, changed=False)
        if spec.port and previous.get("port") == spec.port:
            # a fixed port cannot be held by two servers: stop the old one first
            _stop(cfg, previous, reporter)
            old_alive = False

    log = log_path(cfg, store)
    with reporter.step(
        f"Starting the local endpoint (Python {python.version}, {spec.workers} workers)"
    ):
        pid, ready = start_detached(spec, log)
    url = f"http://127.0.0.1:{ready['port']}"
    health = http_get(url, "/health", HEALTH_TIMEOUT_S, signer)
    if health is None or health[0] != 200:
        stop_group(pid, grace=1.0)
        got = "no answer" if health is None else f"HTTP {health[0]}: {health[1][:300]!r}"
        raise IrisError(
            f"the new local server started but GET /health gave {got}; the previous deployment "
            f"(if any) is left as it was. Last lines of {log}:\n{log_tail(log)}"
        )

    record = {
        "env": cfg.env,
        "target": TARGET,
        "pid": pid,
        "url": url,
        "port": ready["port"],
        "package_sha256": package.sha256,
        "package": str(package.path),
        "model_id": package.model_id,
        "flavor": package.flavor,
        "runtime": package.runtime,
        "python": python.path,
        "python_version": ready.get("python_version") or python.version,
        "workers": spec.workers,
        "root": spec.root,
        "log": str(log),
        "spec_digest": spec.digest(),
        "auth": spec.auth,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    store.write_record(cfg.env, record)
    if old_alive and previous is not None and previous.get("pid") != pid:
        _stop(cfg, previous, reporter)
    return _result(record, changed=True)


def _stop(cfg: EnvConfig, record: dict[str, Any], reporter: Reporter) -> bool:
    pid = int(record["pid"])
    with reporter.step(f"Stopping the local endpoint of {cfg.env} (pid {pid})"):
        return stop_group(pid, grace=STOP_GRACE_S)


def teardown(cfg: EnvConfig, store: ArtifactStore, reporter: Reporter) -> dict[str, Any]:
    """Stop the env's server and its workers and forget the record; fine when none runs."""
    record = store.read_record(cfg.env)
    pid = record.get("pid") if record else None
    stopped = False
    if record is not None and record.get("target", TARGET) == TARGET:
        if record_server_alive(record):
            stopped = _stop(cfg, record, reporter)
        store.delete_record(cfg.env)
    return {"env": cfg.env, "stopped": stopped, "pid": pid}


def status(cfg: EnvConfig, store: ArtifactStore) -> dict[str, Any]:
    record = store.read_record(cfg.env)
    if not record or record.get("target", TARGET) != TARGET:
        return {"env": cfg.env, "target": TARGET, "deployed": False, "up": False, "url": None,
                "model_id": None, "package_sha256": None, "flavor": None, "pid": None}
    alive = record_server_alive(record)
    health = (
        http_get(str(record.get("url")), "/health", HEALTH_TIMEOUT_S, _status_signer(cfg, record))
        if alive
        else None
    )
    return {
        "env": cfg.env,
        "target": TARGET,
        "deployed": True,
        "up": health is not None and health[0] == 200,
        "running": alive,
        "url": record.get("url"),
        "model_id": record.get("model_id"),
        "package_sha256": record.get("package_sha256"),
        "flavor": record.get("flavor"),
        "pid": record.get("pid"),
        "python_version": record.get("python_version"),
        "workers": record.get("workers"),
        "log": record.get("log"),
        "started_at": record.get("started_at"),
        "auth": record.get("auth", "none"),
    }


def _status_signer(cfg: EnvConfig, record: dict[str, Any]) -> Signer | None:
    """Sign the health check for a protected server; without credentials, ask unsigned (a 403
    then shows as not up, which is what the caller would get too)."""
    from mlops_cli.signing import signer_for

    if record.get("auth", "none") != "iam":
        return None
    try:
        return signer_for(cfg, "iam")
    except UsageError:
        return None


def endpoint(cfg: EnvConfig, store: ArtifactStore) -> str | None:
    record = store.read_record(cfg.env)
    if record and record.get("target", TARGET) == TARGET and record_server_alive(record):
        url = record.get("url")
        return str(url) if url else None
    return None


def serve(
    cfg: EnvConfig,
    store: ArtifactStore,
    package: PackageInfo,
    reporter: Reporter,
    port: int | None,
) -> None:
    """The same server in the foreground, one log line per request, until Ctrl-C or SIGTERM."""
    from mlops_cli.targets.local.linelog import LineLog
    from mlops_cli.targets.local.server import run

    root = _prepare(package, reporter)
    python = resolve_python(cfg, package.runtime, reporter)
    from mlops_cli.signing import signer_for

    client = ensure_client(python.version, reporter)
    chosen = cfg.settings.local.port if port is None else port
    spec = build_spec(cfg, package, root, python, chosen, signer_for(cfg),
                      runtime_client=client)
    failure: list[str] = []

    def on_ready(message: dict[str, Any]) -> None:
        if message.get("ok"):
            reporter.done(
                f"Serving model {package.model_id} at http://127.0.0.1:{message['port']} "
                f"(Python {message.get('python_version')}, {spec.workers} workers); "
                "Ctrl-C to stop"
            )
        else:
            failure.append(str(message.get("error")))

    code = run(spec, on_ready, LineLog(sys.stderr))
    if code != 0 or failure:
        raise IrisError(f"the local server could not start: {'; '.join(failure) or code}")

