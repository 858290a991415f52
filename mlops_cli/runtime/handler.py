"""Lambda entry point: `iris_runtime.handler.lambda_handler`.

The model is loaded here, once, at import (the cold start): from `$IRIS_MODEL_DIR`, else from
`model/` next to the `iris_runtime` package. A missing, corrupt (sha256 mismatch) or
inconsistent model raises `ModelLoadError` at import, so the function fails to initialise
instead of serving a wrong model. See `service.py` for the request/response contract.
"""

from __future__ import annotations

from .model import default_model_dir, load_model
from .service import Service

SERVICE = Service(load_model(default_model_dir()))
lambda_handler = SERVICE.handle
