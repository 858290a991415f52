"""The environment the local worker gives handler code is Lambda's, and nothing of the caller's."""

from __future__ import annotations

from mlops_cli.targets.local.spec import ServerSpec, worker_environment


def _spec(**overrides) -> ServerSpec:
    args = dict(
        env="local", root="/cache/local/abc", handler="iris_runtime.handler.lambda_handler",
        python="/usr/bin/python3.12", runtime="python3.12", port=0, workers=2, timeout_s=10,
        memory_mb=512, function_name="iris-mlops-local", region="eu-west-1",
        environment={"LOG_LEVEL": "debug"}, runtime_client="/runtime",
    )
    args.update(overrides)
    return ServerSpec(**args)


def test_worker_environment_is_lambdas(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASECRET")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_PROFILE", "prod")
    env = worker_environment(_spec(), "2024/01/01/[$LATEST]abc", "127.0.0.1:9001")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "iris-mlops-local"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["LAMBDA_TASK_ROOT"] == "/cache/local/abc"
    assert env["LAMBDA_RUNTIME_DIR"] == "/runtime"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["_HANDLER"] == "iris_runtime.handler.lambda_handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/iris-mlops-local"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == "2024/01/01/[$LATEST]abc"
    assert env["TZ"] == ":UTC"
    assert env["LOG_LEVEL"] == "debug"
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"} & set(env)


def test_spec_round_trips_through_json_and_its_digest_tracks_what_is_served():
    spec = _spec()
    assert ServerSpec.from_json(spec.to_json()) == spec
    assert _spec(access_log=False).digest() == spec.digest()
    assert _spec(workers=3).digest() != spec.digest()
    assert _spec(root="/cache/local/def").digest() != spec.digest()
    assert _spec(environment={}).digest() != spec.digest()
    assert _spec(runtime_client="/other").digest() != spec.digest()
    assert spec.function_arn == "arn:aws:lambda:eu-west-1:123456789012:function:iris-mlops-local"
