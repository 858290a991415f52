"""`export`: the template of an env (see `template.py`) plus where its code comes from.

Two ways to name the code, because pipelines differ: `--code-uri s3://…` when the pipeline put the
zip there itself (then export makes no AWS call and needs no credentials), or `--code-bucket B`,
which uploads the env's zip through the env's boto3 session to `B/<function>/<sha256>.zip` — the
key deploy uses, so the same bytes are uploaded once, whichever command runs first. Every S3 call
names the caller's account as `ExpectedBucketOwner`, so a same-named bucket of another account is
never written to or read from; and the bucket must be in the env's region, as Lambda requires.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from mlops_cli.config import EnvConfig
from mlops_cli.console import Reporter
from mlops_cli.errors import IrisError, UsageError
from mlops_cli.packaging.result import PackageInfo
from mlops_cli.targets.aws.session import AwsContext, aws_errors, connect, error_code, is_not_found
from mlops_cli.targets.aws.template import (
    FORMATS,
    CodeLocation,
    build_template,
    render,
    template_state,
)


def check_request(cfg: EnvConfig, fmt: str, code_bucket: str | None, code_uri: str | None) -> None:
    """Bad usage is refused before anything is built or uploaded."""
    if cfg.settings.target != "aws":
        raise UsageError(
            f"env {cfg.env!r} has target {cfg.settings.target}: export describes AWS resources, "
            "so give an aws env (e.g. --env dev)"
        )
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of: {', '.join(FORMATS)}")
    if bool(code_bucket) == bool(code_uri):
        raise UsageError(
            "say where the function's code comes from: --code-bucket BUCKET (upload the env's "
            "zip there) or --code-uri s3://BUCKET/KEY (already uploaded) — exactly one of them"
        )
    if code_uri:
        CodeLocation.parse(code_uri)


def export(
    cfg: EnvConfig,
    package: PackageInfo,
    reporter: Reporter,
    *,
    fmt: str,
    code_bucket: str | None = None,
    code_uri: str | None = None,
    output: Path | None = None,
    ctx: AwsContext | None = None,
) -> tuple[str, dict[str, Any]]:
    """Return the rendered template and a summary; write the template to `output` if given."""
    check_request(cfg, fmt, code_bucket, code_uri)
    uploaded = False
    if code_uri:
        code = CodeLocation.parse(code_uri)
    else:
        key = template_state(cfg, package).s3_key
        code = CodeLocation(str(code_bucket), key)
        ctx = ctx or connect(cfg)
        with reporter.step(f"uploading {package.path.name} to {code.uri}"):
            uploaded = upload_code(ctx, package, code)
    template = build_template(cfg, package, code, fmt)
    text = render(template)
    if output is not None:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the template to {output}: {exc.strerror}") from None
    summary: dict[str, Any] = {
        "env": cfg.env,
        "format": fmt,
        "output": str(output) if output is not None else None,
        "code_uri": code.uri,
        "code_sha256": package.code_sha256_b64,
        "uploaded": uploaded,
        "model_id": package.model_id,
        "function_name": cfg.function_name,
        "resources": [
            {"logical_id": name, "type": res["Type"]}
            for name, res in template["Resources"].items()
        ],
        "parameters": {k: v.get("Default") for k, v in template["Parameters"].items()},
        "outputs": sorted(template["Outputs"]),
    }
    return text, summary


def upload_code(ctx: AwsContext, package: PackageInfo, code: CodeLocation) -> bool:
    """Put the zip at `code` unless the same zip is already there.

    Returns whether it uploaded. S3 checks the bytes against `ChecksumSHA256` on arrival.
    """
    s3 = ctx.client("s3")
    owner = {"ExpectedBucketOwner": ctx.account_id}
    doing = f"upload the package to {code.uri}"
    with aws_errors(doing, ctx):
        try:
            location = s3.get_bucket_location(Bucket=code.bucket, **owner)
        except ClientError as exc:
            raise _bucket_error(exc, code, ctx) from None
        region = location.get("LocationConstraint") or "us-east-1"
        region = "eu-west-1" if region == "EU" else region
        if region != ctx.region:
            raise UsageError(
                f"bucket {code.bucket} is in {region}, but env {ctx.region!r} runs Lambda in "
                f"{ctx.region}: Lambda reads code only from a bucket in its own region"
            )
        try:
            head = s3.head_object(
                Bucket=code.bucket, Key=code.key, ChecksumMode="ENABLED", **owner
            )
        except ClientError as exc:
            if not is_not_found(exc):
                raise _bucket_error(exc, code, ctx) from None
            head = None
        if head is not None and _same_object(head, package):
            return False
        try:
            s3.put_object(
                Bucket=code.bucket,
                Key=code.key,
                Body=package.path.read_bytes(),
                ChecksumSHA256=package.code_sha256_b64,
                ContentType="application/zip",
                **owner,
            )
        except ClientError as exc:
            raise _bucket_error(exc, code, ctx) from None
    return True


def _same_object(head: dict[str, Any], package: PackageInfo) -> bool:
    """The key names the zip's SHA-256; S3 confirms it when it stored a checksum (deploy's
    upload stores none), else the size must match."""
    checksum = head.get("ChecksumSHA256")
    if checksum:
        return bool(checksum == package.code_sha256_b64)
    return head.get("ContentLength") == package.path.stat().st_size


def _bucket_error(exc: ClientError, code: CodeLocation, ctx: AwsContext) -> Exception:
    kind = error_code(exc)
    if kind == "NoSuchBucket":
        return UsageError(
            f"bucket {code.bucket} does not exist: create it in {ctx.region} "
            "(or pass another --code-bucket)"
        )
    if kind in {"403", "AccessDenied", "Forbidden"}:
        return UsageError(
            f"bucket {code.bucket} is not usable by account {ctx.account_id}: either another "
            "account owns it (every call passes ExpectedBucketOwner) or the caller may not "
            "read and write it (s3:GetBucketLocation, s3:GetObject, s3:PutObject)"
        )
    if kind == "BadDigest" or "checksum" in str(exc).lower():
        return IrisError(f"S3 rejected the upload of {code.uri}: the bytes arrived damaged; retry")
    return exc
