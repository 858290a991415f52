"""What a built package is, as every later step (deploy, status, benchmarks) needs to know it."""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Lambda's documented limits, in bytes.
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # zipped, uploaded in the API call itself
# Above this, deploy uploads the zip through S3. Lambda's 50 MiB direct-upload limit counts the
# request's base64 form, so a zip just under 50 MiB can still be refused: 48 MiB leaves margin.
S3_UPLOAD_THRESHOLD = 48 * 1024 * 1024
UNZIPPED_LIMIT = 262_144_000  # function code and layers, unzipped
HANDLER = "iris_runtime.handler.lambda_handler"


@dataclass(frozen=True)
class PackageInfo:
    path: Path
    sha256: str  # hex digest of the zip file
    size_bytes: int
    unzipped_bytes: int
    flavor: str
    runtime: str
    architecture: str
    model_id: str
    handler: str = HANDLER

    @property
    def code_sha256_b64(self) -> str:
        """The form Lambda reports as `CodeSha256`: base64 of the raw digest."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode("ascii")

    @property
    def needs_s3_upload(self) -> bool:
        return self.size_bytes > S3_UPLOAD_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data
