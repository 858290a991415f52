"""The `local` target: the very Lambda zip, unpacked and served on 127.0.0.1 by warm workers
running the runtime's interpreter in isolated mode under AWS's runtime interface client (see
docs/architecture.md, "Two targets, one zip")."""

from mlops_cli.targets.local.deploy import deploy, endpoint, serve, status, teardown
from mlops_cli.targets.local.logs import logs
from mlops_cli.targets.local.metrics import metrics

__all__ = ["deploy", "endpoint", "logs", "metrics", "serve", "status", "teardown"]
