"""The arithmetic behind `iris-mlops metrics`: windows, percentiles, sparklines, class mix."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mlops_cli.metrics.summary import (
    BUCKETS,
    percentile,
    summarize_records,
    training_shares,
    window,
)
from mlops_cli.metrics.view import sparkline

NOW = 1_764_554_400.0  # 2025-12-01T02:00:00Z


def _record(when: float, status: int = 200, setosa: int = 1, virginica: int = 0) -> dict:
    rows = setosa + virginica if status == 200 else 0
    return {
        "_aws": {"Timestamp": int(when * 1000), "CloudWatchMetrics": []},
        "requests": 1,
        "rows": rows,
        "latency_ms": 2.0 if status == 200 else 0.5,
        "client_errors": int(400 <= status < 500),
        "server_errors": int(status >= 500),
        "setosa": setosa if status == 200 else 0,
        "versicolor": 0,
        "virginica": virginica if status == 200 else 0,
    }


def test_an_hour_is_thirty_two_minute_buckets_ending_after_now() -> None:
    win = window(NOW + 30, 3600)
    assert win.period == 120 and win.buckets in (BUCKETS, BUCKETS + 1)
    assert win.start <= NOW + 30 - 3600 < win.start + 120 and win.end > NOW + 30
    assert window(NOW, 60).period == 60  # never under CloudWatch's one-minute resolution


@given(st.integers(min_value=1, max_value=7 * 86400))
def test_every_window_covers_the_asked_span_in_whole_minutes(seconds: int) -> None:
    win = window(NOW, seconds)
    assert win.period % 60 == 0 and win.start <= NOW - seconds
    assert win.bucket(NOW) == win.buckets - 1 and win.bucket(win.end) is None


def test_percentiles_are_values_some_request_really_took() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99)) == (50.0, 99.0)
    assert percentile([], 99) is None and percentile([7.0], 50) == 7.0


def test_records_add_up_to_totals_class_mix_and_series() -> None:
    win = window(NOW, 3600)
    records = [
        _record(NOW - 10, setosa=2, virginica=1),
        _record(NOW - 20),
        _record(NOW - 1800, status=400),
        _record(NOW - 7200),  # outside the window
    ]
    result = summarize_records(records, win, ["setosa", "versicolor", "virginica"])
    assert result["requests"] == 3 and result["rows"] == 4 and result["client_errors"] == 1
    assert result["classes"] == {"setosa": 3, "versicolor": 0, "virginica": 1}
    assert result["class_mix"] == {"setosa": 0.75, "versicolor": 0.0, "virginica": 0.25}
    assert result["latency_ms"] == {"p50": 2.0, "p99": 2.0}
    assert result["series"]["requests"][-1] == 2 and sum(result["series"]["requests"]) == 3
    assert result["series"]["class:setosa"][-1] == 3


def test_a_quiet_window_is_zeros_and_no_percentiles() -> None:
    result = summarize_records([], window(NOW, 600), ["setosa"])
    assert (result["requests"], result["rows"], result["classes"]) == (0, 0, {"setosa": 0})
    assert result["latency_ms"] == {"p50": None, "p99": None}
    assert result["class_mix"] == {"setosa": None}


def test_training_shares_come_from_the_manifest_split() -> None:
    manifest = {"split": {"train_class_counts": {"setosa": 40, "versicolor": 40, "virginica": 20}}}
    assert training_shares(manifest) == {"setosa": 0.4, "versicolor": 0.4, "virginica": 0.2}
    assert training_shares({"split": {}}) is None and training_shares(None) is None


def test_sparkline_scales_to_the_peak_and_dots_empty_buckets() -> None:
    assert sparkline([0, 1, 2, 4]) == "·▃▅█"
    assert sparkline([0, 0]) == "··"
    assert len(sparkline([0.5] * BUCKETS)) == BUCKETS
