"""The desired state of one env's AWS resources, as plain data computed from the config alone.

Pure: no AWS calls, so names, tags, policies and settings can be tested (and printed) without
moto. The planner compares this against what AWS reports; comparisons go through the
`normalize_*` helpers so that JSON key order, list order or AWS's own defaults never look like
drift (drift that is not real would make every deploy mutate something).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from mlops_cli.config import EnvConfig
from mlops_cli.packaging.result import PackageInfo
from mlops_cli.targets.aws.least_privilege import route_source_arn, wanted_statements

TAG_PROJECT = "iris-mlops:project"
TAG_ENV = "iris-mlops:env"
ALIAS = "live"
STAGE = "$default"
INLINE_POLICY_NAME = "iris-mlops-logs"
ROUTE_KEYS = ("POST /predict", "GET /health")
CORS_METHODS = ("GET", "OPTIONS", "POST")
CORS_HEADERS = ("content-type",)
VERSION_DESCRIPTION_PREFIX = "iris-mlops model "
FUNCTION_DESCRIPTION = "iris-mlops model endpoint"
PAYLOAD_FORMAT_VERSION = "2.0"


@dataclass(frozen=True)
class FunctionSpec:
    """What `get_function_configuration` should report (the comparable subset)."""

    runtime: str
    handler: str
    role_arn: str
    memory_mb: int
    timeout_s: int
    architectures: tuple[str, ...]
    environment: dict[str, str]

    def as_config_params(self) -> dict[str, Any]:
        return {
            "Runtime": self.runtime,
            "Handler": self.handler,
            "Role": self.role_arn,
            "MemorySize": self.memory_mb,
            "Timeout": self.timeout_s,
            "Environment": {"Variables": dict(self.environment)},
        }


@dataclass(frozen=True)
class DesiredState:
    env: str
    project: str
    region: str
    account_id: str
    function_name: str
    tags: dict[str, str]
    trust_policy: dict[str, Any]
    inline_policy: dict[str, Any]
    log_group: str
    retention_days: int
    function: FunctionSpec
    reserved_concurrency: int | None
    throttle_rate: float
    throttle_burst: int
    cors_origins: tuple[str, ...]
    # None when deploying without a package (status): code is then not compared.
    code_sha256: str | None = None
    zip_path: str | None = None
    zip_sha256_hex: str | None = None
    use_s3: bool = False
    model_id: str | None = None
    # api.auth: AWS_IAM = API Gateway serves only SigV4 requests allowed execute-api:Invoke
    route_authorization: str = "NONE"
    extra: dict[str, Any] = field(default_factory=dict)
    partition: str = "aws"  # "aws-cn", "aws-us-gov"...: every ARN is built with it
    keep_versions: int = 5  # published versions kept (lambda.keep_versions)

    # derived names -----------------------------------------------------------------------------
    @property
    def role_name(self) -> str:
        return self.function_name

    @property
    def role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{self.role_name}"

    @property
    def function_arn(self) -> str:
        return (
            f"arn:{self.partition}:lambda:{self.region}:{self.account_id}"
            f":function:{self.function_name}"
        )

    @property
    def alias_arn(self) -> str:
        return f"{self.function_arn}:{ALIAS}"

    @property
    def api_name(self) -> str:
        return self.function_name

    @property
    def bucket_name(self) -> str:
        return artifact_bucket_name(self.project, self.account_id, self.region)

    @property
    def s3_key(self) -> str:
        return f"{self.function_name}/{self.zip_sha256_hex}.zip"

    @property
    def version_description(self) -> str:
        return f"{VERSION_DESCRIPTION_PREFIX}{self.model_id or 'unknown'}"

    @property
    def role_description(self) -> str:
        return f"Lambda execution role of {self.function_name} (iris-mlops)"

    @property
    def api_description(self) -> str:
        return f"iris-mlops endpoint for env {self.env}"

    def integration(self) -> dict[str, Any]:
        """The one integration every route targets: the `live` alias, Lambda proxy, payload 2.0."""
        return {
            "IntegrationType": "AWS_PROXY",
            "IntegrationUri": self.alias_arn,
            "PayloadFormatVersion": PAYLOAD_FORMAT_VERSION,
            "IntegrationMethod": "POST",
        }

    def routes(self) -> list[dict[str, Any]]:
        """Each route's settings (CreateRoute's parameters but the API and the target)."""
        return [
            {"RouteKey": key, "AuthorizationType": self.route_authorization} for key in ROUTE_KEYS
        ]

    def stage(self) -> dict[str, Any]:
        """The `$default` stage: deployed on every change, throttled as the config says."""
        return {
            "StageName": STAGE,
            "AutoDeploy": True,
            "DefaultRouteSettings": self.stage_route_settings(),
        }

    def route_source_arn(self, api_id: str, route_key: str) -> str:
        """A permission's SourceArn: exactly this API's route (any stage), in our partition."""
        return route_source_arn(self.partition, self.region, self.account_id, api_id, route_key)

    def api_arn(self, api_id: str) -> str:
        """The HTTP API's ARN, as tagging takes it."""
        return f"arn:{self.partition}:apigateway:{self.region}::/apis/{api_id}"

    def url(self, api_id: str) -> str:
        """A guess for tests and messages only: the real URL is the API's own `ApiEndpoint`
        (other partitions use other DNS suffixes, e.g. amazonaws.com.cn)."""
        return f"https://{api_id}.execute-api.{self.region}.{dns_suffix(self.partition)}"

    def api(self) -> dict[str, Any]:
        """The HTTP API as CreateApi takes it (and the template's AWS::ApiGatewayV2::Api)."""
        api: dict[str, Any] = {
            "Name": self.api_name,
            "ProtocolType": "HTTP",
            "Description": self.api_description,
            "Tags": dict(self.tags),
        }
        cors = self.cors()
        if cors:
            api["CorsConfiguration"] = cors
        return api

    def cors(self) -> dict[str, Any] | None:
        if not self.cors_origins:
            return None
        return {
            "AllowOrigins": list(self.cors_origins),
            "AllowMethods": list(CORS_METHODS),
            "AllowHeaders": list(CORS_HEADERS),
        }

    def stage_route_settings(self) -> dict[str, Any]:
        return {
            "ThrottlingRateLimit": self.throttle_rate,
            "ThrottlingBurstLimit": self.throttle_burst,
        }

    def permission_params(self, api_id: str) -> list[dict[str, Any]]:
        """AddPermission's parameters for each statement API Gateway needs to invoke `live`:
        one per route (export renders these; deploy's permission module plans the same ones)."""
        return [
            w.add_permission_params(self.function_name, ALIAS)
            for w in wanted_statements(
                ROUTE_KEYS, self.partition, self.region, self.account_id, api_id
            )
        ]



@functools.cache
def partition_for_region(region: str) -> str:
    """The region's partition as botocore's endpoint data knows it (`aws` for unknown regions,
    e.g. an emulator's made-up one)."""
    import boto3

    return session_partition(boto3.Session(), region)


def session_partition(session: Any, region: str) -> str:
    """`partition_for_region` from a session that already exists: a deploy asks its own session,
    whose endpoint data its clients have loaded anyway (a new session reads it again, ~80 ms)."""
    from botocore.exceptions import UnknownRegionError

    try:
        return session.get_partition_for_region(region) or "aws"
    except (ValueError, UnknownRegionError):  # botocore knows no such region
        return "aws"


def dns_suffix(partition: str) -> str:
    return {"aws-cn": "amazonaws.com.cn"}.get(partition, "amazonaws.com")


def artifact_bucket_name(project: str, account_id: str, region: str) -> str:
    """`<project>-artifacts-<account>-<region>`: one bucket per project, shared by its envs, so a
    second project in the same account and region gets its own (S3 names are global and at most
    63 characters: a project too long for that is shortened and made unique with a hash)."""
    suffix = f"-artifacts-{account_id}-{region}"
    if len(project) + len(suffix) <= 63:
        return project + suffix
    digest = hashlib.sha256(project.encode("utf-8")).hexdigest()[:6]
    head = project[: 63 - len(suffix) - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}{suffix}"


def our_tags(cfg: EnvConfig) -> dict[str, str]:
    """The config's tags plus ours; ours last so a config can never override them."""
    return {**cfg.settings.tags, TAG_PROJECT: cfg.settings.project, TAG_ENV: cfg.env}


def trust_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def logs_policy(
    region: str, account_id: str, function_name: str, partition: str = "aws"
) -> dict[str, Any]:
    """Write access to the function's own log group only: no wildcard resource, no managed policy.

    The log group is created by us (with retention), so CreateLogGroup is deliberately absent.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": (
                    f"arn:{partition}:logs:{region}:{account_id}"
                    f":log-group:/aws/lambda/{function_name}:*"
                ),
            }
        ],
    }


def build_desired(
    cfg: EnvConfig,
    region: str,
    account_id: str,
    package: PackageInfo | None = None,
    partition: str | None = None,
) -> DesiredState:
    """`partition` defaults to the region's; export passes CloudFormation's `${AWS::Partition}`."""
    s = cfg.settings
    fn = cfg.function_name
    partition = partition or partition_for_region(region)
    role_arn = f"arn:{partition}:iam::{account_id}:role/{fn}"
    spec = FunctionSpec(
        runtime=package.runtime if package else s.package.runtime,
        handler=package.handler if package else "iris_runtime.handler.lambda_handler",
        role_arn=role_arn,
        memory_mb=s.lambda_.memory_mb,
        timeout_s=s.lambda_.timeout_s,
        architectures=(package.architecture if package else s.package.architecture,),
        # IRIS_MLOPS_ENV: the `env` dimension of the handler's metrics (runtime/emf.py).
        environment={**s.lambda_.environment, "IRIS_MLOPS_ENV": cfg.env},
    )
    return DesiredState(
        env=cfg.env,
        project=s.project,
        region=region,
        account_id=account_id,
        function_name=fn,
        partition=partition,
        tags=our_tags(cfg),
        trust_policy=trust_policy(),
        inline_policy=logs_policy(region, account_id, fn, partition),
        log_group=f"/aws/lambda/{fn}",
        retention_days=s.lambda_.log_retention_days,
        function=spec,
        reserved_concurrency=s.lambda_.reserved_concurrency,
        throttle_rate=float(s.api.throttle_rate),
        throttle_burst=int(s.api.throttle_burst),
        cors_origins=tuple(s.api.cors_origins),
        code_sha256=package.code_sha256_b64 if package else None,
        zip_path=str(package.path) if package else None,
        zip_sha256_hex=package.sha256 if package else None,
        use_s3=package.needs_s3_upload if package else False,
        model_id=package.model_id if package else None,
        keep_versions=s.lambda_.keep_versions,
        route_authorization="AWS_IAM" if s.api.auth == "iam" else "NONE",
    )


# normalization ---------------------------------------------------------------------------------
def normalize_policy(doc: Any) -> Any:
    """Policy JSON in a canonical form: parsed, one-element lists unwrapped, lists sorted.

    IAM returns documents URL-decoded dicts (boto3) or strings; `"Action": "x"` and
    `"Action": ["x"]` mean the same; statement order does not matter.
    """
    if isinstance(doc, bytes):
        doc = doc.decode("utf-8")
    if isinstance(doc, str):
        text = unquote(doc) if doc.startswith("%7B") else doc  # IAM returns URL-encoded JSON
        try:
            doc = json.loads(text)
        except ValueError:
            return doc
    return _canon(doc)


def _canon(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        items = [_canon(v) for v in value]
        if len(items) == 1:
            return items[0]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def normalize_cors(cors: dict[str, Any] | None) -> dict[str, Any] | None:
    """Only the fields we manage; header and method names case-insensitively, order-free."""
    if not cors:
        return None
    out = {
        "AllowOrigins": sorted(cors.get("AllowOrigins") or []),
        "AllowMethods": sorted(m.upper() for m in cors.get("AllowMethods") or []),
        "AllowHeaders": sorted(h.lower() for h in cors.get("AllowHeaders") or []),
    }
    return out if any(out.values()) else None


def tags_missing(desired: dict[str, str], actual: dict[str, str] | None) -> dict[str, str]:
    """Desired tags that are absent or different; extra tags in AWS are left alone."""
    actual = actual or {}
    return {k: v for k, v in desired.items() if actual.get(k) != v}


def tag_list_to_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def is_ours(desired: DesiredState, tags: dict[str, str] | None) -> bool:
    """Ours means both our tags match: same project AND same env."""
    tags = tags or {}
    return tags.get(TAG_PROJECT) == desired.project and tags.get(TAG_ENV) == desired.env


def function_config_diff(spec: FunctionSpec, actual: dict[str, Any]) -> list[str]:
    """Human-readable differences between the wanted and the reported configuration."""
    reported_env = (actual.get("Environment") or {}).get("Variables") or {}
    pairs: list[tuple[str, Any, Any]] = [
        ("runtime", spec.runtime, actual.get("Runtime")),
        ("handler", spec.handler, actual.get("Handler")),
        ("role", spec.role_arn, actual.get("Role")),
        ("memory", spec.memory_mb, actual.get("MemorySize")),
        ("timeout", spec.timeout_s, actual.get("Timeout")),
        ("environment", dict(spec.environment), dict(reported_env)),
    ]
    return [f"{name} {have} -> {want}" for name, want, have in pairs if want != have]


def architecture_diff(spec: FunctionSpec, actual: dict[str, Any]) -> str | None:
    """Architectures change through update_function_code, so they are diffed on their own."""
    have = list(actual.get("Architectures") or ["x86_64"])
    if list(spec.architectures) != have:
        return f"architectures {have} -> {list(spec.architectures)}"
    return None


def model_id_from_description(description: str | None) -> str | None:
    if description and description.startswith(VERSION_DESCRIPTION_PREFIX):
        return description[len(VERSION_DESCRIPTION_PREFIX) :] or None
    return None
