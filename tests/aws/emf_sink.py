"""What CloudWatch Logs does with an EMF record, for moto (which extracts nothing from logs):
one PutMetricData datum per metric and dimension set, at the record's own timestamp."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def publish_emf(cw: Any, record: dict[str, Any]) -> None:
    meta = record["_aws"]
    when = datetime.fromtimestamp(meta["Timestamp"] / 1000, UTC)
    for directive in meta["CloudWatchMetrics"]:
        data = []
        for dimension_set in directive["Dimensions"]:
            dims = [{"Name": d, "Value": record[d]} for d in dimension_set]
            for metric in directive["Metrics"]:
                data.append({
                    "MetricName": metric["Name"],
                    "Dimensions": dims,
                    "Timestamp": when,
                    "Value": float(record[metric["Name"]]),
                    "Unit": metric["Unit"],
                })
        for start in range(0, len(data), 1000):
            chunk = data[start : start + 1000]
            cw.put_metric_data(Namespace=directive["Namespace"], MetricData=chunk)


def model_percentiles(monkeypatch: Any) -> None:
    """moto 5.2.5 answers a `pNN` statistic with None (and then fails to serialise it); CloudWatch
    answers the percentile. Model it: nearest rank over the period's values."""
    import math

    from moto.cloudwatch.models import Statistics

    original = Statistics.get_statistics_for_type

    def with_percentiles(self: Any, stat: str) -> Any:
        if stat.startswith("p") and stat[1:].replace(".", "", 1).isdigit():
            values = sorted(self.metric_single_values_list)
            if not values:
                return None
            rank = max(1, math.ceil(float(stat[1:]) / 100 * len(values)))
            return values[rank - 1]
        return original(self, stat)

    monkeypatch.setattr(Statistics, "get_statistics_for_type", with_percentiles)
