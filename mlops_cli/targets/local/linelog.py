"""The local server's log: timestamped lines to a stream (a file when detached, the terminal in
`serve`), which the workers' own output shares.

Why it buffers: each request logs START, END, REPORT and an access line; written one by one
that is three system calls per request on the server's one thread. While `buffered`, lines are
kept until `flush()` and then written at once: the pool flushes right before it hands a worker
an event (a worker's own output never lands before its START line), the front right before it
answers a client (END, REPORT and the access line are in the log once the client has its
answer), the server every few tens of milliseconds (anything else). Two writes per request.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO


class LineLog:
    def __init__(self, stream: TextIO, buffered: bool = False) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._second = -1
        self._stamp = ""
        self.buffered = buffered

    def write(self, *lines: str, flush: bool = False) -> None:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime(now))
        stamp = self._stamp
        with self._lock:
            self._pending.extend(f"{stamp}{line}\n" for line in lines)
        if flush or not self.buffered:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        with self._lock:
            text, self._pending = "".join(self._pending), []
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                pass  # a closed or full log must never fail a request

    def fileno(self) -> int | None:
        """Where workers write their own output (the same log), or None to inherit."""
        try:
            return self._stream.fileno()
        except (OSError, ValueError, AttributeError):
            return None
