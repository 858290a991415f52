"""Cold start: the model directory is verified and loaded once, or the start fails clearly."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from mlops_cli.runtime.model import ModelLoadError, default_model_dir, load_model
from mlops_cli.runtime.service import Service
from tests import events
from tests.runtime_models import fitted, write_model_dir


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_model_dir(tmp_path / "model", fitted("decision_tree"))


def test_a_tampered_model_fails_the_cold_start_naming_file_and_both_hashes(model_dir: Path) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    model_file = model_dir / "model.json"
    model_file.write_bytes(model_file.read_bytes().replace(b'"decision_tree"', b'"decision_tree" '))
    import hashlib

    actual = hashlib.sha256(model_file.read_bytes()).hexdigest()
    with pytest.raises(ModelLoadError) as info:
        load_model(str(model_dir))
    message = str(info.value)
    assert str(model_file) in message
    assert manifest["sha256"] in message and actual in message
    assert "iris-mlops package" in message


def test_a_missing_manifest_says_the_package_has_no_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"manifest\.json not found"):
        load_model(str(tmp_path))


def test_a_manifest_without_sha256_is_refused(model_dir: Path) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    del manifest["sha256"]
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="lacks sha256"):
        load_model(str(model_dir))


def test_class_names_must_match_the_model(model_dir: Path) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["class_names"] = ["a", "b"]
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="class_names has 2 entries"):
        load_model(str(model_dir))


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_max_batch_env_var_fails_the_cold_start(model_dir: Path, monkeypatch, value) -> None:
    monkeypatch.setenv("IRIS_MAX_BATCH", value)
    with pytest.raises(ModelLoadError, match="IRIS_MAX_BATCH must be a positive integer"):
        load_model(str(model_dir))


def test_an_unsupported_format_version_asks_for_a_rebuild(tmp_path: Path) -> None:
    from mlops_cli.packaging.portable_export import export_portable

    doc = export_portable(fitted("decision_tree"))
    doc["format_version"] = 99
    model_dir = write_model_dir(tmp_path / "model", None, doc=doc)
    with pytest.raises(ModelLoadError, match=r"format_version 99.*rebuild"):
        load_model(str(model_dir))


def test_the_model_dir_defaults_to_model_next_to_the_runtime_package(monkeypatch) -> None:
    monkeypatch.delenv("IRIS_MODEL_DIR", raising=False)
    runtime_dir = Path(sys.modules["mlops_cli.runtime.model"].__file__).parent
    assert Path(default_model_dir()) == runtime_dir.parent / "model"
    monkeypatch.setenv("IRIS_MODEL_DIR", "/somewhere/else")
    assert default_model_dir() == "/somewhere/else"


def test_handler_module_loads_the_model_at_import(model_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("IRIS_MODEL_DIR", str(model_dir))
    sys.modules.pop("mlops_cli.runtime.handler", None)
    try:
        handler = importlib.import_module("mlops_cli.runtime.handler")
        body = handler.lambda_handler({"features": [5.1, 3.5, 1.4, 0.2]}, None)
        assert body["class_name"] == "setosa"
    finally:
        sys.modules.pop("mlops_cli.runtime.handler", None)


def test_the_sklearn_flavor_serves_the_pickled_estimator(tmp_path: Path) -> None:
    estimator = fitted("random_forest", scale=True)
    model_dir = write_model_dir(tmp_path / "model", estimator, flavor="sklearn")
    service = Service(load_model(str(model_dir)))
    response = service.handle(events.http_api_v2(body={"features": [6.7, 3.0, 5.2, 2.3]}), None)
    body = events.response_json(response)
    assert body["class_name"] == "virginica"
    assert body["probabilities"] == estimator.predict_proba([[6.7, 3.0, 5.2, 2.3]])[0].tolist()
    health = events.response_json(service.handle(events.http_api_v2("GET", "/health"), None))
    assert health["flavor"] == "sklearn"
