"""The `aws` target: deploy (plan, then apply), teardown, status, rollback, logs, invoke.

Layout: `session` (boto3 clients + error translation), `desired` (pure desired state),
`planner` (read-only calls → planned mutating calls), `executor` (runs them), `smoke` (verified
rollout), `deploy`, `teardown`, `ops` (status, rollback, logs, invoke, endpoint).
"""

from mlops_cli.targets.aws.deploy import deploy
from mlops_cli.targets.aws.metrics import metrics
from mlops_cli.targets.aws.ops import endpoint, invoke_direct, logs, rollback, status
from mlops_cli.targets.aws.teardown import check_teardown_allowed, teardown

__all__ = [
    "check_teardown_allowed",
    "deploy",
    "endpoint",
    "invoke_direct",
    "logs",
    "metrics",
    "rollback",
    "status",
    "teardown",
]
