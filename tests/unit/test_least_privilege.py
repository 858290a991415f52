"""Route-scoped invoke statements, their stale-statement replacement, the adoption rule after an
ambiguous AddPermission, the TLS-only bucket policy and version retention — pure logic."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_cli.targets.aws.least_privilege import (
    route_sid,
    route_source_arn,
    statement_changes,
    statement_grants,
    tls_only_bucket_policy,
    wanted_statements,
)
from mlops_cli.targets.aws.retention import protected_versions, versions_to_delete

ROUTES = ("POST /predict", "GET /health")
ALIAS_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:iris-mlops-dev:live"


def _statement(sid: str, source_arn: str, resource: str = ALIAS_ARN) -> dict:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": resource,
        "Condition": {"ArnLike": {"AWS:SourceArn": source_arn}},
    }


def test_each_route_gets_its_own_statement_naming_method_and_path():
    wanted = wanted_statements(ROUTES, "aws", "eu-west-1", "123456789012", "abc123")
    assert [(w.sid, w.source_arn) for w in wanted] == [
        (
            "iris-mlops-apigw-post-predict",
            "arn:aws:execute-api:eu-west-1:123456789012:abc123/*/POST/predict",
        ),
        (
            "iris-mlops-apigw-get-health",
            "arn:aws:execute-api:eu-west-1:123456789012:abc123/*/GET/health",
        ),
    ]
    assert all("/*/*/*" not in str(w.source_arn) for w in wanted)


def test_source_arns_come_from_the_partition():
    assert route_source_arn("aws-cn", "cn-north-1", "1", "api", "GET /health").startswith(
        "arn:aws-cn:execute-api:cn-north-1:1:api/"
    )
    assert route_source_arn("aws-us-gov", "us-gov-west-1", "1", "api", "POST /predict") == (
        "arn:aws-us-gov:execute-api:us-gov-west-1:1:api/*/POST/predict"
    )


def test_matching_statements_mean_no_change():
    wanted = wanted_statements(ROUTES, "aws", "eu-west-1", "123456789012", "abc123")
    existing = [_statement(w.sid, str(w.source_arn)) for w in wanted]
    changes = statement_changes(existing, wanted, ALIAS_ARN)
    assert changes.remove == [] and changes.add == []


def test_statements_naming_an_old_api_are_removed_then_added_for_the_new_one():
    old = wanted_statements(ROUTES, "aws", "eu-west-1", "123456789012", "oldapi")
    new = wanted_statements(ROUTES, "aws", "eu-west-1", "123456789012", "newapi")
    existing = [_statement(w.sid, str(w.source_arn)) for w in old]
    changes = statement_changes(existing, new, ALIAS_ARN)
    assert sorted(sid for sid, _ in changes.remove) == sorted(w.sid for w in new)
    assert [w for w, _ in changes.add] == new
    assert all("oldapi" in why for _, why in changes.remove)


def test_api_about_to_be_created_replaces_every_statement_of_ours():
    old = wanted_statements(ROUTES, "aws", "eu-west-1", "123456789012", "oldapi")
    unknown = wanted_statements(ROUTES, "aws", "eu-west-1", "123456789012", None)
    existing = [_statement(w.sid, str(w.source_arn)) for w in old]
    changes = statement_changes(existing, unknown, ALIAS_ARN)
    assert len(changes.remove) == 2 and len(changes.add) == 2


def test_the_old_catch_all_statement_goes_and_others_statements_stay():
    wanted = wanted_statements(ROUTES, "aws", "eu-west-1", "123456789012", "abc123")
    existing = [
        _statement("iris-mlops-apigw", "arn:aws:execute-api:eu-west-1:123456789012:abc123/*/*/*"),
        _statement("someone-elses", "arn:aws:execute-api:eu-west-1:123456789012:zzz/*/*/*"),
    ]
    changes = statement_changes(existing, wanted, ALIAS_ARN)
    assert [sid for sid, _ in changes.remove] == ["iris-mlops-apigw"]
    assert [w.sid for w, _ in changes.add] == [route_sid(r) for r in ROUTES]


def test_an_existing_statement_is_adopted_only_when_it_grants_the_wanted_source_arn():
    want = "arn:aws:execute-api:eu-west-1:123456789012:abc123/*/POST/predict"
    assert statement_grants(_statement("x", want), want, ALIAS_ARN)
    assert not statement_grants(_statement("x", want.replace("abc123", "old")), want, ALIAS_ARN)
    assert not statement_grants(_statement("x", want), None)
    other_principal = {**_statement("x", want), "Principal": {"Service": "s3.amazonaws.com"}}
    assert not statement_grants(other_principal, want)


def test_bucket_policy_denies_every_request_without_tls_in_the_partition():
    policy = tls_only_bucket_policy("aws-cn", "b")
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "s3:*"
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == ["arn:aws-cn:s3:::b", "arn:aws-cn:s3:::b/*"]


# version retention -----------------------------------------------------------------------------
def test_oldest_versions_beyond_the_count_are_deleted():
    assert versions_to_delete([str(n) for n in range(1, 9)], keep=5, protected={"8"}) == [
        "1",
        "2",
        "3",
    ]


def test_live_and_routed_versions_are_never_deleted_however_old():
    alias = {"FunctionVersion": "2", "RoutingConfig": {"AdditionalVersionWeights": {"3": 0.1}}}
    protected = protected_versions(alias)
    assert protected == {"2", "3"}
    gone = versions_to_delete([str(n) for n in range(1, 11)], keep=3, protected=protected)
    assert "2" not in gone and "3" not in gone
    assert gone == ["1", "4", "5", "6", "7", "8", "9"]  # kept: 2, 3 (protected) and 10 (newest)


def test_a_version_about_to_be_published_takes_its_place_in_the_count():
    assert versions_to_delete(["1", "2", "3"], keep=3, protected={"3"}, pending=1) == ["1"]


@given(
    st.sets(st.integers(1, 60), max_size=40),
    st.integers(1, 100),
    st.sets(st.integers(1, 60), max_size=3),
    st.integers(0, 1),
)
@settings(max_examples=300, deadline=None)
def test_retention_keeps_the_newest_and_never_a_protected_version(
    versions, keep, protected, pending
):
    published = [str(v) for v in versions]
    guarded = [str(p) for p in protected]
    gone = {int(v) for v in versions_to_delete(published, keep, guarded, pending)}
    kept = versions - gone
    assert gone <= versions and not gone & protected
    assert len(kept) >= min(len(versions), max(keep - pending, len(protected & versions)))
    assert len(kept) <= max(keep - pending, 0) + len(protected & versions) or not gone
    if gone:  # whatever is deleted is older than every unprotected version kept
        assert max(gone) < min(kept - protected, default=max(gone) + 1)
