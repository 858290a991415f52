"""Lambda's fixed limits are checked from the config before anything is built or called."""

from __future__ import annotations

import pytest

from mlops_cli.config import EnvConfig, validate_settings
from mlops_cli.errors import UsageError
from mlops_cli.packaging.result import S3_UPLOAD_THRESHOLD
from mlops_cli.targets.aws.limits import check, environment_bytes, require_within_limits


def _cfg(**lam) -> EnvConfig:
    tags = lam.pop("tags", {})
    raw = {"target": "aws", "aws": {"region": "eu-west-1"}, "lambda": lam, "tags": tags}
    return EnvConfig(env="dev", path=None, settings=validate_settings(raw, source="dev.yaml"))


def test_a_default_config_is_within_every_limit():
    report = check(_cfg())
    assert report.problems == [] and report.warnings == []


def test_environment_over_4_kb_in_total_is_refused_naming_the_limit():
    cfg = _cfg(environment={f"VAR_{i}": "x" * 500 for i in range(9)})
    assert environment_bytes(cfg.settings.lambda_.environment) > 4096
    with pytest.raises(UsageError) as err:
        require_within_limits(cfg)
    assert err.value.exit_code == 2
    assert "4,096 bytes (4 KB)" in str(err.value)


def test_environment_just_under_4_kb_passes():
    variables = {"A": "x" * (4096 - len('{"A":""}'))}
    assert environment_bytes(variables) == 4096
    assert check(_cfg(environment=variables)).problems == []


def test_every_tag_problem_is_reported_on_its_own_line():
    tags = {"k" * 129: "v", "aws:owner": "me", "AWS:team": "x", "long": "v" * 257}
    tags.update({f"t{i}": "v" for i in range(47)})
    with pytest.raises(UsageError) as err:
        require_within_limits(_cfg(tags=tags))
    lines = str(err.value).splitlines()
    assert len(lines) == 5
    assert "53 tags" in lines[0] and "limit of 50 tags" in lines[0]
    assert "limit of 128 for a tag key" in lines[1]
    assert sum("reserved for AWS" in line for line in lines) == 2
    assert "limit of 256 for a tag value" in lines[4]
    assert all(line.startswith("the dev config: ") for line in lines)


def test_a_timeout_over_30_s_is_accepted_with_a_warning_about_the_http_api():
    report = require_within_limits(_cfg(timeout_s=60))
    assert report.problems == []
    (warning,) = report.warnings
    assert "30 s" in warning and "HTTP API" in warning


def test_zips_above_48_mib_go_through_s3(tmp_path):
    from tests.aws.conftest import make_package

    assert S3_UPLOAD_THRESHOLD == 48 * 1024 * 1024
    assert make_package(tmp_path, size_bytes=S3_UPLOAD_THRESHOLD + 1).needs_s3_upload
    assert not make_package(tmp_path, size_bytes=S3_UPLOAD_THRESHOLD).needs_s3_upload
    assert make_package(tmp_path, size_bytes=49 * 1024 * 1024).needs_s3_upload


def test_keep_versions_defaults_to_5_and_is_bounded():
    assert _cfg().settings.lambda_.keep_versions == 5
    assert _cfg(keep_versions=100).settings.lambda_.keep_versions == 100
    for bad in (0, 101):
        with pytest.raises(UsageError, match="keep_versions"):
            _cfg(keep_versions=bad)
