"""Safety and security: bystanders survive teardown, foreign resources are never adopted, least
privilege as deployed, packages hold only what they must, unpacking refuses escapes, the local
server stays on loopback and its logs hold neither feature values nor credentials, and the CLI
never prints an AWS secret.

Already covered elsewhere (not repeated): the pure policy document (tests/aws/test_desired.py),
unsafe zip entries at the unpacker level (tests/unit/test_local_unpack.py), the probe server's
listening address and bare 500 without stack trace (tests/integration/test_local_target.py), the
handler's own log line (tests/unit/test_runtime_handler.py).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig, Settings
from mlops_cli.console import NullReporter
from mlops_cli.errors import IrisError, UsageError
from mlops_cli.packaging.result import PackageInfo
from mlops_cli.targets import local
from tests.aws.conftest import REGION, make_cfg, make_package, set_fake_aws_env
from tests.conftest import Trained
from tests.reliability import figures
from tests.reliability.aws_helpers import (
    FN,
    Faults,
    aws_client,
    fresh_aws,
    run_deploy,
)

ACCOUNT = "123456789012"
FAKE_KEY_ID = "AKIAFAKEIRISMLOPS0042"
FAKE_SECRET = "fakeSecretIrisMlops/0123456789abcdefghijKLMNOPQ"
FAKE_TOKEN = "FakeSessionTokenIrisMlops+9876543210zyxw"
DISTINCT = [4.123456789, 2.987654321, 1.357913579, 0.246802468]


# -- AWS: bystanders, foreign resources, least privilege ----------------------------------------
@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    set_fake_aws_env(monkeypatch, tmp_path)


TAG_VARIANTS: dict[str, dict[str, str]] = {
    "untagged": {},
    "project-tag-only": {"iris-mlops:project": "iris-mlops"},
    "env-tag-only": {"iris-mlops:env": "dev"},
    "other-env": {"iris-mlops:project": "iris-mlops", "iris-mlops:env": "prod"},
    "other-project": {"iris-mlops:project": "someone-else", "iris-mlops:env": "dev"},
}


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("h.py", "def h(e, c):\n    return 1\n")
    return buf.getvalue()


def _plant_bystanders(tags: dict[str, str]) -> None:
    """Same-named resources someone else owns: role, function, API, log group, bucket."""
    iam, lam = aws_client("iam"), aws_client("lambda")
    gw, logs, s3 = aws_client("apigatewayv2"), aws_client("logs"), aws_client("s3")
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    role = iam.create_role(RoleName=FN, AssumeRolePolicyDocument="{}", Tags=tag_list)["Role"]
    iam.put_role_policy(RoleName=FN, PolicyName="theirs", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }))
    lam.create_function(FunctionName=FN, Runtime="python3.12", Role=role["Arn"], Handler="h.h",
                        Code={"ZipFile": _zip_bytes()}, Tags=tags)
    gw.create_api(Name=FN, ProtocolType="HTTP", Tags=tags)
    logs.create_log_group(logGroupName=f"/aws/lambda/{FN}", tags=tags or {"x": "y"})
    if not tags:
        logs.untag_log_group(logGroupName=f"/aws/lambda/{FN}", tags=["x"])
    bucket = f"iris-mlops-artifacts-{ACCOUNT}-{REGION}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    if tags.get("iris-mlops:project") != "iris-mlops":
        if tags:
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_list})
        s3.put_object(Bucket=bucket, Key=f"{FN}/theirs.zip", Body=b"theirs")


def _world() -> dict[str, Any]:
    """What exists under our names, in detail, to compare before/after."""
    iam, lam = aws_client("iam"), aws_client("lambda")
    gw, logs, s3 = aws_client("apigatewayv2"), aws_client("logs"), aws_client("s3")
    return {
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "role_policies": sorted(
            (r["RoleName"], p)
            for r in iam.list_roles()["Roles"]
            for p in iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"]
        ),
        "functions": sorted(
            (f["FunctionName"], f["CodeSha256"]) for f in lam.list_functions()["Functions"]
        ),
        "apis": sorted((a["Name"], a["ApiId"]) for a in gw.get_apis()["Items"]),
        "log_groups": sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]),
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "objects": sorted(
            o["Key"]
            for b in s3.list_buckets()["Buckets"]
            for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])
        ),
    }


@pytest.mark.parametrize("variant", sorted(TAG_VARIANTS))
def test_teardown_leaves_same_named_resources_without_both_our_tags_untouched(
    aws_env: None, tmp_path: Path, variant: str
) -> None:
    tags = TAG_VARIANTS[variant]
    with fresh_aws():
        _plant_bystanders(tags)
        before = _world()
        faults = Faults()
        result = run_teardown_all(tmp_path, faults)
        assert _world() == before
        assert result["deleted"] == [] and faults.mutating == []
        skipped = {s["resource"] for s in result["skipped_foreign"]}
        assert {"iam role", "lambda function", "log group"} <= skipped, skipped
        assert any(s.startswith("http api") for s in skipped), skipped
    figures.record("safety", bystander_variants=1, bystanders_untouched=6)


def run_teardown_all(tmp_path: Path, faults: Faults) -> dict[str, Any]:
    from mlops_cli.targets.aws import teardown
    from tests.reliability.aws_helpers import faulty_context

    cfg = make_cfg()
    return teardown(cfg, ArtifactStore(tmp_path / "a"), NullReporter(), include_bucket=True,
                    ctx=faulty_context(cfg, faults))


def test_teardown_with_bystanders_present_deletes_only_ours(aws_env: None, tmp_path: Path):
    """Our env deployed next to another env, another project and a foreign API of our name."""
    with fresh_aws():
        store = ArtifactStore(tmp_path / "a")
        big = make_package(tmp_path / "big", size_bytes=60 * 1024 * 1024)  # via the bucket
        run_deploy(make_cfg(env="prod"), store, big, Faults())
        run_deploy(make_cfg(), store, big, Faults())
        run_deploy(make_cfg(project="other-project"), store, make_package(tmp_path / "o"),
                   Faults())
        foreign_api = aws_client("apigatewayv2").create_api(
            Name=FN, ProtocolType="HTTP", Tags={"owner": "web-team"})["ApiId"]
        before = _world()
        result = run_teardown_all(tmp_path, Faults())
        after = _world()
    gone = {
        ("roles", FN), ("functions", FN), ("log_groups", f"/aws/lambda/{FN}"),
    }
    for key, name in gone:
        names = [x[0] if isinstance(x, tuple) else x for x in after[key]]
        assert name not in names, (key, name)
    assert ("iris-mlops-prod" in after["roles"]) and ("other-project-dev" in after["roles"])
    assert (FN, foreign_api) in after["apis"]
    assert len(after["apis"]) == len(before["apis"]) - 1
    assert after["buckets"] == before["buckets"]  # prod's package is still in it
    assert all(not key.startswith(f"{FN}/") for key in after["objects"])
    assert any(key.startswith("iris-mlops-prod/") for key in after["objects"])
    assert any(s["resource"].startswith("http api") for s in result["skipped_foreign"])
    figures.record("safety", bystander_envs_untouched=3)


FOREIGN_KINDS = ["iam role", "lambda function", "log group"]  # names unique in an account


@pytest.mark.parametrize("kind", FOREIGN_KINDS)
def test_deploy_refuses_to_adopt_a_foreign_resource_of_our_name(
    aws_env: None, tmp_path: Path, kind: str
) -> None:
    with fresh_aws():
        iam, lam = aws_client("iam"), aws_client("lambda")
        if kind == "iam role":
            iam.create_role(RoleName=FN, AssumeRolePolicyDocument="{}")
        elif kind == "lambda function":
            role = iam.create_role(RoleName="theirs", AssumeRolePolicyDocument="{}")["Role"]
            lam.create_function(FunctionName=FN, Runtime="python3.12", Role=role["Arn"],
                                Handler="h.h", Code={"ZipFile": _zip_bytes()})
        else:
            aws_client("logs").create_log_group(logGroupName=f"/aws/lambda/{FN}")
        before = _world_light()
        faults = Faults()
        with pytest.raises(UsageError) as caught:
            run_deploy(make_cfg(), ArtifactStore(tmp_path / "a"), make_package(tmp_path / "p"),
                       faults)
        assert kind in str(caught.value) and FN in str(caught.value)
        assert faults.mutating == []
        assert _world_light() == before
    figures.record("safety", foreign_resources_refused=1)


def test_deploy_leaves_a_foreign_api_of_our_name_alone_and_makes_its_own_beside_it(
    aws_env: None, tmp_path: Path
) -> None:
    """API names are not unique: an API of our name without our tags is never adopted or
    changed; the env gets its own API, and the other keeps its routes, tags and stages."""
    with fresh_aws():
        gw = aws_client("apigatewayv2")
        theirs = gw.create_api(Name=FN, ProtocolType="HTTP", Tags={"owner": "web-team"})["ApiId"]
        gw.create_route(ApiId=theirs, RouteKey="GET /theirs")
        before = (gw.get_api(ApiId=theirs), gw.get_routes(ApiId=theirs)["Items"])
        run_deploy(make_cfg(), ArtifactStore(tmp_path / "a"), make_package(tmp_path / "p"),
                   Faults())
        after = (gw.get_api(ApiId=theirs), gw.get_routes(ApiId=theirs)["Items"])
        ours = [a for a in gw.get_apis()["Items"] if a["ApiId"] != theirs]
    assert before[0]["Tags"] == after[0]["Tags"] and before[1] == after[1]
    assert len(ours) == 1 and ours[0]["Tags"]["iris-mlops:env"] == "dev"
    figures.record("safety", foreign_apis_left_alone=1)


def _world_light() -> dict[str, Any]:
    iam, lam = aws_client("iam"), aws_client("lambda")
    return {
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "functions": sorted(f["FunctionName"] for f in lam.list_functions()["Functions"]),
        "apis": sorted(a["ApiId"] for a in aws_client("apigatewayv2").get_apis()["Items"]),
        "log_groups": sorted(
            g["logGroupName"] for g in aws_client("logs").describe_log_groups()["logGroups"]
        ),
    }


def test_deployed_iam_policy_and_lambda_permission_are_least_privilege(
    aws_env: None, tmp_path: Path
) -> None:
    with fresh_aws():
        result = run_deploy(make_cfg(), ArtifactStore(tmp_path / "a"),
                            make_package(tmp_path / "p"), Faults())
        iam, lam = aws_client("iam"), aws_client("lambda")
        names = iam.list_role_policies(RoleName=FN)["PolicyNames"]
        assert len(names) == 1
        document = iam.get_role_policy(RoleName=FN, PolicyName=names[0])["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        assert iam.list_attached_role_policies(RoleName=FN)["AttachedPolicies"] == []
        trust = iam.get_role(RoleName=FN)["Role"]["AssumeRolePolicyDocument"]
        policy = lam.get_policy(FunctionName=FN, Qualifier="live")["Policy"]
        api_ids = [a["ApiId"] for a in aws_client("apigatewayv2").get_apis()["Items"]]
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    actions = statement["Action"] if isinstance(statement["Action"], list) else [
        statement["Action"]]
    assert set(actions) <= {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert statement["Resource"] == (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{FN}:*"
    )
    assert "*" not in (statement["Resource"] if isinstance(statement["Resource"], list) else [
        statement["Resource"]])
    assert "NotAction" not in statement and "NotResource" not in statement
    (trusted,) = trust["Statement"]
    assert trusted["Principal"] == {"Service": "lambda.amazonaws.com"}
    permissions = json.loads(policy)["Statement"]
    (api_id,) = api_ids
    assert sorted(p["Condition"]["ArnLike"]["AWS:SourceArn"] for p in permissions) == [
        f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*/GET/health",
        f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*/POST/predict",
    ]
    for permission in permissions:
        assert permission["Principal"] in ({"Service": "apigateway.amazonaws.com"},
                                           "apigateway.amazonaws.com")
        assert permission["Resource"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FN}:live"
    assert result["url"].startswith(f"https://{api_id}.")
    figures.record("safety", policy_statements_checked=3)


# -- packaging ----------------------------------------------------------------------------------
PLANTED = {
    ".env": b"AWS_SECRET_ACCESS_KEY=plantedSecretDotEnv\n",
    ".aws/credentials": b"[default]\naws_secret_access_key = plantedSecretCredentials\n",
    "id_rsa": b"-----BEGIN OPENSSH PRIVATE KEY-----\nplantedSecretSshKey\n",
    ".git/config": b"[remote]\n url = https://plantedSecretGit@example.invalid\n",
    "iris_runtime/evil.py": b"planted = 'plantedSecretShadow'\n",
    "model/extra.json": b'{"planted": "plantedSecretModelDir"}',
}


def test_secrets_planted_in_the_project_never_reach_the_zip(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = trained.copy_to(tmp_path / "project")
    for rel, data in PLANTED.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_bytes(data)
    monkeypatch.chdir(project)
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(_app(), ["package", "--force", "--json"])
    assert result.exit_code == 0, result.output
    path = Path(json.loads(result.stdout)["path"])
    if not path.is_absolute():
        path = project / path
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        contents = b"".join(archive.read(n) for n in names)
    assert all(n.startswith(("iris_runtime/", "model/")) for n in names), names
    assert sorted(n for n in names if n.startswith("model/")) == [
        "model/manifest.json", "model/model.json"]
    runtime = Path(__file__).resolve().parents[2] / "mlops_cli" / "runtime"
    expected_py = {f"iris_runtime/{p.name}" for p in runtime.glob("*.py")}
    shipped_py = {n for n in names if n.endswith(".py")}
    assert "iris_runtime/handler.py" in shipped_py and shipped_py <= expected_py
    assert b"plantedSecret" not in contents and b"plantedSecret" not in path.read_bytes()
    figures.record("safety", planted_secrets=len(PLANTED), zip_entries=len(names),
                   planted_in_zip=0)


def _app() -> Any:
    from mlops_cli.cli import app

    return app


def _evil_zip(path: Path, name: str, mode: int = stat.S_IFREG | 0o644) -> PackageInfo:
    from mlops_cli.artifacts import sha256_file
    from mlops_cli.targets.local.fixtures import PROBE_HANDLER

    with zipfile.ZipFile(path, "w") as archive:
        for entry, data in (("iris_runtime/__init__.py", b""),
                            ("iris_runtime/handler.py", PROBE_HANDLER.encode())):
            archive.writestr(entry, data)
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        archive.writestr(info, b"/etc/passwd" if stat.S_ISLNK(mode) else b"owned")
    return PackageInfo(path=path, sha256=sha256_file(path), size_bytes=path.stat().st_size,
                       unzipped_bytes=100, flavor="portable", runtime="python3.12",
                       architecture="x86_64", model_id="evil")


EVIL_ENTRIES = {
    "dot-dot": ("../../escaped.txt", stat.S_IFREG | 0o644),
    "nested-dot-dot": ("model/../../../escaped.txt", stat.S_IFREG | 0o644),
    "absolute": ("/tmp/iris-mlops-escaped.txt", stat.S_IFREG | 0o644),
    "backslashes": ("..\\..\\escaped.txt", stat.S_IFREG | 0o644),
    "symlink": ("model/link", stat.S_IFLNK | 0o777),
    "fifo": ("model/pipe", stat.S_IFIFO | 0o644),
}


@pytest.mark.parametrize("case", sorted(EVIL_ENTRIES))
def test_deploy_local_refuses_zip_slip_and_links_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    cache = tmp_path / "deep" / "cache"
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(cache))
    name, mode = EVIL_ENTRIES[case]
    package = _evil_zip(tmp_path / "evil.zip", name, mode)
    store = ArtifactStore(tmp_path / "artifacts")
    cfg = EnvConfig(env="evil", path=None, settings=Settings.model_validate({"local": {"port": 0}}))
    with pytest.raises(IrisError) as caught:
        local.deploy(cfg, store, package, NullReporter())
    assert "refusing to unpack" in str(caught.value) and repr(name) in str(caught.value)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not Path("/tmp/iris-mlops-escaped.txt").exists()
    assert not (cache / "local" / package.sha256).exists()  # nothing half-unpacked is kept
    assert store.read_record("evil") is None
    figures.record("safety", unsafe_zip_entries_refused=1)


# -- the local server: loopback only, no traces, clean logs ---------------------------------------
@pytest.fixture(scope="module")
def secret_server(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The real package served locally by a deploy run with AWS credentials in its environment."""
    tmp = tmp_path_factory.mktemp("secret")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IRIS_MLOPS_CACHE", str(tmp / "cache"))
        mp.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
        mp.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
        mp.setenv("AWS_SESSION_TOKEN", FAKE_TOKEN)
        store = ArtifactStore(tmp / "artifacts")
        cfg = EnvConfig(env="secret", path=None, settings=Settings.model_validate(
            {"local": {"port": 0, "workers": 2}, "lambda": {"timeout_s": 3}}))
        result = local.deploy(cfg, store, trained.package, NullReporter())
        result["port"] = int(result["url"].rsplit(":", 1)[1])
        try:
            yield result
        finally:
            local.teardown(cfg, store, NullReporter())


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_the_local_server_and_its_workers_listen_on_127_0_0_1_only(secret_server: dict) -> None:
    from mlops_cli.targets.local.process import server_processes

    inodes: set[str] = set()
    for pid in server_processes(secret_server["pid"]):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN, one of our sockets
                listening.append(fields[1])
    port_hex = f"{secret_server['port']:04X}"
    # 127.0.0.1 only: the HTTP front, and one Lambda Runtime API per worker (what its
    # awslambdaric polls); nothing else listens
    assert all(address.startswith("0100007F:") for address in listening), listening
    assert f"0100007F:{port_hex}" in listening
    assert len(listening) == 1 + secret_server["workers"], listening
    figures.record("safety", listening_sockets=len(listening))


def test_no_process_of_the_local_endpoint_holds_the_deployers_aws_credentials(
    secret_server: dict,
) -> None:
    """The server outlives the CLI: its environment (readable in /proc by the same user, and by
    every tool that dumps it) must not keep the AWS keys of whoever ran `deploy`."""
    from mlops_cli.targets.local.process import server_processes

    members = server_processes(secret_server["pid"])
    assert len(members) == 1 + secret_server["workers"], members
    for pid in members:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        for secret in (FAKE_SECRET, FAKE_TOKEN, FAKE_KEY_ID):
            assert secret.encode() not in environ, (pid, secret[:4])
    figures.record("safety", local_processes_without_credentials=len(members))


def test_no_answer_carries_a_stack_trace_and_logs_hold_no_features_or_secrets(
    secret_server: dict,
) -> None:
    port = secret_server["port"]
    distinct_text = [repr(v) for v in DISTINCT]
    bodies = [
        json.dumps({"features": DISTINCT}),
        json.dumps({"instances": [DISTINCT, DISTINCT]}),
        json.dumps({"features": [*DISTINCT[:3], str(DISTINCT[3])]}),
        json.dumps({"features": [*DISTINCT[:3], 4123456.789]}),
        json.dumps({"features": DISTINCT[:3]}),
        json.dumps({"features": DISTINCT, "secret": FAKE_SECRET[:10]})[:-3],  # broken JSON
        "{" * 5000,
    ]
    answers = []
    for body in bodies:
        status, data = _request(port, "POST", "/predict", body.encode())
        answers.append((status, data))
        assert status in (200, 400, 413), (status, data)
        assert b"Traceback" not in data and b'File "' not in data
    assert answers[0][0] == 200 and answers[1][0] == 200
    for status, data in answers[2:]:
        assert status == 400
        for text in distinct_text:
            assert text.encode() not in data  # errors say where, never what
    _request(port, "GET", "/health")
    log = Path(secret_server["log"]).read_text(encoding="utf-8", errors="replace")
    assert log.count('"msg":"request"') >= len(bodies)  # the handler's lines are in it
    for text in [*distinct_text, "4123456.789", FAKE_SECRET, FAKE_TOKEN, FAKE_KEY_ID]:
        assert text not in log, text
    assert "Traceback" not in log
    figures.record("safety", requests_with_marked_values=len(bodies), marked_values_in_logs=0)


# -- the CLI never prints AWS secrets -------------------------------------------------------------
def test_the_cli_never_prints_aws_secrets(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.retries.standard as standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)
    project = trained.copy_to(tmp_path / "project")
    monkeypatch.chdir(project)
    for name in list(os.environ):
        if name.startswith(("AWS_", "IRIS_MLOPS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    commands = [
        ["config", "show", "--env", "dev"],
        ["config", "show", "--env", "dev", "--json"],
        ["deploy", "--env", "dev", "--no-smoke-test"],
        ["deploy", "--env", "dev", "--no-smoke-test", "--json"],
        ["deploy", "--env", "dev", "--plan", "--json"],
        ["status", "--env", "dev"],
        ["status", "--env", "dev", "--json"],
        ["invoke", "5.1", "3.5", "1.4", "0.2", "--env", "dev", "--direct", "--json"],
        ["logs", "--env", "dev", "--json"],
        ["rollback", "--env", "dev"],
        ["deploy", "--env", "dev", "--profile", "nope"],
        ["teardown", "--env", "dev", "--yes", "--json"],
        ["teardown", "--env", "dev", "--yes"],
    ]
    outputs = []
    with fresh_aws():
        for args in commands:
            result = runner.invoke(_app(), args)
            outputs.append((args, result.exit_code, result.output))
    # an unreachable endpoint (a closed loopback port): the error names it, not the keys
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    for args in (["status", "--env", "dev"], ["deploy", "--env", "dev", "--json"]):
        result = runner.invoke(_app(), args)
        outputs.append((args, result.exit_code, result.output))
        assert result.exit_code in (1, 2), result.output
    assert outputs[2][1] == 0, outputs[2]  # the deploy really ran
    for args, code, text in outputs:
        for secret in (FAKE_SECRET, FAKE_TOKEN, FAKE_KEY_ID, FAKE_SECRET[:16]):
            assert secret not in text, (args, code)
        assert "Traceback" not in text, (args, text)
    figures.record("safety", cli_commands_checked=len(outputs), secrets_printed=0)
