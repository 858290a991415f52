"""The Lambda runtime, shipped in the zip as the top-level package `iris_runtime`.

Standard library only (the `sklearn` flavor imports joblib lazily), Python 3.10+, relative
imports only, and as few imports as possible: every module imported is paid for on every cold
start (`python -X importtime` shows the bill). This
`__init__` is deliberately empty so that importing `iris_runtime.handler` costs only what the
handler needs.
"""
