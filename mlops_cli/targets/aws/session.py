"""The one place that turns an env config into boto3 clients, and AWS failures into user errors.

Everything else in the aws target takes an `AwsContext`, so tests can hand in clients that moto
(or a Stubber) answers, and the region/account/endpoint are resolved — and explained when
missing — exactly once.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from mlops_cli.config import EnvConfig
from mlops_cli.errors import IrisError, UsageError

# botocore "standard" mode: retries after the first try (9 tries in all), with backoff.
MAX_ATTEMPTS = 8
READ_TIMEOUT = 120

# Error codes meaning "it is not there": teardown treats them as done, the planner as "missing".
NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "NoSuchEntity",
        "NotFoundException",
        "NotFound",
        "NoSuchBucket",
        "404",
        "NoSuchKey",
    }
)
# botocore's throttling codes (retries/standard.py) plus the 5xx ones AWS services use.
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceException",
    }
)
_AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
)


@dataclass
class AwsContext:
    """Resolved session facts plus lazily created clients (one per service)."""

    session: Any
    region: str
    account_id: str
    endpoint_url: str | None = None
    max_attempts: int = MAX_ATTEMPTS
    _clients: dict[str, Any] = field(default_factory=dict)
    # A boto3 session is not thread-safe (its clients are): clients are made one at a time.
    _lock: Any = field(default_factory=threading.RLock, repr=False, compare=False)

    @functools.cached_property
    def partition(self) -> str:
        """The region's partition (`aws`, `aws-cn`, …) from this session's endpoint data."""
        from mlops_cli.targets.aws.desired import session_partition

        return session_partition(self.session, self.region)

    def client(
        self, service: str, *, retries: bool = True, read_timeout: int | None = None
    ) -> Any:
        """A client with botocore's retries, or (retries=False) one that tries each call once,
        for calls that are not safe to repeat blindly (see executor's check-before-retry);
        `read_timeout` for calls that may legitimately take long (a synchronous Invoke)."""
        key = service if retries else f"{service}#once"
        if read_timeout is not None:
            key += f"#read{read_timeout}"
        with self._lock:
            return self._client(key, service, retries, read_timeout)

    def _client(self, key: str, service: str, retries: bool, read_timeout: int | None) -> Any:
        if key not in self._clients:
            self._clients[key] = self.session.client(
                service,
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=client_config(
                    self.max_attempts if retries else 0, read_timeout or READ_TIMEOUT
                ),
            )
            if service == "s3":
                expect_bucket_owner(self._clients[key], self.account_id)
            self.on_new_client(self._clients[key])
        return self._clients[key]

    def on_new_client(self, client: Any) -> None:
        """Called once for each client made, before anyone uses it (tests hook botocore events
        here: fault injection, call logs, the model of what moto lacks)."""


def expect_bucket_owner(s3_client: Any, account_id: str) -> None:
    """Every S3 call that accepts `ExpectedBucketOwner` gets our account id, so a same-named
    bucket in another account answers 403 instead of being read or written. Done as a botocore
    hook on the client, so no call (planned, teardown, future) can forget it; the calls without
    the parameter (CreateBucket, ListBuckets) are left as they are."""

    def add_owner(params: dict[str, Any], model: Any, **_: Any) -> None:
        members = model.input_shape.members if model.input_shape is not None else {}
        if "ExpectedBucketOwner" in members and account_id:
            params.setdefault("ExpectedBucketOwner", account_id)

    s3_client.meta.events.register("provide-client-params.s3.*", add_owner)


def client_config(max_attempts: int = MAX_ATTEMPTS, read_timeout: int | None = None) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=read_timeout or READ_TIMEOUT,
        user_agent_extra="iris-mlops",
    )


def resolve_endpoint(cfg: EnvConfig) -> str | None:
    return cfg.settings.aws.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None


def connect(cfg: EnvConfig, max_attempts: int = MAX_ATTEMPTS) -> AwsContext:
    """Session from the env's region/profile/endpoint; fails with one line when unusable."""
    aws = cfg.settings.aws
    endpoint = resolve_endpoint(cfg)
    try:
        session = boto3.Session(profile_name=aws.profile, region_name=aws.region)
    except ProfileNotFound:
        raise UsageError(
            f"AWS profile {aws.profile!r} (aws.profile in the {cfg.env} config) is not in "
            "~/.aws/config or ~/.aws/credentials: create it or change the setting"
        ) from None
    region = aws.region or session.region_name
    if not region:
        raise UsageError(
            f"no AWS region for env {cfg.env!r}: set aws.region in its config "
            "or AWS_REGION / AWS_DEFAULT_REGION"
        )
    try:
        creds = session.get_credentials()
    except (PartialCredentialsError, BotoCoreError) as exc:
        raise UsageError(f"AWS credentials are incomplete: {exc}") from None
    if creds is None:
        raise UsageError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE or aws.profile in the env config (`aws configure` creates them)"
        )
    ctx = AwsContext(
        session=session,
        region=region,
        account_id="",
        endpoint_url=endpoint,
        max_attempts=max_attempts,
    )
    with aws_errors("look up the AWS account (sts get-caller-identity)", ctx):
        ctx.account_id = ctx.client("sts").get_caller_identity()["Account"]
    return ctx


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    """Throttling or a server-side failure: what botocore retries, and what a rerun may fix."""
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)):
        return True
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return error_code(exc) in _TRANSIENT_CODES or status == 429 or status >= 500


def is_not_found(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(exc) in NOT_FOUND_CODES or (status == 404 and not error_code(exc))


def get_or_none(call: Callable[[], Any]) -> Any:
    """The answer of a read-only call, or None when what it reads is not there."""
    try:
        return call()
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


@contextlib.contextmanager
def aws_errors(doing: str, ctx: AwsContext | None = None) -> Iterator[None]:
    """Turn botocore failures into IrisError/UsageError naming what we were doing and what to do."""
    where = f" at {ctx.endpoint_url}" if ctx is not None and ctx.endpoint_url else ""
    try:
        yield
    except IrisError:
        raise
    except NoCredentialsError:
        raise UsageError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE or aws.profile in the env config"
        ) from None
    except NoRegionError:
        raise UsageError("no AWS region: set aws.region in the env config") from None
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        raise IrisError(
            f"cannot reach AWS{where} to {doing}: {exc}. Check the network, aws.region and "
            "aws.endpoint_url / AWS_ENDPOINT_URL"
        ) from None
    except ReadTimeoutError as exc:
        raise IrisError(f"AWS{where} did not answer in time to {doing}: {exc}; retry") from None
    except ClientError as exc:
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        if code in _AUTH_CODES:
            raise UsageError(
                f"AWS rejected the credentials ({code}) while trying to {doing}: {message}. "
                "Refresh them or pick another profile"
            ) from None
        if code.startswith("AccessDenied") or code == "UnauthorizedOperation":
            raise UsageError(
                f"not allowed to {doing} ({code}): {message}. Grant the caller that permission"
            ) from None
        if is_transient(exc):
            tries = f" after {ctx.max_attempts + 1} attempts" if ctx is not None else ""
            raise IrisError(
                f"AWS{where} kept refusing to {doing}{tries} ({code}: {message}): it is "
                "throttling or temporarily unavailable. Wait a minute and run the command "
                "again; a deploy or teardown resumes where it stopped"
            ) from None
        raise IrisError(f"AWS refused to {doing}: {code}: {message}") from None
    except NotImplementedError as exc:  # moto in-process: an API it does not emulate
        raise IrisError(
            f"the AWS endpoint{where} does not implement what is needed to {doing}: {exc}"
        ) from None
    except BotoCoreError as exc:
        raise IrisError(f"AWS call failed while trying to {doing}: {exc}") from None
