"""Start and stop the project's own processes so that none outlives whoever started it.

Every launcher (make run, the dashboard's local API, the local API's workers, test fixtures, benchmarks, the
MLflow UI) starts its children with `launch`: each child leads its own process group, so its whole tree can be
stopped at once, and carries Linux's parent-death signal (prctl PR_SET_PDEATHSIG), so it is told to stop even
when its parent is SIGKILLed. The kernel sends that signal when the *thread* that forked the child exits, so
children are forked from one long-lived thread here, never from a short-lived caller (a Streamlit script run,
a worker's watcher thread). Standard library only: the function's own suite (CPython 3.13, the layer's pins) uses it.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_SIGNAL = signal.SIGTERM  # what an orphan gets: servers then stop their own children in turn
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def free_port(preferred: int = 0) -> int:
    """`preferred` when nothing listens on it, else any free loopback port (0 asks for any).

    SO_REUSEADDR as the real servers set it (http.server, Tornado): a port still in TIME_WAIT after a Ctrl-C is
    free for them, so it is free here too, and a restart keeps the README's ports."""
    for port in dict.fromkeys([preferred, 0]):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return s.getsockname()[1]
            except OSError:
                continue
    raise RuntimeError("no free port")


def _child_setup(parent: int, sig: int, then: Callable[[], None] | None) -> None:
    """Runs in the child between fork and exec: ask for `sig` when the parent dies, and close the race."""
    signal.signal(sig, signal.SIG_DFL)  # an inherited handler or SIG_IGN would swallow the parent-death signal
    if _LIBC is not None and _LIBC.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before prctl took effect: nobody will signal us
        os._exit(128 + int(sig))
    if then is not None:
        then()


class _Forker:
    """One long-lived daemon thread that forks every child, so the parent-death signal means the process died."""

    def __init__(self) -> None:
        self.requests: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def run(self, fn: Callable[[], subprocess.Popen]) -> subprocess.Popen:
        with self.lock:
            if self.thread is None or not self.thread.is_alive() or self.thread.ident is None:
                self.thread = threading.Thread(target=self._serve, daemon=True, name="process-launcher")
                self.thread.start()
        if threading.current_thread() is self.thread:
            return fn()
        done: queue.Queue = queue.Queue(maxsize=1)
        self.requests.put((fn, done))
        ok, value = done.get()
        if not ok:
            raise value
        return value

    def _serve(self) -> None:
        while True:
            fn, done = self.requests.get()
            try:
                done.put((True, fn()))
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread, raised there
                done.put((False, exc))


_FORKER = _Forker()


def launch(
    cmd: list[str], *, death_signal: int = STOP_SIGNAL, preexec: Callable[[], None] | None = None, **popen
) -> subprocess.Popen:
    """subprocess.Popen in a new session (its own process group) that gets `death_signal` when this process dies."""
    if popen.pop("start_new_session", True) is not True or "preexec_fn" in popen:
        raise ValueError("launch always starts a new session; pass extra child setup as preexec=")
    parent = os.getpid()
    return _FORKER.run(
        lambda: subprocess.Popen(
            cmd, start_new_session=True, preexec_fn=lambda: _child_setup(parent, death_signal, preexec), **popen
        )
    )


def group_members(pgid: int) -> list[int]:
    """Live processes in the group, from /proc: zombies are dead already (and an orphan's waits for init to reap it)."""
    members = []
    for stat in os.scandir("/proc"):
        if not stat.name.isdigit():
            continue
        try:
            with open(f"/proc/{stat.name}/stat", "rb") as f:
                state, _ppid, pgrp = f.read().rsplit(b")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # it ended while we looked
        if int(pgrp) == pgid and state != b"Z":
            members.append(int(stat.name))
    return members


def group_alive(pgid: int) -> bool:
    """True while any live process is left in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(group_members(pgid))


def signal_groups(procs: Iterable[subprocess.Popen], sig: int) -> None:
    """Send `sig` to each child's whole process group; a group already gone is fine."""
    for p in procs:
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_groups(procs: list[subprocess.Popen], timeout_s: float, hurry: Callable[[], bool] = lambda: False) -> bool:
    """Reap the leaders and wait until every group is empty; False at the timeout or as soon as `hurry()` says so."""
    deadline = time.monotonic() + timeout_s
    while True:
        for p in procs:
            p.poll()  # reap a dead leader, or its zombie keeps the group alive
        if not any(group_alive(p.pid) for p in procs):
            for p in procs:
                p.poll()  # a leader that died after the poll above is a zombie now: reaped, never left behind
            return True
        if time.monotonic() >= deadline or hurry():
            return False
        time.sleep(0.1)


def stop_groups(
    procs: Iterable[subprocess.Popen | None],
    grace_s: float = 5.0,
    hurry: Callable[[], bool] = lambda: False,
    sig: int = signal.SIGTERM,
) -> bool:
    """`sig` to every group, SIGKILL what is left after `grace_s` (or at once when `hurry()`); bounded whatever the load."""
    procs = [p for p in procs if p is not None]
    signal_groups(procs, sig)
    if wait_groups(procs, grace_s, hurry):
        return True
    signal_groups(procs, signal.SIGKILL)
    return wait_groups(procs, 5.0)  # SIGKILL cannot be refused: only a process stuck in the kernel stays


def stop_group(proc: subprocess.Popen, grace_s: float = 5.0, sig: int = signal.SIGTERM) -> bool:
    """Stop one child started by `launch` and everything in its group, whatever state it is in."""
    return stop_groups([proc], grace_s, sig=sig)


def wait_for(what: str, condition: Callable, timeout_s: float = 180.0, interval_s: float = 0.2, proc=None, log=None):
    """Poll `condition()` until it returns something truthy; fail naming what was awaited and why it never came."""
    deadline = time.monotonic() + timeout_s
    last_exc = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what}: the process exited with {proc.returncode} first\n{tail}")
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - any failure just means "not yet"
            last_exc = exc
        time.sleep(interval_s)
    tail = log.read_text()[-2000:] if log and log.exists() else ""
    raise TimeoutError(f"waited {timeout_s:.0f} s for {what}; last error: {last_exc!r}\n{tail}")


class Supervisor:
    """A launcher's signal handling: the first signal asks its children to stop, any later one kills them at once.

    Handlers never raise, so a second Ctrl-C during shutdown prints no traceback and cannot cut the cleanup short.
    Explicit handlers also cover a launcher started in the background, which inherits SIGINT ignored."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []
        self.signals = 0  # a plain counter: a handler that took a lock could deadlock against the code it interrupted

    def install(self) -> Supervisor:
        for sig in self.SIGNALS:
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum, frame) -> None:
        self.signals += 1
        if self.signals > 1:  # impatient: no more grace for anyone
            signal_groups(self.children, signal.SIGKILL)

    def launch(self, cmd: list[str], **popen) -> subprocess.Popen:
        proc = launch(cmd, **popen)
        self.children.append(proc)
        if self.signals > 1:  # started while a kill was already asked for
            signal_groups([proc], signal.SIGKILL)
        return proc

    @property
    def stopping(self) -> bool:
        return self.signals > 0

    def sleep(self, seconds: float) -> bool:
        """Wait up to `seconds`, waking early for a signal; True when a stop was asked for."""
        deadline = time.monotonic() + seconds
        while not self.signals and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return self.stopping

    def stop_all(self, grace_s: float = 5.0) -> bool:
        """Stop every child's group, newest first in one sweep; a later signal cuts the grace short."""
        return stop_groups(reversed(self.children), grace_s, hurry=lambda: self.signals > 1)
