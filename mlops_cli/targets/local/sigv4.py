"""Verify AWS Signature Version 4 on the local endpoint, as API Gateway does for `AWS_IAM` routes.

Contract: `verify` accepts a request only when its `Authorization: AWS4-HMAC-SHA256 ...` header
carries a signature computed with the deploy-time credentials over this exact request — method,
path, query, every signed header, the payload's SHA-256 — for service `execute-api` in the
server's region, dated within the 5 minutes AWS allows either way, and (for temporary
credentials) carrying their session token. Anything else — unsigned, presigned-URL, another
key, a stale or future date, a changed body — is rejected with a reason for the server log; the
client only ever sees API Gateway's 403 `{"message":"Forbidden"}`.

Why this shape: the canonical form follows AWS's SigV4 specification the way the server side
computes it (path segments URI-encoded twice for non-S3 services after dot-segment removal,
query pairs decoded, re-encoded as RFC 3986 and sorted, header values trimmed with inner spaces
collapsed and repeats comma-joined), so what botocore, `curl --aws-sigv4` and the AWS SDKs sign
passes here exactly when it would pass API Gateway. Pure functions over plain values, standard
library only: the server imports it at start, and the secret is never formatted into a message.
"""

from __future__ import annotations

import hashlib
import hmac
from calendar import timegm
from dataclasses import dataclass, field
from time import strptime
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
TERMINATOR = "aws4_request"
MAX_SKEW_S = 300  # AWS rejects a signature dated more than 5 minutes from its clock
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_UNRESERVED = "-_.~"  # RFC 3986 unreserved besides letters and digits
_REQUIRED_SIGNED = ("host", "x-amz-date")


@dataclass(frozen=True)
class Credentials:
    """What the verifier checks against; `repr` never shows the secret or the token."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # for the server log; never holds the secret


def _reject(reason: str) -> Verdict:
    return Verdict(False, reason)


# canonical request ------------------------------------------------------------------------------
def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, plus the collapsing of repeated slashes AWS services expect."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
        else:
            kept.append(segment)
    head = "/" if path.startswith("/") else ""
    tail = "/" if path.endswith("/") and kept else ""
    return head + "/".join(kept) + tail


def canonical_uri(raw_path: str) -> str:
    """The path as sent (still percent-encoded), encoded once more: AWS's double encoding."""
    return quote(remove_dot_segments(raw_path), safe="/~")


def canonical_query(raw_query: str) -> str:
    """Pairs decoded, re-encoded with only RFC 3986 unreserved characters left bare, sorted by
    encoded name then value. `+` is a literal plus here, never a space, as in AWS's rules."""
    if not raw_query:
        return ""
    pairs = []
    for item in raw_query.split("&"):
        name, _, value = item.partition("=")
        pairs.append(
            (quote(unquote(name), safe=_UNRESERVED), quote(unquote(value), safe=_UNRESERVED))
        )
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def trim_all(value: str) -> str:
    return " ".join(value.split())


def canonical_headers(headers: list[tuple[str, str]], signed: list[str]) -> str | None:
    """`name:value\\n` for each signed header, repeats comma-joined; None when one is missing."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.strip().lower(), []).append(trim_all(value))
    lines = []
    for name in signed:
        if name not in values:
            return None
        lines.append(f"{name}:{','.join(values[name])}\n")
    return "".join(lines)


def canonical_request(
    method: str, raw_path: str, raw_query: str, headers_block: str, signed: list[str],
    payload_hash: str,
) -> str:
    return "\n".join(
        [method.upper(), canonical_uri(raw_path), canonical_query(raw_query), headers_block,
         ";".join(signed), payload_hash]
    )


# string to sign and key -------------------------------------------------------------------------
def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signing_key(secret_key: str, date: str, region: str, service: str = SERVICE) -> bytes:
    key = f"AWS4{secret_key}".encode()
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def signature(secret_key: str, date: str, region: str, text: str) -> str:
    key = signing_key(secret_key, date, region)
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


# the Authorization header -----------------------------------------------------------------------
@dataclass(frozen=True)
class Authorization:
    access_key: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: list[str]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


def parse_authorization(value: str) -> Authorization | None:
    """`AWS4-HMAC-SHA256 Credential=AK/date/region/service/aws4_request, SignedHeaders=a;b,
    Signature=hex`; None for any other scheme or a malformed header."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep or key in fields:
            return None
        fields[key] = val.strip()
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        return None
    credential = fields["Credential"].split("/")
    if len(credential) != 5 or not all(credential):
        return None
    signed = fields["SignedHeaders"].split(";")
    if not all(signed):
        return None
    return Authorization(*credential, signed_headers=signed, signature=fields["Signature"])


def parse_amz_date(value: str) -> float | None:
    try:
        return float(timegm(strptime(value, _AMZ_DATE_FORMAT)))
    except (ValueError, OverflowError):
        return None


def _header(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for n, v in headers if n.strip().lower() == name]


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


# the check ---------------------------------------------------------------------------------------
def verify(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    credentials: Credentials,
    region: str,
    now: float,
) -> Verdict:
    """Accept only a SigV4 header signature made with `credentials` for this request, now."""
    values = _header(headers, "authorization")
    if not values:
        return _reject("no Authorization header (the endpoint requires SigV4-signed requests)")
    if len(values) > 1:
        return _reject("more than one Authorization header")
    auth = parse_authorization(values[0])
    if auth is None:
        return _reject("the Authorization header is not a well-formed AWS4-HMAC-SHA256 one")
    if not _same(auth.access_key, credentials.access_key):
        return _reject("signed with another access key than the endpoint's credentials")
    if auth.service != SERVICE or auth.terminator != TERMINATOR:
        return _reject(f"credential scope names service {auth.service!r}, not {SERVICE!r}")
    if auth.region != region:
        return _reject(f"credential scope names region {auth.region!r}, not {region!r}")
    if auth.signed_headers != sorted(set(auth.signed_headers)) or any(
        name != name.lower() for name in auth.signed_headers
    ):
        return _reject("SignedHeaders is not a sorted list of distinct lowercase names")
    missing = [name for name in _REQUIRED_SIGNED if name not in auth.signed_headers]
    if missing:
        return _reject(f"SignedHeaders leaves out {', '.join(missing)}")

    dates = _header(headers, "x-amz-date")
    amz_date = dates[0].strip() if len(dates) == 1 else ""
    signed_at = parse_amz_date(amz_date)
    if signed_at is None:
        return _reject("X-Amz-Date is missing or not YYYYMMDDTHHMMSSZ")
    if amz_date[:8] != auth.date:
        return _reject("the credential scope's date is not X-Amz-Date's day")
    skew = now - signed_at
    if abs(skew) > MAX_SKEW_S:
        return _reject(
            f"signature {'expired' if skew > 0 else 'dated in the future'}: X-Amz-Date "
            f"{amz_date} is {abs(skew):.0f} s from the server's clock (AWS allows {MAX_SKEW_S})"
        )

    tokens = [t for t in _header(headers, "x-amz-security-token") if t.strip()]  # "" = none
    if credentials.token is not None:
        if len(tokens) != 1 or not _same(tokens[0].strip(), credentials.token):
            return _reject("the session token is missing or is not the endpoint's")
    elif tokens:
        return _reject("a session token was sent, but the endpoint's credentials have none")

    payload_hash = hashlib.sha256(body).hexdigest()
    declared = _header(headers, "x-amz-content-sha256")
    if declared and [d.strip() for d in declared] != [payload_hash]:
        return _reject("X-Amz-Content-SHA256 is not the SHA-256 of the body received")

    block = canonical_headers(headers, auth.signed_headers)
    if block is None:
        return _reject("a header named in SignedHeaders is not in the request")
    request = canonical_request(
        method, raw_path, raw_query, block, auth.signed_headers, payload_hash
    )
    expected = signature(credentials.secret_key, auth.date, region,
                         string_to_sign(amz_date, auth.scope, request))
    if not _same(auth.signature, expected):
        return _reject("the signature does not match this request (wrong secret, or the method, "
                       "path, query, a signed header or the body was changed)")
    return Verdict(True, "signed")
