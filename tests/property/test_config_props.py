"""Whatever YAML-shaped data a config file holds, loading either works or raises our own error."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_cli.config import ConfigError, Settings, validate_settings

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
KEYS = [*list(Settings.model_fields), "lambda", "memory_mb", "kind", "seed", "runtime", "x"]
yaml_like = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=5),
    ),
    max_leaves=20,
)


@given(yaml_like)
@settings(max_examples=300, deadline=None)
def test_any_yaml_shaped_value_is_accepted_or_rejected_with_our_error(raw: object) -> None:
    try:
        result = validate_settings(raw, source="configs/x.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("configs/x.yaml")
    else:
        assert isinstance(result, Settings)


@given(
    memory=st.integers(min_value=-10_000, max_value=20_000),
    timeout=st.integers(min_value=-5, max_value=1000),
)
@settings(max_examples=200, deadline=None)
def test_memory_and_timeout_ranges_match_lambdas(memory: int, timeout: int) -> None:
    raw = {"lambda": {"memory_mb": memory, "timeout_s": timeout}}
    ok = 128 <= memory <= 10240 and 1 <= timeout <= 900
    try:
        validate_settings(raw, source="f.yaml")
    except ConfigError:
        assert not ok
    else:
        assert ok


@given(yaml_like)
@settings(max_examples=100, deadline=None)
def test_round_trip_through_a_real_yaml_file(tmp_path_factory, raw: object) -> None:
    folder: Path = tmp_path_factory.mktemp("cfg")
    path = folder / "e.yaml"
    path.write_text(yaml.safe_dump(raw))
    from mlops_cli.config import load_env

    try:
        load_env("e", folder)
    except ConfigError as exc:
        assert "e.yaml" in str(exc)
