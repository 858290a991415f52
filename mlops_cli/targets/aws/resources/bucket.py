"""The S3 artifact bucket, used only when a package is over Lambda's 50 MB direct-upload limit.

One bucket per account and region, shared by the project's envs (tagged with the project only);
each env's packages live under `<function>/`. A bucket of that name owned by another account
answers 403 and is reported as foreign. Teardown deletes only this env's objects, and the bucket
itself only once nothing else is left in it.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.targets.aws.desired import (
    TAG_ENV,
    TAG_PROJECT,
    DesiredState,
    artifact_bucket_name,
    tag_list_to_dict,
)
from mlops_cli.targets.aws.model import Deletion, FileBytes, Foreign, Plan, PlannedCall
from mlops_cli.targets.aws.session import AwsContext, error_code, is_not_found


def find_tags(ctx: AwsContext, bucket: str) -> dict[str, str] | None:
    """The bucket's tags ({} when it has none), or None when there is no such bucket."""
    try:
        tagset = ctx.client("s3").get_bucket_tagging(Bucket=bucket).get("TagSet", [])
    except ClientError as exc:
        if is_not_found(exc):
            return None
        if error_code(exc) not in {"NoSuchTagSet", "NoSuchTagSetError"}:
            raise
        tagset = []
    return tag_list_to_dict(tagset)


def plan(ctx: AwsContext, d: DesiredState, plan: Plan) -> dict[str, Any]:
    s3 = ctx.client("s3")
    bucket = d.bucket_name
    resource = f"s3 bucket {bucket}"
    exists = True
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in {"403", "AccessDenied", "Forbidden"}:
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
        plan.add(PlannedCall("s3", "create_bucket", create, resource, "missing (zip over 50 MB)"))
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
    else:
        tags = find_tags(ctx, bucket) or {}
        if tags.get(TAG_PROJECT) != d.project:
            plan.observe(resource, "foreign", tags=tags)
            return {"S3Bucket": bucket, "S3Key": d.s3_key}
        plan.observe(resource, "found")
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


def teardown(ctx: AwsContext, d: DesiredState, foreign: Foreign) -> list[Deletion]:
    """Delete this env's packages from the shared artifact bucket; the bucket itself only when
    nothing else is left in it (other envs of the project may still use it)."""
    s3 = ctx.client("s3")
    bucket = artifact_bucket_name(ctx.account_id, ctx.region)
    tags = find_tags(ctx, bucket)
    if tags is None:
        return []
    if tags.get(TAG_PROJECT) != d.project:
        foreign("s3 bucket", bucket, tags)
        return []
    prefix = f"{d.function_name}/"
    versions = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    objects = [
        {"Key": v["Key"], "VersionId": v["VersionId"]}
        for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])
    ]
    steps = []
    if objects:
        steps.append(
            Deletion(
                "s3 objects",
                f"s3://{bucket}/{prefix} ({len(objects)})",
                lambda: s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": objects, "Quiet": True}
                ),
            )
        )

    def delete_bucket_if_empty() -> None:
        left = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
        if left.get("Versions") or left.get("DeleteMarkers"):
            return  # other envs' packages remain: keep the shared bucket
        s3.delete_bucket(Bucket=bucket)

    steps.append(Deletion("s3 bucket", f"{bucket} (if empty)", delete_bucket_if_empty))
    return steps
