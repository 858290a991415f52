"""The local target end to end: the real CLI deploys the very zip on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import RunCli

pytestmark = pytest.mark.e2e


def process_gone(pid: int) -> bool:
    """Gone, or a zombie waiting for PID 1 to reap it (which here takes a few seconds)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def port_closed(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) != 0


def request(url: str, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


@pytest.fixture
def deployed(run_cli: RunCli, trained_project: Path) -> dict:
    result = run_cli("deploy", "--env", "local", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    info = json.loads(result.stdout)
    yield info
    run_cli("teardown", "--env", "local")


def test_deploy_invoke_and_teardown_leave_nothing_behind(
    run_cli: RunCli, project: Path, deployed: dict
) -> None:
    url = deployed["url"]
    assert url.startswith("http://127.0.0.1:")
    record = json.loads((project / "artifacts" / "deployments" / "local.json").read_text())
    pid = record["pid"]
    assert record["url"] == url and record["package_sha256"]

    invoked = run_cli("invoke", "5.1", "3.5", "1.4", "0.2")
    assert invoked.returncode == 0, invoked.stderr
    assert "setosa" in invoked.stdout
    body = json.loads(run_cli("invoke", "5.1", "3.5", "1.4", "0.2", "--json").stdout)
    assert body["class_name"] == "setosa" and abs(sum(body["probabilities"]) - 1) < 1e-9

    status = json.loads(run_cli("status", "--json").stdout)
    assert status["up"] is True and status["url"] == url

    workers = children_of(pid)
    down = run_cli("teardown", "--env", "local")
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(
        process_gone(p) for p in [pid, *workers]
    ):
        time.sleep(0.2)
    assert all(process_gone(p) for p in [pid, *workers])
    parts = urlsplit(url)
    assert port_closed(parts.hostname, parts.port)
    assert not (project / "artifacts" / "deployments" / "local.json").exists()
    again = run_cli("teardown", "--env", "local")
    assert again.returncode == 0

    gone = run_cli("invoke", "5.1", "3.5", "1.4", "0.2", "--env", "local")
    assert gone.returncode == 1
    assert "deploy" in gone.stderr and "Traceback" not in gone.stderr


def test_raw_http_good_and_bad_requests(deployed: dict) -> None:
    url = deployed["url"]
    status, body = request(url, "GET", "/health")
    assert status == 200 and body["model_id"] == deployed["model_id"]
    status, body = request(url, "POST", "/predict", json.dumps({"features": [6.7, 3.0, 5.2, 2.3]})
                           .encode(), {"content-type": "application/json"})
    assert status == 200 and body["class_name"] == "virginica"
    status, body = request(url, "POST", "/predict", json.dumps(
        {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}).encode())
    assert status == 200 and [p["class_name"] for p in body["predictions"]] == [
        "setosa", "virginica"]
    for bad in (b"{not json", b"[]", b'{"features": [1, 2]}', b'{"features": [1, 2, "x", 4]}',
                b'{"features": [NaN, 1, 2, 3]}', b""):
        status, body = request(url, "POST", "/predict", bad)
        assert 400 <= status < 500, bad
        assert set(body["error"]) >= {"code", "message"}
    status, _ = request(url, "GET", "/nowhere")
    assert status == 404
    status, _ = request(url, "DELETE", "/predict")
    assert status == 405


def test_eight_concurrent_clients_times_500_requests_get_no_errors(deployed: dict) -> None:
    parts = urlsplit(deployed["url"])
    errors: list[str] = []
    payload = json.dumps({"features": [5.9, 3.0, 4.2, 1.5]}).encode()

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        for _ in range(500):
            try:
                conn.request("POST", "/predict", body=payload,
                             headers={"content-type": "application/json"})
                response = conn.getresponse()
                data = json.loads(response.read())
                if response.status != 200 or data.get("class_name") != "versicolor":
                    errors.append(f"{response.status} {data}")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_redeploying_the_same_zip_is_a_no_op(run_cli: RunCli, deployed: dict) -> None:
    again = run_cli("deploy", "--env", "local", "--json")
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["changed"] is False and data["pid"] == deployed["pid"]
    assert data["url"] == deployed["url"]


def test_a_package_missing_a_module_fails_at_deploy_with_the_import_error(
    run_cli: RunCli, project: Path, trained_project: Path
) -> None:
    built = json.loads(run_cli("package", "--env", "local", "--json").stdout)
    zip_path = project / built["path"] if not Path(built["path"]).is_absolute() else Path(
        built["path"])
    # Drop one runtime module from the zip, as a broken build would, and keep the record honest.
    with zipfile.ZipFile(zip_path) as zf:
        entries = {i.filename: zf.read(i) for i in zf.infolist()}
    victim = next(n for n in entries if n.startswith("iris_runtime/") and n.endswith(".py")
                  and not n.endswith(("__init__.py", "handler.py")))
    stem = victim.rsplit("/", 1)[1][:-3]
    with zipfile.ZipFile(zip_path, "w") as zf:
        for name, data in entries.items():
            if name != victim and f"/{stem}." not in name:
                zf.writestr(name, data)
    from mlops_cli.artifacts import sha256_file

    sidecar = zip_path.with_suffix(".json")
    record = json.loads(sidecar.read_text())
    record["sha256"] = sha256_file(zip_path)
    sidecar.write_text(json.dumps(record))

    result = run_cli("deploy", "--env", "local")
    assert result.returncode == 1
    assert f"No module named 'iris_runtime.{stem}'" in result.stderr + result.stdout
    assert "Traceback" not in result.stdout
    assert not (project / "artifacts" / "deployments" / "local.json").exists()
