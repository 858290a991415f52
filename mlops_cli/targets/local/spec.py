"""What a local server runs, as plain data handed from `deploy` to the detached server process.

The spec travels as JSON over the server's stdin (never argv: `lambda.environment` may hold values
that should not show in `ps`; with `api.auth: iam` it carries the deploy-time AWS credentials the
server verifies signatures against, which must never land on disk or in a log — so `repr` hides
them, the digest keeps only the access key id, and nothing writes `to_json()` anywhere else).
Its digest tells a redeploy whether the running server already serves exactly this package with
exactly this configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

# Lambda's synchronous invocation payload limit; API Gateway refuses larger requests before Lambda.
MAX_BODY = 6 * 1024 * 1024
SERVER_MODULE = "mlops_cli.targets.local.server"
FAKE_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class ServerSpec:
    env: str
    root: str  # the unpacked zip: LAMBDA_TASK_ROOT
    handler: str  # "iris_runtime.handler.lambda_handler"
    python: str  # interpreter that runs the workers
    runtime: str  # "python3.12", for AWS_EXECUTION_ENV
    port: int  # 0 = any free port
    workers: int
    timeout_s: int
    memory_mb: int
    function_name: str
    region: str
    environment: dict[str, str] = field(default_factory=dict)  # the env's lambda.environment
    access_log: bool = True
    max_body: int = MAX_BODY
    init_timeout_s: float = 25.0
    auth: str = "none"  # api.auth: "iam" = only SigV4-signed requests reach the function
    # {"access_key", "secret_key", "token"} when auth is iam; stdin only, see the module doc
    credentials: dict[str, str | None] | None = field(default=None, repr=False)
    runtime_client: str = ""  # the staged awslambdaric tree: LAMBDA_RUNTIME_DIR
    python_version: str = ""  # the worker interpreter's X.Y

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ServerSpec:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the server spec must be a JSON object")
        return cls(**data)

    def digest(self) -> str:
        """Identity of what is served; `access_log` and the init budget do not change behaviour."""
        data = asdict(self)
        data.pop("access_log")
        data.pop("init_timeout_s")
        creds = data.pop("credentials") or {}
        data["auth_access_key"] = creds.get("access_key")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{FAKE_ACCOUNT_ID}:function:{self.function_name}"


def worker_environment(spec: ServerSpec, log_stream: str, runtime_api: str) -> dict[str, str]:
    """The environment Lambda gives a function, built from nothing (`runtime_api`: host:port).

    Nothing is inherited from the caller: its AWS credentials, profile or endpoint must never
    reach handler code, which on Lambda would only ever see its own execution role.
    """
    python_bin = os.path.dirname(spec.python)
    env = {
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": spec.root,
        "LAMBDA_RUNTIME_DIR": spec.runtime_client,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_s),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "IRIS_MLOPS_ENV": spec.env,  # the `env` dimension of the handler's metrics
    }
    # Config validation already refuses AWS_* and LAMBDA_TASK_ROOT keys; Lambda lets user
    # variables override nothing else it sets, so ours win on any remaining clash.
    return {**spec.environment, **env}

