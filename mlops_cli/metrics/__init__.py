"""`iris-mlops metrics`: what an endpoint served over a window, from the handler's EMF records.

`summary` holds the pure arithmetic (window, buckets, percentiles, the result's shape); each
target reads its own source (local: the server log; aws: CloudWatch GetMetricData) and hands
plain numbers to it. Nothing here imports scikit-learn or numpy (issue 13: `metrics` must start
fast).
"""
