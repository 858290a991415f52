"""`api.auth: iam` on the local target: a real detached server that lets through only requests
botocore signed with the credentials in effect at deploy time, and answers the rest as API
Gateway does — 403 `{"message":"Forbidden"}` — without the secret ever reaching a file."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.console import NullReporter
from mlops_cli.invoke import post_json
from mlops_cli.signing import signer_for
from mlops_cli.targets import local
from mlops_cli.targets.local.fixtures import build_zip
from tests.integration.test_local_target import call, make_cfg

KEY, SECRET, TOKEN = "AKIALOCALAUTHTEST", "local/auth+secret-value-0123456789", "session-token-xyz"
BODY = json.dumps({"features": [5.1, 3.5, 1.4, 0.2]}).encode()


def _chain(mp: pytest.MonkeyPatch, key: str = KEY, secret: str = SECRET,
           token: str | None = TOKEN) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        mp.delenv(name, raising=False)
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    mp.setenv("AWS_CONFIG_FILE", "/nonexistent")
    mp.setenv("AWS_ACCESS_KEY_ID", key)
    mp.setenv("AWS_SECRET_ACCESS_KEY", secret)
    if token is None:
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
    else:
        mp.setenv("AWS_SESSION_TOKEN", token)


@pytest.fixture
def deployments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Path]]:
    """A store of its own; whatever a test deployed in it is torn down after."""
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(tmp_path / "cache"))
    store = ArtifactStore(tmp_path / "artifacts")
    yield store, tmp_path
    for record in store.deployments_dir.glob("*.json"):
        local.teardown(make_cfg(record.stem), store, NullReporter())


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("protected")
    with pytest.MonkeyPatch.context() as mp:
        _chain(mp)
        mp.setenv("IRIS_MLOPS_CACHE", str(tmp / "cache"))
        store = ArtifactStore(tmp / "artifacts")
        cfg = make_cfg("guarded", api={"auth": "iam"}, aws={"region": "eu-west-1"})
        package = build_zip(tmp / "zips")
        result = local.deploy(cfg, store, package, NullReporter())
        try:
            yield {**result, "cfg": cfg, "store": store, "package": package, "tmp": tmp, "mp": mp}
        finally:
            local.teardown(cfg, store, NullReporter())


def signed(url: str, method: str = "POST", path: str = "/predict", body: bytes = BODY, *,
           key: str = KEY, secret: str = SECRET, token: str | None = TOKEN,
           region: str = "eu-west-1") -> dict[str, str]:
    request = AWSRequest(method=method, url=url + path, data=body,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key, secret, token), "execute-api", region).add_auth(request)
    return dict(request.headers.items())


def forbidden(answer: tuple[int, dict[str, str], bytes]) -> bool:
    status, _, body = answer
    return status == 403 and json.loads(body) == {"message": "Forbidden"}


def test_deploy_reports_iam_auth(protected):
    assert protected["auth"] == "iam" and protected["changed"] is True
    assert local.status(protected["cfg"], protected["store"])["up"] is True


def test_a_botocore_signed_request_reaches_the_function(protected):
    url = protected["url"]
    status, _, body = call(url, "POST", "/predict", BODY, signed(url))
    assert status == 200 and json.loads(body)["class_name"] == "setosa"
    status, _, body = call(url, "GET", "/health", b"", signed(url, "GET", "/health", b""))
    assert status == 200


def test_an_unsigned_request_is_forbidden_and_never_reaches_a_worker(protected):
    url = protected["url"]
    assert forbidden(call(url, "POST", "/predict", BODY, {"Content-Type": "application/json"}))
    assert forbidden(call(url, "GET", "/health"))
    assert forbidden(call(url, "GET", "/print"))  # the handler would have logged a line
    log = Path(protected["log"]).read_text()
    assert "hello from the handler's stdout" not in log
    assert "no Authorization header" in log


def test_a_wrong_secret_is_forbidden(protected):
    url = protected["url"]
    assert forbidden(call(url, "POST", "/predict", BODY, signed(url, secret="wrong")))


def test_another_region_is_forbidden(protected):
    url = protected["url"]
    assert forbidden(call(url, "POST", "/predict", BODY, signed(url, region="us-east-1")))


def test_an_expired_signature_sent_to_the_server_is_forbidden(protected):
    url = protected["url"]
    mp = pytest.MonkeyPatch()
    try:
        when = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=6)
        mp.setattr("botocore.auth.get_current_datetime", lambda: when)
        request = AWSRequest(method="POST", url=url + "/predict", data=BODY)
        SigV4Auth(Credentials(KEY, SECRET, TOKEN), "execute-api", "eu-west-1").add_auth(request)
    finally:
        mp.undo()
    assert forbidden(call(url, "POST", "/predict", BODY, dict(request.headers.items())))
    assert "signature expired" in Path(protected["log"]).read_text()


def test_a_tampered_body_is_forbidden(protected):
    url = protected["url"]
    headers = signed(url)
    tampered = BODY.replace(b"5.1", b"7.9")
    assert forbidden(call(url, "POST", "/predict", tampered, headers))


def test_invoke_signs_with_the_chain_credentials(protected):
    status, body, _ = post_json(protected["url"] + "/predict", {"features": [5.1, 3.5, 1.4, 0.2]},
                                sign=signer_for(protected["cfg"]))
    assert status == 200 and body["class_name"] == "setosa"
    status, body, _ = post_json(protected["url"] + "/predict", {"features": [5.1, 3.5, 1.4, 0.2]})
    assert (status, body) == (403, {"message": "Forbidden"})


def test_the_secret_and_token_land_in_no_file(protected):
    for root in (protected["tmp"],):
        for path in Path(root).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert SECRET.encode() not in data, path
                assert TOKEN.encode() not in data, path
    record = protected["store"].read_record("guarded")
    server_cmdline = Path(f"/proc/{record['pid']}/cmdline").read_bytes()
    assert SECRET.encode() not in server_cmdline


def test_redeploy_keeps_the_server_while_the_credentials_are_the_same(protected):
    again = local.deploy(protected["cfg"], protected["store"], protected["package"], NullReporter())
    assert again["changed"] is False and again["pid"] == protected["pid"]


def test_new_credentials_restart_the_server_and_the_old_ones_stop_working(deployments, monkeypatch):
    store, tmp = deployments
    cfg = make_cfg("rotating", api={"auth": "iam"})
    package = build_zip(tmp / "zips")
    _chain(monkeypatch, "AKIAFIRST", "first-secret", None)
    first = local.deploy(cfg, store, package, NullReporter())
    url = first["url"]
    old = signed(url, key="AKIAFIRST", secret="first-secret", token=None, region="us-east-1")
    assert call(url, "POST", "/predict", BODY, old)[0] == 200

    _chain(monkeypatch, "AKIAFIRST", "rotated-secret", None)  # same key id, new secret
    second = local.deploy(cfg, store, package, NullReporter())
    assert second["changed"] is True and second["pid"] != first["pid"]
    url = second["url"]
    new = signed(url, key="AKIAFIRST", secret="rotated-secret", token=None, region="us-east-1")
    assert call(url, "POST", "/predict", BODY, new)[0] == 200
    old = signed(url, key="AKIAFIRST", secret="first-secret", token=None, region="us-east-1")
    assert forbidden(call(url, "POST", "/predict", BODY, old))


def test_switching_auth_off_makes_the_endpoint_public_again(deployments, monkeypatch):
    store, tmp = deployments
    _chain(monkeypatch)
    package = build_zip(tmp / "zips")
    guarded = local.deploy(make_cfg("toggle", api={"auth": "iam"}), store, package, NullReporter())
    assert forbidden(call(guarded["url"], "GET", "/health"))
    # until redeployed the server keeps its mode, and status still signs its health check
    assert local.status(make_cfg("toggle"), store)["up"] is True
    public = local.deploy(make_cfg("toggle"), store, package, NullReporter())
    assert public["changed"] is True and public["auth"] == "none"
    assert call(public["url"], "GET", "/health")[0] == 200


def test_deploying_iam_without_credentials_is_a_clear_usage_error(deployments, monkeypatch):
    from mlops_cli.errors import UsageError

    store, tmp = deployments
    _chain(monkeypatch)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    with pytest.raises(UsageError, match="no AWS credentials"):
        local.deploy(make_cfg("nocreds", api={"auth": "iam"}), store, build_zip(tmp / "zips"),
                     NullReporter())
    assert store.read_record("nocreds") is None


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_aws_sigv4_as_the_readme_shows_it(protected):
    url = protected["url"]
    base = ["curl", "-sS", "--aws-sigv4", "aws:amz:eu-west-1:execute-api",
            "--user", f"{KEY}:{SECRET}", "-H", f"x-amz-security-token: {TOKEN}"]
    posted = subprocess.run(
        [*base, "-H", "content-type: application/json", "-d", BODY.decode(),
         f"{url}/predict?a=b&debug=1"],  # curl 7.88 signs its query unsorted
        capture_output=True, text=True, timeout=30,
    )
    assert json.loads(posted.stdout)["class_name"] == "setosa", posted.stderr
    health = subprocess.run([*base, f"{url}/health"], capture_output=True, text=True, timeout=30)
    assert json.loads(health.stdout)["status"] == "ok"
    wrong = subprocess.run(
        ["curl", "-sS", "--aws-sigv4", "aws:amz:eu-west-1:execute-api", "--user", f"{KEY}:nope",
         "-H", f"x-amz-security-token: {TOKEN}", f"{url}/health"],
        capture_output=True, text=True, timeout=30,
    )
    assert json.loads(wrong.stdout) == {"message": "Forbidden"}


def test_the_readmes_boto3_snippet_gets_a_prediction(protected):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Calling a protected endpoint", 1)[1]
    snippet = section.split("```python", 1)[1].split("```", 1)[0]
    snippet = textwrap.dedent(snippet)
    shown_url = "https://abc123.execute-api.eu-west-1.amazonaws.com/predict"
    assert shown_url in snippet
    snippet = snippet.replace(shown_url, protected["url"] + "/predict")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN,
               AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/nonexistent",
               AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    ran = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True,
                         timeout=60, env=env)
    assert ran.returncode == 0, ran.stderr
    assert "'class_name': 'setosa'" in ran.stdout
