"""Plan data: one `PlannedCall` per mutating AWS API call, with placeholders for values that only
exist once an earlier call has run (an API id, a published version), as Chalice's deploy models
do with `Variable`.

Keeping calls as data is what lets `deploy --plan` print exactly what `deploy` would do, and lets
tests assert "no mutating call" without touching AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Var:
    """A value produced by an earlier call (or already known from reading AWS)."""

    name: str


@dataclass(frozen=True)
class Fmt:
    """A string built from variables, e.g. `Fmt("integrations/{integration_id}")`."""

    template: str


@dataclass(frozen=True)
class FileBytes:
    """A file's content, read only when the call runs, so plans stay small and printable."""

    path: str


@dataclass
class PlannedCall:
    service: str  # boto3 client name: "iam", "lambda", "apigatewayv2", ...
    operation: str  # boto3 method name: "create_role"
    params: dict[str, Any]
    resource: str  # "iam role iris-mlops-dev"
    reason: str  # "missing", "memory 512 -> 1024", ...
    store: dict[str, str] = field(default_factory=dict)  # variable -> key in the response
    wait: tuple[str, dict[str, Any]] | None = None  # botocore waiter to run after the call
    pre_wait: tuple[str, dict[str, Any]] | None = None  # waiter before (function busy)
    kind: str = "call"  # "call" | "smoke_test" (runs our own check instead of a boto3 call)

    def to_dict(self) -> dict[str, str]:
        return {"action": self.operation, "resource": self.resource, "reason": self.reason}


@dataclass
class Observation:
    resource: str  # "lambda function iris-mlops-dev"
    # "found" | "missing" | "foreign" (our name, not our tags: deploy refuses) | "bystander"
    # (our name, not our tags, where names are not unique — an HTTP API: left alone, ours beside it)
    state: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """What the planner read (`observed`) and the calls that close the gap, in order."""

    calls: list[PlannedCall] = field(default_factory=list)
    observed: list[Observation] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)  # ids already known from AWS
    live_version: str | None = None
    live_model_id: str | None = None
    notes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # why deploying must not start

    @property
    def foreign(self) -> list[Observation]:
        return [o for o in self.observed if o.state == "foreign"]

    @property
    def mutating(self) -> list[PlannedCall]:
        return [c for c in self.calls if c.kind == "call"]

    def add(self, call: PlannedCall) -> None:
        self.calls.append(call)

    def observe(self, resource: str, state: str, **detail: Any) -> None:
        self.observed.append(Observation(resource, state, detail))

    def extend(self, part: Plan) -> None:
        """Append what another plan read and planned, after what this one holds: parts made
        apart (resources read at the same time) merge into the plan one sequential pass
        would have made, as long as they are merged in dependency order."""
        self.calls.extend(part.calls)
        self.observed.extend(part.observed)
        self.variables.update(part.variables)
        self.notes.extend(part.notes)
        self.refusals.extend(part.refusals)
        if part.live_version is not None:
            self.live_version = part.live_version
            self.live_model_id = part.live_model_id


@dataclass(frozen=True)
class AliasRead:
    """GetAlias's answer for `live` (None: no such function or alias), as one read found it.

    `deploy` reads the alias first to resolve an interrupted canary; when that moved nothing,
    the planner takes this answer instead of asking AWS the same question again."""

    answer: dict[str, Any] | None


@dataclass
class Deletion:
    """One teardown step: what it deletes (for the plan and progress) and the call that does it."""

    resource: str
    name: str
    run: Callable[[], Any]


# Teardown reports a resource that has our name but not our tags: (resource, name, tags).
Foreign = Callable[[str, str, Any], None]


class MissingVariable(KeyError):
    pass


def resolve(value: Any, variables: dict[str, Any]) -> Any:
    """Replace placeholders anywhere inside params with their values."""
    if isinstance(value, Var):
        if value.name not in variables:
            raise MissingVariable(value.name)
        return variables[value.name]
    if isinstance(value, Fmt):
        try:
            return value.template.format(**variables)
        except KeyError as exc:
            raise MissingVariable(str(exc)) from None
    if isinstance(value, FileBytes):
        return Path(value.path).read_bytes()
    if isinstance(value, dict):
        return {k: resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(v, variables) for v in value]
    return value
