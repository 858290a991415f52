"""The local target end to end: real server and worker processes on 127.0.0.1, tiny zips.

One warm deployment (module scope) serves the request-level tests; lifecycle tests start their
own. `lambda.timeout_s` is 1 so the timeout test costs one second.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig, Settings
from mlops_cli.console import NullReporter, Reporter
from mlops_cli.errors import IrisError
from mlops_cli.targets import local
from mlops_cli.targets.local.fixtures import MISSING_DEPENDENCY_HANDLER, PROBE_HANDLER, build_zip
from mlops_cli.targets.local.process import (
    group_members,
    is_alive,
    server_processes,
    wait_gone,
)

REPO = Path(__file__).resolve().parents[2]


def make_cfg(env: str = "loc", **settings: Any) -> EnvConfig:
    raw: dict[str, Any] = {"local": {"port": 0, "workers": 2}, "lambda": {"timeout_s": 1}}
    for key, value in settings.items():
        raw.setdefault(key, {}).update(value)
    return EnvConfig(env=env, path=None, settings=Settings.model_validate(raw))


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def call(
    url: str,
    method: str = "GET",
    path: str = "/health",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def raw_exchange(url: str, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def servers_for_root(root: str) -> list[int]:
    """Every live process whose command line names this unpacked root (server or worker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if root.encode() in cmdline and is_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return True
    return False


@pytest.fixture
def sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ArtifactStore, Path]]:
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(tmp_path / "cache"))
    store = ArtifactStore(tmp_path / "artifacts")
    yield store, tmp_path
    for record_path in store.deployments_dir.glob("*.json"):
        env = record_path.stem
        local.teardown(EnvConfig(env=env, path=None, settings=Settings()), store, NullReporter())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("served")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IRIS_MLOPS_CACHE", str(tmp / "cache"))
        store = ArtifactStore(tmp / "artifacts")
        cfg = make_cfg("served", **{"lambda": {"environment": {"LOG_LEVEL": "debug"}}})
        package = build_zip(tmp / "zips")
        result = local.deploy(cfg, store, package, NullReporter())
        try:
            yield {**result, "cfg": cfg, "store": store, "package": package}
        finally:
            local.teardown(cfg, store, NullReporter())


# requests against one warm deployment ----------------------------------------------------------
def test_deploy_reports_a_loopback_url_and_the_package(served):
    assert served["url"].startswith("http://127.0.0.1:")
    assert served["changed"] is True
    assert served["target"] == "local"
    assert served["package_sha256"] == served["package"].sha256
    assert served["model_id"] == "probe-model" and served["flavor"] == "portable"
    assert served["python"] and served["python_version"]


def test_health_and_predict_answer_through_the_handler(served):
    status, _, body = call(served["url"], "GET", "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, headers, body = call(
        served["url"],
        "POST",
        "/predict",
        json.dumps({"features": [5.1, 3.5, 1.4, 0.2]}).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["class_name"] == "setosa"
    assert headers["apigw-requestid"]


def test_handler_json_errors_pass_through_unchanged(served):
    status, _, body = call(served["url"], "POST", "/predict", b'{"features": [1]}')
    assert status == 400
    assert json.loads(body) == {"error": {"code": "bad_features", "message": "need 4 numbers"}}


def test_handler_receives_an_api_gateway_2_0_event(served):
    status, _, body = call(
        served["url"],
        "POST",
        "/echo?a=1&a=2",
        b"\xff\x00binary",
        {"X-Custom": "v", "Cookie": "c=1"},
    )
    assert status == 200
    event = json.loads(body)
    assert event["version"] == "2.0" and event["rawPath"] == "/echo"
    assert event["queryStringParameters"] == {"a": "1,2"}
    assert event["headers"]["x-custom"] == "v" and event["cookies"] == ["c=1"]
    assert event["isBase64Encoded"] is True
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["stage"] == "$default"


def test_handler_runs_isolated_with_lambdas_environment_and_context(served):
    status, _, body = call(served["url"], "GET", "/context")
    assert status == 200
    seen = json.loads(body)
    root = served["store"].read_record("served")["root"]
    env = seen["environ"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "iris-mlops-served"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_REGION"] == "us-east-1" and env["LAMBDA_TASK_ROOT"] == root
    assert env["LOG_LEVEL"] == "debug" and env["TZ"] == ":UTC"
    assert not any(k in env for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HOME"))
    assert seen["sys_path"][0] == root
    assert not any("-packages" in p for p in seen["sys_path"])
    assert seen["cwd"] == root
    assert seen["function_name"] == "iris-mlops-served"
    assert seen["invoked_function_arn"].endswith(":function:iris-mlops-served")
    assert seen["log_group_name"] == "/aws/lambda/iris-mlops-served"
    assert 0 < seen["remaining_ms"] <= 1000
    assert served["python_version"].startswith(".".join(map(str, seen["version"][:2])))


def test_handler_prints_go_to_the_log_not_the_response(served):
    status, _, body = call(served["url"], "GET", "/print")
    assert (status, json.loads(body)) == (200, {"printed": True})
    assert call(served["url"], "GET", "/health")[0] == 200
    log = Path(served["log"]).read_text()
    assert "hello from the handler's stdout" in log


INTERNAL = {"message": "Internal Server Error"}


def wait_for_log(served: dict[str, Any], text: str) -> str:
    """The log once it holds `text` (worker output lands a moment after the answer)."""
    deadline = time.monotonic() + 5
    while True:
        log = Path(served["log"]).read_text()
        if text in log or time.monotonic() > deadline:
            return log


def test_handler_exception_is_api_gateways_bare_500_and_the_log_has_the_error(served):
    status, _, body = call(served["url"], "GET", "/raise")
    assert (status, json.loads(body)) == (500, INTERNAL)
    log = wait_for_log(served, "boom from the handler")
    # awslambdaric's own error line and traceback, as CloudWatch shows them
    assert "[ERROR] ValueError: boom from the handler" in log
    assert "Traceback (most recent call last):" in log


def test_handler_past_its_timeout_is_a_500_and_the_next_request_works(served):
    status, _, body = call(served["url"], "GET", "/sleep?s=30")
    assert (status, json.loads(body)) == (500, INTERNAL)
    assert "Task timed out after 1.00 seconds" in wait_for_log(served, "Task timed out")
    for _ in range(4):  # both workers, including the replacement, answer
        assert call(served["url"], "GET", "/health")[0] == 200


def test_a_worker_that_dies_is_a_500_and_is_replaced(served):
    status, _, body = call(served["url"], "GET", "/crash")
    assert (status, json.loads(body)) == (500, INTERNAL)
    log = wait_for_log(served, "Runtime exited with error: exit status 3")
    assert "Runtime.ExitError" in log
    for _ in range(4):
        assert call(served["url"], "GET", "/health")[0] == 200


def test_a_response_over_six_mb_fails_as_on_lambda_and_the_worker_is_replaced(served):
    status, _, body = call(served["url"], "GET", "/big")
    assert (status, json.loads(body)) == (500, INTERNAL)
    log = wait_for_log(served, "Function.ResponseSizeTooLarge")
    assert "Function.ResponseSizeTooLarge" in log
    for _ in range(4):
        assert call(served["url"], "GET", "/health")[0] == 200


def test_every_invocation_logs_lambdas_start_end_and_report_lines(served):
    status, headers, _ = call(served["url"], "GET", "/health")
    assert status == 200
    rid = headers["apigw-requestid"]
    log = wait_for_log(served, f"REPORT RequestId: {rid}")
    assert f"START RequestId: {rid} Version: $LATEST" in log
    assert f"END RequestId: {rid}" in log
    report = next(line for line in log.splitlines() if f"REPORT RequestId: {rid}" in line)
    for field in ("Duration: ", " ms\tBilled Duration: ", "Memory Size: 512 MB",
                  "Max Memory Used: "):
        assert field in report
    assert "Init Duration: " in log  # each worker's first REPORT carries its cold start


def test_a_body_over_lambdas_payload_limit_is_refused_with_413_unread(served):
    with socket.create_connection(("127.0.0.1", port_of(served["url"])), timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 7000000\r\n\r\n")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413 ")
    reply = raw_exchange(
        served["url"],
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 7000000\r\n"
        b"Expect: 100-continue\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in reply


def test_malformed_requests_get_a_400_json_answer(served):
    for garbage in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1 extra\r\n\r\n", b"GET / FTP/1.0\r\n\r\n"):
        reply = raw_exchange(served["url"], garbage)
        assert reply.startswith(b"HTTP/1.1 400 "), (garbage, reply)
        assert b'{"message":' in reply and b"Traceback" not in reply
    reply = raw_exchange(
        served["url"], b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 400 ")


def test_post_without_a_length_is_411_and_a_chunked_body_is_read(served):
    reply = raw_exchange(served["url"], b"POST /predict HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 411 ")
    body = json.dumps({"features": [1, 2, 3, 4]}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    reply = raw_exchange(
        served["url"],
        b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunked,
    )
    assert reply.startswith(b"HTTP/1.1 200 ") and b"setosa" in reply


def test_a_slow_client_does_not_block_others(served):
    with socket.create_connection(("127.0.0.1", port_of(served["url"])), timeout=10) as slow:
        slow.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        for _ in range(4):  # the slow client holds a connection, never a worker
            assert call(served["url"], "GET", "/health")[0] == 200


def test_a_large_body_under_the_limit_reaches_the_handler_intact(served):
    body = b"x" * (2 * 1024 * 1024)
    status, _, data = call(served["url"], "POST", "/echo", body)
    assert status == 200
    assert json.loads(data)["body"] == body.decode()


def test_keep_alive_serves_many_requests_on_one_connection(served):
    conn = http.client.HTTPConnection("127.0.0.1", port_of(served["url"]), timeout=10)
    try:
        for _ in range(20):
            conn.request("GET", "/health")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Connection") != "close"
    finally:
        conn.close()


def test_server_listens_on_127_0_0_1_only(served):
    port = port_of(served["url"])
    listening = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, hex_port = fields[1].split(":")
        if int(hex_port, 16) == port and fields[3] == "0A":  # 0A = LISTEN
            listening.append(address)
    assert listening == ["0100007F"]  # 127.0.0.1, little-endian hex
    assert port_closed_on("127.0.0.2", port)


def port_closed_on(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return True
    return False


def test_concurrent_keep_alive_clients_get_no_errors(served):
    errors: list[str] = []
    body = json.dumps({"features": [5.1, 3.5, 1.4, 0.2]}).encode()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port_of(served["url"]), timeout=10)
        try:
            for _ in range(100):
                conn.request("POST", "/predict", body=body)
                response = conn.getresponse()
                data = response.read()
                if response.status != 200 or b"setosa" not in data:
                    errors.append(f"{response.status} {data[:100]!r}")
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_status_and_endpoint_describe_the_running_server(served):
    status = local.status(served["cfg"], served["store"])
    assert status["deployed"] is True and status["up"] is True
    assert status["url"] == served["url"] and status["pid"] == served["pid"]
    assert status["model_id"] == "probe-model"
    assert local.endpoint(served["cfg"], served["store"]) == served["url"]


# lifecycle -------------------------------------------------------------------------------------
def test_redeploy_is_a_noop_a_new_zip_replaces_and_teardown_leaves_nothing(sandbox):
    store, tmp = sandbox
    cfg = make_cfg("life")
    first_pkg = build_zip(tmp / "v1", model_id="model-a")
    first = local.deploy(cfg, store, first_pkg, NullReporter())
    first_root = store.read_record("life")["root"]
    first_group = server_processes(first["pid"])
    assert len(first_group) == 3  # the server and its two workers

    again = local.deploy(cfg, store, first_pkg, NullReporter())
    assert again["changed"] is False and again["pid"] == first["pid"]

    second_pkg = build_zip(tmp / "v2", PROBE_HANDLER + "\n# v2\n", model_id="model-b")
    second = local.deploy(cfg, store, second_pkg, NullReporter())
    assert second["changed"] is True and second["pid"] != first["pid"]
    assert second["model_id"] == "model-b"
    assert wait_gone(first["pid"], 5)
    assert not any(is_alive(pid) for pid in first_group) and servers_for_root(first_root) == []
    assert group_members(first["pid"]) == []
    assert port_closed(port_of(first["url"]))
    assert call(second["url"])[0] == 200

    second_group = server_processes(second["pid"])
    down = local.teardown(cfg, store, NullReporter())
    assert down == {"env": "life", "stopped": True, "pid": second["pid"]}
    assert all(not is_alive(pid) for pid in second_group)
    assert group_members(second["pid"]) == []
    assert port_closed(port_of(second["url"]))
    assert store.read_record("life") is None
    assert local.status(cfg, store)["deployed"] is False
    assert local.endpoint(cfg, store) is None
    assert local.teardown(cfg, store, NullReporter())["stopped"] is False


def test_a_package_missing_a_dependency_fails_deploy_like_lambda_would(sandbox):
    store, tmp = sandbox
    cfg = make_cfg("nodep")
    package = build_zip(tmp / "zips", MISSING_DEPENDENCY_HANDLER, name="nodep.zip")
    with pytest.raises(IrisError) as caught:
        local.deploy(cfg, store, package, NullReporter())
    assert (
        "Runtime.ImportModuleError: Unable to import module 'iris_runtime.handler': "
        "No module named 'numpy'" in str(caught.value)
    )
    assert caught.value.exit_code == 1
    assert store.read_record("nodep") is None
    root = str(tmp / "cache" / "local" / package.sha256)
    deadline = time.monotonic() + 5
    while servers_for_root(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert servers_for_root(root) == []


def test_a_stale_record_is_replaced_by_a_fresh_server(sandbox):
    store, tmp = sandbox
    cfg = make_cfg("stale")
    package = build_zip(tmp / "zips")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.write_record(
        "stale",
        {
            "target": "local",
            "pid": dead.pid,
            "url": "http://127.0.0.1:1",
            "package_sha256": package.sha256,
            "root": "/nowhere",
        },
    )
    assert local.status(cfg, store)["up"] is False
    assert local.endpoint(cfg, store) is None
    result = local.deploy(cfg, store, package, NullReporter())
    assert result["changed"] is True and result["pid"] != dead.pid
    assert call(result["url"])[0] == 200


def test_a_missing_runtime_interpreter_falls_back_with_a_warning(sandbox):
    from io import StringIO

    from rich.console import Console

    store, tmp = sandbox
    cfg = make_cfg("fallback", local={"python": str(tmp / "no-such-python3.12")})
    sink = StringIO()
    reporter = Reporter(quiet=True, console=Console(file=sink, width=300))
    result = local.deploy(cfg, store, build_zip(tmp / "zips"), reporter)
    assert "python3.12" in sink.getvalue() and "warning" in sink.getvalue()
    assert result["python"] == sys.executable
    assert result["python_version"].startswith(f"{sys.version_info[0]}.{sys.version_info[1]}")


def test_the_server_outlives_the_deploying_process(sandbox):
    store, tmp = sandbox
    package = build_zip(tmp / "zips")
    script = (
        "import sys; from pathlib import Path;"
        "from mlops_cli.artifacts import ArtifactStore;"
        "from mlops_cli.console import NullReporter;"
        "from mlops_cli.targets import local;"
        "from mlops_cli.targets.local.fixtures import build_zip;"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r});"
        "from test_local_target import make_cfg;"
        f"local.deploy(make_cfg('outlive'), ArtifactStore({str(store.root)!r}),"
        f" build_zip(Path({str(tmp / 'zips')!r})), NullReporter())"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "IRIS_MLOPS_CACHE": str(tmp / "cache")}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=60)
    cfg = make_cfg("outlive")
    status = local.status(cfg, store)
    assert status["up"] is True and status["package_sha256"] == package.sha256
    assert call(status["url"])[0] == 200


def test_workers_run_apart_from_the_server_and_die_with_it_even_mid_invocation(sandbox):
    """Each worker has a session of its own and yields the CPU to the server (SCHED_BATCH). A
    server killed with SIGKILL has no chance to stop anything, yet leaves no worker behind: not
    an idle one, nor one in the middle of a long invocation."""
    store, tmp = sandbox
    cfg = make_cfg("orphans", **{"lambda": {"timeout_s": 60}})
    result = local.deploy(cfg, store, build_zip(tmp / "zips"), NullReporter())
    root = store.read_record("orphans")["root"]
    server, *workers = server_processes(result["pid"])
    assert len(workers) == 2
    for pid in workers:
        assert os.getsid(pid) == pid != os.getsid(server)
        assert os.sched_getscheduler(pid) == os.SCHED_BATCH
    assert os.sched_getscheduler(server) == os.SCHED_OTHER

    log = Path(result["log"])
    started = log.read_text().count("START RequestId")
    with socket.create_connection(("127.0.0.1", port_of(result["url"])), timeout=10) as client:
        client.sendall(b"GET /sleep?s=50 HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 10
        while log.read_text().count("START RequestId") == started:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        # a worker is inside the handler now, for 50 s
        os.kill(server, signal.SIGKILL)
        gone = time.monotonic() + 5
        while any(is_alive(pid) for pid in workers) and time.monotonic() < gone:
            time.sleep(0.02)
    assert not any(is_alive(pid) for pid in [server, *workers])
    assert servers_for_root(root) == []


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_runs_in_the_foreground_logs_requests_and_stops_cleanly(sandbox, stop_signal):
    store, tmp = sandbox
    build_zip(tmp / "zips")
    script = (
        "from pathlib import Path;"
        "from mlops_cli.artifacts import ArtifactStore;"
        "from mlops_cli.console import Reporter;"
        "from mlops_cli.targets import local;"
        "from mlops_cli.targets.local.fixtures import build_zip;"
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r});"
        "from test_local_target import make_cfg;"
        f"local.serve(make_cfg('fg'), ArtifactStore({str(store.root)!r}),"
        f" build_zip(Path({str(tmp / 'zips')!r})), Reporter(), None)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "IRIS_MLOPS_CACHE": str(tmp / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        url = None
        lines: list[str] = []
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "listening on http://127.0.0.1:" in line:
                url = line.split("listening on ")[1].split()[0]
                break
        assert url, "".join(lines)
        assert call(url, "GET", "/health")[0] == 200
        workers = [p for p in server_processes(proc.pid) if p != proc.pid]
        proc.send_signal(stop_signal)
        _, rest = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    assert '"GET /health" 200' in rest
    assert "Traceback" not in rest
    assert workers and all(not is_alive(pid) for pid in workers)
    assert port_closed(port_of(url))


def test_a_fixed_port_already_in_use_is_a_clear_error(sandbox):
    store, tmp = sandbox
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = make_cfg("busy", local={"port": port})
        with pytest.raises(IrisError, match=rf"127\.0\.0\.1:{port}.*local\.port"):
            local.deploy(cfg, store, build_zip(tmp / "zips"), NullReporter())
    assert store.read_record("busy") is None
