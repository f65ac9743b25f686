"""What the soaks share: /proc readings, the flatness rule, the chart, and their sections of BENCHMARKS.md.

Each soak (soak.py, soak_ledger.py, soak_dashboard.py) owns one marked section of BENCHMARKS.md, replaced in place
when it runs; `make bench` rewrites the rest of the file and keeps these sections (kept_sections).
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path


def proc_table() -> dict[int, dict]:
    """Every process in /proc: state, parent, process group, session."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        out[int(entry.name)] = {"state": fields[0].decode(), "ppid": int(fields[1]), "pgrp": int(fields[2]),
                                "sid": int(fields[3])}  # fmt: skip
    return out


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def fd_kinds(pid: int) -> dict[str, int]:
    """What a process's descriptors are, counted by kind (socket, pipe, anon_inode:[eventpoll], or a file's folder)."""
    from collections import Counter

    kinds: Counter = Counter()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            kinds[target.split(":[")[0] if ":[" in target and not target.startswith("anon") else
                  (target if target.startswith("anon") else str(Path(target).parent))] += 1  # fmt: skip
    except OSError:
        pass
    return dict(kinds.most_common())


def proc_tree(root: int) -> dict[int, dict]:
    """`root` and its descendants (by parent), each with its state and open descriptor count."""
    table = proc_table()
    children: dict[int, list[int]] = {}
    for pid, p in table.items():
        children.setdefault(p["ppid"], []).append(pid)
    out, todo = {}, [root] if root in table else []
    while todo:
        pid = todo.pop()
        out[pid] = {**table[pid], "fds": fd_count(pid)}
        todo += children.get(pid, [])
    return out


def left_over(pids: set[int]) -> list[str]:
    """Processes still in /proc that are one of `pids` or sit in a group or session one of them started, as "pid
    (state)": a zombie (Z) is dead but unreaped, which is a leak of its own."""
    table = proc_table()
    return [f"{pid} ({p['state']})" for pid, p in sorted(table.items()) if pid in pids or p["pgrp"] in pids or p["sid"] in pids]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None


def flat(first: list[float], last: list[float], relative: float, floor: float) -> dict:
    """The issue's rule, both ways: the last window's median within `relative` of the first's, or within `floor`
    (absolute, for series where 10% is under one unit or the machine's noise). A series that moves the other way
    beyond that fails too: a p99 or a throughput that changes by more than the rule allows is no steady state, even
    when it improves (a neighbour's run ending mid-soak), and the run is made again rather than read kindly."""
    if not first or not last:
        return {"ok": False, "first": None, "last": None, "why": "no samples in the first or the last window"}
    a, b = statistics.median(first), statistics.median(last)
    allowed = max(relative * abs(a), floor)
    ok = abs(b - a) <= allowed
    moved = "rose" if b > a else "fell" if b < a else "held"
    return {"ok": ok, "first": round(a, 2), "last": round(b, 2),
            "why": f"first window median {a:.4g}, last {b:.4g}, {moved} {abs(b - a):.3g} (allowed ±{allowed:.3g})"}  # fmt: skip


def chart(xs: list[float], panels: list[tuple[str, dict[str, list]]], path: Path, xlabel: str = "seconds") -> None:
    """A small PNG, one panel per (title, {label: values}), with matplotlib (plotly is here but kaleido is not)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.3 * len(panels)), sharex=True)
    for ax, (title, lines) in zip(list(axes) if len(panels) > 1 else [axes], panels, strict=True):
        for label, values in lines.items():
            ax.plot(xs, [float("nan") if v is None else v for v in values], label=label, linewidth=1.2)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
        ax.set_ylim(bottom=0)
    axes_list = list(axes) if len(panels) > 1 else [axes]
    axes_list[-1].set_xlabel(xlabel)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _markers(name: str, script: str | None = None) -> tuple[str, str]:
    return f"<!-- {name}: written by benchmarks/{script or name}.py -->", f"<!-- /{name} -->"


def update_section(path: Path, name: str, body: str, script: str | None = None) -> None:
    """Replace this soak's marked section of BENCHMARKS.md (append it the first time)."""
    start, end = _markers(name, script)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.strip()}\n{end}\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def kept_sections(text: str) -> str:
    """The soaks' marked sections of an existing BENCHMARKS.md, for `make bench` to keep when it rewrites the rest."""
    import re

    out = []
    for m in re.finditer(r"<!-- (soak\w*): written by benchmarks/\w+\.py -->", text):
        end = f"<!-- /{m.group(1)} -->"
        if end in text[m.end() :]:
            out.append(text[m.start() :].split(end, 1)[0] + end + "\n")
    return "\n".join(out)


def verdict_table(checks: list[dict]) -> list[str]:
    lines = ["| series | first window | last window | verdict |", "|---|---|---|---|"]
    for c in checks:
        lines.append(f"| {c['series']} | {c['first']} | {c['last']} | {'ok' if c['ok'] else '**FAIL**'}: {c['why']} |")
    return lines


def start_local_api(log_dir: Path, *args: str):
    """`python -m local_api` on a free loopback port, in its own process group (models.processes.launch): (process,
    port, key, log file). Stop it with models.processes.stop_group and close the log."""
    import secrets
    import sys

    from models.processes import free_port, launch, wait_for

    root = Path(__file__).resolve().parents[1]
    key, port = secrets.token_urlsafe(16), free_port()
    out = open(log_dir / "local_api.out", "w")  # noqa: SIM115 - the caller closes it after the stop
    env = {**os.environ, "LOCAL_API_KEY": key, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "local_api", "--port", str(port), "--log-dir", str(log_dir), *args]
    proc = launch(cmd, env=env, stdout=out, stderr=out, cwd=root)
    stats = log_dir / "local_api_stats.json"  # written once the server is listening
    wait_for("the local API to listen", stats.exists, timeout_s=300, proc=proc, log=log_dir / "local_api.out")
    return proc, port, key, out
