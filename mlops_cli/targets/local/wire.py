"""HTTP/1.1 requests read incrementally from a byte buffer, for the local server's event loop.

Both the HTTP front and the Runtime API read requests with `RequestReader`: bytes go in as they
arrive (`feed`), whole requests come out (`next`), so no socket is ever read by a waiting
thread. What holds:
- Nothing is unbounded: the head is at most `max_head` bytes in at most `max_headers` lines, a
  chunk-size line at most 1 KiB; the body policy (how long, whether too large is refused or
  read and dropped) is the owner's (`plan`), decided from the head before any body byte is kept.
- A request that cannot be read answers `HttpError(status, message)` and the reader is spent:
  the connection's remaining bytes mean nothing and it must be closed.
- Parsing is one pass over the head (split, partition): it runs three times per invocation.
- A short head seen before is not parsed again (`_HEADS`): a keep-alive client, and a worker's
  `/next`, send the same bytes request after request. A `Head` is never changed once parsed,
  so one object can serve every request that sent those bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_MAX_CHUNK_LINE = 1024
# Heads already parsed (strictly), by their bytes: only short ones, at most _MEMO_SIZE of them
# (the table is emptied when full: a flood of distinct heads costs what it cost without it).
_HEADS: dict[bytes, Head] = {}
_MEMO_HEAD = 1024
_MEMO_SIZE = 256


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Head:
    """A request line and its headers: `headers` as sent (order and case kept: SigV4 signs
    them), `fields` by lower-case name (the first value: what the server itself reads)."""

    __slots__ = ("fields", "headers", "line", "method", "target", "version")

    def __init__(self, method: str, target: str, version: str,
                 headers: list[tuple[str, str]], fields: dict[str, str], line: str) -> None:
        self.method = method
        self.target = target
        self.version = version  # "HTTP/1.1"
        self.headers = headers
        self.fields = fields
        self.line = line  # the request line, for the log

    def get(self, name: str) -> str | None:
        """The first value of header `name` (lower case)."""
        return self.fields.get(name)

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]


@dataclass(slots=True)
class BodyPlan:
    """How to read a body: `length` bytes, or chunked when `chunked`; past `limit` bytes the
    body is refused with 413 (`drop` False) or read and thrown away (`drop` True: the request
    then comes out with `body` None)."""

    length: int = 0
    chunked: bool = False
    limit: int = 0
    drop: bool = False


NO_BODY = BodyPlan()


@dataclass(slots=True)
class Request:
    head: Head
    body: bytes | None


class RequestReader:
    """One connection's parser. `plan(head)` decides the body (or raises HttpError)."""

    def __init__(
        self, plan: Callable[[Head], BodyPlan], *, max_head: int = 65536,
        max_headers: int = 100, parse_head: Callable[[str], Head] | None = None,
        keep: Callable[[Head], bool] | None = None,
    ) -> None:
        self.buf = bytearray()
        self._plan = plan
        self._max_head = max_head
        self._max_headers = max_headers
        self._parse_head = parse_head or parse_head_strict
        self._keep = keep  # which parsed heads are worth remembering (default: all short ones)
        self._head: Head | None = None
        self._body_plan = BodyPlan()
        self._chunks: list[bytes] = []
        self._total = 0
        self._chunk_left = -1  # chunked: -1 = expect a size line, -2 = trailers

    def feed(self, data: bytes) -> None:
        self.buf += data

    @property
    def started(self) -> bool:
        """Whether part of a request is buffered (a peer that stops now left one unfinished)."""
        return bool(self.buf) or self._head is not None

    @property
    def partial_head(self) -> bool:
        """Whether the bytes so far are the start of a head (a peer that stops now sent an
        incomplete request; one that stops mid-body merely stopped)."""
        return self._head is None and bool(self.buf)

    def next(self) -> Request | None:
        """The next whole request, or None until more bytes come."""
        if self._head is None:
            if not self.buf:
                return None  # the usual case after a request: nothing more buffered
            head = self._read_head()
            if head is None:
                return None
            self._body_plan = self._plan(head)
            self._head = head
        plan = self._body_plan
        body = self._read_chunked(plan) if plan.chunked else self._read_length(plan)
        if body is False:
            return None
        head, self._head = self._head, None
        self._chunks, self._total, self._chunk_left = [], 0, -1
        if not self.buf:
            self.buf = bytearray()  # a bytearray keeps its peak size: let a 6 MB one go
        return Request(head, body)

    # head -------------------------------------------------------------------------------------
    def _read_head(self) -> Head | None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            lf = buf.find(b"\n\n")
            if lf < 0:
                if len(buf) > self._max_head:
                    line_end = buf.find(b"\n")
                    if line_end < 0 or line_end > self._max_head:
                        raise HttpError(414, "Request-URI Too Long")
                    raise HttpError(431, "Request Header Fields Too Large")
                return None
            end, skip = lf, 2
        else:
            skip = 4
        if end > self._max_head:
            raise HttpError(431, "Request Header Fields Too Large")
        raw = bytes(buf[:end])
        del buf[: end + skip]
        if raw.count(b"\n") >= self._max_headers:
            raise HttpError(431, "Too many headers")
        memo = end <= _MEMO_HEAD and self._parse_head is parse_head_strict
        if memo and (head := _HEADS.get(raw)) is not None:
            return head
        head = self._parse_head(raw.decode("latin-1"))
        if memo and (self._keep is None or self._keep(head)):
            if len(_HEADS) >= _MEMO_SIZE:
                _HEADS.clear()
            _HEADS[raw] = head
        return head

    # bodies -----------------------------------------------------------------------------------
    def _read_length(self, plan: BodyPlan) -> bytes | bool | None:
        if plan.drop and plan.length > plan.limit:
            take = min(len(self.buf), plan.length - self._total)
            del self.buf[:take]
            self._total += take
            return None if self._total >= plan.length else False
        if len(self.buf) < plan.length:
            return False
        with memoryview(self.buf) as view:
            body = bytes(view[: plan.length])  # one copy (a bytearray slice would be two)
        del self.buf[: plan.length]
        return body

    def _line(self) -> bytes | None:
        end = self.buf.find(b"\n")
        if end < 0:
            if len(self.buf) > _MAX_CHUNK_LINE:
                raise HttpError(400, "malformed chunked body")
            return None
        line = bytes(self.buf[: end + 1])
        del self.buf[: end + 1]
        return line

    def _read_chunked(self, plan: BodyPlan) -> bytes | bool | None:
        while True:
            if self._chunk_left == -2:  # trailers, dropped as API Gateway drops them
                line = self._line()
                if line is None:
                    return False
                if line.strip():
                    continue
                if self._total > plan.limit:
                    return None
                return b"".join(self._chunks)
            if self._chunk_left == -1:
                line = self._line()
                if line is None:
                    return False
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise HttpError(400, "malformed chunked body") from None
                if size < 0:
                    raise HttpError(400, "malformed chunked body")
                if size == 0:
                    self._chunk_left = -2
                    continue
                self._total += size
                if self._total > plan.limit:
                    if not plan.drop:
                        raise HttpError(
                            413, f"Request Entity Too Large: the limit is {plan.limit} bytes")
                    self._chunks.clear()
                self._chunk_left = size
            take = min(len(self.buf), self._chunk_left)
            if take:
                if self._total <= plan.limit:
                    self._chunks.append(bytes(self.buf[:take]))
                del self.buf[:take]
                self._chunk_left -= take
            if self._chunk_left > 0:
                return False
            # the CRLF after the chunk's data
            if len(self.buf) < 2 and self.buf[:1] != b"\n":
                self._chunk_left = 0
                return False
            if self.buf[:2] == b"\r\n":
                del self.buf[:2]
            elif self.buf[:1] == b"\n":
                del self.buf[:1]
            else:
                raise HttpError(400, "malformed chunked body")
            self._chunk_left = -1


_VERSIONS = frozenset({"HTTP/1.1", "HTTP/1.0"})
# every header line at once, `token ":" anything`: one regex call per request, not one a line
_HEADER_BLOCK = re.compile(
    r"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\n]*\n)*[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\n]*\Z"
)


def parse_head_strict(text: str) -> Head:
    """Request line and headers, refused with 400 (505 for another major version) when they
    are not HTTP/1.x as a client should send it."""
    request_line, _, rest = text.partition("\n")
    request_line = request_line.rstrip("\r")
    words = request_line.split()
    if len(words) == 2:
        raise HttpError(400, "HTTP/0.9 is not supported")
    if len(words) != 3:
        raise HttpError(400, "Bad request syntax")
    method, target, version = words
    if version not in _VERSIONS:
        _check_version(version)
    if not _TOKEN.match(method):
        raise HttpError(400, "Bad request method")
    headers: list[tuple[str, str]] = []
    fields: dict[str, str] = {}
    if rest:
        if not _HEADER_BLOCK.match(rest):
            raise HttpError(400, "malformed header line")
        for raw in rest.split("\n"):
            name, _, value = raw.partition(":")
            value = value.strip()
            headers.append((name, value))
            fields.setdefault(name.lower(), value)
    return Head(method, target, version, headers, fields, request_line)


def _check_version(version: str) -> None:
    if not version.startswith("HTTP/"):
        raise HttpError(400, f"Bad request version {version[:40]!r}")
    number = version[5:].split(".")
    if len(number) != 2 or not all(p.isdigit() and len(p) <= 3 for p in number):
        raise HttpError(400, f"Bad request version {version[:40]!r}")
    if int(number[0]) != 1:
        raise HttpError(505, f"Invalid HTTP version ({version[5:40]})")
