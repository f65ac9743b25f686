"""No orphans: every process the project starts ends with whoever started it, and stops promptly when asked."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from models import processes
from models.processes import free_port, launch, stop_group, wait_for
from tests.support import ROOT, SAMPLE_KEY, LocalAPI

GONE_S = 10  # the bound: whatever was started is gone this long after its parent died or was told twice

# `make run` in a test never installs anything: the stamps count as up to date, in the sub-make too
NO_SETUP = ["-o", ".venv/.stamp-main", "-o", ".venv-fn/.stamp"]


def ours(marker: str) -> list[int]:
    """Live processes tied to one test by `marker` (its scratch folder): in their environment (LOCAL_API_DIR,
    inherited by every server), command line or working directory (awslambdaric workers run in a folder under it)."""
    me, found = os.getpid(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            if (d / "stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z":
                continue  # dead already, waiting to be reaped
            blob = (d / "environ").read_bytes() + b"\0" + (d / "cmdline").read_bytes()
            cwd = os.readlink(d / "cwd")
        except (OSError, IndexError):
            continue
        if marker.encode() in blob or cwd.startswith(marker):
            found.append(int(d.name))
    return found


def children_of(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != b"Z":
            out.append(int(stat.parent.name))
    return out


def dead(pid: int) -> bool:
    """Gone, or a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- the launcher itself ------------------------------------------------------------------------------------


def test_a_child_ends_when_its_parent_is_sigkilled(tmp_path):
    parent = launch(
        # a parent that ignores SIGTERM (nohup, some CI runners): its children must not inherit that and miss the signal
        [
            sys.executable,
            "-c",
            "import signal, sys; from models.processes import launch; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "launch(['sleep', '300']); sys.stdin.read()",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
    )
    child = None
    try:
        [child] = wait_for("the parent to start its child", lambda: children_of(parent.pid), timeout_s=60, proc=parent)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        wait_for("the orphan to end", lambda: dead(child), GONE_S, 0.1)
    finally:
        stop_group(parent, grace_s=1)
        if child and not dead(child):
            os.kill(child, signal.SIGKILL)


def test_a_child_outlives_the_short_lived_thread_that_asked_for_it():
    """PR_SET_PDEATHSIG fires when the forking *thread* exits: a Streamlit script run or a watcher thread must not
    take its server down with it."""
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("p", launch(["sleep", "300"])))
    t.start()
    t.join()
    try:
        assert not processes.wait_groups([out["p"]], 1.0), "the child died with the thread that asked for it"
    finally:
        stop_group(out["p"], grace_s=1)


def test_a_parent_that_died_before_prctl_is_noticed(monkeypatch):
    """The race: the parent dies between fork and prctl, so no signal will come; the child sees it has a new parent."""
    monkeypatch.setattr(processes.os, "getpid", lambda: 1)  # pretend the launcher was pid 1: the child's real parent differs
    p = launch(["sleep", "300"])
    try:
        assert p.wait(10) == 128 + signal.SIGTERM
    finally:
        stop_group(p, grace_s=1)


def state(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) from /proc, or None when the process is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[2])


def test_an_unreaped_child_counts_as_stopped_at_once():
    p = launch([sys.executable, "-c", "pass"])
    wait_for("the child to exit unreaped", lambda: state(p.pid) == ("Z", p.pid), timeout_s=30, interval_s=0.02)
    assert not processes.group_alive(p.pid), "a zombie has exited: its group is not alive"
    t0 = time.monotonic()
    assert stop_group(p, grace_s=5)
    assert time.monotonic() - t0 < 1, "nothing to wait for: the grace period is not for the dead"


# a zombie left in the group by a parent in another group of the session, which never reaps it
ZOMBIE_KEEPER = """
import os, sys, time
group = os.getpgid(0)
r, w = os.pipe()
if os.fork() == 0:
    os.setpgid(0, 0)
    child = os.fork()
    if child == 0:
        os.setpgid(0, group)
        os._exit(0)
    os.write(w, f"{os.getpid()} {child}".encode())
    time.sleep(60)
    os._exit(0)
print(os.read(r, 100).decode(), flush=True)
time.sleep(60)
"""


def test_a_zombie_in_the_group_does_not_make_stop_wait_its_grace():
    p = launch([sys.executable, "-c", ZOMBIE_KEEPER], stdout=subprocess.PIPE, text=True)
    keeper, zombie = map(int, p.stdout.readline().split())
    try:
        wait_for("the zombie", lambda: state(zombie) == ("Z", p.pid), timeout_s=30, interval_s=0.02)
        t0 = time.monotonic()
        assert stop_group(p, grace_s=5), "only a zombie is left in the group: stopped"
        took = time.monotonic() - t0
        assert took < 2, f"stop waited {took:.1f} s: a zombie counted as alive"
        assert state(zombie) == ("Z", p.pid), "the zombie was still there, unreaped, when stop said done"
    finally:
        os.killpg(keeper, signal.SIGKILL)
        p.stdout.close()


def test_a_leader_that_dies_during_the_group_check_is_reaped_not_left_a_zombie(monkeypatch):
    """The leader exits (0.1 s after SIGTERM) after stop's first poll and before its group check: stop still reaps it."""
    slow = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.1), sys.exit(0))); "
    p = launch([sys.executable, "-c", slow + "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    check = processes.group_alive

    def group_alive_after_a_moment(pgid: int) -> bool:
        time.sleep(0.5)  # the leader dies meanwhile: a zombie, so the group is no longer alive
        return check(pgid)

    monkeypatch.setattr(processes, "group_alive", group_alive_after_a_moment)
    assert stop_group(p, grace_s=5)
    assert p.returncode == 0 and state(p.pid) is None, "reaped: nothing of it left in /proc"
    p.stdout.close()


def test_stop_group_escalates_to_sigkill_within_its_bound():
    stubborn = "import signal, subprocess, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    stubborn += "subprocess.Popen(['sleep', '300']); print('ready', flush=True); time.sleep(300)"
    p = launch([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    assert len(processes.group_members(p.pid)) == 2
    t0 = time.monotonic()
    assert stop_group(p, grace_s=0.5)
    assert time.monotonic() - t0 < 6, "SIGKILL after the grace, with a bounded wait"
    assert processes.group_members(p.pid) == []


def test_a_second_signal_kills_at_once_and_nothing_raises(tmp_path):
    """A launcher whose child ignores SIGTERM: the first SIGINT starts a 30 s grace, the second ends it at once."""
    script = tmp_path / "launcher.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from models.processes import Supervisor
            sup = Supervisor().install()
            child = sup.launch([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                "print('ready', flush=True); time.sleep(300)"])
            while not sup.sleep(0.5):
                pass
            sys.exit(0 if sup.stop_all(grace_s=30) else 1)
            """
        )
    )
    p = launch(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert p.stdout.readline().strip() == b"ready"
        [child] = children_of(p.pid)
        p.send_signal(signal.SIGINT)
        time.sleep(0.2)  # the "twice, 0.2 s apart"
        p.send_signal(signal.SIGINT)
        assert p.wait(GONE_S) == 0
        assert b"Traceback" not in p.stderr.read()
        assert processes.group_members(child) == []
    finally:
        stop_group(p, grace_s=1)


def test_free_port_accepts_a_port_in_time_wait():
    """A restart right after Ctrl-C finds its port in TIME_WAIT; the real servers bind it (SO_REUSEADDR), so must we."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    cli = socket.create_connection(("127.0.0.1", port))
    conn, _ = srv.accept()
    conn.close()  # the server side closes first: TIME_WAIT sits on the server's port
    cli.recv(1)
    cli.close()
    srv.close()
    assert free_port(port) == port
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        assert free_port(busy.getsockname()[1]) != busy.getsockname()[1], "a port someone listens on is busy"
    finally:
        busy.close()


def test_the_saved_key_is_reused_only_from_an_owner_only_file(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import run

    info = tmp_path / "local_api.json"
    assert run.saved_key(tmp_path) is None
    fd = os.open(info, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, json.dumps({"api_key": "k" * 32}).encode())
    os.close(fd)
    assert run.saved_key(tmp_path) == "k" * 32
    info.chmod(0o644)
    assert run.saved_key(tmp_path) is None, "a key others could read is not reused"


# --- the real launchers ---------------------------------------------------------------------------------------


@pytest.mark.integration
def test_make_run_two_quick_ctrl_c_leave_nothing_and_a_restart_keeps_ports_and_key(tmp_path, built_packages):
    api_port, dash_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_API_KEY"}
    env.update(LOCAL_API_DIR=str(tmp_path / "local"), PYTHONUNBUFFERED="1")
    cmd = ["make", "--no-print-directory", f"MAKE=make {' '.join(NO_SETUP)}", *NO_SETUP, "run"]
    cmd += [f"PORT={api_port}", f"DASHBOARD_PORT={dash_port}"]

    def start(n: int) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"run{n}.log"
        with open(log, "w") as out:
            make = launch(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        wait_for("make run to print both URLs", lambda: "Ctrl-C stops both" in log.read_text(), timeout_s=300, proc=make, log=log)
        return make, log

    def ctrl_c(make: subprocess.Popen, times: int) -> None:
        for i in range(times):  # a terminal sends Ctrl-C to the whole foreground group: make and run.py
            if i:
                time.sleep(0.2)
            os.killpg(make.pid, signal.SIGINT)
        wait_for(f"every process of make run to end after {times} Ctrl-C", lambda: not ours(str(tmp_path)), GONE_S, 0.1)

    make, log = start(1)
    try:
        assert len(ours(str(tmp_path))) >= 6, "make, run.py, the local API, its 2 workers and streamlit"
        key = re.search(r"X-API-Key: (\S+)\)", log.read_text())[1]
        ctrl_c(make, 2)
        text = log.read_text()
        assert "Traceback" not in text, text[-3000:]
        assert not listening(api_port) and not listening(dash_port)
        info = tmp_path / "local" / "local_api.json"
        assert info.stat().st_mode & 0o777 == 0o600 and json.loads(info.read_text())["api_key"] == key

        make, log = start(2)  # at once, ports in TIME_WAIT: the same ports and the same key
        text = log.read_text()
        assert "busy" not in text and f"127.0.0.1:{dash_port}" in text and f"127.0.0.1:{api_port}/prod" in text
        assert f"X-API-Key: {key})" in text
        ctrl_c(make, 1)
        assert "Traceback" not in log.read_text()
    finally:
        stop_group(make, grace_s=1)
        for pid in ours(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)


INNER = """
import json, os, time
from pathlib import Path

def test_hold(local_api, moto_server):
    Path(os.environ["HOLD_FILE"]).write_text(json.dumps({"api": local_api.proc.pid, "moto": moto_server}))
    time.sleep(600)
"""


@pytest.mark.integration
def test_fixture_servers_end_with_a_sigkilled_pytest(tmp_path, built_packages):
    (tmp_path / "test_inner.py").write_text(INNER)
    hold = tmp_path / "hold.json"
    env = {**os.environ, "LOCAL_API_DIR": str(tmp_path / "local"), "HOLD_FILE": str(hold), "PYTHONPATH": str(ROOT)}
    inner = [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", "--basetemp"]
    inner += [str(tmp_path / "base"), str(tmp_path / "test_inner.py")]
    with open(tmp_path / "inner.log", "w") as out:
        child = launch(inner, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for("the inner pytest's servers", hold.exists, timeout_s=300, proc=child, log=tmp_path / "inner.log")
        api = json.loads(hold.read_text())["api"]
        workers = wait_for("the local API's two awslambdaric workers", lambda: len(w := children_of(api)) == 2 and w, 60)
        assert set(workers) <= set(ours(str(tmp_path))), "the workers are among what must end"
        assert any("moto_server" in Path(f"/proc/{p}/cmdline").read_text() for p in ours(str(tmp_path)))
        os.kill(child.pid, signal.SIGKILL)  # a CI timeout, an OOM kill: no fixture teardown runs
        wait_for("the fixtures' local API, workers and moto to end", lambda: not ours(str(tmp_path)), GONE_S, 0.1)
    finally:
        stop_group(child, grace_s=1)
        for pid in ours(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)


DASHBOARD = """
import sys, threading, time
from dashboard import processes
# as the Deploy page does it: from a Streamlit script run, a thread that ends when the page has rendered
t = threading.Thread(target=lambda: print(processes.start_local_api(sys.argv[1]), flush=True))
t.start()
t.join()
time.sleep(600)
"""


@pytest.mark.integration
def test_the_dashboards_local_api_ends_with_a_sigkilled_dashboard(tmp_path, built_packages):
    import requests

    env = {**os.environ, "LOCAL_API_DIR": str(tmp_path / "local"), "PYTHONPATH": str(ROOT)}
    log = tmp_path / "dashboard.log"
    with open(log, "w") as out:
        dash = launch([sys.executable, "-c", DASHBOARD, SAMPLE_KEY], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = wait_for("the Deploy page's local API", lambda: log.read_text().strip(), timeout_s=300, proc=dash, log=log)
        assert url.startswith("http://127.0.0.1:"), url
        # the thread that started it has ended: the API must still serve (the parent-death signal is per thread)
        assert requests.get(url + "/health", timeout=10).status_code == 200
        os.kill(dash.pid, signal.SIGKILL)
        wait_for("the dashboard's local API and its workers to end", lambda: not ours(str(tmp_path)), GONE_S, 0.1)
    finally:
        stop_group(dash, grace_s=1)
        for pid in ours(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)


HANGING = """
import json, time
from pathlib import Path
def lambda_handler(event, context):
    if event.get("body"):
        Path(event["body"]).write_text("busy")  # tells the test this worker is inside its handler
        time.sleep(300)
    return {"statusCode": 200, "body": json.dumps({"status": "ok"})}
"""


@pytest.mark.integration
def test_awslambdaric_workers_end_when_the_local_api_is_sigkilled(tmp_path, built_packages):
    """An idle worker notices its Runtime API is gone; one stuck in a long handler would not, until the
    parent-death signal ends it."""
    import zipfile

    import requests

    fn = tmp_path / "fn.zip"
    with zipfile.ZipFile(fn, "w") as zf:
        zf.writestr("lambda_handler.py", HANGING)
    api = LocalAPI(tmp_path, args=("--function-zip", str(fn), "--workers", "2", "--timeout", "600"))
    workers: list[int] = []
    try:
        workers = wait_for("the two workers", lambda: len(w := children_of(api.proc.pid)) == 2 and w, 60)
        busy = tmp_path / "busy"

        def post() -> None:  # its answer never comes: the local API is killed under it
            try:
                requests.post(api.url + "/predict", data=str(busy), headers={"X-API-Key": SAMPLE_KEY}, timeout=60)
            except requests.RequestException:
                pass

        threading.Thread(target=post, daemon=True).start()
        wait_for("a worker to be inside its handler", busy.exists, 60)
        os.kill(api.proc.pid, signal.SIGKILL)  # the leader only: its workers lead their own groups
        wait_for("the idle and the busy worker to end", lambda: all(dead(w) for w in workers), GONE_S, 0.1)
    finally:
        api.stop()
        for w in workers:
            if not dead(w):
                os.kill(w, signal.SIGKILL)
