"""AWS's own linter accepts the exported templates of every shipped aws env, in both formats.

cfn-lint checks each resource's properties against CloudFormation's schemas (types, allowed
values, required properties, which attributes GetAtt may read) and, for SAM, runs AWS's SAM
translator first — so a template that would fail at `aws cloudformation deploy` time for a
schema reason fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_cli.config import available_envs, load_env
from mlops_cli.targets.aws.template import FORMATS, CodeLocation, build_template, render
from tests.aws.conftest import make_cfg

REPO = Path(__file__).resolve().parents[2]
AWS_ENVS = [
    env
    for env in available_envs(REPO / "configs")
    if load_env(env, REPO / "configs").settings.target == "aws"
]


def lint(text: str, region: str) -> list[str]:
    from cfnlint.api import ManualArgs, lint

    matches = lint(text, config=ManualArgs(regions=[region]))
    return [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches]


def test_every_shipped_aws_env_is_linted() -> None:
    assert {"dev", "prod"} <= set(AWS_ENVS) and "local" not in AWS_ENVS


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("env", AWS_ENVS)
def test_cfn_lint_finds_nothing_in_the_export_of_a_shipped_env(env, fmt, package) -> None:
    cfg = load_env(env, REPO / "configs")
    code = CodeLocation("my-artifacts", f"{cfg.function_name}/{package.sha256}.zip")
    template = render(build_template(cfg, package, code, fmt))

    assert lint(template, cfg.settings.aws.region or "eu-west-1") == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_cfn_lint_accepts_every_optional_setting(fmt, package) -> None:
    cfg = make_cfg(
        lambda__environment={"LOG_LEVEL": "debug"},
        lambda__reserved_concurrency=5,
        api__cors_origins=["https://example.org", "https://app.example.org"],
        tags={"owner": "ml-team", "cost-center": "42"},
    )
    template = render(build_template(cfg, package, CodeLocation("b-1", "k.zip"), fmt))

    assert lint(template, "eu-west-1") == []


def test_the_linter_would_catch_a_broken_template(package) -> None:
    """Not a linter that accepts anything: a wrong property type is reported."""
    template = build_template(make_cfg(), package, CodeLocation("b-1", "k.zip"), "cloudformation")
    template["Resources"]["Function"]["Properties"]["MemorySize"] = "lots"

    found = lint(render(template), "eu-west-1")
    assert any("'lots' is not of type 'integer'" in line for line in found), found
