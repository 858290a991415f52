"""The local server's one event loop: sockets, process exits and timers, all on one thread.

What holds:
- Every request of the local endpoint is read, handed to a worker, answered and logged by
  callbacks of this loop, on the thread that runs it. Nothing on that path waits on a lock or
  wakes another thread: with threads, each hand-off between the HTTP front's connection thread
  and the Runtime API's was a GIL handoff, and those handoffs (dozens of futex calls per
  request) were most of the server's CPU per request.
- Callbacks never block. A slow peer costs a buffered socket, never the loop; every wait has a
  timer (`call_later`) instead of a blocking call with a timeout.
- A callback that raises is logged and dropped: one bad connection never stops the server. Only
  `BaseException`s (Ctrl-C, SIGTERM's exception) leave `run`, so shutdown stays one path.
Standard library only: `select.epoll` itself (the `selectors` wrapper cost a few microseconds
per wake-up on the hot path; the local target is Linux-only already: pidfds, /proc).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import select
import time
from collections.abc import Callable
from typing import Any

Callback = Callable[[int], None]  # called with the ready event mask
EVENT_READ, EVENT_WRITE = 1, 2  # as in `selectors`
# a hang-up or an error is reported as readable: the reader then sees EOF or the error itself
_READABLE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR | select.EPOLLRDHUP
_COMPACT_AT = 1024  # cancelled timers kept in the heap before it is rebuilt


class Timer:
    __slots__ = ("cancelled", "fn", "when")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Loop:
    def __init__(self, on_error: Callable[[str], None] | None = None) -> None:
        self._epoll = select.epoll()
        self._callbacks: dict[int, Callback] = {}
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cancelled = 0
        self._stopping = False
        self._on_error = on_error or (lambda message: None)

    # registration -----------------------------------------------------------------------------
    # `events` are EVENT_READ / EVENT_WRITE; remove a file before closing it.
    def add(self, fileobj: Any, events: int, callback: Callback) -> None:
        fd = _fd(fileobj)
        self._epoll.register(fd, _to_epoll(events))
        self._callbacks[fd] = callback

    def modify(self, fileobj: Any, events: int, callback: Callback) -> None:
        fd = _fd(fileobj)
        self._epoll.modify(fd, _to_epoll(events))
        self._callbacks[fd] = callback

    def remove(self, fileobj: Any) -> None:
        with contextlib.suppress(ValueError, OSError):  # closed, or never added
            fd = _fd(fileobj)
            if self._callbacks.pop(fd, None) is not None:
                self._epoll.unregister(fd)

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + delay, fn)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def cancel(self, timer: Timer | None) -> None:
        if timer is not None and not timer.cancelled:
            timer.cancel()
            self._cancelled += 1
            if self._cancelled > _COMPACT_AT and self._cancelled * 2 > len(self._timers):
                self._timers = [t for t in self._timers if not t[2].cancelled]
                heapq.heapify(self._timers)
                self._cancelled = 0

    # running ----------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping = True

    def run(self) -> None:
        self._stopping = False
        while not self._stopping:
            self.run_once(None)

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Turn the loop until `done()` or `timeout` seconds passed; returns `done()`."""
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.run_once(remaining)
        return done()

    def run_once(self, max_wait: float | None) -> None:
        wait = max_wait
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
            self._cancelled = max(0, self._cancelled - 1)
        if self._timers:
            until = max(0.0, self._timers[0][0] - time.monotonic())
            wait = until if wait is None else min(wait, until)
        ready = self._epoll.poll(-1 if wait is None else wait)
        callbacks = self._callbacks
        for fd, flags in ready:
            callback = callbacks.get(fd)
            if callback is not None:  # an earlier callback of this batch may have removed it
                mask = (EVENT_READ if flags & _READABLE else 0) | (
                    EVENT_WRITE if flags & select.EPOLLOUT else 0)
                self._guard(callback, mask)
        if self._timers:
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, timer = heapq.heappop(self._timers)
                if timer.cancelled:
                    self._cancelled = max(0, self._cancelled - 1)
                    continue
                timer.cancelled = True  # fired: a later cancel() is a no-op
                self._guard(timer.fn)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # one callback's bug must not stop the server
            self._on_error(f"internal error in {getattr(fn, '__qualname__', fn)}: {exc!r}")

    def close(self) -> None:
        self._epoll.close()


def _fd(fileobj: Any) -> int:
    return fileobj if isinstance(fileobj, int) else fileobj.fileno()


def _to_epoll(events: int) -> int:
    return (select.EPOLLIN if events & EVENT_READ else 0) | (
        select.EPOLLOUT if events & EVENT_WRITE else 0)
