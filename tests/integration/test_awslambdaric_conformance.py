"""The local target against AWS's own runtime interface client, run directly.

A trained model's real zip and the probe zip go through `awslambdaric` twice: once behind the
local endpoint, once straight against a minimal Runtime API (`tests/ric_harness.py`), with the
same API Gateway events. What the client posts directly, put through API Gateway's payload 2.0
rules, must be what the local endpoint answers. Init errors must reach Lambda: every message the
runtime raises survives the client on python3.12 (issue 10, item 10).
"""

from __future__ import annotations

import http.client
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.artifacts import ArtifactStore, sha256_file
from mlops_cli.config import EnvConfig, Settings
from mlops_cli.console import NullReporter
from mlops_cli.errors import IrisError
from mlops_cli.packaging.result import PackageInfo
from mlops_cli.targets import local
from mlops_cli.targets.local.events import build_event, internal_error, map_result
from mlops_cli.targets.local.fixtures import build_zip
from tests.ric_harness import python312, run_client

SETOSA = json.dumps({"features": [5.1, 3.5, 1.4, 0.2]}).encode()
REQUESTS: list[tuple[str, str, bytes]] = [
    ("GET", "/health", b""),
    ("POST", "/predict", SETOSA),
    ("POST", "/predict", json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})
     .encode()),
    ("POST", "/predict", b'{"features": [1, 2, 3]}'),
    ("POST", "/predict", b'{"features": [1, 2, 3, NaN]}'),
    ("POST", "/predict", b"{not json"),
    ("POST", "/predict", b""),
    ("DELETE", "/predict", b""),
    ("GET", "/nowhere?x=1", b""),
]


@dataclass
class Built:
    package: PackageInfo
    root: Path  # the zip, unpacked


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    from mlops_cli.packaging.build import build_package
    from mlops_cli.training.evaluate import evaluate
    from mlops_cli.training.train import train

    python312()
    tmp = tmp_path_factory.mktemp("ric")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IRIS_MLOPS_CACHE", str(tmp / "cache"))
        store = ArtifactStore(tmp / "artifacts")
        cfg = EnvConfig(env="ric", path=None, settings=Settings())
        train(cfg, store, NullReporter())
        evaluate(cfg, store, NullReporter())
        package = build_package(cfg, store, NullReporter()).info
        root = tmp / "unpacked"
        with zipfile.ZipFile(package.path) as zf:
            zf.extractall(root)
        yield Built(package, root)


def _normalise(status: int, body: bytes) -> tuple[int, Any]:
    """Drop what differs between two runs of the same request (timing)."""
    try:
        data = json.loads(body)
    except ValueError:
        return status, body
    if isinstance(data, dict):
        data.pop("latency_ms", None)
    return status, data


def _direct_answer(kind: str, body: bytes) -> tuple[int, Any]:
    """API Gateway's answer to what the client posted: a result through the payload 2.0 rules,
    an error as a bare 500."""
    response = map_result(json.loads(body)) if kind == "response" else internal_error(None)
    return _normalise(response.status, response.body)


def _event(method: str, target: str, body: bytes) -> dict[str, Any]:
    return build_event(method=method, target=target, body=body, source_ip="127.0.0.1",
                       headers=[("Host", "127.0.0.1"), ("Content-Type", "application/json")],
                       request_id="conformance", now=time.time())


def _through_endpoint(url: str, method: str, target: str, body: bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=10)
    try:
        conn.request(method, target, body=body or None,
                     headers={"Content-Type": "application/json",
                              **({"Content-Length": "0"} if method == "POST" and not body
                                 else {})})
        response = conn.getresponse()
        return _normalise(response.status, response.read())
    finally:
        conn.close()


def _compare(root: Path, package: PackageInfo, requests: list[tuple[str, str, bytes]],
             tmp: Path, env: str) -> list[tuple[int, Any]]:
    posted, ids, proc = run_client(root, [_event(*r) for r in requests])
    assert posted.init_error is None, proc.stdout + proc.stderr
    direct = [_direct_answer(*posted.results[i]) for i in ids]
    store = ArtifactStore(tmp / "artifacts")
    cfg = EnvConfig(env=env, path=None, settings=Settings.model_validate(
        {"local": {"port": 0, "workers": 1}}))
    result = local.deploy(cfg, store, package, NullReporter())
    try:
        assert result["python_version"] == "3.12"
        local_answers = [_through_endpoint(result["url"], *r) for r in requests]
    finally:
        local.teardown(cfg, store, NullReporter())
    assert local_answers == direct
    return direct


def test_the_real_package_answers_locally_exactly_as_awslambdaric_answers_directly(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(tmp_path / "cache"))
    answers = _compare(built.root, built.package, REQUESTS, tmp_path, "conf")
    statuses = [status for status, _ in answers]
    assert statuses[:3] == [200, 200, 200] and all(400 <= s < 500 for s in statuses[3:])
    assert answers[1][1]["class_name"] == "setosa"


def test_function_errors_answer_locally_as_api_gateway_answers_them_on_lambda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(tmp_path / "cache"))
    package = build_zip(tmp_path / "zips")
    root = tmp_path / "probe"
    with zipfile.ZipFile(package.path) as zf:
        zf.extractall(root)
    requests = [("GET", "/raise", b""), ("GET", "/string", b""), ("GET", "/binary", b""),
                ("POST", "/predict", SETOSA)]
    answers = _compare(root, package, requests, tmp_path, "probe")
    assert answers[0] == (500, {"message": "Internal Server Error"})
    assert answers[1] == (200, b"plain text")


# -- init errors reach Lambda (issue 10, item 10) -------------------------------------------------
def _tampered(built: Built, dest: Path) -> Path:
    with zipfile.ZipFile(built.package.path) as zf:
        zf.extractall(dest)
    manifest = json.loads((dest / "model" / "manifest.json").read_text())
    model = dest / "model" / manifest["model_file"]
    model.write_bytes(model.read_bytes().replace(b"0", b"1", 1))
    return dest


def test_a_tampered_model_arrives_at_lambda_as_a_model_load_error(
    built: Built, tmp_path: Path
) -> None:
    posted, _, proc = run_client(_tampered(built, tmp_path / "t"), [])
    assert posted.init_error is not None, proc.stdout + proc.stderr
    assert posted.init_error["errorType"] == posted.init_error_type == "ModelLoadError"
    assert "sha256" in posted.init_error["errorMessage"]
    assert "rebuild it with `iris-mlops package`" in posted.init_error["errorMessage"]
    assert proc.returncode == 1


def test_a_non_ascii_path_in_an_init_error_still_reaches_lambda(
    built: Built, tmp_path: Path
) -> None:
    missing = tmp_path / "mod\u00e8le\u2014\u6a21\u578b"
    posted, _, proc = run_client(built.root, [], extra_env={"IRIS_MODEL_DIR": str(missing)})
    assert posted.init_error is not None, proc.stdout + proc.stderr
    assert posted.init_error["errorType"] == "ModelLoadError"
    assert "mod\\xe8le\\u2014\\u6a21\\u578b" in posted.init_error["errorMessage"]


def test_awslambdaric_on_python312_loses_an_init_error_outside_latin1(tmp_path: Path) -> None:
    """Why the runtime's messages are ASCII: the client itself drops such an error."""
    package = build_zip(tmp_path / "zips", 'raise RuntimeError("model \\u2014 broken")\n')
    root = tmp_path / "u"
    with zipfile.ZipFile(package.path) as zf:
        zf.extractall(root)
    posted, _, proc = run_client(root, [])
    assert posted.init_error is None
    assert proc.returncode != 0 and "UnicodeEncodeError" in proc.stderr + proc.stdout


def test_a_tampered_package_fails_local_deploy_naming_the_client_s_error(
    built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(tmp_path / "cache"))
    root = _tampered(built, tmp_path / "t")
    path = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(root.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(root).as_posix())
    package = PackageInfo(**{**built.package.__dict__, "path": path,
                             "sha256": sha256_file(path)})
    store = ArtifactStore(tmp_path / "artifacts")
    cfg = EnvConfig(env="tampered", path=None, settings=Settings.model_validate(
        {"local": {"port": 0, "workers": 1}}))
    with pytest.raises(IrisError) as caught:
        local.deploy(cfg, store, package, NullReporter())
    assert "ModelLoadError: model file" in str(caught.value)
    assert store.read_record("tampered") is None
