"""The local API's connections: one thread does every socket read and write, so a slow client costs a buffer, not a thread.

It accepts, reads each request until it is whole (http_framing), hands whole requests to a bounded pool of handler
threads, and writes their answers back without blocking, each under a deadline: a client gets `read_timeout` to send a
request (or to idle between two), and `write_timeout` to take an answer. Pipelined requests are answered in order
from what was already read. Memory is bounded too: at most `max_pending` connections (below the open-file limit)
and `buffer_budget` bytes held across all of them; past either, a quick 503 and close. On drain (SIGTERM) it stops
accepting, answers queued requests 503 at once, lets in-flight ones finish, and closes the rest.
"""

from __future__ import annotations

import errno
import queue
import resource
import selectors
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from .http_framing import OVERLOADED, Answer, Reject, Request, RequestReader, reject_answer, render

READ_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 64  # requests handled at once (threads)
MAX_PENDING = 8192  # open connections, lowered to fit under RLIMIT_NOFILE
BUFFER_BUDGET = 128 * 1024 * 1024  # bytes held across every connection (requests read, answers unsent)
LINGER_S = 1.0  # after refusing a request mid-body, how long its remaining bytes are read and dropped
FD_RESERVE = 64  # descriptors kept for everything else: workers' Runtime APIs, logs, the listener
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def pending_bound(requested: int, max_connections: int) -> int:
    """Connections we may hold open: never more than the open-file limit allows (after raising the soft limit to
    the hard one), or accept() fails with EMFILE and the listener spins."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = min(hard, 1 << 20) if hard != resource.RLIM_INFINITY else 1 << 20
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(1, min(requested, soft - FD_RESERVE - max_connections))


class Conn:
    __slots__ = (
        "sock", "addr", "reader", "out", "deadline", "state", "close_after", "held", "continued", "head_only", "linger",
    )  # fmt: skip

    def __init__(self, sock: socket.socket, addr, read_timeout: float):
        self.sock, self.addr = sock, addr
        self.reader = RequestReader()
        self.out = bytearray()
        self.deadline = time.monotonic() + read_timeout
        self.state = "reading"  # reading, busy (a handler has it), writing, lingering (refused: reads discarded)
        self.close_after = False
        self.held = 0  # bytes counted against the buffer budget
        self.continued = False  # 100 Continue sent for the request being read
        self.head_only = False
        self.linger = False  # refused mid-request: after the answer, keep reading (and dropping) until the client stops


class Gatekeeper(threading.Thread):
    def __init__(
        self,
        listener: socket.socket,
        handle: Callable[[Request, tuple], Answer],
        read_timeout: float = READ_TIMEOUT_S,
        write_timeout: float = WRITE_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        max_pending: int = MAX_PENDING,
        buffer_budget: int = BUFFER_BUDGET,
    ):
        super().__init__(daemon=True, name="gatekeeper")
        self.listener, self.handle = listener, handle
        self.read_timeout, self.write_timeout = read_timeout, write_timeout
        self.max_pending = pending_bound(max_pending, max_connections)
        self.buffer_budget, self.held = buffer_budget, 0
        self.selector = selectors.DefaultSelector()
        self.conns: dict[int, Conn] = {}
        # connections waiting for a request, oldest first: the deadline scan walks it in order, and at the bound the
        # oldest makes room for a newcomer (else 1,000 idle half-requests would lock every new client out)
        self.reading: OrderedDict[int, Conn] = OrderedDict()
        self.jobs: queue.Queue = queue.Queue()  # (conn, request) waiting for a handler thread
        self.done: queue.SimpleQueue = queue.SimpleQueue()  # (conn, bytes, close) answers back from handlers
        self.inflight = 0
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, "listen")
        self.listening, self.resume_at = True, 0.0
        self.draining = False
        self.drain_deadline = 0.0
        self.stopped = threading.Event()
        self.max_connections, self.threads = max_connections, 0  # handler threads start as work needs them

    def _hire(self) -> None:
        """One more handler thread when every started one is busy, up to max_connections."""
        with self.lock:
            if self.threads - self.inflight > self.jobs.qsize() or self.threads >= self.max_connections:
                return
            self.threads += 1
        threading.Thread(target=self._work, daemon=True, name=f"handler-{self.threads}").start()

    # --- called from other threads ---------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """What an operator watches for leaks: bytes held against the budget (0 when no connection is open), open
        connections, those waiting for a request, requests queued and in hand, handler threads started. Plain reads of
        counters the loop owns: each is exact, the set is a snapshot only to within one loop turn."""
        return {
            "held_bytes": self.held,
            "buffer_budget": self.buffer_budget,
            "connections": len(self.conns),
            "reading": len(self.reading),
            "queued": self.jobs.qsize(),
            "inflight": self.inflight,
            "handler_threads": self.threads,
        }

    def _wake(self) -> None:
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def drain(self, grace_s: float) -> None:
        """Stop accepting; queued requests get 503 now; in-flight ones have `grace_s` to finish."""
        self.drain_deadline = time.monotonic() + grace_s
        self.draining = True
        self._wake()

    def _work(self) -> None:
        while True:
            conn, req = self.jobs.get()
            with self.lock:
                self.inflight += 1
            try:
                try:
                    status, headers, body, close = self.handle(req, conn.addr)
                except Exception:  # noqa: BLE001 - a bug here must cost one 502, never the thread
                    status, headers, body, close = 502, {"Content-Type": "application/json"}, b'{"message":"Internal error"}', 1
                close = close or not req.keep_alive or self.draining
                self.done.put((conn, render(status, headers, body, close, req.method == "HEAD"), close))
            finally:
                with self.lock:
                    self.inflight -= 1
                self._wake()

    # --- the loop ---------------------------------------------------------------------------------------------

    def run(self) -> None:
        next_scan = 0.0
        while True:
            for key, events in self.selector.select(timeout=0.1):
                if key.data == "wake":
                    try:
                        self.wake_r.recv(4096)
                    except OSError:
                        pass
                elif key.data == "listen":
                    self._accept()
                else:
                    conn = key.data
                    if events & selectors.EVENT_WRITE:
                        self._flush(conn)
                    elif events & selectors.EVENT_READ:
                        self._read(conn)
            while True:
                try:
                    conn, data, close = self.done.get_nowait()
                except queue.Empty:
                    break
                self._answer(conn, data, close)
            now = time.monotonic()
            if not self.listening and not self.draining and now >= self.resume_at:
                self.selector.register(self.listener, selectors.EVENT_READ, "listen")
                self.listening = True
            if self.draining and self._drain_step(now):
                self.stopped.set()
                return
            if now >= next_scan:  # deadlines: a scan every 100 ms is plenty for timeouts of seconds
                next_scan = now + 0.1
                # a request not sent in time is closed without an answer: API Gateway documents none for it (its gateway
                # response types, docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html,
                # have no 408), so none is invented here
                while self.reading and (oldest := next(iter(self.reading.values()))).deadline <= now:
                    self._close(oldest)
                for conn in [c for c in self.conns.values() if c.state in ("writing", "lingering") and c.deadline <= now]:
                    self._close(conn, abort=conn.state == "writing")

    def _accept(self) -> None:
        for _ in range(256):
            try:
                sock, addr = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause_accepting(0.05)  # out of descriptors: back off instead of spinning on a readable listener
                return
            if len(self.conns) >= self.max_pending:
                if not self.reading:  # every connection is being served or answered: the newcomer waits its turn
                    try:
                        sock.send(OVERLOADED)
                    except OSError:
                        pass
                    sock.close()
                    continue
                oldest = next(iter(self.reading.values()))
                if oldest.reader.started:  # a half-sent request is told why; an idle keep-alive is simply closed
                    try:
                        oldest.sock.send(OVERLOADED)
                    except OSError:
                        pass
                self._close(oldest)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(sock, addr, self.read_timeout)
            self.conns[sock.fileno()] = conn
            self.reading[id(conn)] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _pause_accepting(self, seconds: float) -> None:
        if self.listening:
            self.selector.unregister(self.listener)
            self.listening = False
        self.resume_at = time.monotonic() + seconds

    def _account(self, conn: Conn) -> bool:
        """Re-count this connection's bytes; False when the total is over the budget."""
        now_held = conn.reader.buffered + len(conn.out)
        self.held += now_held - conn.held
        conn.held = now_held
        return self.held <= self.buffer_budget

    def _read(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client left (mid-request or idle): nothing is invoked
            return self._close(conn)
        if conn.state == "lingering":  # the rest of a refused request: dropped, never buffered or counted
            return
        conn.reader.feed(data)
        if not self._account(conn):
            return self._refuse(conn, OVERLOADED)
        self._advance(conn)

    def _advance(self, conn: Conn) -> None:
        """Dispatch the next whole request already read, or wait (with a 100 Continue if its client asked)."""
        try:
            req = conn.reader.next()
        except Reject as exc:
            return self._refuse(conn, reject_answer(exc))
        self._account(conn)
        if req is None:
            head = conn.reader.waiting_for_body
            if head is not None and head.expects_continue and not conn.continued:
                conn.continued = True
                try:
                    conn.sock.send(CONTINUE)  # 25 bytes on a connection we are reading: the socket buffer has room
                except OSError:
                    return self._close(conn)
            return
        conn.continued = False
        if self.draining:
            return self._refuse(conn, OVERLOADED)
        conn.state = "busy"  # no reads while it is handled: answers go out in request order, TCP holds the rest
        self.reading.pop(id(conn), None)
        self.selector.unregister(conn.sock)
        self.jobs.put((conn, req))
        self._hire()

    def _answer(self, conn: Conn, data: bytes, close: bool) -> None:
        if conn.sock.fileno() < 0:
            return
        conn.out += data
        conn.close_after = close
        conn.state = "writing"
        self.reading.pop(id(conn), None)
        conn.deadline = time.monotonic() + self.write_timeout
        self.selector.register(conn.sock, selectors.EVENT_WRITE, conn)
        self._account(conn)
        self._flush(conn)

    def _refuse(self, conn: Conn, answer: bytes) -> None:
        """Answer and close, reading nothing more from this connection."""
        if conn.state == "busy":
            return
        self.selector.unregister(conn.sock)
        conn.reader = RequestReader()
        conn.out = bytearray()
        conn.linger = True
        self._answer(conn, answer, True)

    def _flush(self, conn: Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            return
        except OSError:
            return self._close(conn)
        del conn.out[:sent]
        self._account(conn)
        if conn.out:
            return  # the rest when the socket is writable again, within the write deadline
        if conn.close_after:
            return self._linger(conn) if conn.linger else self._close(conn)
        conn.state = "reading"
        conn.deadline = time.monotonic() + self.read_timeout
        self.reading[id(conn)] = conn
        self.selector.modify(conn.sock, selectors.EVENT_READ, conn)
        self._advance(conn)  # a pipelined request may already be whole in the buffer

    def _linger(self, conn: Conn) -> None:
        """A lingering close: our side is shut, and what the client is still sending is read and dropped for a
        moment, so its kernel never answers the rest with a reset that would destroy our answer before it is read
        (a client still uploading the body we refused gets its 413/503, not "connection reset")."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return self._close(conn)
        conn.state = "lingering"
        conn.deadline = time.monotonic() + LINGER_S
        self.selector.modify(conn.sock, selectors.EVENT_READ, conn)

    def _close(self, conn: Conn, abort: bool = False) -> None:
        """Close a connection; `abort` resets it (an answer the client will not take is dropped, not queued for ever
        behind a FIN in the kernel)."""
        fd = conn.sock.fileno()
        if fd < 0:
            return
        if abort:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if conn.state != "busy":
            try:
                self.selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
        self.conns.pop(fd, None)
        self.reading.pop(id(conn), None)
        self.held -= conn.held
        conn.held = 0
        if not abort:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        conn.sock.close()

    def _drain_step(self, now: float) -> bool:
        """One pass of the drain; True when nothing is left to finish."""
        if self.listening:
            self.selector.unregister(self.listener)
            self.listening = False
        self.listener.close()
        while True:  # queued, never started: 503 at once
            try:
                conn, _ = self.jobs.get_nowait()
            except queue.Empty:
                break
            conn.state = "writing"
            self._answer(conn, OVERLOADED, True)
        for conn in list(self.conns.values()):
            if conn.state == "reading":  # a request already sent is read one last time (and answered 503)
                self._read(conn)
            if conn.state in ("reading", "lingering"):  # idle keep-alive, a request still arriving, a refused one
                self._close(conn)
        busy = [c for c in self.conns.values() if c.state == "busy"]
        if not self.conns:
            return True
        if now >= self.drain_deadline:
            for conn in list(self.conns.values()):
                if conn.state == "busy":  # its invocation outlived the grace: 503, and the worker is stopped after us
                    conn.state = "writing"
                    try:
                        conn.sock.setblocking(True)
                        conn.sock.settimeout(0.2)
                        conn.sock.sendall(OVERLOADED)
                    except OSError:
                        pass
                self._close(conn)
            return True
        return False if busy or self.conns else True
