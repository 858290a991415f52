"""Per-request time inside one warm process, run by the target interpreter with `-I -S`.

argv[1] is a JSON job: {"root": unpacked package, "mode": "handler" | "floor" |
"sklearn_predict", "events": {"<batch>": event}, "groups": G, "min_group_s": s}. Prints one
JSON line: {"<batch>": {"per_call_us": [G values], "calls_per_group": k}}.

- handler: the package's `lambda_handler`, event in → response dict out (its one JSON log line
  per request goes to /dev/null instead of a pipe).
- floor: the same handler with the model's prediction replaced by a constant — what is left is
  the handler's own I/O: event parsing, validation, JSON encoding, logging.
- sklearn_predict: `estimator.predict_proba` on a 1×4 numpy array, the package's model.
Timing as timeit does it: calls grouped so a group lasts at least `min_group_s`, then G groups.
"""

import json
import os
import sys
import time


def autorange(fn, min_group_s):
    k = 1
    while True:
        start = time.perf_counter()
        for _ in range(k):
            fn()
        if time.perf_counter() - start >= min_group_s or k >= 1 << 20:
            return k
        k *= 2


def measure(fn, groups, min_group_s):
    for _ in range(3):
        fn()
    k = autorange(fn, min_group_s)
    out = []
    perf = time.perf_counter
    for _ in range(groups):
        start = perf()
        for _ in range(k):
            fn()
        out.append((perf() - start) / k * 1e6)
    return {"per_call_us": out, "calls_per_group": k}


def main():
    job = json.loads(sys.argv[1])
    sys.path.insert(0, job["root"])
    real_stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the handler's log lines
    results = {}
    if job["mode"] == "sklearn_predict":
        import joblib
        import numpy as np

        estimator = joblib.load(os.path.join(job["root"], "model", "model.joblib"))
        x = np.array([[5.1, 3.5, 1.4, 0.2]])
        results["1"] = measure(lambda: estimator.predict_proba(x), job["groups"],
                               job["min_group_s"])
    else:
        from iris_runtime import handler

        if job["mode"] == "floor":
            service = handler.SERVICE
            n = len(service._labels)
            constant = [1.0 / n] * n

            service._predict = lambda row: list(constant)
            service._predict_many = lambda rows: [list(constant) for _ in rows]
        fn = handler.lambda_handler
        for batch, event in job["events"].items():
            first = fn(event, None)
            if first.get("statusCode") != 200:
                raise SystemExit(f"unexpected response: {first!r}")
            results[batch] = measure(lambda e=event: fn(e, None), job["groups"],
                                     job["min_group_s"])
    real_stdout.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
