"""The dashboard server visited by fresh sessions, one after another: does its memory stay flat, or settle?

    python benchmarks/soak_dashboard.py [--sessions 200] [--no-markdown]

A real `streamlit run dashboard/app.py` (with a real local API behind it, both on free loopback ports) is visited by
--sessions fresh sessions. Each is a plain websocket client speaking Streamlit's own protocol (its protobufs, as the
browser's frontend does): connect to /_stcore/stream, ask for one page (Forecast, Cost monitor, Model, Track record
in turn, Forecast with another ticker every other time), read until the script run finishes, disconnect. After every
10 sessions it records the server's RSS and open descriptors (/proc); after the last, it waits out Streamlit's
disconnected-session TTL, lets AFTER more sessions arrive (Streamlit purges expired sessions only when it stores
another) and records them once more. Verdict: RSS after the TTL under BOUND_MB, the last 50 sessions growing it by
less than 5 MB, and descriptors no higher after the last 50 sessions and within idle + 3 for each of the at most
STORED_SESSIONS closed sessions Streamlit keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from benchmarks.soak_common import chart, fd_count, fd_kinds, proc_tree, start_local_api, update_section  # noqa: E402
from models.processes import free_port, launch, stop_group, wait_for  # noqa: E402

PAGES = [("forecast", "tickers=AAPL"), ("costs", ""), ("model", ""), ("forecast", "tickers=IBM,MSFT"), ("track-record", "")]
SESSION_TTL_S = 120  # Streamlit's server.disconnectedSessionTTL default (1.67): a closed session is kept this long
STORED_SESSIONS = 128  # Streamlit's MemorySessionStorage maxsize: at most this many closed sessions are kept
FDS_A_SESSION = 3  # measured: a kept session's event loop holds an epoll and a socket pair
AFTER = 10  # fresh sessions after the TTL: the visitors whose arrival purges the expired ones
BOUND_MB = 300.0  # the dashboard server's RSS after 200 sessions and the TTL: the bound this soak holds it to
GROWTH_MB = 5.0  # the last 50 sessions may add at most this much
RESULTS = ROOT / "benchmarks" / "soak_dashboard.json"
PNG = ROOT / "docs" / "soak_dashboard.png"


def tree_rss_mb(root: int) -> float:
    """RSS of the server and anything it started (Streamlit runs scripts in threads; a child would count too)."""
    total = 0
    for pid in proc_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


async def visit(port: int, page: str, query: str, timeout_s: float = 120.0) -> tuple[bool, int, float]:
    """One fresh session: -> (script finished, ForwardMsgs received, seconds)."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    t0, n = time.perf_counter(), 0
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], max_size=2**26, open_timeout=30
    ) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = page
        await ws.send(msg.SerializeToString())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.monotonic()))
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            n += 1
            if fwd.WhichOneof("type") == "script_finished":
                # 0 = finished successfully (ForwardMsg.ScriptFinishedStatus)
                return fwd.script_finished == 0, n, time.perf_counter() - t0
    return False, n, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=200)
    p.add_argument("--settle", type=float, default=SESSION_TTL_S + 15, help="seconds to wait after the last session")
    p.add_argument("--json", type=Path, default=RESULTS)
    p.add_argument("--no-markdown", action="store_true")
    args = p.parse_args(argv)
    if args.sessions < 60:
        p.error("--sessions must be at least 60: the verdict looks at the growth over the last 50")
    tmp = Path(tempfile.mkdtemp(prefix="soak-dashboard-"))
    (tmp / "api").mkdir()
    api, api_port, key, api_out = start_local_api(tmp / "api", "--workers", "2")
    dash_port = free_port()
    env = {**os.environ, "LOCAL_API_DIR": str(tmp / "api"), "FORECAST_API_URL": f"http://127.0.0.1:{api_port}/prod",
           "FORECAST_API_KEY": key, "PYTHONUNBUFFERED": "1"}  # fmt: skip
    out = open(tmp / "dashboard.out", "w")  # noqa: SIM115 - closed in finally
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.port", str(dash_port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip
    dash = launch(cmd, env=env, cwd=ROOT, stdout=out, stderr=out)
    rows, visits, load_before = [], [], os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        import urllib.request

        health = f"http://127.0.0.1:{dash_port}/_stcore/health"
        wait_for("the dashboard", lambda: urllib.request.urlopen(health, timeout=2).status == 200, 180, proc=dash)
        rows.append({"sessions": 0, "rss_mb": tree_rss_mb(dash.pid), "fds": fd_count(dash.pid), "t": 0.0})
        t0 = time.monotonic()
        for i in range(args.sessions):
            page, query = PAGES[i % len(PAGES)]
            ok, n, took = asyncio.run(visit(dash_port, page, query))
            visits.append({"page": page, "ok": ok, "messages": n, "seconds": round(took, 2)})
            if (i + 1) % 10 == 0:
                rows.append({"sessions": i + 1, "rss_mb": tree_rss_mb(dash.pid), "fds": fd_count(dash.pid),
                             "t": round(time.monotonic() - t0, 1)})  # fmt: skip
                print(f"  {i + 1:3d} sessions: RSS {rows[-1]['rss_mb']} MB, {rows[-1]['fds']} fds, "
                      f"last page {page} {'ok' if ok else 'FAILED'} in {took:.2f} s ({n} messages)", flush=True)  # fmt: skip
        time.sleep(args.settle)  # Streamlit keeps a disconnected session for its TTL...
        for i in range(AFTER):  # ...and drops expired ones only when its session store is next written: new visitors
            ok, n, took = asyncio.run(visit(dash_port, *PAGES[i % len(PAGES)]))
            visits.append({"page": PAGES[i % len(PAGES)][0], "ok": ok, "messages": n, "seconds": round(took, 2)})
        settled = {"sessions": args.sessions, "rss_mb": tree_rss_mb(dash.pid), "fds": fd_count(dash.pid),
                   "t": round(time.monotonic() - t0, 1), "after_ttl": True, "fd_kinds": fd_kinds(dash.pid)}  # fmt: skip
        print(
            f"  after {args.settle:g} s idle: RSS {settled['rss_mb']} MB, {settled['fds']} fds {settled['fd_kinds']}", flush=True
        )
    finally:
        stop_group(dash)
        stop_group(api)
        out.close()
        api_out.close()
    by_n = {r["sessions"]: r for r in rows}
    last50 = by_n[args.sessions]["rss_mb"] - by_n[args.sessions - 50]["rss_mb"]
    # each kept session holds its script thread's event loop (an epoll and a socket pair): at most STORED_SESSIONS
    fd_bound = rows[0]["fds"] + FDS_A_SESSION * STORED_SESSIONS + 8
    fd_ok = settled["fds"] <= fd_bound and by_n[args.sessions]["fds"] <= by_n[args.sessions - 50]["fds"]
    checks = [
        {"series": "pages", "ok": all(v["ok"] for v in visits), "first": len(visits), "last": sum(v["ok"] for v in visits),
         "why": f"{sum(v['ok'] for v in visits)} of {len(visits)} sessions saw their page finish without an error"},
        {"series": "rss_mb bound", "ok": settled["rss_mb"] <= BOUND_MB, "first": rows[0]["rss_mb"], "last": settled["rss_mb"],
         "why": f"{settled['rss_mb']} MB after the TTL, bound {BOUND_MB:g} MB (idle server: {rows[0]['rss_mb']} MB)"},
        {"series": "rss_mb growth", "ok": last50 < GROWTH_MB, "first": by_n[args.sessions - 50]["rss_mb"],
         "last": by_n[args.sessions]["rss_mb"], "why": f"the last 50 sessions added {last50:.1f} MB (allowed < {GROWTH_MB:g})"},
        {"series": "fds", "ok": fd_ok, "first": rows[0]["fds"], "last": settled["fds"],
         "why": f"{rows[0]['fds']} idle, {by_n[args.sessions - 50]['fds']} and {by_n[args.sessions]['fds']} after "
                f"{args.sessions - 50} and {args.sessions} sessions, {settled['fds']} after the TTL; bound {fd_bound} "
                f"(idle + 3 a stored session x {STORED_SESSIONS})"},
    ]  # fmt: skip
    secs = sorted(v["seconds"] for v in visits)
    result = {"sessions": args.sessions, "started": started, "load_before": [round(x, 2) for x in load_before],
              "load_after": [round(x, 2) for x in os.getloadavg()], "rows": rows, "settled": settled, "visits": visits,
              "median_visit_s": secs[len(secs) // 2], "verdicts": checks, "passed": all(c["ok"] for c in checks)}  # fmt: skip
    for c in checks:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['series']:<14} {c['why']}")
    print(f"soak_dashboard: {'PASSED' if result['passed'] else 'FAILED'}")
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    if not args.no_markdown:
        xs = [r["sessions"] for r in rows]
        panels = [("dashboard server RSS (MB)", {"RSS": [r["rss_mb"] for r in rows]}),
                  ("open descriptors", {"fds": [r["fds"] for r in rows]})]  # fmt: skip
        chart(xs, panels, PNG, xlabel="fresh sessions")
        update_section(ROOT / "BENCHMARKS.md", "soak_dashboard", markdown(result))
    if result["passed"]:  # a failed run keeps its logs, and says where
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"logs kept in {tmp}")
    return 0 if result["passed"] else 1


def markdown(r: dict) -> str:
    from benchmarks.soak_common import verdict_table
    from dashboard import config

    s = r["settled"]
    return "\n".join([
        "## Soak: the dashboard server, 200 fresh sessions",
        "",
        f"`python benchmarks/soak_dashboard.py --sessions {r['sessions']}`, started {r['started']}, load average "
        f"{r['load_before'][0]} before, {r['load_after'][0]} after. A real `streamlit run dashboard/app.py` with a real "
        f"local API behind it; each session a plain websocket client speaking Streamlit's protocol, one page each "
        f"({', '.join(sorted({p for p, _ in PAGES}))} in turn; median {r['median_visit_s']:.2f} s to a finished run). "
        f"RSS {r['rows'][0]['rss_mb']} MB idle, {r['rows'][-1]['rss_mb']} MB after {r['sessions']} sessions, "
        f"{s['rss_mb']} MB once Streamlit's disconnected-session TTL ({SESSION_TTL_S} s, its default) had passed. "
        f"Raw figures: `benchmarks/soak_dashboard.json`. Verdict: **{'PASSED' if r['passed'] else 'FAILED'}**.",
        "",
        f"What may grow, and its bound: Streamlit keeps up to {STORED_SESSIONS} closed sessions (MemorySessionStorage, "
        f"its default size) for the TTL and purges expired ones only when it stores another; each kept session holds "
        f"its script thread's event loop, {FDS_A_SESSION} descriptors (an epoll and a socket pair), closed when the "
        "session is evicted. Measured: descriptors climb 3 a session and stop at the 128th. The caches (dashboard/config.py, "
        f"dashboard/data.py) are market data per ticker and source ({config.MARKET_TTL_S} s, one entry a ticker), "
        f"GET /model ({config.MODEL_TTL_S} s), the training runs ({config.RUNS_TTL_S} s), single forecasts "
        f"({config.PREDICTION_TTL_S} s, at most 4,096 entries) and batch forecasts ({config.PREDICTION_TTL_S} s, at most "
        "256 entries), and one API client per endpoint and key (cache_resource, never expires; one here).",
        "",
        *verdict_table(r["verdicts"]),
        "",
        "![dashboard server RSS and descriptors over 200 sessions](docs/soak_dashboard.png)",
    ])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
