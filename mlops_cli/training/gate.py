"""The quality gate: which metrics miss an env's thresholds, and the refusal to package or
deploy a model that was not evaluated or misses them.

Apart from `evaluate` because `package` and `deploy` check the gate on every run, also when
their zip is up to date: this module reads `evaluation.json` and never imports scikit-learn or
numpy, so a no-change deploy does not pay the ~1.4 s they cost to import.
"""

from __future__ import annotations

from typing import Any

from mlops_cli.config import QualityGate
from mlops_cli.errors import IrisError
from mlops_cli.training.model_io import StoredModel

__all__ = ["gate_failures", "require_passed_gate"]


def gate_failures(metrics: dict[str, Any], gate: QualityGate) -> list[str]:
    """Each metric below its threshold, said with the amount it missed by."""
    failures = []
    for metric, threshold in (("accuracy", gate.min_accuracy), ("f1_macro", gate.min_f1)):
        value = float(metrics[metric])
        if value < threshold:
            failures.append(
                f"{metric} {value:.4f} is below the gate {threshold:.4f} "
                f"(short by {threshold - value:.4f})"
            )
    return failures


def require_passed_gate(stored: StoredModel, gate: QualityGate, env: str) -> dict[str, Any]:
    """Refuse a model that was never evaluated or misses this env's gate (package, deploy)."""
    report = stored.evaluation()
    if report is None:
        raise IrisError(
            f"model {stored.model_id} has not been evaluated: run "
            f"`iris-mlops evaluate --env {env} --model {stored.model_id}` first"
        )
    if report.get("model_id") != stored.model_id or "accuracy" not in report:
        raise IrisError(
            f"{stored.folder / 'evaluation.json'} does not belong to this model; rerun evaluate"
        )
    failures = gate_failures(report, gate)
    if failures:
        raise IrisError(
            f"model {stored.model_id} fails the quality gate of env {env!r}: "
            + "; ".join(failures)
        )
    return report
