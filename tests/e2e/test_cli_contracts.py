"""The CLI's contracts as a new user meets them (issue 13), each checked on the real binary:
one JSON object per `--json` run and exit codes, help text, a dead endpoint, piped logs, no
model library imported where none is needed, fail-fast deploys, emulator hints, output that
never wraps when piped."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BIN, REPO, Trained, cli_env

pytestmark = pytest.mark.e2e

HEAVY = ("sklearn", "numpy", "scipy")
RAW_METAVAR = re.compile(r"<(?:str|bool|int|float|path|Path|list\[[^\]]*\]|[a-z]+ range)>")
SIZE = re.compile(r"\d[\d,]*\.\d\d (?:KB|MB) \(\d[\d,]* B\)")


class Project:
    """A project folder of its own, with the CLI run in it as a user runs it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "configs").exists():
            shutil.copytree(REPO / "configs", folder / "configs")

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN), *args], cwd=self.folder, env=cli_env(env),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def heavy_imports(self, *args: str, env: dict[str, str] | None = None
                      ) -> tuple[list[str], subprocess.CompletedProcess[str]]:
        """Run the CLI under `-X importtime`; return the model libraries it imported."""
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlops_cli", *args],
                              cwd=self.folder, env=cli_env(env), capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)
        names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                 if line.startswith("import time:")}
        return sorted(n for n in HEAVY if n in names), proc

    def record(self, env: str) -> dict:
        return json.loads((self.folder / "artifacts" / "deployments" / f"{env}.json").read_text())


def one_json_object(stdout: str) -> dict:
    """The whole of stdout is exactly one JSON object (json.loads refuses a second one)."""
    data = json.loads(stdout)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def evaluated(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """This module's own copy of the suite's trained, evaluated and packaged model."""
    return Project(trained.copy_to(tmp_path_factory.mktemp("contracts") / "project"))


@pytest.fixture(scope="module")
def local(evaluated: Project) -> Iterator[Project]:
    proc = evaluated.run("deploy", "--env", "local")
    assert proc.returncode == 0, proc.stderr
    yield evaluated
    evaluated.run("teardown", "--env", "local")


def command_paths() -> list[tuple[str, ...]]:
    import typer

    from mlops_cli.cli import app

    def walk(command, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield prefix
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, (*prefix, name))

    return list(walk(typer.main.get_command(app), ()))


# --------------------------------------------------------------------------- help (item 2)
def test_every_help_names_values_and_shows_defaults(tmp_path: Path) -> None:
    paths = command_paths()
    assert ("invoke",) in paths and ("config", "show") in paths
    procs = {
        path: subprocess.Popen([str(BIN), *path, "--help"], cwd=tmp_path, text=True,
                               env=cli_env({"COLUMNS": "200"}), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        for path in paths
    }
    helps = {}
    for path, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (path, err)
        helps[path] = out
        assert not RAW_METAVAR.findall(out), (path, RAW_METAVAR.findall(out))
    assert "[default: ./configs]" in helps[()]
    assert "[default: ./artifacts]" in helps[()]
    assert "--env" in helps[("deploy",)] and " ENV " in helps[("deploy",)]
    assert "[default: 10m]" in helps[("logs",)]
    assert "--kind" in helps[("train",)] and "--model" not in helps[("train",)]
    # paragraphs are wrapped to the terminal, not at the docstring's own 80-column breaks
    assert "role, log group, function, version + alias `live`, HTTP API" in helps[("export",)]


# --------------------------------------------------------- train --kind (item 9: --model)
def test_train_takes_a_kind_with_kind_and_still_accepts_the_old_spelling(tmp_path: Path) -> None:
    project = Project(tmp_path / "kinds")
    new = project.run("train", "--kind", "decision_tree", "--json")
    assert new.returncode == 0, new.stderr
    assert one_json_object(new.stdout)["kind"] == "decision_tree"
    old = project.run("train", "--model", "random_forest", "--json")
    assert old.returncode == 0, old.stderr
    assert one_json_object(old.stdout)["kind"] == "random_forest"
    assert "deprecated" in old.stderr and "--kind" in old.stderr


# ----------------------------------------------------------------- fail fast (item 6)
def test_deploy_checks_credentials_before_building_anything(tmp_path: Path) -> None:
    project = Project(tmp_path / "nocreds")
    proc = project.run("deploy", "--env", "dev",
                       env={"HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"})
    assert proc.returncode == 2
    assert "credentials" in proc.stderr and "Traceback" not in proc.stderr
    assert not (project.folder / "artifacts" / "packages").exists()


# ---------------------------------------------------------- --json and exit codes (item 1)
def test_invoke_json_is_one_object_and_a_refused_input_exits_2(local: Project) -> None:
    refused = local.run("invoke", "--json", "1e7", "1", "1", "1", "--env", "local")
    assert refused.returncode == 2, refused.stderr
    error = one_json_object(refused.stdout)["error"]
    assert error["status"] == 400 and error["code"] == "invalid_number"
    assert error["exit_code"] == 2 and "1e+06" in error["message"]

    own_check = local.run("invoke", "--json", "nan", "1", "1", "1", "--env", "local")
    assert own_check.returncode == 2
    assert one_json_object(own_check.stdout)["error"]["exit_code"] == 2

    ok = local.run("invoke", "--json", "5.1", "3.5", "1.4", "0.2", "--env", "local")
    assert ok.returncode == 0, ok.stderr
    assert one_json_object(ok.stdout)["class_name"] == "setosa"


def test_an_unreachable_endpoint_is_one_object_and_exit_1(trained: Trained,
                                                          tmp_path: Path) -> None:
    project = Project(trained.copy_to(tmp_path / "gone"))
    assert project.run("deploy", "--env", "local").returncode == 0
    try:
        record = project.record("local")
        os.kill(record["pid"], signal.SIGKILL)
        time.sleep(0.5)
        proc = project.run("invoke", "--json", "5.1", "3.5", "1.4", "0.2", "--env", "local")
        assert proc.returncode == 1
        assert "not running" in one_json_object(proc.stdout)["error"]["message"]
    finally:
        project.run("teardown", "--env", "local")


# -------------------------------------------------------------------- output (item 8)
def test_deploy_and_up_print_the_url_invoke_uses(local: Project) -> None:
    again = local.run("deploy", "--env", "local")
    assert again.returncode == 0, again.stderr
    base = local.record("local")["url"]
    assert f"endpoint {base}/predict" in again.stdout
    up = local.run("up", "--env", "local")
    assert up.returncode == 0, up.stderr
    assert f"endpoint {base}/predict" in up.stdout and "setosa" in up.stdout


def test_health_tells_training_versions_from_runtime_versions(local: Project) -> None:
    url = local.record("local")["url"]
    with urllib.request.urlopen(f"{url}/health", timeout=30) as response:
        health = json.loads(response.read())
    assert health["versions"]["training"]["scikit-learn"]
    runtime = health["versions"]["runtime"]
    assert runtime["python"].startswith("3.")
    assert "scikit-learn" not in runtime  # the portable zip runs without it


def test_piped_package_report_keeps_paths_whole_and_sizes_in_one_style(local: Project) -> None:
    proc = local.run("package", "--env", "local", env={"COLUMNS": "60"})
    assert proc.returncode == 0, proc.stderr
    zips = list((local.folder / "artifacts" / "packages" / "local").glob("*.zip"))
    whole = [f"artifacts/packages/local/{z.name}" for z in zips]
    assert any(path in line for path in whole for line in proc.stdout.splitlines()), proc.stdout
    sizes = SIZE.findall(proc.stdout)
    assert len(sizes) >= 4, proc.stdout  # zipped, unzipped, both limits, top-level entries
    assert "262.14 MB (262,144,000 B)" in proc.stdout


# ---------------------------------------------------------------------- logs (item 4)
def test_piped_logs_keep_one_record_per_line_and_json_lines(local: Project) -> None:
    assert local.run("invoke", "5.1", "3.5", "1.4", "0.2", "--env", "local").returncode == 0
    raw = Path(local.record("local")["log"]).read_text().splitlines()
    # a record is shown as is, or without the ISO stamp it starts with
    log_lines = set(raw) | {re.sub(r"^\d{4}-\d\d-\d\dT\S+ ", "", line) for line in raw}
    text = local.run("logs", "--env", "local", "--since", "1h", env={"COLUMNS": "40"})
    assert text.returncode == 0, text.stderr
    shown = text.stdout.splitlines()
    assert shown and any(len(line) > 80 for line in shown)
    for line in shown:
        assert line.split(" ", 1)[1] in log_lines, line  # whole records, never a cut one

    as_json = local.run("logs", "--env", "local", "--since", "1h", "--json")
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(records) == len(shown) and all("message" in r for r in records)

    time.sleep(2.5)
    quiet = local.run("logs", "--env", "local", "--since", "1s")
    assert quiet.returncode == 0 and quiet.stdout == ""
    assert "no log lines since 1s" in quiet.stderr


# -------------------------------------------------------------------- speed (item 5)
def test_commands_that_need_no_model_library_never_import_one(local: Project) -> None:
    commands = [
        ("invoke", "5.1", "3.5", "1.4", "0.2", "--env", "local"),
        ("status", "--env", "local"),
        ("logs", "--env", "local"),
        ("rollback", "--env", "local"),  # a usage error on a local env, still no import
        ("config", "show", "--env", "dev"),
        ("config", "list"),
        ("deploy", "--env", "local"),  # its package is up to date
        ("--version",),
    ]
    if ("metrics",) in command_paths():
        commands.append(("metrics", "--env", "local"))
    for args in commands:
        heavy, proc = local.heavy_imports(*args)
        assert proc.returncode in (0, 1, 2) and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert heavy == [], (args, heavy)


# ----------------------------------------------- dead endpoint, status (item 3); last test
def test_a_killed_local_endpoint_is_reported_not_running(local: Project) -> None:
    record = local.record("local")
    os.kill(record["pid"], signal.SIGKILL)
    time.sleep(0.5)

    status = local.run("status")
    assert status.returncode == 1
    assert "not running" in status.stderr and "deploy --env local" in status.stderr
    assert "None" not in status.stdout and "{" not in status.stdout
    assert "the most recent deploy)" not in status.stderr  # it no longer stands

    invoke = local.run("invoke", "5.1", "3.5", "1.4", "0.2")
    assert invoke.returncode == 1
    assert "not running" in invoke.stderr and "deploy --env local" in invoke.stderr
    assert "nothing is deployed" not in invoke.stderr

    heavy, teardown = local.heavy_imports("teardown", "--env", "local")
    assert teardown.returncode == 0 and heavy == []
    after = local.run("status")
    assert after.returncode == 0
    assert "None" not in after.stdout and "the most recent deploy)" not in after.stderr


# ------------------------------------------------------- emulator endpoints (items 5, 7, 8)
def test_against_moto_deploy_hints_fit_the_emulator_and_no_change_is_light(
    trained: Trained, tmp_path: Path, aws_env: dict[str, str]
) -> None:
    project = Project(trained.copy_to(tmp_path / "aws"))
    env = {**aws_env, "AWS_EC2_METADATA_DISABLED": "true"}

    smoke = project.run("deploy", "--env", "dev", env=env)
    assert smoke.returncode == 1
    assert "--no-smoke-test" in smoke.stderr

    first = project.run("deploy", "--env", "dev", "--no-smoke-test", env=env)
    assert first.returncode == 0, first.stderr
    assert "endpoint https://" in first.stdout and "/predict" in first.stdout
    assert "try: iris-mlops invoke" not in first.stdout
    assert "custom AWS endpoint" in first.stdout

    heavy, again = project.heavy_imports("deploy", "--env", "dev", "--no-smoke-test", env=env)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout and heavy == []

    heavy, status = project.heavy_imports("status", "--env", "dev", env=env)
    assert status.returncode == 0, status.stderr
    assert heavy == []
    assert "None" not in status.stdout and "{'" not in status.stdout

    dev_yaml = project.folder / "configs" / "dev.yaml"
    dev_yaml.write_text(dev_yaml.read_text().replace("memory_mb: 512", "memory_mb: 1024"))
    drifted = project.run("status", "--env", "dev", env=env)
    assert drifted.returncode == 0, drifted.stderr
    drift = [line for line in drifted.stdout.splitlines() if line.startswith("drift:")]
    assert drift and "lambda function iris-mlops-dev" in drift[0], drifted.stdout
    assert "{" not in "".join(drift) and "None" not in drifted.stdout

    heavy, plan = project.heavy_imports("teardown", "--env", "dev", "--plan", env=env)
    assert plan.returncode == 0, plan.stderr
    assert heavy == []
    rows = [line for line in plan.stdout.splitlines() if re.match(r"^│\s+\d+\s+│", line)]
    assert len(rows) >= 4, plan.stdout
    for row in rows:
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert "iris-mlops-dev" in cells[2], row  # whole names, never folded
        assert cells[3] and cells[3] != "—", row  # a reason on every row
    assert project.run("teardown", "--env", "dev", "--yes", env=env).returncode == 0
