"""HTTP/1.1 request framing for the local API, strict like a careful proxy: one reading of every request, or a refusal.

Pure and incremental: a RequestReader is fed the bytes of one connection as they arrive and hands out complete
requests (head and whole body, chunked or not) in order, keeping whatever follows for the next one (pipelining).
Anything two servers could read differently (smuggling) is refused: repeated, folded or non-ASCII lengths,
Content-Length beside Transfer-Encoding, chunk sizes Python's int() would accept but HTTP does not (0x10, 1_0, +5),
chunked bodies on HTTP/1.0 and bare-LF line endings. A missing or repeated Host is 400 (RFC 9112 3.2), an expectation
other than 100-continue 417 (RFC 9110 10.1.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's hard limit
MAX_HEAD = 64 * 1024  # request line + headers (and a chunked body's trailers)
MAX_CHUNK_LINE = 1024  # a chunk-size line with its extensions

_REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\x00-\x20\x7f]+) HTTP/([0-9])\.([0-9])")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DIGITS = re.compile(rb"[0-9]{1,19}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(:[0-9]*)?")  # RFC 3986 uri-host [":" port]
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # no control bytes in a header value (a lone CR above all)


class Reject(Exception):
    """The request cannot be read safely: answer `status` and close the connection."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Request:
    method: str
    target: str
    version: tuple[int, int]
    headers: list[tuple[str, str]]  # as sent, in order
    body: bytes
    keep_alive: bool

    def header(self, name: str) -> str | None:
        """The last value of a header, by case-insensitive name."""
        name = name.lower()
        for k, v in reversed(self.headers):
            if k.lower() == name:
                return v
        return None


def _bad(message: str) -> Reject:
    return Reject(400, message)


def _bare_lf(buf: bytearray | bytes, start: int, end: int) -> bool:
    i = buf.find(b"\n", start, end)
    while i >= 0:
        if i == 0 or buf[i - 1] != 0x0D:
            return True
        i = buf.find(b"\n", i + 1, end)
    return False


@dataclass(slots=True)
class Head:
    method: str
    target: str
    version: tuple[int, int]
    headers: list[tuple[str, str]]
    length: int | None  # Content-Length, or None for a chunked body
    keep_alive: bool
    expects_continue: bool


def parse_head(raw: bytes) -> Head:
    """The request line and headers (without the final CRLF CRLF) -> Head, or a Reject naming what is wrong."""
    lines = raw.split(b"\r\n")
    m = _REQUEST_LINE.fullmatch(lines[0])
    if not m:
        raise _bad("malformed request line")
    version = (int(m[3]), int(m[4]))
    if version not in ((1, 0), (1, 1)):
        raise Reject(505, f"HTTP/{version[0]}.{version[1]} is not supported; use HTTP/1.1")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise _bad("obsolete line folding in a header")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise _bad("malformed header line")
        value = value.strip(b" \t")
        if _CTL.search(value):
            raise _bad(f"control character in header {name.decode()}")
        headers.append((name.decode("ascii"), value.decode("latin-1")))
    lengths = [v for k, v in headers if k.lower() == "content-length"]
    te = [v for k, v in headers if k.lower() == "transfer-encoding"]
    tokens = {t.strip().lower() for v in headers if v[0].lower() == "connection" for t in v[1].split(",")}
    keep_alive = "close" not in tokens if version == (1, 1) else "keep-alive" in tokens
    length: int | None = 0
    if te:
        if version == (1, 0):
            raise _bad("Transfer-Encoding on HTTP/1.0")
        if lengths:
            raise _bad("both Content-Length and Transfer-Encoding")
        codings = [t.strip().lower() for v in te for t in v.split(",")]
        if codings != ["chunked"]:
            raise _bad(f"unsupported Transfer-Encoding {', '.join(codings)}; send chunked or a Content-Length")
        length = None
    elif lengths:
        if len(lengths) > 1:
            raise _bad("Content-Length repeated; send it once")
        if not _DIGITS.fullmatch(lengths[0].encode("latin-1")):
            raise _bad("Content-Length must be one non-negative integer in ASCII digits")
        length = int(lengths[0])
        if length > MAX_PAYLOAD:
            raise Reject(413, "Request Too Long")
    # RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host, and to any request with more
    # than one Host or an invalid one (API Gateway's English docs say nothing on it; its endpoints route by Host)
    hosts = [v for k, v in headers if k.lower() == "host"]
    if len(hosts) > 1:
        raise _bad("Host header repeated; send it once")
    if version == (1, 1) and not hosts:
        raise _bad("no Host header; an HTTP/1.1 request carries exactly one")
    if hosts and not _HOST.fullmatch(hosts[0]):
        raise _bad("invalid Host header; send host[:port]")
    # RFC 9110 section 10.1.1: an expectation other than 100-continue MAY be answered 417 (nothing here can meet one)
    expectations = {t.strip().lower() for k, v in headers if k.lower() == "expect" for t in v.split(",") if t.strip()}
    if unmet := sorted(expectations - {"100-continue"}):
        raise Reject(417, f"Expectation Failed: only 100-continue is supported, not {unmet[0][:40]}")
    expects = version == (1, 1) and "100-continue" in expectations and length != 0
    return Head(m[1].decode("ascii"), m[2].decode("latin-1"), version, headers, length, keep_alive, expects)


class RequestReader:
    """One connection's bytes in, whole requests out (in order); a Reject when the framing is unsafe."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0  # where the unparsed bytes start
        self.scanned = 0  # how far an unfinished head has been searched: each byte is looked at once, not per recv
        self.head: Head | None = None
        self.body: list[bytes] = []
        self.body_len = 0
        self.chunk_state = "size"  # size, data, trailer
        self.chunk_left = 0
        self.trailer_len = 0

    def feed(self, data: bytes) -> None:
        self.buf += data

    @property
    def buffered(self) -> int:
        """Bytes this connection holds in memory: what the buffer budget counts."""
        return len(self.buf) - self.pos + self.body_len

    @property
    def started(self) -> bool:
        """True once any byte of the next request is in (an idle keep-alive connection has none)."""
        return self.head is not None or len(self.buf) > self.pos

    def next(self) -> Request | None:
        """The next complete request, or None until more bytes arrive."""
        if self.head is None and not self._read_head():
            return None
        head = self.head
        assert head is not None
        if head.length is not None:
            if len(self.buf) - self.pos < head.length:
                return None
            body = bytes(self.buf[self.pos : self.pos + head.length])
            self.pos += head.length
        else:
            if not self._read_chunks():
                return None
            body = b"".join(self.body)
        self._compact()
        self.head, self.body, self.body_len = None, [], 0
        self.chunk_state, self.trailer_len = "size", 0
        return Request(head.method, head.target, head.version, head.headers, body, head.keep_alive)

    @property
    def waiting_for_body(self) -> Head | None:
        """The head whose body is still arriving (so a 100 Continue may be sent), else None."""
        return self.head

    def _compact(self) -> None:
        if self.pos > 65536 or self.pos == len(self.buf):
            del self.buf[: self.pos]
            self.scanned = max(0, self.scanned - self.pos)
            self.pos = 0

    def _read_head(self) -> bool:
        while self.buf.startswith(b"\r\n", self.pos):  # RFC 9112 2.2: an empty line before a request is ignored
            self.pos += 2
        # a head dripped a few bytes a recv would otherwise be rescanned from its start each time: quadratic work on
        # the one thread that serves every socket. Only the new bytes are searched (3 back, for a split CRLFCRLF).
        new = max(self.pos, self.scanned)
        end = self.buf.find(b"\r\n\r\n", max(self.pos, new - 3), self.pos + MAX_HEAD + 4)
        scan_end = end if end >= 0 else len(self.buf)
        if _bare_lf(self.buf, new, scan_end):
            raise _bad("bare LF line ending; end every line with CRLF")
        if end < 0:
            self.scanned = len(self.buf)
            if len(self.buf) - self.pos > MAX_HEAD:
                raise Reject(431, "Request Header Fields Too Large")
            return False
        self.head = parse_head(bytes(self.buf[self.pos : end]))
        self.pos = self.scanned = end + 4
        return True

    def _read_chunks(self) -> bool:
        """Advance through the chunked body as far as the bytes go; True once its last CRLF is in."""
        buf = self.buf
        while True:
            if self.chunk_state == "size":
                eol = buf.find(b"\r\n", self.pos, self.pos + MAX_CHUNK_LINE)
                if eol < 0:
                    if _bare_lf(buf, self.pos, len(buf)):
                        raise _bad("bare LF in chunked framing")
                    if len(buf) - self.pos >= MAX_CHUNK_LINE:
                        raise _bad("chunk-size line too long")
                    return False
                line = bytes(buf[self.pos : eol])
                size_text = line.split(b";", 1)[0]
                if not _HEX.fullmatch(size_text):
                    raise _bad(f"malformed chunk size {size_text[:20]!r}; hex digits only")
                size = int(size_text, 16)
                if self.body_len + size > MAX_PAYLOAD:
                    raise Reject(413, "Request Too Long")
                self.pos = eol + 2
                self.chunk_state, self.chunk_left = ("data", size) if size else ("trailer", 0)
            elif self.chunk_state == "data":
                if len(buf) - self.pos < self.chunk_left + 2:
                    return False
                end = self.pos + self.chunk_left
                if buf[end : end + 2] != b"\r\n":
                    raise _bad("chunk data not followed by CRLF")
                self.body.append(bytes(buf[self.pos : end]))
                self.body_len += self.chunk_left
                self.pos = end + 2
                self.chunk_state = "size"
                self._compact()
                buf = self.buf
            else:  # trailer fields, up to an empty line
                eol = buf.find(b"\r\n", self.pos)
                if eol < 0:
                    if _bare_lf(buf, self.pos, len(buf)):
                        raise _bad("bare LF in chunked trailers")
                    if self.trailer_len + len(buf) - self.pos > MAX_HEAD:
                        raise Reject(431, "Request Header Fields Too Large")
                    return False
                line_len = eol - self.pos
                self.pos = eol + 2
                if line_len == 0:
                    return True
                self.trailer_len += line_len + 2
                if self.trailer_len > MAX_HEAD:
                    raise Reject(431, "Request Header Fields Too Large")


# (status, headers, body, close) from the handler; the gatekeeper renders it
Answer = tuple[int, dict[str, str], bytes, bool]


def render(status: int, headers: dict[str, str], body: bytes, close: bool, head_only: bool = False) -> bytes:
    """An HTTP/1.1 response, Content-Length always set (HEAD: the length of the body it would have had)."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("content-length", "connection")]
    if close:
        lines.append("Connection: close")
    lines.append(f"Content-Length: {len(body)}")
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return out if head_only else out + body


def gateway_error(status: int, message: str, error_type: str) -> bytes:
    """The answers API Gateway itself gives (framing, overload), always closing the connection."""
    body = ('{"message":"' + message.replace("\\", "\\\\").replace('"', '\\"') + '"}').encode()
    headers = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*", "x-amzn-ErrorType": error_type}
    return render(status, headers, body, close=True)


OVERLOADED = gateway_error(503, "Service Unavailable", "ServiceUnavailableException")


def reject_answer(exc: Reject) -> bytes:
    if exc.status == 413:
        return gateway_error(413, "Request Too Long", "RequestTooLongException")
    if exc.status == 400:
        return gateway_error(400, f"Bad Request: {exc}", "BadRequestException")
    return gateway_error(exc.status, str(exc), "BadRequestException")
