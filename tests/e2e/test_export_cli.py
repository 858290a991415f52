"""`iris-mlops export` as a user runs it: offline with --code-uri, uploading with --code-bucket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.e2e.conftest import REGION

pytestmark = pytest.mark.e2e


def test_export_without_credentials_then_with_an_upload_to_s3(
    project: Path, run_cli: RunCli, aws_env: dict[str, str], boto, trained_project: Path
) -> None:
    offline = {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(project / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(project / "no-credentials"),
    }

    # --code-uri: no credentials anywhere, still a template.
    done = run_cli("export", "--env", "dev", "--format", "sam", "--code-uri",
                   "s3://pipeline/builds/7/iris.zip", "-o", "out/sam.json", env=offline)
    assert done.returncode == 0, done.stderr
    template = json.loads((project / "out" / "sam.json").read_text())
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert template["Parameters"]["CodeS3Key"]["Default"] == "builds/7/iris.zip"
    assert "sam deploy --template-file out/sam.json" in done.stdout

    # stdout: the template itself; --json: one object with it.
    piped = run_cli("export", "--env", "dev", "--code-uri", "s3://pipeline/k.zip", env=offline)
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["AWSTemplateFormatVersion"] == "2010-09-09"
    as_json = run_cli("export", "--env", "dev", "--code-uri", "s3://pipeline/k.zip", "--json",
                      env=offline)
    summary = json.loads(as_json.stdout)
    assert summary["format"] == "cloudformation" and summary["uploaded"] is False
    assert "AWS::Lambda::Alias" in {r["type"] for r in summary["resources"]}
    assert summary["template"]["Resources"]

    # --code-bucket without credentials: one clear line, exit 2.
    no_creds = run_cli("export", "--env", "dev", "--code-bucket", "b", env=offline)
    assert no_creds.returncode == 2 and "credentials" in no_creds.stderr
    assert "Traceback" not in no_creds.stderr

    # --code-bucket: uploads through the env's session (here a moto server), then reuses it.
    boto("s3").create_bucket(
        Bucket="team-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    first = run_cli("export", "--env", "prod", "--code-bucket", "team-artifacts", "--json",
                    env=aws_env)
    assert first.returncode == 0, first.stderr
    uploaded = json.loads(first.stdout)
    assert uploaded["uploaded"] is True
    key = uploaded["code_uri"].removeprefix("s3://team-artifacts/")
    assert key.startswith("iris-mlops-prod/") and key.endswith(".zip")
    boto("s3").head_object(Bucket="team-artifacts", Key=key)
    second = run_cli("export", "--env", "prod", "--code-bucket", "team-artifacts", "--json",
                     env=aws_env)
    assert json.loads(second.stdout)["uploaded"] is False


def test_export_refuses_local_envs_and_missing_code_location(run_cli: RunCli) -> None:
    local = run_cli("export", "--env", "local", "--code-uri", "s3://b/k.zip")
    assert local.returncode == 2 and "aws env" in local.stderr
    neither = run_cli("export", "--env", "dev")
    assert neither.returncode == 2 and "--code-bucket" in neither.stderr
