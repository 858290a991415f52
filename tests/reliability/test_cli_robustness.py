"""The CLI under bad input and damaged files: always one clear message and exit 1 or 2.

Arbitrary `invoke` arguments (hypothesis, through Typer's CliRunner), broken or missing configs,
missing artifacts, a corrupted `model.joblib` or `manifest.json` (the sha256 mismatch is named),
a package that is not a zip. Never a traceback, never "internal error" (that message is the CLI's
last resort for our own bugs). Runs in-process; nothing here reaches the network: AWS variables
are removed and the metadata service is disabled, so an aws env fails on missing credentials.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from mlops_cli.cli import app
from tests.conftest import Trained
from tests.reliability import figures

runner = CliRunner()
CASES: dict[str, int] = {"invoke_arguments": 0, "damaged_files": 0}


@pytest.fixture(autouse=True)
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "IRIS_MLOPS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("IRIS_MLOPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def project(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the trained project (configs + artifacts), as the working directory."""
    folder = trained.copy_to(tmp_path / "project")
    monkeypatch.chdir(folder)
    return folder


def cli(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=True)


def assert_clean_failure(result: Result, codes: tuple[int, ...] = (1, 2), *words: str) -> str:
    """Exit 1/2, a message, no traceback, not the last-resort 'internal error'."""
    text = result.output
    assert result.exit_code in codes, (result.exit_code, text, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in text and "internal error" not in text, text
    assert text.strip(), "no message at all"
    for word in words:
        assert word in text, (word, text)
    return text


# -- invoke with arbitrary arguments ------------------------------------------------------------
ARG = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["5.1", "nan", "inf", "-inf", "1e999", "0x10", "", " ", "-1", "--", "-",
                     "--json", "--env", "local", "dev", "--file", "--direct", "-e", "-f"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@given(st.lists(ARG, max_size=6))
@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_invoke_with_any_arguments_fails_cleanly_when_nothing_is_deployed(
    project: Path, args: list[str]
) -> None:
    CASES["invoke_arguments"] += 1
    result = cli("invoke", *args)
    if "--help" in args:
        return
    # Nothing is deployed, so even four good numbers end in "nothing is deployed" (exit 1).
    assert_clean_failure(result)


def test_invoke_argument_errors_name_the_argument(project: Path) -> None:
    text = assert_clean_failure(cli("invoke", "5.1", "abc", "1.4", "0.2"), (2,))
    assert "argument 2" in text and "'abc'" in text
    text = assert_clean_failure(cli("invoke", "5.1", "nan", "1.4", "0.2"), (2,))
    assert "finite" in text
    assert_clean_failure(cli("invoke", "1", "2", "3"), (2,), "exactly 4")
    bad = project / "rows.csv"
    bad.write_bytes(b"\xff\xfe\x00\x01")
    assert_clean_failure(cli("invoke", "--file", str(bad)), (2,), "rows.csv")
    assert_clean_failure(cli("invoke", "--file", str(project / "nope.csv")), (2,), "nope.csv")
    text = assert_clean_failure(cli("invoke", "5.1", "3.5", "1.4", "0.2"), (1,))
    assert "deploy" in text


# -- configs ------------------------------------------------------------------------------------
BROKEN_CONFIGS: dict[str, bytes] = {
    "yaml-syntax": b"target: local\nmodel: {kind: [unclosed\n",
    "a-list": b"- target\n- local\n",
    "a-string": b"just words\n",
    "binary": b"\xff\xfe\x00\x00garbage\x00",
    "unknown-key": b"target: local\nmodle: {kind: logistic_regression}\n",
    "bad-target": b"target: moon\n",
    "bad-kind": b"model: {kind: neural_net}\n",
    "bad-type": b"lambda: {memory_mb: lots}\n",
    "out-of-range": b"lambda: {memory_mb: 99999}\n",
    "negative-port": b"local: {port: -1}\n",
    "tabs": b"target:\tlocal\n\tmodel: x\n",
    "anchors-bomb": b"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c, *c]\n",
}


@pytest.mark.parametrize("case", sorted(BROKEN_CONFIGS))
@pytest.mark.parametrize("command", [("config", "show"), ("train",), ("status",)])
def test_a_broken_config_is_exit_2_naming_the_file(project: Path, case: str, command) -> None:
    (project / "configs" / "dev.yaml").write_bytes(BROKEN_CONFIGS[case])
    CASES["damaged_files"] += 1
    text = assert_clean_failure(cli(*command, "--env", "dev"), (2,))
    assert "dev.yaml" in text


def test_a_config_dir_entry_that_is_a_directory_or_missing_is_a_clear_error(project: Path):
    (project / "configs" / "dev.yaml").unlink()
    (project / "configs" / "dev.yaml").mkdir()
    assert_clean_failure(cli("config", "show", "--env", "dev"), (2,), "dev.yaml")
    assert_clean_failure(cli("train", "--env", "qa"), (2,), "qa")
    assert_clean_failure(cli("--config-dir", str(project / "nowhere"), "train", "--env", "dev"),
                         (2,))
    assert_clean_failure(cli("train", "--env", "../etc/passwd"), (2,))
    CASES["damaged_files"] += 4


# -- artifacts ----------------------------------------------------------------------------------
def _model_dir(project: Path) -> Path:
    models = project / "artifacts" / "models"
    return next(p for p in models.iterdir() if p.is_dir() and not p.is_symlink())


def _clear_packages(project: Path) -> None:
    for zip_file in (project / "artifacts" / "packages").rglob("*.zip"):
        zip_file.unlink()


def test_missing_artifacts_say_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    for command in (("evaluate",), ("package",), ("deploy",), ("package", "--model", "abc")):
        assert_clean_failure(cli(*command), (1, 2), "iris-mlops train")
    CASES["damaged_files"] += 4


def test_a_latest_link_to_a_deleted_model_is_a_clear_error(project: Path) -> None:
    import shutil

    shutil.rmtree(_model_dir(project))
    assert_clean_failure(cli("package"), (1,), "not found")
    CASES["damaged_files"] += 1


def test_a_corrupted_model_joblib_is_named_with_its_sha256_mismatch(project: Path) -> None:
    model = _model_dir(project) / "model.joblib"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    _clear_packages(project)
    for command in (("package",), ("evaluate",), ("deploy",)):
        text = assert_clean_failure(cli(*command), (1,), "model.joblib", "sha256")
        assert "does not match its manifest" in text
    CASES["damaged_files"] += 3


def test_a_model_joblib_that_is_not_a_pickle_but_matches_its_manifest_is_refused(project: Path):
    folder = _model_dir(project)
    (folder / "model.joblib").write_bytes(b"not a pickle at all")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(b"not a pickle at all").hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    _clear_packages(project)
    assert_clean_failure(cli("package", "--force"), (1,), "cannot load", "model.joblib")
    CASES["damaged_files"] += 1


MANIFESTS: dict[str, bytes] = {
    "truncated": b'{"model_id": "x", "sha2',
    "not-an-object": b"[1, 2, 3]",
    "empty": b"",
    "binary": b"\x00\xff\x00",
    "missing-keys": b'{"model_id": "x"}',
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_a_damaged_manifest_is_named(project: Path, case: str) -> None:
    (_model_dir(project) / "manifest.json").write_bytes(MANIFESTS[case])
    _clear_packages(project)
    assert_clean_failure(cli("package"), (1,), "manifest")
    CASES["damaged_files"] += 1


def test_a_manifest_whose_hash_was_edited_is_a_named_mismatch(project: Path) -> None:
    path = _model_dir(project) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))
    _clear_packages(project)
    assert_clean_failure(cli("package"), (1,), "sha256", "model.joblib", "manifest")
    CASES["damaged_files"] += 1


def test_a_damaged_package_record_is_rebuilt_not_a_crash(project: Path) -> None:
    for sidecar in (project / "artifacts" / "packages").rglob("*.json"):
        sidecar.write_text('{"build_key": null}')
    result = cli("package", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["reused"] is False
    CASES["damaged_files"] += 1


def test_a_package_that_is_not_a_zip_is_refused_by_deploy_local(project: Path) -> None:
    """The zip replaced by junk *and* its record updated to match: the unpacker must say so."""
    (zip_path,) = (project / "artifacts" / "packages" / "local").glob("*.zip")
    junk = b"this is not a zip file\n" * 100
    zip_path.write_bytes(junk)
    sidecar = zip_path.with_suffix(".json")
    record = json.loads(sidecar.read_text())
    record["sha256"] = hashlib.sha256(junk).hexdigest()
    sidecar.write_text(json.dumps(record))
    text = assert_clean_failure(cli("deploy", "--env", "local"), (1,), zip_path.name)
    assert "zip" in text.lower() and "rebuild" in text
    assert not (project / "artifacts" / "deployments" / "local.json").exists()
    CASES["damaged_files"] += 1


def test_a_package_changed_after_it_was_recorded_is_rebuilt(project: Path) -> None:
    (zip_path,) = (project / "artifacts" / "packages" / "local").glob("*.zip")
    zip_path.write_bytes(b"PK\x03\x04 truncated")
    result = cli("package", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["reused"] is False
    CASES["damaged_files"] += 1


def test_zz_record_cli_figures() -> None:
    if not any(CASES.values()):
        pytest.skip("nothing ran")
    figures.record("cli robustness", **CASES, tracebacks=0, internal_errors=0)
