"""Lambda's fixed limits, checked from the config alone before anything is built or called.

What holds: a config that breaks one of these limits never reaches AWS. Every problem is found in
one pass and reported as one line naming the limit (exit 2), so a user fixes them all at once
instead of meeting them one by one as a half-applied deploy fails (CreateFunction would refuse
the environment after the role and log group exist). What never happens: a limit is "fixed" for
the user (no tag or variable is dropped or truncated silently).

Why these numbers (AWS Lambda quotas, and the tagging rules every service here shares):
- environment variables: 4 KB in total. Lambda counts the variables as their JSON map; we count
  the compact UTF-8 JSON `{"KEY":"value",...}`, the strictest reading, so what passes here
  passes there.
- tags: at most 50 per resource, keys at most 128 characters, values at most 256, and the
  `aws:` prefix (any case) is reserved for AWS. Our own two tags count towards the 50.
- timeout: Lambda allows 900 s, but an HTTP API integration gives up after 30 s: a longer
  function timeout is accepted, with a warning that requests through the API stop at 30 s.
The zip-size rule (above 48 MiB through S3) is in `packaging.result.S3_UPLOAD_THRESHOLD`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from mlops_cli.config import EnvConfig
from mlops_cli.errors import UsageError

ENVIRONMENT_LIMIT_BYTES = 4 * 1024
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
RESERVED_TAG_PREFIX = "aws:"
HTTP_API_TIMEOUT_S = 30


@dataclass(frozen=True)
class LimitReport:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def environment_bytes(variables: dict[str, str]) -> int:
    """The size Lambda's 4 KB limit applies to: the variables as compact JSON, in UTF-8."""
    if not variables:
        return 0
    return len(json.dumps(variables, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def environment_problems(variables: dict[str, str]) -> list[str]:
    size = environment_bytes(variables)
    if size <= ENVIRONMENT_LIMIT_BYTES:
        return []
    return [
        f"lambda.environment: {size:,} bytes in total, over Lambda's limit of "
        f"{ENVIRONMENT_LIMIT_BYTES:,} bytes (4 KB) for all environment variables together"
    ]


def tag_problems(tags: dict[str, str]) -> list[str]:
    """`tags` is every tag the resources get: the config's and ours."""
    problems: list[str] = []
    if len(tags) > MAX_TAGS:
        problems.append(
            f"tags: {len(tags)} tags (with iris-mlops' own 2), over Lambda's limit of "
            f"{MAX_TAGS} tags per resource"
        )
    for key, value in tags.items():
        shown = key if len(key) <= 40 else key[:37] + "..."
        if len(key) > MAX_TAG_KEY:
            problems.append(
                f"tags: key {shown!r} is {len(key)} characters, over the limit of "
                f"{MAX_TAG_KEY} for a tag key"
            )
        if key.lower().startswith(RESERVED_TAG_PREFIX):
            problems.append(
                f"tags: key {shown!r} starts with {RESERVED_TAG_PREFIX!r}, a prefix reserved "
                "for AWS's own tags"
            )
        if len(value) > MAX_TAG_VALUE:
            problems.append(
                f"tags: the value of {shown!r} is {len(value)} characters, over the limit of "
                f"{MAX_TAG_VALUE} for a tag value"
            )
    return problems


def timeout_warnings(timeout_s: int) -> list[str]:
    if timeout_s <= HTTP_API_TIMEOUT_S:
        return []
    return [
        f"lambda.timeout_s is {timeout_s} s, but an HTTP API integration stops waiting after "
        f"{HTTP_API_TIMEOUT_S} s: requests through the endpoint get 503 after {HTTP_API_TIMEOUT_S} "
        "s (direct `invoke --direct` calls get the full timeout)"
    ]


def check(cfg: EnvConfig) -> LimitReport:
    from mlops_cli.targets.aws.desired import our_tags

    lam = cfg.settings.lambda_
    return LimitReport(
        problems=[*environment_problems(lam.environment), *tag_problems(our_tags(cfg))],
        warnings=timeout_warnings(lam.timeout_s),
    )


def require_within_limits(cfg: EnvConfig) -> LimitReport:
    """Raise one UsageError (exit 2) listing every problem; return the warnings' report."""
    report = check(cfg)
    if report.problems:
        where = cfg.path or f"the {cfg.env} config"
        lines = "\n".join(f"{where}: {p}" for p in report.problems)
        raise UsageError(lines)
    return report
