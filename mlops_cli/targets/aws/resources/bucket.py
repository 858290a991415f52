"""The S3 artifact bucket, used only when a package is over 48 MiB (Lambda's direct upload
limit is 50 MiB of base64).

One bucket per project, account and region (`<project>-artifacts-<account>-<region>`), shared by
the project's envs (tagged with the project only); each env's packages live under `<function>/`.
What holds:
- Every S3 call but CreateBucket and ListBuckets carries `ExpectedBucketOwner` (the session adds
  it to every S3 client), so a same-named bucket of another account answers 403: it is reported
  as foreign and never read from or written to.
- The bucket blocks public access, encrypts by default, keeps versions, and its policy denies
  every request made without TLS; a bucket missing that policy gets it on the next deploy.
- Teardown of an env deletes every version and delete marker of the env's keys (a versioned
  bucket keeps the bytes of a deleted object otherwise); the bucket itself goes only with
  `--include-bucket`, and only when no other env's package is left in it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.errors import IrisError
from mlops_cli.targets.aws.desired import (
    TAG_ENV,
    TAG_PROJECT,
    DesiredState,
    normalize_policy,
    tag_list_to_dict,
)
from mlops_cli.targets.aws.least_privilege import tls_only_bucket_policy
from mlops_cli.targets.aws.model import Deletion, FileBytes, Foreign, Plan, PlannedCall
from mlops_cli.targets.aws.session import AwsContext, error_code, is_not_found

OTHER_ACCOUNT_CODES = frozenset({"403", "AccessDenied", "Forbidden"})
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


def find_tags(ctx: AwsContext, bucket: str) -> dict[str, str] | None:
    """The bucket's tags ({} when it has none), or None when there is no such bucket. A bucket
    of another account (403 to our ExpectedBucketOwner) raises ClientError."""
    try:
        tagset = ctx.client("s3").get_bucket_tagging(Bucket=bucket).get("TagSet", [])
    except ClientError as exc:
        if is_not_found(exc):
            return None
        if error_code(exc) not in {"NoSuchTagSet", "NoSuchTagSetError"}:
            raise
        tagset = []
    return tag_list_to_dict(tagset)


def _policy_call(d: DesiredState, reason: str) -> PlannedCall:
    return PlannedCall(
        "s3",
        "put_bucket_policy",
        {
            "Bucket": d.bucket_name,
            "Policy": json.dumps(tls_only_bucket_policy(d.partition, d.bucket_name)),
        },
        f"s3 bucket {d.bucket_name}",
        reason,
    )


def _policy_differs(ctx: AwsContext, d: DesiredState) -> str | None:
    try:
        have = ctx.client("s3").get_bucket_policy(Bucket=d.bucket_name).get("Policy")
    except ClientError as exc:
        if error_code(exc) != "NoSuchBucketPolicy" and not is_not_found(exc):
            raise
        return "no bucket policy: deny requests without TLS"
    want = tls_only_bucket_policy(d.partition, d.bucket_name)
    if normalize_policy(have) != normalize_policy(want):
        return "bucket policy differs: deny requests without TLS"
    return None


def plan(ctx: AwsContext, d: DesiredState, plan: Plan) -> dict[str, Any]:
    s3 = ctx.client("s3")
    bucket = d.bucket_name
    resource = f"s3 bucket {bucket}"
    exists = True
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in OTHER_ACCOUNT_CODES:
            plan.observe(resource, "foreign", tags="owned by another account")
            return {"S3Bucket": bucket, "S3Key": d.s3_key}
        if not is_not_found(exc):
            raise
        exists = False
    bucket_tags = {TAG_PROJECT: d.project}
    if not exists:
        plan.observe(resource, "missing")
        create: dict[str, Any] = {"Bucket": bucket}
        if d.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": d.region}
        plan.add(PlannedCall("s3", "create_bucket", create, resource, "missing (zip over 48 MiB)"))
        plan.add(
            PlannedCall(
                "s3",
                "put_public_access_block",
                {
                    "Bucket": bucket,
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "IgnorePublicAcls": True,
                        "BlockPublicPolicy": True,
                        "RestrictPublicBuckets": True,
                    },
                },
                resource,
                "block public access",
            )
        )
        plan.add(
            PlannedCall(
                "s3",
                "put_bucket_encryption",
                {
                    "Bucket": bucket,
                    "ServerSideEncryptionConfiguration": {
                        "Rules": [
                            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                },
                resource,
                "default encryption",
            )
        )
        plan.add(
            PlannedCall(
                "s3",
                "put_bucket_versioning",
                {"Bucket": bucket, "VersioningConfiguration": {"Status": "Enabled"}},
                resource,
                "versioning",
            )
        )
        plan.add(
            PlannedCall(
                "s3",
                "put_bucket_tagging",
                {
                    "Bucket": bucket,
                    "Tagging": {"TagSet": [{"Key": k, "Value": v} for k, v in bucket_tags.items()]},
                },
                resource,
                "tags",
            )
        )
        plan.add(_policy_call(d, "deny requests without TLS"))
    else:
        tags = find_tags(ctx, bucket) or {}
        if tags.get(TAG_PROJECT) != d.project:
            plan.observe(resource, "foreign", tags=tags)
            return {"S3Bucket": bucket, "S3Key": d.s3_key}
        plan.observe(resource, "found")
        reason = _policy_differs(ctx, d)
        if reason:
            plan.add(_policy_call(d, reason))
    key_exists = False
    if exists:
        try:
            s3.head_object(Bucket=bucket, Key=d.s3_key)
            key_exists = True
        except ClientError as exc:
            if not is_not_found(exc):
                raise
    if not key_exists:
        plan.add(
            PlannedCall(
                "s3",
                "put_object",
                {
                    "Bucket": bucket,
                    "Key": d.s3_key,
                    "Body": FileBytes(str(d.zip_path)),
                    "Tagging": f"{TAG_PROJECT}={d.project}&{TAG_ENV}={d.env}",
                },
                f"s3 object s3://{bucket}/{d.s3_key}",
                "package not uploaded yet",
            )
        )
    return {"S3Bucket": bucket, "S3Key": d.s3_key}


def teardown(
    ctx: AwsContext,
    d: DesiredState,
    foreign: Foreign,
    *,
    include_bucket: bool = False,
    notes: list[str] | None = None,
) -> list[Deletion]:
    """Every version and delete marker of this env's packages; with `include_bucket` the shared
    bucket too, but only when no other env's package is left in it (then a note says why not)."""
    s3 = ctx.client("s3")
    bucket = d.bucket_name
    try:
        tags = find_tags(ctx, bucket)
    except ClientError as exc:
        if error_code(exc) not in OTHER_ACCOUNT_CODES:
            raise
        foreign("s3 bucket", bucket, "owned by another account")
        return []
    if tags is None:
        return []
    if tags.get(TAG_PROJECT) != d.project:
        foreign("s3 bucket", bucket, tags)
        return []
    prefix = f"{d.function_name}/"
    ours = list(_object_versions(s3, bucket, prefix))
    steps = [
        Deletion(
            "s3 objects",
            f"s3://{bucket}/{prefix} ({len(batch)} object versions and delete markers)",
            lambda batch=batch: _delete_versions(s3, bucket, batch),
        )
        for batch in (ours[i : i + DELETE_BATCH] for i in range(0, len(ours), DELETE_BATCH))
    ]
    if not include_bucket:
        return steps
    others = next(
        (v["Key"] for v in _object_versions(s3, bucket, "") if not v["Key"].startswith(prefix)),
        None,
    )
    if others is not None:
        if notes is not None:
            notes.append(
                f"kept s3 bucket {bucket}: other envs' packages are still in it (e.g. {others}); "
                "tear those envs down first"
            )
        return steps
    steps.append(Deletion("s3 bucket", bucket, lambda: s3.delete_bucket(Bucket=bucket)))
    return steps


def _object_versions(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, str]]:
    """Every version and delete marker under `prefix`, page by page."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            yield {"Key": entry["Key"], "VersionId": entry["VersionId"]}


def _delete_versions(s3: Any, bucket: str, objects: list[dict[str, str]]) -> None:
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    errors = answer.get("Errors") or []
    if errors:
        first = errors[0]
        raise IrisError(
            f"S3 refused to delete {len(errors)} object version(s) in {bucket}, e.g. "
            f"{first.get('Key')} ({first.get('Code')}: {first.get('Message')}); "
            "run the teardown again"
        )
