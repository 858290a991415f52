"""`api.auth` as a user meets it: the config key, what deploy says, which region invoke signs for,
and what a 403 tells the user to do."""

from __future__ import annotations

import time

import pytest

from mlops_cli.cli import _auth_line, _forbidden_hint
from mlops_cli.config import ConfigError, EnvConfig, Settings, validate_settings
from mlops_cli.errors import UsageError
from mlops_cli.signing import signer_for, signing_region


def cfg(env: str = "e", **raw: object) -> EnvConfig:
    return EnvConfig(env=env, path=None, settings=Settings.model_validate(raw))


def test_auth_defaults_to_none_and_accepts_iam():
    assert Settings().api.auth == "none"
    assert validate_settings({"api": {"auth": "iam"}}, "x.yaml").api.auth == "iam"


def test_an_unknown_auth_mode_names_the_field_and_the_choices():
    with pytest.raises(ConfigError) as err:
        validate_settings({"api": {"auth": "cognito"}}, "configs/dev.yaml")
    assert "configs/dev.yaml: api.auth: 'cognito' is not allowed" in str(err.value)
    assert "'none'" in str(err.value) and "'iam'" in str(err.value)


def test_deploy_says_a_public_endpoint_is_public():
    line = " ".join(_auth_line(cfg()).split())
    assert "the endpoint is public" in line and "api.auth: iam" in line


def test_deploy_names_the_signing_scope_of_a_protected_endpoint():
    line = _auth_line(cfg(api={"auth": "iam"}, aws={"region": "eu-central-1"}))
    assert "SigV4" in line and "execute-api" in line and "eu-central-1" in line


def test_local_envs_sign_for_the_servers_region(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert signing_region(cfg(target="local")) == "us-east-1"
    assert signing_region(cfg(target="local", aws={"region": "eu-west-3"})) == "eu-west-3"


def test_aws_envs_sign_for_the_env_or_chain_region(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    assert signing_region(cfg(target="aws")) == "ap-south-1"
    assert signing_region(cfg(target="aws", aws={"region": "eu-west-1"})) == "eu-west-1"


def test_a_public_env_has_no_signer_and_iam_without_credentials_is_a_usage_error(monkeypatch):
    assert signer_for(cfg()) is None
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(UsageError, match=r"api\.auth: iam"):
        signer_for(cfg(api={"auth": "iam"}))


def test_a_signer_never_shows_the_secret(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREPRTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    signer = signer_for(cfg(api={"auth": "iam"}))
    assert signer is not None and "very-secret-value" not in repr(signer)


def test_a_403_says_what_to_do_for_each_kind_of_env():
    assert "api.auth: iam" in _forbidden_hint(cfg())
    assert "deploy --env e" in _forbidden_hint(cfg(api={"auth": "iam"}))
    assert "execute-api:Invoke" in _forbidden_hint(cfg(target="aws", api={"auth": "iam"}))


def test_invoke_signs_for_execute_api_in_the_envs_region_with_the_session_token(monkeypatch):
    from mlops_cli.targets.local import sigv4

    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASIGNTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sign-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "sign-token")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    signer = signer_for(cfg(target="aws", api={"auth": "iam"}, aws={"region": "eu-west-1"}))
    assert signer is not None
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/predict"
    body = b'{"features": [5.1, 3.5, 1.4, 0.2]}'
    headers = signer("POST", url, body, {"content-type": "application/json"})
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "sign-token"
    verdict = sigv4.verify(
        method="POST", raw_path="/predict", raw_query="",
        headers=[("Host", "abc123.execute-api.eu-west-1.amazonaws.com"), *headers.items()],
        body=body, credentials=sigv4.Credentials("AKIASIGNTEST", "sign-secret", "sign-token"),
        region="eu-west-1", now=time.time(),
    )
    assert verdict.ok
