"""Tiny Lambda zips that follow the package layout contract, for tests and benchmarks of the
local target without training a model or building a real package."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from mlops_cli.artifacts import sha256_file
from mlops_cli.packaging.result import HANDLER, PackageInfo

# Routes by path so one warm deployment can exercise every behaviour the emulator must handle.
PROBE_HANDLER = '''
import base64
import json
import os
import sys
import time

COLD_START_PID = os.getpid()


def _json(status, payload):
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps(payload)}


def lambda_handler(event, context):
    path = event.get("rawPath", "")
    if path == "/health":
        return _json(200, {"status": "ok", "pid": COLD_START_PID})
    if path == "/predict":
        body = json.loads(event.get("body") or "{}")
        features = body.get("features")
        if not isinstance(features, list) or len(features) != 4:
            return _json(400, {"error": {"code": "bad_features", "message": "need 4 numbers"}})
        return _json(200, {"prediction": 0, "class_name": "setosa",
                           "probabilities": [0.98, 0.01, 0.01], "model_id": "probe"})
    if path == "/echo":
        return event
    if path == "/string":
        return "plain text"
    if path == "/big":
        return {"statusCode": 200, "body": "x" * (7 * 1024 * 1024)}
    if path == "/sleep":
        time.sleep(float((event.get("queryStringParameters") or {}).get("s", "30")))
        return {"slept": True}
    if path == "/crash":
        os._exit(3)
    if path == "/raise":
        raise ValueError("boom from the handler")
    if path == "/print":
        print("hello from the handler's stdout")
        sys.stdout.write("no newline")
        return {"printed": True}
    if path == "/binary":
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if path == "/context":
        return {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "environ": dict(os.environ),
            "sys_path": sys.path,
            "executable": sys.executable,
            "version": list(sys.version_info[:3]),
            "cwd": os.getcwd(),
            "pid": os.getpid(),
        }
    return _json(404, {"error": {"code": "not_found", "message": path}})
'''

MISSING_DEPENDENCY_HANDLER = '''
import numpy


def lambda_handler(event, context):
    return {"numpy": numpy.__version__}
'''


def build_zip(
    dest: Path,
    handler_source: str = PROBE_HANDLER,
    name: str = "probe.zip",
    model_id: str = "probe-model",
    runtime: str = "python3.12",
    extra: dict[str, bytes] | None = None,
) -> PackageInfo:
    """A minimal package: `iris_runtime/handler.py` plus a manifest, and any `extra` entries."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / name
    manifest = {"model_id": model_id, "flavor": "portable", "model_file": "model.json",
                "runtime": runtime, "architecture": "x86_64"}
    entries = {
        "iris_runtime/__init__.py": b"",
        "iris_runtime/handler.py": handler_source.encode(),
        "model/manifest.json": json.dumps(manifest).encode(),
        "model/model.json": b"{}",
        **(extra or {}),
    }
    unzipped = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry, data in sorted(entries.items()):
            info = zipfile.ZipInfo(entry, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
            unzipped += len(data)
    return PackageInfo(
        path=path,
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        unzipped_bytes=unzipped,
        flavor="portable",
        runtime=runtime,
        architecture="x86_64",
        model_id=model_id,
        handler=HANDLER,
    )
