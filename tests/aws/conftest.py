"""moto in-process fixtures for the aws target: fake credentials, eu-west-1, no real endpoint.

`mock_aws` is bypassed when AWS_ENDPOINT_URL is set, and botocore would probe the EC2 metadata
service for credentials when none are set, so both are pinned here for every test.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import EnvConfig, validate_settings
from mlops_cli.packaging.result import PackageInfo

REGION = "eu-west-1"
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Head")


def set_fake_aws_env(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """Fake credentials, one region, no real endpoint, no metadata service."""
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-aws-credentials"))


@pytest.fixture(autouse=True)
def fake_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    set_fake_aws_env(monkeypatch, tmp_path)


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    from tests.aws.realities import lambda_version_numbers_never_reused, s3_requests_over_tls

    with (
        mock_aws(config={"lambda": {"use_docker": False}}),
        s3_requests_over_tls(),
        lambda_version_numbers_never_reused(),
    ):
        yield


def make_cfg(env: str = "dev", **overrides: Any) -> EnvConfig:
    raw: dict[str, Any] = {
        "target": "aws",
        "project": "iris-mlops",
        "aws": {"region": REGION},
        "lambda": {"memory_mb": 512, "timeout_s": 10, "log_retention_days": 14},
        "api": {"throttle_rate": 50, "throttle_burst": 100, "cors_origins": ["*"]},
        "tags": {"owner": "ml-team"},
    }
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return EnvConfig(env=env, path=None, settings=validate_settings(raw, source=f"{env}.yaml"))


@pytest.fixture
def cfg() -> EnvConfig:
    return make_cfg()


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def make_package(
    directory: Path, content: str = "v1", model_id: str = "m-test", size_bytes: int | None = None
) -> PackageInfo:
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("iris_runtime/handler.py", date_time=(1980, 1, 1, 0, 0, 0))
        zf.writestr(info, f"def lambda_handler(event, context):\n    return {content!r}\n")
    path = directory / f"iris-{content}.zip"
    path.write_bytes(buf.getvalue())
    return PackageInfo(
        path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        size_bytes=size_bytes if size_bytes is not None else path.stat().st_size,
        unzipped_bytes=100,
        flavor="portable",
        runtime="python3.12",
        architecture="x86_64",
        model_id=model_id,
    )


@pytest.fixture
def package(tmp_path: Path) -> PackageInfo:
    return make_package(tmp_path / "pkg")


@dataclass
class CallLog:
    """Every API call the tool makes, via botocore's before-call event on its own clients."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def hook(self, model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name))

    @property
    def mutating(self) -> list[str]:
        return [op for _, op in self.calls if not op.startswith(READ_ONLY_PREFIXES)]

    @property
    def read_only(self) -> list[str]:
        return [op for _, op in self.calls if op.startswith(READ_ONLY_PREFIXES)]

    def reset(self) -> None:
        self.calls.clear()


@pytest.fixture
def calls() -> CallLog:
    return CallLog()


@pytest.fixture
def ctx(aws: None, cfg: EnvConfig, calls: CallLog) -> Any:
    return counted_context(cfg, calls)


def counted_context(cfg: EnvConfig, log: CallLog) -> Any:
    from mlops_cli.targets.aws.session import AwsContext, connect

    base = connect(cfg)

    class Counted(AwsContext):
        def on_new_client(self, client: Any) -> None:
            client.meta.events.register("before-call", log.hook)

    return Counted(session=base.session, region=base.region, account_id=base.account_id)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Simulated time for botocore's waiters and retry backoff (they call time.sleep), and for
    the executor when a test hands it `clock.sleep`: `clock.now` is how long it took."""
    import time

    from tests.aws.behaviour import SimClock

    sim = SimClock()
    monkeypatch.setattr(time, "sleep", sim.sleep)
    return sim
