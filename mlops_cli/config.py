"""Environment configs: `configs/<env>.yaml` → validated, immutable settings.

Every value has a default, so an empty file is a valid env; unknown keys are rejected so a typo
(`memroy_mb`) is an error instead of a silently ignored setting. Errors are raised as
`ConfigError`, whose message names the file, the field and what is allowed — the CLI turns it into
one line and exit code 2.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlops_cli.durations import parse_duration
from mlops_cli.errors import UsageError

ModelKind = Literal["logistic_regression", "decision_tree", "random_forest", "gradient_boosting"]
MODEL_KINDS: tuple[str, ...] = ModelKind.__args__  # type: ignore[attr-defined]
# Lambda's Python runtimes the shipped runtime code supports (it needs 3.10+; python3.9 is
# deprecated on Lambda).
Runtime = Literal["python3.10", "python3.11", "python3.12", "python3.13", "python3.14"]
RUNTIMES: tuple[str, ...] = Runtime.__args__  # type: ignore[attr-defined]
Architecture = Literal["x86_64", "arm64"]
Flavor = Literal["portable", "sklearn"]
Target = Literal["local", "aws"]
# none: anyone with the URL may call the endpoint; iam: only SigV4-signed requests (AWS_IAM routes)
ApiAuth = Literal["none", "iam"]
# The retention values CloudWatch Logs accepts (PutRetentionPolicy); anything else fails there.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)
ENV_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")
DEFAULT_ENV = "local"

# Building a model class makes pydantic look for plugins among the entry points of every
# installed distribution (~45 ms of each command's start here, more in a larger environment).
# These models only check a config file and want no plugin: the classes below are built with
# plugins off, as Typer builds its own adapters, and the caller's setting is restored after them.
_CALLER_PLUGINS = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"


class ConfigError(UsageError):
    """A config problem the user can fix; the message is complete and shown as is."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class AwsSettings(_Section):
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    profile: str | None = None
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://")


class ModelSettings(_Section):
    kind: ModelKind = "logistic_regression"
    scale: bool = False
    params: dict[str, Any] = Field(default_factory=dict)


class TrainingSettings(_Section):
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    test_size: float = Field(default=0.2, gt=0.05, lt=0.8)
    cv_folds: int = Field(default=5, ge=2, le=20)


class QualityGate(_Section):
    min_accuracy: float = Field(default=0.9, ge=0.0, le=1.0)
    min_f1: float = Field(default=0.9, ge=0.0, le=1.0)


class PackageSettings(_Section):
    flavor: Flavor = "portable"
    runtime: Runtime = "python3.12"
    architecture: Architecture = "x86_64"
    max_batch: int = Field(default=1000, ge=1, le=100_000)


class LambdaSettings(_Section):
    function_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    memory_mb: int = Field(default=512, ge=128, le=10240)
    timeout_s: int = Field(default=10, ge=1, le=900)
    reserved_concurrency: int | None = Field(default=None, ge=0, le=1000)
    log_retention_days: int = 14
    environment: dict[str, str] = Field(default_factory=dict)
    # Published versions kept after a deploy (the ones `live` points or routes to always are):
    # Lambda's code storage is 75 GB per region and a sklearn-flavor version is ~60 MB.
    keep_versions: int = Field(default=5, ge=1, le=100)

    @field_validator("log_retention_days")
    @classmethod
    def _retention_is_one_cloudwatch_accepts(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(str(d) for d in LOG_RETENTION_DAYS)
            raise ValueError(f"must be one of CloudWatch's retention values: {allowed}")
        return value

    @field_validator("environment")
    @classmethod
    def _no_reserved_lambda_variables(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
            if key.startswith("AWS_") or key == "LAMBDA_TASK_ROOT":
                raise ValueError(f"{key!r} is reserved by Lambda")
            if key == "IRIS_MLOPS_ENV":
                raise ValueError(f"{key!r} is reserved: iris-mlops sets it to the env's name")
        return value


class ApiSettings(_Section):
    throttle_rate: float = Field(default=50.0, gt=0, le=10000)
    throttle_burst: int = Field(default=100, ge=1, le=5000)
    cors_origins: list[str] = Field(default_factory=list)
    auth: ApiAuth = "none"


class LocalSettings(_Section):
    port: int = Field(default=0, ge=0, le=65535)
    workers: int = Field(default=2, ge=1, le=32)
    python: str | None = None


Strategy = Literal["all_at_once", "canary"]


class DeploySettings(_Section):
    """How `deploy` moves `live` on aws: at once, or as a canary watched for `bake`."""

    strategy: Strategy = "all_at_once"
    canary_percent: float = Field(default=10.0, gt=0, lt=100)
    bake: str = "5m"
    max_error_rate: float = Field(default=0.01, ge=0.0, le=1.0)

    @field_validator("bake")
    @classmethod
    def _bake_is_a_duration(cls, value: str) -> str:
        try:
            seconds = parse_duration(value, "bake")
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        if seconds > 12 * 3600:
            raise ValueError(f"bake {value!r} is longer than 12h")
        return value.strip()

    @property
    def bake_seconds(self) -> float:
        return parse_duration(self.bake, "bake")


class Settings(_Section):
    """The whole resolved config of one env; `env` is the file's name, not a key in it."""

    target: Target = "local"
    project: str = Field(default="iris-mlops", pattern=r"^[a-z][a-z0-9-]{0,30}$")
    protected: bool = False
    aws: AwsSettings = Field(default_factory=AwsSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    quality_gate: QualityGate = Field(default_factory=QualityGate)
    package: PackageSettings = Field(default_factory=PackageSettings)
    lambda_: LambdaSettings = Field(default_factory=LambdaSettings, alias="lambda")
    api: ApiSettings = Field(default_factory=ApiSettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    tags: dict[str, str] = Field(default_factory=dict)

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, validate_default=True
    )

    @field_validator("tags")
    @classmethod
    def _tags_do_not_shadow_ours(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key.startswith("iris-mlops:"):
                raise ValueError(f"tag {key!r} is reserved: iris-mlops sets it itself")
            if not key:
                raise ValueError("tag keys cannot be empty")
        return value


class EnvConfig(BaseModel):
    """Settings plus where they came from, which every command needs to explain itself."""

    model_config = ConfigDict(frozen=True)

    env: str
    path: Path | None
    settings: Settings

    @property
    def function_name(self) -> str:
        return self.settings.lambda_.function_name or f"{self.settings.project}-{self.env}"

    def to_dict(self) -> dict[str, Any]:
        """The resolved config with the file's own keys (`lambda`, not `lambda_`)."""
        return self.settings.model_dump(mode="json", by_alias=True)


if _CALLER_PLUGINS is None:
    del os.environ["PYDANTIC_DISABLE_PLUGINS"]
else:
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = _CALLER_PLUGINS


def config_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    from_env = os.environ.get("IRIS_MLOPS_CONFIG_DIR")
    return Path(from_env) if from_env else Path("configs")


def available_envs(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.yaml") if ENV_NAME_RE.match(p.stem))


def load_env(
    env: str | None = None,
    directory: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> EnvConfig:
    """Load `<directory>/<env>.yaml`, apply dotted CLI overrides, validate.

    The `local` env works without any file: it is the embedded default, so a fresh directory can
    run the whole lifecycle.
    """
    env = env or DEFAULT_ENV
    folder = config_dir(directory)
    if not ENV_NAME_RE.match(env):
        raise ConfigError(
            f"env name {env!r} is not valid: use lowercase letters, digits, '-' and '_'"
        )
    path = folder / f"{env}.yaml"
    if path.is_file():
        raw = _read_yaml(path)
    elif env == DEFAULT_ENV:
        raw, path = {"target": "local"}, None
    else:
        known = ", ".join(available_envs(folder)) or "none"
        raise ConfigError(
            f"unknown env {env!r}: there is no {path} (envs in {folder}: {known})"
        )
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(raw, dotted, value)
    return EnvConfig(env=env, path=path, settings=validate_settings(raw, source=str(path or env)))


def validate_settings(raw: Any, source: str) -> Settings:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the file must hold a mapping of settings, not {type(raw).__name__}"
        )
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"{source}: {field}: {_explain(err)}")
    return "\n".join(lines)


def _explain(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    given = err.get("input")
    shown = _short(given)
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see `iris-mlops config show` for valid keys)"
    if kind == "literal_error":
        return f"{shown} is not allowed; expected one of {ctx.get('expected', '?')}"
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        bound = {
            "greater_than_equal": f">= {ctx.get('ge')}",
            "less_than_equal": f"<= {ctx.get('le')}",
            "greater_than": f"> {ctx.get('gt')}",
            "less_than": f"< {ctx.get('lt')}",
        }[kind]
        return f"{shown} is out of range; must be {bound}"
    if kind == "string_pattern_mismatch":
        return f"{shown} is not allowed; must match {ctx.get('pattern')}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{err['msg'].rstrip('.')} (got {shown})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[leaf] = value
