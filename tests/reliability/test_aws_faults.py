"""Injected AWS faults (moto in-process): crashes after every mutating call, throttling and 5xx
on every call, IAM propagation delay, a version that answers wrongly.

Each scenario runs in a fresh moto account. The reference is a clean deploy's snapshot
(`aws_helpers.snapshot`, which counts APIs, routes, integrations, stages, permission
statements, versions, aliases, log groups and role policies): a deploy that was killed and rerun
must end in exactly that state, and a third deploy must find nothing to do.

Already covered in tests/aws (not repeated): one crash before CreateRoute and one between
UpdateFunctionCode and PublishVersion; botocore retrying a throttled read; the IAM retry's
delays and bound; live staying put on a wrong answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_cli.artifacts import ArtifactStore
from mlops_cli.errors import IrisError
from tests.aws.conftest import make_cfg, make_package, set_fake_aws_env
from tests.reliability import figures
from tests.reliability.aws_helpers import (
    FN,
    Faults,
    Killed,
    faulty_context,
    fresh_aws,
    normalized,
    nothing_of,
    run_deploy,
    run_teardown,
    snapshot,
)


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    set_fake_aws_env(monkeypatch, tmp_path)
    import botocore.retries.standard as standard

    # botocore's real backoff (up to 20 s a retry) would only slow the suite: retry instantly
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)


@pytest.fixture
def packages(tmp_path: Path) -> dict[str, Any]:
    return {"v1": make_package(tmp_path / "v1"), "v2": make_package(tmp_path / "v2", "v2")}


def _reference(tmp_path: Path, steps: list[tuple[Any, Any]]) -> tuple[dict, list[str]]:
    """Snapshot and mutating calls of the last step of an undisturbed run of `steps`."""
    with fresh_aws():
        store = ArtifactStore(tmp_path / "reference")
        faults = Faults()
        for cfg, package in steps:
            faults = Faults()
            run_deploy(cfg, store, package, faults)
        return normalized(snapshot()), faults.mutating


# -- crashes mid-deploy ---------------------------------------------------------------------------
SCENARIOS = {
    # name: (steps before the killed deploy, the killed deploy's (cfg overrides, package))
    "first deploy": ([], ({}, "v1")),
    "update: new code and memory": ([({}, "v1")], ({"lambda__memory_mb": 1024}, "v2")),
}


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_deploy_killed_at_each_mutating_call_converges_on_rerun(
    tmp_path: Path, packages: dict[str, Any], scenario: str, when: str
) -> None:
    """Killed just before the Nth mutating call was sent, or just after AWS applied it."""
    before, (overrides, version) = SCENARIOS[scenario]
    setup = [(make_cfg(**o), packages[v]) for o, v in before]
    target = (make_cfg(**overrides), packages[version])
    reference, mutating = _reference(tmp_path, [*setup, target])
    assert mutating, "the killed deploy must have something to do"

    for n in range(1, len(mutating) + 1):
        with fresh_aws():
            store = ArtifactStore(tmp_path / f"{scenario}-{n}")
            for cfg, package in setup:
                run_deploy(cfg, store, package, Faults())
            recorded = store.read_record("dev")
            kill = Faults(kill_after=n) if when == "after" else Faults(kill_before=n)
            with pytest.raises(Killed):
                run_deploy(target[0], store, target[1], kill)
            # never a record claiming the half-done deploy succeeded
            assert store.read_record("dev") == recorded
            rerun = Faults()
            result = run_deploy(target[0], store, target[1], rerun)
            assert normalized(snapshot()) == reference, f"killed after call {n} ({mutating[n-1]})"
            assert store.read_record("dev")["package_sha256"] == target[1].sha256
            assert result["url"]
            third = Faults()
            assert run_deploy(target[0], store, target[1], third)["up_to_date"], third.mutating
            assert third.mutating == []
    figures.record("aws faults", deploy_kills=len(mutating), deploy_reruns_converged=len(mutating))


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_teardown_killed_at_each_mutating_call_finishes_on_rerun(
    tmp_path: Path, packages: dict[str, Any], when: str
) -> None:
    with fresh_aws():
        store = ArtifactStore(tmp_path / "reference")
        run_deploy(make_cfg(), store, packages["v1"], Faults())
        clean = Faults()
        run_teardown(make_cfg(), store, clean)
    deletions = clean.mutating
    assert len(deletions) >= 5

    for n in range(1, len(deletions) + 1):
        with fresh_aws():
            store = ArtifactStore(tmp_path / f"teardown-{n}")
            run_deploy(make_cfg(env="prod"), store, packages["v1"], Faults())
            prod_before = normalized(snapshot("iris-mlops-prod"))
            run_deploy(make_cfg(), store, packages["v1"], Faults())
            kill = Faults(kill_after=n) if when == "after" else Faults(kill_before=n)
            with pytest.raises(Killed):
                run_teardown(make_cfg(), store, kill)
            rerun = Faults()
            run_teardown(make_cfg(), store, rerun)
            assert nothing_of(snapshot()), f"killed after {deletions[n - 1]}"
            assert normalized(snapshot("iris-mlops-prod")) == prod_before  # the other env
            assert store.read_record("dev") is None
            last = Faults()
            assert run_teardown(make_cfg(), store, last)["deleted"] == []
            assert last.mutating == []
    figures.record("aws faults", teardown_kills=len(deletions))


# -- throttling and 5xx ---------------------------------------------------------------------------
def _all_operations(tmp_path: Path, packages: dict[str, Any]) -> tuple[list[str], list[str]]:
    with fresh_aws():
        store = ArtifactStore(tmp_path / "ops")
        first = Faults()
        run_deploy(make_cfg(), store, packages["v1"], first)
        down = Faults()
        run_teardown(make_cfg(), store, down)
    return sorted(set(first.calls)), sorted(set(down.calls))


@pytest.mark.parametrize("kind", ["throttle", "5xx"])
def test_two_transient_faults_on_any_call_are_retried_to_the_same_end_state(
    tmp_path: Path, packages: dict[str, Any], kind: str
) -> None:
    reference, _ = _reference(tmp_path, [(make_cfg(), packages["v1"])])
    deploy_ops, teardown_ops = _all_operations(tmp_path, packages)
    injected = 0
    for op in deploy_ops:
        with fresh_aws():
            store = ArtifactStore(tmp_path / f"{kind}-{op}")
            faults = Faults(inject={op: [kind, kind]})
            run_deploy(make_cfg(), store, packages["v1"], faults)
            assert faults.injected[kind] == 2, op  # both faults met a retry
            assert normalized(snapshot()) == reference, op
            injected += 2
    for op in teardown_ops:
        with fresh_aws():
            store = ArtifactStore(tmp_path / f"{kind}-down-{op}")
            run_deploy(make_cfg(), store, packages["v1"], Faults())
            faults = Faults(inject={op: [kind, kind]})
            run_teardown(make_cfg(), store, faults)
            assert faults.injected[kind] == 2, op
            assert nothing_of(snapshot()), op
            injected += 2
    figures.record(
        "aws faults",
        **{f"transient_{kind}_operations": len(deploy_ops) + len(teardown_ops)},
        **{f"transient_{kind}_faults": injected},
    )


@pytest.mark.parametrize("kind", ["throttle", "5xx"])
def test_a_call_that_keeps_failing_is_retried_within_bounds_then_a_clear_error(
    tmp_path: Path, packages: dict[str, Any], kind: str
) -> None:
    from mlops_cli.targets.aws.session import MAX_ATTEMPTS

    reference, mutating = _reference(tmp_path, [(make_cfg(), packages["v1"])])
    failures = 0
    for op in sorted(set(mutating)):
        with fresh_aws():
            store = ArtifactStore(tmp_path / f"persistent-{kind}-{op}")
            faults = Faults(persistent={op: kind})
            with pytest.raises(IrisError) as caught:
                run_deploy(make_cfg(), store, packages["v1"], faults)
            message = str(caught.value)
            # botocore's max_attempts counts retries: 1 try + MAX_ATTEMPTS retries, then stop
            assert faults.injected[kind] == MAX_ATTEMPTS + 1, (op, faults.injected)
            assert "Traceback" not in message
            assert ("Rate exceeded" if kind == "throttle" else "Service Unavailable") in message
            assert f"after {MAX_ATTEMPTS + 1} attempts" in message
            assert "run the command again" in message  # says what to do
            assert store.read_record("dev") is None, op  # no half-recorded success
            run_deploy(make_cfg(), store, packages["v1"], Faults())  # and it recovers
            assert normalized(snapshot()) == reference, op
            failures += 1
    figures.record(
        "aws faults",
        **{f"persistent_{kind}_operations": failures},
        attempts_per_call=f"{MAX_ATTEMPTS + 1}",
    )


# -- IAM propagation and smoke test disagreement ----------------------------------------------
def test_create_function_refused_as_not_assumable_then_accepted_converges(
    tmp_path: Path, packages: dict[str, Any]
) -> None:
    """tests/aws checks the delays and the bound; here: the end state equals a clean deploy's."""
    from types import SimpleNamespace

    from mlops_cli.console import NullReporter
    from mlops_cli.targets.aws import deploy

    reference, _ = _reference(tmp_path, [(make_cfg(), packages["v1"])])
    for refusals in (1, 3, 5):
        with fresh_aws():
            faults = Faults()
            ctx_store = ArtifactStore(tmp_path / f"iam-{refusals}")
            count = [0]

            def refuse(count: list[int] = count, refusals: int = refusals, **_: Any) -> Any:
                if count[0] < refusals:
                    count[0] += 1
                    return SimpleNamespace(status_code=400), {
                        "Error": {
                            "Code": "InvalidParameterValueException",
                            "Message": "The role defined for the function cannot be assumed "
                            "by Lambda.",
                        },
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    }
                return None

            ctx = faulty_context(make_cfg(), faults)
            ctx.client("lambda").meta.events.register_first(
                "before-call.lambda.CreateFunction", refuse
            )
            sleeps: list[float] = []
            deploy(make_cfg(), ctx_store, packages["v1"], NullReporter(), ctx=ctx,
                   smoke_test=False, sleep=sleeps.append)
            assert count[0] == refusals and len(sleeps) == refusals
            assert normalized(snapshot()) == reference
    figures.record("aws faults", iam_refusals_then_accepted="1, 3, 5")


def test_a_version_that_answers_wrongly_on_some_rows_never_gets_live(
    tmp_path: Path, packages: dict[str, Any]
) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from mlops_cli.targets.aws.smoke import SMOKE_ROWS, local_predictions

    with fresh_aws():
        store = ArtifactStore(tmp_path / "smoke")
        x, y = load_iris(return_X_y=True)
        folder = store.model_dir("m-test")
        folder.mkdir(parents=True)
        joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), folder / "model.joblib")
        right = local_predictions(store, "m-test", SMOKE_ROWS)
        wrong = list(right)
        wrong[2] = (wrong[2] + 1) % 3  # rows 3 and 8 of the smoke set answer another class
        wrong[7] = (wrong[7] + 2) % 3

        def answering(predictions: list[int]) -> Any:
            return lambda ctx, fn, q, event: {"predictions": [{"prediction": p}
                                                              for p in predictions]}

        run_deploy(make_cfg(), store, packages["v1"], Faults(), smoke_test=True,
                   invoker=answering(right))
        record = store.read_record("dev")
        with pytest.raises(IrisError) as caught:
            run_deploy(make_cfg(lambda__memory_mb=1024), store, packages["v2"], Faults(),
                       smoke_test=True, invoker=answering(wrong))
        message = str(caught.value)
        assert "2 of 8 rows" in message and "`live` was not moved" in message
        for i, row in enumerate(SMOKE_ROWS):
            assert (str(list(row)) in message) == (i in (2, 7)), (i, message)
        import boto3

        assert boto3.client("lambda").get_alias(FunctionName=FN, Name="live")[
            "FunctionVersion"] == "1"
        assert store.read_record("dev") == record  # still describes what is live
    figures.record("aws faults", smoke_disagreements_blocked=1)
