"""Pure logic of the aws target: desired state, normalization, smoke comparison, placeholders."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops_cli.errors import IrisError, UsageError
from mlops_cli.targets.aws.desired import (
    architecture_diff,
    build_desired,
    function_config_diff,
    is_ours,
    model_id_from_description,
    normalize_cors,
    normalize_policy,
    tags_missing,
)
from mlops_cli.targets.aws.model import FileBytes, Fmt, MissingVariable, PlannedCall, Var, resolve
from mlops_cli.targets.aws.ops import parse_since
from mlops_cli.targets.aws.smoke import check, differing_rows, remote_predictions
from tests.aws.conftest import make_cfg

ACCOUNT = "111122223333"


def test_names_tags_and_arns_come_from_the_config():
    d = build_desired(make_cfg(env="prod", tags={"team": "ml"}), "eu-west-1", ACCOUNT)
    assert d.function_name == d.role_name == d.api_name == "iris-mlops-prod"
    assert d.tags == {"team": "ml", "iris-mlops:project": "iris-mlops", "iris-mlops:env": "prod"}
    assert d.alias_arn == f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:iris-mlops-prod:live"
    assert d.route_source_arn("abc123", "POST /predict") == (
        f"arn:aws:execute-api:eu-west-1:{ACCOUNT}:abc123/*/POST/predict"
    )
    assert d.bucket_name == f"iris-mlops-artifacts-{ACCOUNT}-eu-west-1"
    assert d.url("abc123") == "https://abc123.execute-api.eu-west-1.amazonaws.com"
    assert d.log_group == "/aws/lambda/iris-mlops-prod"


def test_bucket_name_holds_the_project_and_stays_a_valid_s3_name():
    from mlops_cli.targets.aws.desired import artifact_bucket_name

    assert artifact_bucket_name("churn", ACCOUNT, "eu-west-1") == (
        f"churn-artifacts-{ACCOUNT}-eu-west-1"
    )
    long_a = artifact_bucket_name("a" * 31, ACCOUNT, "ap-southeast-2")
    long_b = artifact_bucket_name("a" * 30 + "b", ACCOUNT, "ap-southeast-2")
    assert len(long_a) <= 63 and len(long_b) <= 63 and long_a != long_b
    assert long_a.endswith(f"-artifacts-{ACCOUNT}-ap-southeast-2") and "--" not in long_a


def test_custom_function_name_renames_every_resource():
    d = build_desired(make_cfg(lambda__function_name="custom-fn"), "eu-west-1", ACCOUNT)
    assert (d.role_name, d.api_name, d.log_group) == (
        "custom-fn",
        "custom-fn",
        "/aws/lambda/custom-fn",
    )


def test_inline_policy_allows_only_writing_to_the_functions_own_log_group():
    d = build_desired(make_cfg(), "eu-west-1", ACCOUNT)
    (statement,) = d.inline_policy["Statement"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == (
        f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/iris-mlops-dev:*"
    )
    assert "*" not in statement["Resource"].split(":log-group:")[0]


def test_cors_is_absent_when_no_origins_are_configured():
    assert build_desired(make_cfg(api__cors_origins=[]), "eu-west-1", ACCOUNT).cors() is None
    cors = build_desired(make_cfg(), "eu-west-1", ACCOUNT).cors()
    assert cors["AllowOrigins"] == ["*"] and set(cors["AllowMethods"]) == {"GET", "POST", "OPTIONS"}


def test_policies_equal_up_to_key_order_encoding_and_single_item_lists():
    a = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["x:Y"], "Resource": "r"}],
    }
    b = json.dumps(
        {
            "Statement": {"Resource": "r", "Action": "x:Y", "Effect": "Allow"},
            "Version": "2012-10-17",
        }
    )
    encoded = quote(json.dumps(a), safe="")  # how IAM returns documents
    assert normalize_policy(a) == normalize_policy(b) == normalize_policy(encoded)
    assert normalize_policy(a) != normalize_policy({**a, "Version": "2008-10-17"})


@given(
    st.lists(st.sampled_from(["a:B", "c:D", "e:F", "g:H"]), min_size=1, unique=True), st.randoms()
)
def test_policy_action_order_never_counts_as_drift(actions, rnd):
    shuffled = list(actions)
    rnd.shuffle(shuffled)
    doc = {"Statement": [{"Action": actions}]}
    assert normalize_policy(doc) == normalize_policy(
        json.dumps({"Statement": [{"Action": shuffled}]})
    )


def test_cors_comparison_ignores_order_and_case():
    assert normalize_cors(
        {"AllowOrigins": ["*"], "AllowMethods": ["post", "GET"], "AllowHeaders": ["Content-Type"]}
    ) == normalize_cors(
        {"AllowOrigins": ["*"], "AllowMethods": ["GET", "POST"], "AllowHeaders": ["content-type"]}
    )
    assert normalize_cors({}) is None and normalize_cors(None) is None


def test_function_config_diff_names_each_changed_field():
    d = build_desired(make_cfg(lambda__memory_mb=1024), "eu-west-1", ACCOUNT)
    reported = {
        "Runtime": "python3.12",
        "Handler": d.function.handler,
        "Role": d.role_arn,
        "MemorySize": 512,
        "Timeout": 10,
        "Architectures": ["x86_64"],
        "Environment": {"Variables": {"IRIS_MLOPS_ENV": "dev"}},
    }
    assert function_config_diff(d.function, reported) == ["memory 512 -> 1024"]
    assert architecture_diff(d.function, reported) is None
    assert architecture_diff(d.function, {**reported, "Architectures": ["arm64"]})
    assert function_config_diff(d.function, {**reported, "MemorySize": 1024}) == []
    # The env's name always travels in IRIS_MLOPS_ENV (the `env` dimension of its metrics)
    assert d.function.environment == {"IRIS_MLOPS_ENV": "dev"}
    unset = {**reported, "MemorySize": 1024, "Environment": {}}
    assert function_config_diff(d.function, unset) == [
        "environment {} -> {'IRIS_MLOPS_ENV': 'dev'}"
    ]


def test_ownership_needs_both_tags():
    d = build_desired(make_cfg(), "eu-west-1", ACCOUNT)
    assert is_ours(d, {"iris-mlops:project": "iris-mlops", "iris-mlops:env": "dev"})
    assert not is_ours(d, {"iris-mlops:project": "iris-mlops"})
    assert not is_ours(d, {"iris-mlops:project": "iris-mlops", "iris-mlops:env": "prod"})
    assert not is_ours(d, None)


def test_tags_missing_ignores_extra_tags_in_aws():
    assert tags_missing({"a": "1", "b": "2"}, {"a": "1", "z": "9"}) == {"b": "2"}


def test_model_id_round_trips_through_the_version_description():
    d = build_desired(make_cfg(), "eu-west-1", ACCOUNT)
    assert model_id_from_description("iris-mlops model abc123") == "abc123"
    assert model_id_from_description("something else") is None
    assert d.version_description.startswith("iris-mlops model")


def test_placeholders_resolve_from_earlier_results(tmp_path):
    (tmp_path / "z").write_bytes(b"zip")
    params = {
        "ApiId": Var("api_id"),
        "Target": Fmt("integrations/{integration_id}"),
        "Code": {"ZipFile": FileBytes(str(tmp_path / "z"))},
        "List": [Var("api_id")],
    }
    out = resolve(params, {"api_id": "a1", "integration_id": "i9"})
    assert out == {
        "ApiId": "a1",
        "Target": "integrations/i9",
        "Code": {"ZipFile": b"zip"},
        "List": ["a1"],
    }
    with pytest.raises(MissingVariable):
        resolve(Var("version"), {})


def test_planned_call_prints_as_action_resource_reason():
    call = PlannedCall(
        "lambda", "update_function_configuration", {}, "lambda function f", "memory 512 -> 1024"
    )
    assert call.to_dict() == {
        "action": "update_function_configuration",
        "resource": "lambda function f",
        "reason": "memory 512 -> 1024",
    }


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("5", 300)]
)
def test_since_durations(text, seconds):
    assert parse_since(text) == seconds


def test_bad_since_is_a_usage_error():
    with pytest.raises(UsageError):
        parse_since("yesterday")


# smoke comparison ----------------------------------------------------------------------------
ROWS = [(5.1, 3.5, 1.4, 0.2), (7.0, 3.2, 4.7, 1.4)]


def test_matching_predictions_pass():
    check(lambda event: {"predictions": [{"prediction": 0}, {"prediction": 1}]}, [0, 1], ROWS)


def test_differing_rows_are_listed():
    with pytest.raises(
        IrisError, match=r"1 of 2 rows.*\[7.0, 3.2, 4.7, 1.4\]: local 1, deployed 2"
    ):
        check(
            lambda event: {"predictions": [{"prediction": 0}, {"prediction": 2}]}, [0, 1], ROWS, "3"
        )


def test_proxy_shaped_answers_are_unwrapped():
    answer = {"statusCode": 200, "body": json.dumps({"predictions": [{"prediction": 2}]})}
    assert remote_predictions(answer, 1) == [2]


@pytest.mark.parametrize(
    "answer", [{"error": {"code": "bad"}}, "nope", None, {"predictions": [{"prediction": 1}]}]
)
def test_unusable_answers_fail_the_smoke_test(answer):
    with pytest.raises(IrisError, match="smoke test"):
        remote_predictions(answer, 2)


def test_numpy_and_python_numbers_compare_equal():
    import numpy as np

    assert differing_rows(ROWS, [np.int64(0), 1], [0.0, 1]) == []
