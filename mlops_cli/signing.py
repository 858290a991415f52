"""Client side of `api.auth: iam`: sign requests to the endpoint with botocore's SigV4Auth.

Contract: the credentials are those of the boto3 chain for the env (its `aws.profile`, else the
environment variables, shared files, SSO...), session token included, and the signature is for
service `execute-api` in the env's region — exactly what API Gateway checks on an `AWS_IAM`
route and what the local endpoint checks with the credentials it was deployed with. boto3 is
imported only when a request is signed, so a public endpoint costs nothing. The secret stays in
memory: it is handed to botocore or to the local server's stdin, never printed or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import UsageError

if TYPE_CHECKING:
    from mlops_cli.config import EnvConfig

SERVICE = "execute-api"
# The local target reports this region to its function when the env names none (see build_spec).
LOCAL_DEFAULT_REGION = "us-east-1"



def _session(cfg: EnvConfig) -> Any:
    import boto3
    from botocore.exceptions import ProfileNotFound

    profile = cfg.settings.aws.profile
    try:
        return boto3.Session(profile_name=profile, region_name=cfg.settings.aws.region)
    except ProfileNotFound:
        raise UsageError(
            f"AWS profile {profile!r} (aws.profile in the {cfg.env} config) is not in "
            "~/.aws/config or ~/.aws/credentials: create it or change the setting"
        ) from None


def signing_region(cfg: EnvConfig, session: Any | None = None) -> str:
    """aws envs: the env's region (or the chain's); local envs: the region the server checks."""
    if cfg.settings.aws.region:
        return cfg.settings.aws.region
    if cfg.settings.target != "aws":
        return LOCAL_DEFAULT_REGION
    region = (session or _session(cfg)).region_name
    if not region:
        raise UsageError(
            f"no AWS region for env {cfg.env!r} to sign requests for: set aws.region in its "
            "config or AWS_REGION"
        )
    return str(region)


def chain_credentials(cfg: EnvConfig, session: Any | None = None) -> Any:
    """botocore's frozen (access_key, secret_key, token) from the chain; a clear error if none."""
    from botocore.exceptions import BotoCoreError

    session = session or _session(cfg)
    try:
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except BotoCoreError as exc:
        raise UsageError(f"cannot read AWS credentials to sign requests: {exc}") from None
    if frozen is None or not frozen.access_key or not frozen.secret_key:
        raise UsageError(
            f"env {cfg.env!r} uses api.auth: iam, so requests must be SigV4-signed, but no AWS "
            "credentials were found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE "
            "or aws.profile in the env config"
        )
    return frozen


def sign(
    credentials: Any, region: str, method: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


@dataclass(frozen=True)
class Signer:
    """Signs requests as one principal; called as (method, url, body, headers) -> headers."""

    credentials: Any = field(repr=False)
    region: str

    def __call__(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        return sign(self.credentials, self.region, method, url, body, headers)

    def credentials_dict(self) -> dict[str, str | None]:
        """For the local server's stdin only (see targets/local/spec.py)."""
        c = self.credentials
        return {"access_key": c.access_key, "secret_key": c.secret_key, "token": c.token}


def signer_for(cfg: EnvConfig, auth: str | None = None) -> Signer | None:
    """None when the env's endpoint is public; else a signer bound to the chain's credentials.
    `auth` overrides the config's mode (a running server keeps the mode it was deployed with)."""
    if (auth or cfg.settings.api.auth) != "iam":
        return None
    session = _session(cfg)
    return Signer(chain_credentials(cfg, session), signing_region(cfg, session))
