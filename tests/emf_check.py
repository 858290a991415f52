"""Checks a log record against the CloudWatch Embedded Metric Format specification, the way
CloudWatch Logs would before extracting metrics from it (shared by the in-process and the
isolated-interpreter tests)."""

from __future__ import annotations

from typing import Any

UNITS = {"Count", "Milliseconds", "Seconds", "Microseconds", "Bytes", "Percent", "None"}


def emf_metrics(record: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(metric name, ((dimension, value), ...)): value} as CloudWatch would extract them;
    raises AssertionError naming what the specification forbids."""
    meta = record["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    extracted: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for directive in directives:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        assert directive["Namespace"] == "iris-mlops"
        assert len(directive["Metrics"]) <= 100
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            for name in dimension_set:
                assert isinstance(record[name], str) and record[name], name
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert metric["Unit"] in UNITS
            value = record[metric["Name"]]
            assert isinstance(value, (int, float)) and not isinstance(value, bool)
            for dimension_set in directive["Dimensions"]:
                key = tuple((d, record[d]) for d in dimension_set)
                extracted[(metric["Name"], key)] = value
    return extracted
