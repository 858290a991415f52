"""Lambda-like worker: one warm function instance, run as `python -I -S bootstrap.py ...`.

Started by the local server with the interpreter matching the Lambda runtime. It must stay
standard-library only and import nothing from mlops_cli: `sys.path` is the unpacked zip plus the
stdlib, exactly what the function has on Lambda, so a package missing a dependency fails here as
it would there. It must also stay valid Python 3.9 (the oldest runtime a config may name).

Protocol (over the process's original stdin/stdout, which are then moved out of the handler's
way): frames of a 4-byte big-endian length followed by that many bytes of JSON.
  worker → server, once:  {"ready": {"python", "version"}}  or  {"init_error": {...}}
  server → worker:        {"requestId", "deadlineMs", "event"}
  worker → server:        {"result": ...}  or  {"error": {"errorType", "errorMessage"}}
The handler's prints go to fd 1, which is re-pointed at the log (fd 2), never the protocol.

usage: bootstrap.py <task_root> <handler> <function_arn>
"""

import json
import os
import signal
import struct
import sys
import time

_HEADER = struct.Struct(">I")


def _log(line):
    sys.stderr.write(line + "\n")


def _error_info(exc):
    return {"errorType": type(exc).__name__, "errorMessage": str(exc)}


class LambdaContext:
    """The attributes and method handler code reads from Lambda's context object."""

    def __init__(self, request_id, deadline_ms, function_arn):
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.invoked_function_arn = function_arn
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))

    def log(self, message):
        sys.stderr.write(str(message))


def _load_handler(spec):
    """Import the handler once (the cold start); errors read as Lambda words them."""
    modname, _, funcname = spec.rpartition(".")
    if not modname or not funcname:
        return None, {
            "errorType": "Runtime.MalformedHandlerName",
            "errorMessage": f"Bad handler '{spec}': not enough values to unpack",
        }
    try:
        __import__(modname)
        module = sys.modules[modname]
    except ImportError as exc:
        return None, {
            "errorType": "Runtime.ImportModuleError",
            "errorMessage": f"Unable to import module '{modname}': {exc}",
        }
    except SyntaxError as exc:
        return None, {
            "errorType": "Runtime.UserCodeSyntaxError",
            "errorMessage": f"Syntax error in module '{modname}': {exc}",
        }
    except Exception as exc:
        _print_traceback()
        info = _error_info(exc)
        info["errorMessage"] = (
            f"Init error in module '{modname}': {info['errorType']}: {info['errorMessage']}"
        )
        return None, info
    handler = getattr(module, funcname, None)
    if not callable(handler):
        return None, {
            "errorType": "Runtime.HandlerNotFound",
            "errorMessage": f"Handler '{funcname}' missing on module '{modname}'",
        }
    return handler, None


def _print_traceback():
    import traceback

    traceback.print_exc(file=sys.stderr)


def main(argv):
    root, handler_spec, function_arn = argv[1], argv[2], argv[3]
    # Ctrl-C in `serve` reaches the whole foreground group; the server decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    # Move the protocol channel off fds 0/1 before any user code can print or read.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)

    def send(obj):
        data = json.dumps(obj).encode("utf-8")
        proto_out.write(_HEADER.pack(len(data)) + data)
        proto_out.flush()

    here = os.path.dirname(os.path.abspath(__file__))
    stdlib = [p for p in sys.path if p and "-packages" not in p and os.path.abspath(p) != here]
    sys.path[:] = [root, *stdlib]
    os.chdir(root)

    handler, init_error = _load_handler(handler_spec)
    if init_error is not None:
        _log(f"[ERROR] {init_error['errorType']}: {init_error['errorMessage']}")
        send({"init_error": init_error})
        return 1
    send({"ready": {"python": sys.executable, "version": ".".join(map(str, sys.version_info[:3]))}})

    def max_rss_mb():
        # VmHWM starts at exec; ru_maxrss would carry over the (larger) server's peak
        try:
            with open("/proc/self/status", "rb") as fh:
                for line in fh:
                    if line.startswith(b"VmHWM:"):
                        return int(line.split()[1]) // 1024
        except (OSError, ValueError, IndexError):
            pass
        return 0

    memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    while True:
        header = proto_in.read(4)
        if len(header) < 4:
            return 0  # the server closed the channel: shut down quietly
        (size,) = _HEADER.unpack(header)
        frame = json.loads(proto_in.read(size))
        request_id = frame["requestId"]
        context = LambdaContext(request_id, frame["deadlineMs"], function_arn)
        _log(f"START RequestId: {request_id} Version: $LATEST")
        started = time.perf_counter()
        try:
            reply = {"result": handler(frame["event"], context)}
        except Exception as exc:
            _log(f"[ERROR] {type(exc).__name__}: {exc}")
            _print_traceback()
            reply = {"error": _error_info(exc)}
        try:
            data = json.dumps(reply).encode("utf-8")
        except (TypeError, ValueError) as exc:
            _log(f"[ERROR] Runtime.MarshalError: Unable to marshal response: {exc}")
            data = json.dumps({"error": {
                "errorType": "Runtime.MarshalError",
                "errorMessage": f"Unable to marshal response: {exc}",
            }}).encode("utf-8")
        duration = (time.perf_counter() - started) * 1000
        proto_out.write(_HEADER.pack(len(data)) + data)
        proto_out.flush()
        _log(
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {int(duration) + 1} ms\tMemory Size: {memory} MB\t"
            f"Max Memory Used: {max_rss_mb()} MB"
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
