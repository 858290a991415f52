from __future__ import annotations

import time
from pathlib import Path

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.config import load_env
from mlops_cli.targets.local.logs import logs


def test_since_keeps_recent_requests_with_their_untimestamped_lines(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.deployments_dir.mkdir(parents=True)
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
    new = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (store.deployments_dir / "local.log").write_text(
        f"{old} 127.0.0.1 \"POST /predict\" 200 1ms old-request\nEND old-request\n"
        f"{new} 127.0.0.1 \"POST /predict\" 200 1ms new-request\nEND new-request\n"
    )
    seen: list[str] = []
    logs(load_env("local", tmp_path / "none"), store, "10m", False,
         lambda e: seen.append(e["message"]))
    assert [line.split()[-1] for line in seen] == ["new-request", "new-request"]


def test_lambda_report_lines_read_as_cloudwatch_messages_with_the_time_apart(
    tmp_path: Path,
) -> None:
    store = ArtifactStore(tmp_path)
    store.deployments_dir.mkdir(parents=True)
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    (store.deployments_dir / "local.log").write_text(
        f"{stamp} START RequestId: r1 Version: $LATEST\n"
        '{"level": "info", "msg": "from the handler"}\n'
        f"{stamp} END RequestId: r1\n"
        f"{stamp} REPORT RequestId: r1\tDuration: 1.00 ms\tBilled Duration: 1 ms\n"
    )
    events: list[dict] = []
    logs(load_env("local", tmp_path / "none"), store, "10m", False, events.append)
    assert [e["message"].split(" RequestId")[0] for e in events] == [
        "START", '{"level": "info", "msg": "from the handler"}', "END", "REPORT"]
    assert {e["timestamp"] // 1000 for e in events} == {int(now)}
