"""A soak of the local API: the real mix of traffic for SOAK_S seconds, and a verdict on whether anything grows.

    make soak                      # 600 s
    SOAK_S=3600 make soak          # an hour
    python benchmarks/soak.py --seconds 600 [--kill-every 60] [--no-markdown]

It starts `python -m local_api` itself on a free loopback port and keeps it busy, modestly (the machine is shared):
single and batch predicts on a keep-alive session, short connections, a slow client and a client that never reads,
an oversize body (refused 413) and a worker SIGKILLed every --kill-every seconds. Every 10 s it records /health p99,
the answers by class, the gatekeeper's held bytes and connections (the server's own local_api_stats.json, which it
replaces every 5 s for operators too), the open descriptors and RSS of the server and each worker (/proc), and the
zombies in the server's session. It passes when every series is flat (the last minute's median within 10% of the
first minute's, either way, or within the absolute floors named in FLOOR; memory within 5 MB), no 5xx beyond one per
killed worker, and nothing of the server's left in /proc after it stops. Exits 1 on any failure.

--busy N runs the same soak beside N busy loops of its own (one Python process each, spinning until the soak ends),
the issue's "beside two busy loops": `SOAK_BUSY=2 make soak`. Each condition keeps its own section of BENCHMARKS.md,
its own JSON (benchmarks/soak.json, soak_busy2.json) and its own chart (docs/soak.png, soak_busy2.png).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from benchmarks.soak_common import (  # noqa: E402
    chart,
    flat,
    left_over,
    proc_tree,
    rss_mb,
    start_local_api,
    update_section,
    verdict_table,
)
from benchmarks.soak_traffic import Traffic  # noqa: E402
from models.processes import launch, stop_group, stop_groups  # noqa: E402

EVERY_S = 10.0  # one sample of every series
MINUTE_S = 60.0  # the first and last windows compared
MEMORY_MB = 5.0  # memory: last minute's median within this of the first minute's
RELATIVE = 0.10  # everything else: within 10%...
# ...or within these absolute floors, where 10% of a small number is less than one unit or than the shared
# machine's noise: a descriptor, a connection, a few ms of p99, one answer a window
FLOOR = {"health_p99_ms": 5.0, "fds": 2, "connections": 3, "held_kb": 64, "answers": 3}
WARMUP_S = 10.0  # traffic before the first sample, not recorded
BUSY_LOOP = "while True: pass"  # one core's worth of a neighbour, as the "busy loop"
LONGEST = ROOT / "benchmarks" / "soak_longest.json"  # the longest run made: its summary, kept apart from the latest


def p99(values: list[float]) -> float | None:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else None


def sample(t: float, server_pid: int, stats_path: Path, traffic: Traffic) -> dict:
    stats = json.loads(stats_path.read_text())
    answers, health = traffic.take()
    tree = proc_tree(server_pid)
    workers = {w["index"]: w["pid"] for w in stats["workers"]}
    return {
        "t": round(t, 1),
        "health_p99_ms": round(p99(health), 2) if health else None,
        "health_n": len(health),
        "answers": {k: answers[k] for k in ("2xx", "4xx", "5xx", "error")},
        "held_kb": round(stats["held_bytes"] / 1024, 1),
        "connections": stats["connections"],
        "server_rss_mb": rss_mb(server_pid),
        "server_fds": tree.get(server_pid, {}).get("fds"),
        "workers": {
            str(i): {"rss_mb": rss_mb(pid), "fds": tree.get(pid, {}).get("fds"), "pid": pid} for i, pid in workers.items()
        },
        "zombies": sum(1 for p in tree.values() if p["state"] == "Z"),
        "processes": len(tree),
        "load1": round(os.getloadavg()[0], 2),  # the neighbours' load: what moves p99 on a shared machine
        "log_mb": round(
            sum(f.stat().st_size for f in stats_path.parent.glob("*.jsonl")) / 2**20
            + (stats_path.parent / "function.log").stat().st_size / 2**20,
            1,
        ),  # fmt: skip
    }


def series(samples: list[dict]) -> dict[str, list[float | None]]:
    out = {
        "health_p99_ms": [s["health_p99_ms"] for s in samples],
        "answers_2xx": [s["answers"]["2xx"] for s in samples],
        "answers_4xx": [s["answers"]["4xx"] for s in samples],
        "held_kb": [s["held_kb"] for s in samples],
        "connections": [s["connections"] for s in samples],
        "server_rss_mb": [s["server_rss_mb"] for s in samples],
        "server_fds": [s["server_fds"] for s in samples],
        "zombies": [s["zombies"] for s in samples],
    }
    for i in sorted({i for s in samples for i in s["workers"]}):
        out[f"worker{i}_rss_mb"] = [s["workers"].get(i, {}).get("rss_mb") for s in samples]
        out[f"worker{i}_fds"] = [s["workers"].get(i, {}).get("fds") for s in samples]
    return out


def tolerance(name: str) -> tuple[float, float]:
    """(relative, absolute floor) for a series."""
    if name.endswith("_mb"):
        return 0.0, MEMORY_MB
    if name == "zombies":
        return 0.0, 0.0
    for key, floor in FLOOR.items():
        if key in name:
            return RELATIVE, floor
    return RELATIVE, 0.0


def verdicts(samples: list[dict], window_s: float) -> list[dict]:
    ts = [s["t"] for s in samples]
    first = [i for i, t in enumerate(ts) if t <= ts[0] + window_s - EVERY_S / 2]
    last = [i for i, t in enumerate(ts) if t >= ts[-1] - window_s + EVERY_S / 2]
    out = []
    for name, values in series(samples).items():
        rel, floor = tolerance(name)
        a = [values[i] for i in first if values[i] is not None]
        b = [values[i] for i in last if values[i] is not None]
        out.append({"series": name, **flat(a, b, rel, floor)})
    return out


def condition(busy: int) -> tuple[str, str]:
    """(section and file stem, words) for a soak alone or beside `busy` loops."""
    if busy == 0:
        return "soak", "with no busy loops of its own"
    return f"soak_busy{busy}", f"beside {busy} busy loop{'s' if busy > 1 else ''}"


def start_busy(n: int) -> list:
    """The loops, started like every server here (models.processes.launch): they die with the soak, even SIGKILLed."""
    return [launch([sys.executable, "-c", BUSY_LOOP]) for _ in range(n)]


def markdown(r: dict) -> str:
    """The soak's section of BENCHMARKS.md."""
    stem, words = condition(r.get("busy", 0))
    if not r.get("busy"):  # "idle" only when the machine was: its load average says
        words = "idle" if max(r["load_before"][0], r["load_after"][0]) < 1.0 else "on a shared machine (not idle)"
    n = sum(sum(s["answers"].values()) for s in r["samples"])
    by = {k: sum(s["answers"][k] for s in r["samples"]) for k in ("2xx", "4xx", "5xx", "error")}
    lines = [
        f"## Soak: the local API for minutes, {words}",
        "",
        f"`{'SOAK_BUSY=' + str(r['busy']) + ' ' if r.get('busy') else ''}make soak` (`python benchmarks/soak.py"
        f"{' --busy ' + str(r['busy']) if r.get('busy') else ''}`, SOAK_S={r['seconds']:g}), started {r['started']}, "
        f"after a {WARMUP_S:g} s unrecorded warm-up; load average "
        f"{r['load_before'][0]} before, {r['load_after'][0]} after, on 2 cores. "
        f"Raw samples: `benchmarks/{stem}.json`. {n} answers: {by['2xx']} 2xx, {by['4xx']} 4xx (oversize bodies and "
        f"hostile shapes), {by['5xx']} 5xx, {by['error']} without an answer; {r['kills']} workers SIGKILLed "
        f"(one every {r['kill_every_s']:g} s). Verdict: **{'PASSED' if r['passed'] else 'FAILED'}**.",
        "",
        "Flat means the last minute's median within 10% of the first minute's, either way (memory: within 5 MB), "
        f"with absolute floors where 10% is under one unit or the machine's noise: {FLOOR}. The held bytes and connections "
        "come from the server's own `local_api_stats.json` (replaced every 5 s; the file an operator watches); "
        "descriptors, RSS and zombies from /proc.",
        "",
        *verdict_table(r["verdicts"]),
        "",
        f"![RSS and /health p99 over the soak](docs/{stem}.png)",
    ]
    if "log_mb" in r["samples"][-1]:
        mb, secs = r["samples"][-1]["log_mb"], r["samples"][-1]["t"] + WARMUP_S
        lines += ["", "Disk, by design and not judged: the invocation log and function.log grew to "
                  f"{mb} MB in {secs:g} s (about {mb / secs * 3600:.0f} MB an hour); nothing rotates them."]  # fmt: skip
    if LONGEST.exists():
        g = json.loads(LONGEST.read_text())
        lines += ["", f"Longest run made: {g['seconds']:g} s, {condition(g.get('busy', 0))[1]}, started {g['started']} "
                  f"(load average {g['load'][0]} before, "
                  f"{g['load'][1]} after): {'passed' if g['passed'] else 'failed on ' + ', '.join(g['failed'])}; the "
                  f"server's RSS {g['server_rss_mb'][0]} MB in its first minute, {g['server_rss_mb'][1]} MB in its last "
                  "(`benchmarks/soak_longest.json`)." + (f" Its rule: {g['rule']}." if g.get("rule") else "")]  # fmt: skip
    return "\n".join(lines)


def rewrite(json_path: Path) -> None:
    """BENCHMARKS.md's section again from a run's saved JSON (after the words changed, not the figures)."""
    r = json.loads(json_path.read_text())
    update_section(ROOT / "BENCHMARKS.md", condition(r.get("busy", 0))[0], markdown(r), script="soak")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_S") or 600))
    p.add_argument("--kill-every", type=float, default=60.0, help="SIGKILL a worker this often (seconds)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--busy", type=int, default=int(os.environ.get("SOAK_BUSY") or 0),
                   help="run beside this many busy loops of its own (SOAK_BUSY; default 0: alone)")  # fmt: skip
    p.add_argument("--json", type=Path, default=None, help="raw samples (default benchmarks/soak.json, soak_busyN.json)")
    p.add_argument("--no-markdown", action="store_true", help="do not update BENCHMARKS.md and docs/soak*.png")
    args = p.parse_args(argv)
    if args.busy < 0:
        p.error("--busy must be 0 or more")
    stem, words = condition(args.busy)
    args.json = args.json or ROOT / "benchmarks" / f"{stem}.json"
    if not (args.seconds >= 3 * EVERY_S):
        p.error(f"--seconds (SOAK_S) must be at least {3 * EVERY_S:g}: a verdict needs a first and a last window")
    if args.kill_every <= 0:
        p.error("--kill-every must be a positive number of seconds")
    window_s = min(MINUTE_S, args.seconds / 3)
    log_dir = Path(tempfile.mkdtemp(prefix="soak-"))
    stats_path = log_dir / "local_api_stats.json"
    server, port, key, out = start_local_api(
        log_dir, "--workers", str(args.workers), "--read-timeout", "5", "--write-timeout", "2"
    )
    traffic, samples, threads = Traffic(port, key), [], []
    seen = {server.pid}  # every process the soak saw the server run: none may be left after
    load_before = os.getloadavg()
    if args.busy == 0 and load_before[0] > 1.0:
        print(f"soak: load average {load_before[0]:.1f} already: this run is not idle; its section will say so")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    busy = start_busy(args.busy)
    try:
        print(f"soak: local API pid {server.pid} on 127.0.0.1:{port}, {args.seconds:g} s, {words}, logs in {log_dir}",
              flush=True)  # fmt: skip
        threads = traffic.start(stats_path, args.kill_every)
        time.sleep(WARMUP_S)  # the workers' first invocations (cold starts) are not the steady state being judged
        traffic.take()
        t0 = time.monotonic()
        for k in range(1, int(args.seconds // EVERY_S) + 1):
            time.sleep(max(0.0, t0 + k * EVERY_S - time.monotonic()))
            if server.poll() is not None:
                raise SystemExit(f"soak: the local API exited ({server.returncode}); see {log_dir / 'local_api.out'}")
            samples.append(sample(time.monotonic() - t0, server.pid, stats_path, traffic))
            seen |= {w["pid"] for w in samples[-1]["workers"].values()}
            s = samples[-1]
            print(
                f"  t={s['t']:5.0f}s p99 {s['health_p99_ms']} ms  answers {s['answers']}  held {s['held_kb']} KB  "
                f"conns {s['connections']}  server {s['server_rss_mb']} MB/{s['server_fds']} fds  "
                + "  ".join(f"w{i} {w['rss_mb']} MB/{w['fds']} fds" for i, w in s["workers"].items())
                + f"  zombies {s['zombies']}",
                flush=True,
            )
    finally:
        traffic.stop.set()
        for t in threads:
            t.join(timeout=40)
        stopped = stop_group(server)
        out.close()
        stop_groups(busy, grace_s=1.0)
    time.sleep(0.5)  # the kernel's last reaping of what SIGTERM ended
    left = left_over(seen)
    checks = verdicts(samples, window_s)
    fivexx = len(traffic.fivexx)
    checks.append({"series": "5xx", "ok": fivexx <= len(traffic.kills), "first": 0, "last": fivexx,
                   "why": f"{fivexx} 5xx for {len(traffic.kills)} killed workers (at most one each)"})  # fmt: skip
    checks.append({"series": "left running", "ok": stopped and not left, "first": 0, "last": len(left),
                   "why": f"stop_group {'clean' if stopped else 'timed out'}; left in /proc: {left or 'nothing'}"})  # fmt: skip
    errors = sum(s["answers"]["error"] for s in samples)
    checks.append({"series": "no answer", "ok": True, "first": 0, "last": errors,
                   "why": f"{errors} requests without an answer (the killed workers' and hostile shapes' own)"})  # fmt: skip
    result = {
        "seconds": args.seconds,
        "busy": args.busy,
        "kill_every_s": args.kill_every,
        "kills": len(traffic.kills),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "started": started,
        "samples": samples,
        "verdicts": checks,
        "passed": all(c["ok"] for c in checks),
    }
    for c in checks:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['series']:<18} {c['why']}")
    print(f"soak: {'PASSED' if result['passed'] else 'FAILED'} after {args.seconds:g} s ({len(traffic.kills)} workers killed)")
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    if not LONGEST.exists() or json.loads(LONGEST.read_text())["seconds"] <= args.seconds:
        failed = [c["series"] for c in checks if not c["ok"]]
        rss = [c for c in checks if c["series"] == "server_rss_mb"][0]
        LONGEST.write_text(json.dumps({"seconds": args.seconds, "started": started, "passed": result["passed"],
                                       "failed": failed, "server_rss_mb": [rss["first"], rss["last"]],
                                       "load": [result["load_before"][0], result["load_after"][0]],
                                       "busy": args.busy}) + "\n")  # fmt: skip
    if not args.no_markdown:
        xs = [s["t"] for s in samples]
        memory = {"server": [s["server_rss_mb"] for s in samples]}
        for i in sorted({i for s in samples for i in s["workers"]}):
            memory[f"worker {i}"] = [s["workers"].get(i, {}).get("rss_mb") for s in samples]
        panels = [("RSS (MB)", memory), ("/health p99 (ms)", {"p99": [s["health_p99_ms"] for s in samples]})]
        if all("load1" in s for s in samples):
            panels.append(("load average, 1 min (2 cores, shared)", {"load": [s["load1"] for s in samples]}))
        chart(xs, panels, ROOT / "docs" / f"{stem}.png")
        update_section(ROOT / "BENCHMARKS.md", stem, markdown(result), script="soak")
    if result["passed"]:  # a failed run keeps its logs, and says where
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        print(f"logs kept in {log_dir}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
