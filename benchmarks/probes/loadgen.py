"""Keep-alive HTTP load from one process: N threads, one reused `http.client` connection each.

argv[1] is a JSON job: {"port", "path", "body", "threads", "requests" (per thread), "warmup"
(per thread, not recorded), "start_ns" (CLOCK_MONOTONIC: every process of a run starts then)}.
Prints {"latencies_us": [...], "errors": n, "first_error": str|null, "begin_ns": first
measured request, "end_ns": last}.
"""

import http.client
import json
import sys
import threading
import time


def worker(job, out, lock):
    conn = http.client.HTTPConnection("127.0.0.1", job["port"], timeout=30)
    body = job["body"].encode("utf-8")
    headers = {"content-type": "application/json"}
    latencies = []
    errors = 0
    first_error = None

    def once():
        conn.request("POST", job["path"], body, headers)
        response = conn.getresponse()
        response.read()
        return response.status

    for _ in range(job["warmup"]):
        once()
    delay = job["start_ns"] - time.monotonic_ns()
    if delay > 0:
        time.sleep(delay / 1e9)
    perf = time.perf_counter
    begin = time.monotonic_ns()
    for _ in range(job["requests"]):
        start = perf()
        try:
            status = once()
        except (OSError, http.client.HTTPException) as exc:
            status = repr(exc)
            conn.close()
        latencies.append((perf() - start) * 1e6)
        if status != 200:
            errors += 1
            first_error = first_error or str(status)
    end = time.monotonic_ns()
    conn.close()
    with lock:
        out["latencies_us"].extend(latencies)
        out["errors"] += errors
        out["first_error"] = out["first_error"] or first_error
        out["end_ns"] = max(out["end_ns"], end)
        out["begin_ns"] = min(out["begin_ns"] or begin, begin)


def main():
    job = json.loads(sys.argv[1])
    out = {"latencies_us": [], "errors": 0, "first_error": None, "end_ns": 0,
           "begin_ns": 0}
    lock = threading.Lock()
    threads = [threading.Thread(target=worker, args=(job, out, lock))
               for _ in range(job["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
