"""A non-blocking TCP connection on the event loop: bytes in through a hook, bytes out buffered.

Why: the loop must never block on a peer. A send the kernel cannot take at once is kept and
finished when the socket is writable; a peer that stops reading holds its buffer, not the
server. Reading stays on while a request is in flight (so a hang-up is noticed at once), and
stops only when a peer sends far more than it waits for (`MAX_BACKLOG`), or after its EOF.
Subclasses say what the bytes mean (`received`) and what a hang-up means (`closed`).
"""

from __future__ import annotations

import contextlib
import socket
import time

from mlops_cli.targets.local.loop import EVENT_READ as _READ
from mlops_cli.targets.local.loop import EVENT_WRITE as _WRITE
from mlops_cli.targets.local.loop import Loop

MAX_BACKLOG = 8 * 1024 * 1024  # unparsed input kept while a request is in flight


class Channel:
    def __init__(self, loop: Loop, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.loop = loop
        self.sock = sock
        self.out = bytearray()
        self.active = time.monotonic()  # last progress either way: the idle clock
        self.is_closed = False
        self.eof = False
        self._close_when_sent = False
        self._events = _READ
        self._registered = True
        loop.add(sock, _READ, self._ready)

    # hooks ------------------------------------------------------------------------------------
    def received(self, data: bytes) -> None:
        raise NotImplementedError

    def hung_up(self) -> None:
        """The peer sent EOF; by default the connection is over."""
        self.close()

    def closed(self) -> None:
        """Called once, after the socket is closed."""

    # I/O --------------------------------------------------------------------------------------
    def _ready(self, mask: int) -> None:
        if mask & _WRITE:
            self._flush()
        if mask & _READ and not self.is_closed and not self.eof:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            self.active = time.monotonic()
            if data:
                self.received(data)
            else:
                self.eof = True
                self._interest()
                self.hung_up()

    def send(self, data: bytes, close: bool = False) -> None:
        """Queue `data`; with `close`, the connection closes once it is all sent."""
        if self.is_closed:
            return
        self._close_when_sent = self._close_when_sent or close
        if self.out:
            self.out += data
        else:
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close()
                return
            if sent < len(data):
                self.out += memoryview(data)[sent:]  # one copy of what is left, not two
        self._settle()

    def finish(self) -> None:
        """Close once everything queued is sent."""
        self.send(b"", close=True)

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del self.out[:sent]
        if not self.out:
            self.out = bytearray()  # a bytearray keeps its peak size: let a 6 MB one go
        self.active = time.monotonic()
        self._settle()

    def _settle(self) -> None:
        if not self.out and self._close_when_sent:
            self.close()
        elif not self.is_closed:
            self._interest()

    def throttle(self, backlog: int) -> None:
        """Stop reading while `backlog` unparsed bytes exceed MAX_BACKLOG (and resume after)."""
        self._interest(backlog > MAX_BACKLOG)

    def _interest(self, paused: bool = False) -> None:
        events = (0 if (self.eof or paused) else _READ) | (_WRITE if self.out else 0)
        if events == self._events:
            return
        self._events = events
        if events:
            with contextlib.suppress(KeyError, ValueError, OSError):
                if self._registered:
                    self.loop.modify(self.sock, events, self._ready)
                else:
                    self.loop.add(self.sock, events, self._ready)
                self._registered = True
        else:
            self.loop.remove(self.sock)
            self._registered = False

    def close(self) -> None:
        if self.is_closed:
            return
        self.is_closed = True
        self.loop.remove(self.sock)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)  # what was sent is delivered, then FIN
        with contextlib.suppress(OSError):
            self.sock.close()
        self.closed()
