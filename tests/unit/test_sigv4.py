"""The local endpoint's SigV4 verifier against botocore's own signer: what botocore signs with the
endpoint's credentials passes; any change to what was signed, or any other key, date or scheme,
is refused."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_cli.targets.local import sigv4
from mlops_cli.targets.local.auth import gate_for
from mlops_cli.targets.local.spec import ServerSpec

KEY, SECRET, TOKEN = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "tok/en=="
REGION = "eu-west-1"
HOST = "127.0.0.1:8123"
BODY = json.dumps({"features": [5.1, 3.5, 1.4, 0.2]}).encode()


def botocore_signed(
    method: str = "POST",
    target: str = "/predict",
    body: bytes = BODY,
    headers: dict[str, str] | None = None,
    *,
    key: str = KEY,
    secret: str = SECRET,
    token: str | None = TOKEN,
    region: str = REGION,
    service: str = "execute-api",
    when: dt.datetime | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> AWSRequest:
    request = AWSRequest(
        method=method, url=f"http://{HOST}{target}", data=body,
        headers=headers if headers is not None else {"content-type": "application/json"},
    )
    if when is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: when)
    SigV4Auth(BotoCredentials(key, secret, token), service, region).add_auth(request)
    return request


def check(
    request: AWSRequest,
    *,
    method: str | None = None,
    target: str | None = None,
    body: bytes | None = None,
    extra: list[tuple[str, str]] | None = None,
    drop: str | None = None,
    credentials: sigv4.Credentials | None = None,
    region: str = REGION,
    now: float | None = None,
) -> sigv4.Verdict:
    """Verify `request` as the server would receive it, with optional changes in transit."""
    parts = urlsplit(request.url)
    sent = target if target is not None else parts.path + (f"?{parts.query}" if parts.query else "")
    path, _, query = sent.partition("?")
    headers = [(k, v) for k, v in request.headers.items() if k.lower() != (drop or "").lower()]
    headers = [("Host", HOST), *headers, *(extra or [])]
    return sigv4.verify(
        method=method or request.method,
        raw_path=path,
        raw_query=query,
        headers=headers,
        body=(request.body or b"") if body is None else body,
        credentials=credentials or sigv4.Credentials(KEY, SECRET, TOKEN),
        region=region,
        now=time.time() if now is None else now,
    )


# what passes -------------------------------------------------------------------------------------
def test_a_request_botocore_signs_with_the_endpoints_credentials_passes():
    assert check(botocore_signed()) == sigv4.Verdict(True, "signed")


def test_long_term_credentials_without_a_session_token_pass():
    request = botocore_signed(token=None)
    assert check(request, credentials=sigv4.Credentials(KEY, SECRET)).ok


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/health",
        "/a/./b/../predict",
        "/double//slash/",
        "/sp%20ace/%C3%A9t%C3%A9",
        "/predict?b=2&a=1&a=0",
        "/p?key=a%2Fb&empty=&flag",
        "/p?x=~-_.&y=%2B%20",
    ],
)
def test_paths_and_queries_canonicalise_as_botocore_signs_them(target):
    assert check(botocore_signed("GET", target, b"")).ok


def test_unsigned_headers_added_in_transit_do_not_matter():
    request = botocore_signed()
    assert check(request, extra=[("User-Agent", "curl/8"), ("Content-Length", "40")]).ok


def test_header_values_are_trimmed_and_inner_spaces_collapsed():
    request = botocore_signed(headers={"content-type": "application/json", "X-Pad": "  a   b "})
    assert "x-pad" in request.headers["Authorization"]
    parts = urlsplit(request.url)
    headers = [("Host", HOST), *[(k, v) for k, v in request.headers.items() if k != "X-Pad"],
               ("x-pad", "a b")]
    verdict = sigv4.verify(method="POST", raw_path=parts.path, raw_query="", headers=headers,
                           body=BODY, credentials=sigv4.Credentials(KEY, SECRET, TOKEN),
                           region=REGION, now=time.time())
    assert verdict.ok


# what is refused ---------------------------------------------------------------------------------
def test_an_unsigned_request_is_refused():
    request = AWSRequest(method="POST", url=f"http://{HOST}/predict", data=BODY)
    verdict = check(request)
    assert not verdict.ok and "no Authorization" in verdict.reason


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"target": "/predict2"},
        {"target": "/predict?x=1"},
        {"body": BODY.replace(b"5.1", b"6.1")},
        {"body": BODY + b" "},
        {"extra": [("Content-Type", "text/plain")]},
    ],
    ids=["method", "path", "query", "body", "body-appended", "signed-header-repeated"],
)
def test_changing_anything_that_was_signed_is_refused(change):
    verdict = check(botocore_signed(), **change)
    assert not verdict.ok
    assert "signature does not match" in verdict.reason


def test_a_changed_signed_header_value_is_refused():
    request = botocore_signed()
    request.headers.replace_header("content-type", "text/plain")
    assert not check(request).ok


def test_a_missing_signed_header_is_refused():
    verdict = check(botocore_signed(), drop="content-type")
    assert not verdict.ok and "not in the request" in verdict.reason


def test_a_wrong_secret_is_refused():
    verdict = check(botocore_signed(secret="not-the-secret"))
    assert not verdict.ok and "signature does not match" in verdict.reason


def test_another_access_key_is_refused():
    verdict = check(botocore_signed(key="AKIAOTHERKEY"))
    assert not verdict.ok and "another access key" in verdict.reason


def test_another_region_or_service_is_refused():
    assert "region" in check(botocore_signed(region="us-east-1")).reason
    assert "service" in check(botocore_signed(service="lambda")).reason


def test_a_missing_or_wrong_session_token_is_refused():
    request = botocore_signed()
    assert "session token" in check(request, drop="X-Amz-Security-Token").reason
    other = sigv4.Credentials(KEY, SECRET, "another-token")
    assert "session token" in check(request, credentials=other).reason
    assert "session token" in check(request, credentials=sigv4.Credentials(KEY, SECRET)).reason


@pytest.mark.parametrize("offset_s, word", [(-301, "expired"), (-3600, "expired"),
                                            (301, "future")])
def test_a_signature_outside_the_five_minute_window_is_refused(monkeypatch, offset_s, word):
    when = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=offset_s)
    verdict = check(botocore_signed(when=when, monkeypatch=monkeypatch))
    assert not verdict.ok and word in verdict.reason


@pytest.mark.parametrize("offset_s", [-290, 290])
def test_a_signature_inside_the_five_minute_window_passes(monkeypatch, offset_s):
    when = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=offset_s)
    assert check(botocore_signed(when=when, monkeypatch=monkeypatch)).ok


def test_a_declared_payload_hash_that_is_not_the_bodys_is_refused():
    request = botocore_signed(headers={"content-type": "application/json",
                                       "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    verdict = check(request)
    assert not verdict.ok and "X-Amz-Content-SHA256" in verdict.reason


def test_a_presigned_url_is_not_accepted():
    request = AWSRequest(method="GET", url=f"http://{HOST}/health")
    SigV4QueryAuth(BotoCredentials(KEY, SECRET, TOKEN), "execute-api", REGION).add_auth(request)
    assert "X-Amz-Signature" in request.url
    assert not check(request).ok


@pytest.mark.parametrize(
    "value",
    [
        "Basic dXNlcjpwYXNz",
        "AWS4-HMAC-SHA256 Credential=AK/20260101/eu-west-1/execute-api/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AK/x, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=;, Signature=00",
        "AWS4-HMAC-SHA256",
        "",
    ],
)
def test_malformed_or_foreign_authorization_headers_are_refused(value):
    request = AWSRequest(method="GET", url=f"http://{HOST}/health",
                         headers={"Authorization": value, "X-Amz-Date": "20260101T000000Z"})
    assert not check(request).ok


def test_unsorted_signed_headers_or_unsigned_host_are_refused():
    request = botocore_signed()
    auth = request.headers["Authorization"]
    request.headers.replace_header("Authorization", auth.replace(
        "SignedHeaders=content-type;host;", "SignedHeaders=host;content-type;"))
    assert "sorted" in check(request).reason
    request.headers.replace_header("Authorization", auth.replace(
        "SignedHeaders=content-type;host;", "SignedHeaders=content-type;"))
    assert "host" in check(request).reason


def test_the_refusal_reason_never_holds_the_secret_or_token(monkeypatch):
    when = dt.datetime(2020, 1, 1)
    for request in (botocore_signed(secret="x"), botocore_signed(when=when,
                                                                 monkeypatch=monkeypatch)):
        reason = check(request).reason
        assert SECRET not in reason and TOKEN not in reason


def test_credentials_repr_hides_the_secret_and_token():
    shown = repr(sigv4.Credentials(KEY, SECRET, TOKEN))
    assert KEY in shown and SECRET not in shown and TOKEN not in shown


# the gate the HTTP front calls -------------------------------------------------------------------
def _spec(**kw: Any) -> ServerSpec:
    base = dict(env="t", root="/r", handler="h.h", python="/p", runtime="python3.12", port=0,
                workers=1, timeout_s=1, memory_mb=128, function_name="f", region=REGION)
    return ServerSpec(**{**base, **kw})


def test_the_gate_answers_api_gateways_403_and_logs_why():
    lines: list[str] = []
    spec = _spec(auth="iam", credentials={"access_key": KEY, "secret_key": SECRET, "token": TOKEN})
    gate = gate_for(spec, lines.append)
    assert gate is not None
    refused = gate("POST", "/predict", [("Host", HOST)], BODY, "rid")
    assert refused is not None and refused.status == 403
    assert json.loads(refused.body) == {"message": "Forbidden"}
    assert "rid" in lines[0] and "no Authorization" in lines[0]
    request = botocore_signed()
    headers = [("Host", HOST), *request.headers.items()]
    assert gate("POST", "/predict", headers, BODY, "rid2") is None


def test_the_gate_is_absent_when_public_and_closed_without_credentials():
    assert gate_for(_spec(), print) is None
    gate = gate_for(_spec(auth="iam"), lambda line: None)
    assert gate is not None
    request = botocore_signed()
    refused = gate("POST", "/predict", [("Host", HOST), *request.headers.items()], BODY, "r")
    assert refused is not None and refused.status == 403


def test_the_spec_hides_credentials_from_repr_and_digest_but_carries_them_on_stdin():
    creds = {"access_key": KEY, "secret_key": SECRET, "token": TOKEN}
    spec = _spec(auth="iam", credentials=creds)
    assert SECRET not in repr(spec) and TOKEN not in repr(spec)
    assert ServerSpec.from_json(spec.to_json()).credentials == creds
    rotated = _spec(auth="iam", credentials={**creds, "access_key": "AKIAOTHER"})
    assert spec.digest() != rotated.digest() != _spec().digest()


# properties --------------------------------------------------------------------------------------
_segment = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                   max_size=12)
_params = st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=8)), max_size=5)


@settings(max_examples=150, deadline=None)
@given(segments=st.lists(_segment, min_size=0, max_size=4), params=_params,
       body=st.binary(max_size=256), method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
def test_any_request_botocore_signs_passes(segments, params, body, method):
    path = "/" + "/".join(quote(s, safe="") for s in segments)
    query = urlencode(params, quote_via=quote, safe="-_.~")
    target = path + (f"?{query}" if query else "")
    assert check(botocore_signed(method, target, body)).ok


@settings(max_examples=150, deadline=None)
@given(body=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_change_to_a_signed_body_is_refused(body, data):
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(body)
    tampered[index] ^= flip
    request = botocore_signed("POST", "/predict", body)
    assert check(request).ok
    assert not check(request, body=bytes(tampered)).ok
