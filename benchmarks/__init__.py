"""Benchmarks of iris-mlops: every figure next to a baseline measured in the same run.

`python -m benchmarks` runs them all (a few minutes); `--smoke` runs each with tiny counts in
seconds, which the test suite does so the benchmarks never rot. See benchmarks/README.md.
"""
