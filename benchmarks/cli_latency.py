"""Figure 7 — CLI latency: wall time of whole `iris-mlops` processes, as a user waits for them.

Each command is the installed console script, run as a fresh process in the workspace folder
(its configs, its artifacts), with stdout/stderr captured and colour off. The baseline is
`python -c "import boto3"` with the same interpreter, measured in the same rounds: every command
that talks to AWS pays at least that, so a no-change deploy within 2× of it spends little
beyond its API calls. Variants run interleaved round-robin after one discarded warm-up each, so
machine noise falls on all of them alike (smoke: one round, no warm-up).

- `--version`: the CLI's own start (Typer, Rich; no config, no pydantic).
- `status` and `invoke` on a local deploy of the portable zip.
- a no-change `deploy --env dev --no-smoke-test` against a moto server on 127.0.0.1 (full runs),
  run as its own `moto_server` process as a user would run it — not a thread of this process,
  whose interpreter would then serve the calls it times.

Besides wall time, each row records the median CPU time (user + system) of the command's
process: on a machine shared with other work the wall ratio moves with the load, the CPU one
much less, so both are reported.

All variants run from compiled bytecode, as an installed CLI does (see `cli_env`).

Each command is also run once under `-X importtime`; the row records whether scikit-learn, numpy
or scipy were imported (none of these commands needs them).
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.common import Figure, Row, Stats, Unavailable
from benchmarks.deploy_calls import FAKE_ENV
from benchmarks.workspace import SKIPPED_IN_SMOKE, Workspace

CLI = Path(sys.executable).parent / "iris-mlops"
HEAVY = ("sklearn", "numpy", "scipy")
BASELINE = 'python -c "import boto3"'


def cli_env(extra: dict[str, str] | None = None, pycache: Path | None = None) -> dict[str, str]:
    """The commands' environment; with `pycache`, Python keeps compiled bytecode there.

    An installed CLI runs from bytecode (pip compiles it at install; an editable checkout
    writes `__pycache__` on its first run). A caller's PYTHONDONTWRITEBYTECODE would make every
    run recompile the CLI's own modules while boto3's site-packages keep their bytecode: the
    baseline and the commands would not be measured alike. So every variant, the baseline too,
    uses one bytecode cache in the workspace, written by the discarded warm-up round.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IRIS_MLOPS_", "AWS_"))}
    env.update({"NO_COLOR": "1", "AWS_EC2_METADATA_DISABLED": "true"})
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env.update(extra or {})
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one whole process; its CPU is what the reaped child used."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:])} exited {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()[-300:]}")
    return elapsed * 1000, cpu * 1000


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    return run_timed(argv, cwd, env)[0]


class MotoProcess:
    """`moto_server` on a free loopback port, in its own process (what a user runs)."""

    def __init__(self) -> None:
        script = Path(sys.executable).parent / "moto_server"
        if not script.is_file():
            raise Unavailable(f"moto_server is not installed next to {sys.executable}")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([str(script), "-H", "127.0.0.1", "-p", str(port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        try:
            self._configure()
        except BaseException:
            self.stop()
            raise

    def _configure(self, timeout: float = 60.0) -> None:
        """Wait until it answers, and tell its Lambda not to use Docker (none here)."""
        body = json.dumps({"lambda": {"use_docker": False}}).encode()
        deadline = time.monotonic() + timeout
        while True:
            request = urllib.request.Request(f"{self.url}/moto-api/config", data=body,
                                             headers={"content-type": "application/json"},
                                             method="POST")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:  # loopback only
                    response.read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise Unavailable(f"moto_server exited {self.proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise Unavailable(f"moto_server did not answer in {timeout:.0f} s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def heavy_imports(args: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """The model libraries a command imports (from `-X importtime`'s report on stderr)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlops_cli", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:")}
    return sorted(n for n in HEAVY if n in names)


def run(ws: Workspace) -> Figure:
    fig = Figure("cli_latency", 'CLI latency: whole commands vs `python -c "import boto3"`')
    rounds = 1 if ws.smoke else 7
    pycache = ws.root / "pycache"
    env = cli_env(pycache=pycache)
    variants: dict[str, tuple[list[str], dict[str, str]]] = {
        "--version": ([str(CLI), "--version"], env),
        "status (local)": ([str(CLI), "status", "--env", "local"], env),
    }
    skipped: list[str] = []
    server: MotoProcess | None = None
    deployed = False
    try:
        if ws.smoke:
            skipped += ["invoke (local)", "no-change deploy (moto)"]
        else:
            ws.model()  # trained and evaluated in the workspace's artifacts
            run_once([str(CLI), "deploy", "--env", "local"], ws.root, env)
            deployed = True
            variants["invoke (local)"] = (
                [str(CLI), "invoke", "5.1", "3.5", "1.4", "0.2", "--env", "local"], env)
            server = MotoProcess()
            aws = cli_env({**FAKE_ENV, "AWS_ENDPOINT_URL": server.url}, pycache)
            deploy = [str(CLI), "deploy", "--env", "dev", "--no-smoke-test"]
            run_once(deploy, ws.root, aws)  # the first deploy; the timed ones change nothing
            variants["no-change deploy (moto)"] = (deploy, aws)
        baseline_argv = [sys.executable, "-c", "import boto3"]
        samples: dict[str, list[float]] = {name: [] for name in ["baseline", *variants]}
        cpu: dict[str, list[float]] = {name: [] for name in samples}
        warm_up = 0 if ws.smoke else 1  # a discarded first round warms the page cache
        for index in range(warm_up + rounds):
            for name, (argv, child_env) in [("baseline", (baseline_argv, env)),
                                            *variants.items()]:
                elapsed, used = run_timed(argv, ws.root, child_env)
                if index >= warm_up:
                    samples[name].append(elapsed)
                    cpu[name].append(used)
        base = Stats.of(samples["baseline"])
        base_cpu = Stats.of(cpu["baseline"]).median
        fig.rows.append(Row.measured(BASELINE, "ms", base, extra={"cpu_ms": base_cpu}))
        for name, (argv, child_env) in variants.items():
            row = Row.measured(name, "ms", Stats.of(samples[name]))
            row.compare(BASELINE, base.median)
            row_cpu = Stats.of(cpu[name]).median
            row.extra["cpu_ms"] = row_cpu
            row.extra["cpu_ratio"] = (round(row_cpu / base_cpu, 3)
                                      if row_cpu is not None and base_cpu else None)
            heavy = heavy_imports(argv[1:], ws.root, child_env)
            row.extra["imports"] = heavy
            if name.startswith("no-change deploy"):
                row.check("≤ 2× import boto3", row.ratio is not None and row.ratio <= 2.0)
            fig.rows.append(row)
            fig.notes.append(f"{name} imports {', '.join(heavy) if heavy else 'no'} "
                             "scikit-learn/numpy/scipy")
            if row.extra["cpu_ratio"] is not None:
                fig.notes.append(f"{name}: CPU {row_cpu:.0f} ms = {row.extra['cpu_ratio']:.2f}× "
                                 f"import boto3's {base_cpu:.0f} ms")
    except Exception as exc:
        fig.status = f"unavailable: {type(exc).__name__}: {exc}"[:400]
        if not fig.rows:
            fig.rows = [Row.missing(name, fig.status, "ms") for name in ["baseline", *variants]]
    finally:
        if deployed:
            subprocess.run([str(CLI), "teardown", "--env", "local"], cwd=ws.root, env=env,
                           capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        if server is not None:
            server.stop()
    fig.rows += [Row.missing(name, SKIPPED_IN_SMOKE, "ms") for name in skipped]
    return fig
