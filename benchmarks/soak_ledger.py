"""The ledger's daily job run again and again, one fake day after another, against one database: does anything grow?

    python benchmarks/soak_ledger.py [--runs 200] [--no-markdown]

Each run is what `python -m ledger.live` does once a day: open the store, `ledger.live.run(...)` for the watchlist,
close the store. yfinance is replaced at the job's boundary (`history=`, what `ledger.live.yf_history` is) by the
bundled snapshot up to that day, and every seventh day one ticker's download fails, so the stale path runs too. The
local API it calls is a real one, started here on a free loopback port. After each run it records this process's
RSS and open descriptors, the run's CPU and wall time, and the files in the job's folders. Flat: the last 20 runs'
median no more than 10% above the first 20's (the job's CPU time a run: its own work, which the neighbours' load hardly moves;
wall time is shown beside it), within 5 MB (RSS), exactly equal (files, descriptors). The database
itself grows by design (the ledger is insert-only): its size is reported, not judged.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from benchmarks.soak_common import chart, fd_count, flat, rss_mb, start_local_api, update_section, verdict_table  # noqa: E402
from ledger import live, sessions  # noqa: E402
from ledger.store import SqliteStore  # noqa: E402
from models.client import ForecastClient  # noqa: E402
from models.data import LiveDataError, load_prices  # noqa: E402
from models.processes import stop_group  # noqa: E402

WATCHLIST = ["AAPL", "IBM", "MSFT", "GOOG", "^GSPC", "^IXIC"]
LAST_DAY = "2013-02-26"  # every watchlist series has data to here
WINDOW = 20  # runs compared at each end
RESULTS = ROOT / "benchmarks" / "soak_ledger.json"
PNG = ROOT / "docs" / "soak_ledger.png"


def files_under(*folders: Path) -> int:
    return sum(len(files) for folder in folders for _, _, files in os.walk(folder))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--json", type=Path, default=RESULTS)
    p.add_argument("--no-markdown", action="store_true")
    p.add_argument("--rejudge", action="store_true", help="judge the rows already in --json again (no new runs)")
    args = p.parse_args(argv)
    if args.rejudge:
        return report(json.loads(args.json.read_text()), args)
    if args.runs < 2 * WINDOW:
        p.error(f"--runs must be at least {2 * WINDOW}: the verdict compares the first {WINDOW} runs with the last {WINDOW}")
    series = {t: load_prices(t, source="snapshot") for t in WATCHLIST}
    days = [d for d in sessions.sessions(pd.Timestamp(LAST_DAY).date() - pd.Timedelta(days=400), pd.Timestamp(LAST_DAY).date())]
    days = days[-args.runs :]
    tmp = Path(tempfile.mkdtemp(prefix="soak-ledger-"))
    (tmp / "api").mkdir()
    proc, port, key, out = start_local_api(tmp / "api", "--workers", "2")
    client = ForecastClient(f"http://127.0.0.1:{port}/prod", key, timeout=60)
    job, cache = tmp / "job", live.LastGood(tmp / "job" / "market")
    job.mkdir()
    rows, load_before = [], os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        for i, day in enumerate(days):

            def history(ticker: str, day=day, i=i) -> pd.DataFrame:
                if i % 7 == 3 and ticker == WATCHLIST[i % len(WATCHLIST)]:
                    raise LiveDataError(f"{ticker}: yfinance is rate limiting us; try again later")
                df = series[ticker]
                return df[df.index <= pd.Timestamp(day)].iloc[-500:]

            now = pd.Timestamp(f"{day} 17:30", tz=live.NEW_YORK).to_pydatetime()
            t0, c0 = time.perf_counter(), time.process_time()
            with SqliteStore(job / "ledger.sqlite") as store:
                daily = live.run(client, store, WATCHLIST, now, cache, history)
            took, cpu = time.perf_counter() - t0, time.process_time() - c0
            gc.collect()  # what is still held after a collection is what a long-lived process keeps
            db_kb = round((job / "ledger.sqlite").stat().st_size / 1024)
            rows.append({"run": i + 1, "day": str(day), "seconds": round(took, 3), "cpu_s": round(cpu, 3),
                         "rss_mb": rss_mb(os.getpid()), "fds": fd_count(os.getpid()), "files": files_under(job),
                         "forecasts": daily["forecasts"], "outcomes": daily["outcomes"], "db_kb": db_kb})  # fmt: skip
            if (i + 1) % 20 == 0 or i == 0:
                r = rows[-1]
                print(f"  run {r['run']:3d} {r['day']}: {r['seconds']:.2f}s ({r['cpu_s']:.2f} CPU), RSS {r['rss_mb']} MB, "
                      f"{r['fds']} fds, {r['files']} files, db {r['db_kb']} KB, "
                      f"{r['forecasts']}+{r['outcomes']}", flush=True)  # fmt: skip
    finally:
        stop_group(proc)
        out.close()
        shutil.rmtree(tmp, ignore_errors=True)  # the job's database and market files: the rows above say what they did
    forecasts, outcomes = sum(r["forecasts"] for r in rows), sum(r["outcomes"] for r in rows)
    result = {"runs": len(rows), "watchlist": WATCHLIST, "started": started, "load_before": [round(x, 2) for x in load_before],
              "load_after": [round(x, 2) for x in os.getloadavg()], "forecasts": forecasts, "outcomes": outcomes,
              "rows": rows}  # fmt: skip
    return report(result, args)


def judge(rows: list[dict]) -> list[dict]:
    checks = []
    for name, rel, floor in (("cpu_s", 0.10, 0.0), ("rss_mb", 0.0, 5.0), ("fds", 0.0, 0.0), ("files", 0.0, 0.0)):
        values = [r[name] for r in rows]
        checks.append({"series": name, **flat(values[:WINDOW], values[-WINDOW:], rel, floor)})
    # wall time is shown, not judged: on a machine shared with other engineers' tests it moves with their load
    wall = [r["seconds"] for r in rows]
    checks.append({"series": "seconds (wall)", **flat(wall[:WINDOW], wall[-WINDOW:], 0.10, 0.0), "ok": True})
    return checks


def report(result: dict, args) -> int:
    """Judge the rows, print the verdicts, write the JSON (and BENCHMARKS.md's section and the chart)."""
    rows, checks = result["rows"], judge(result["rows"])
    result |= {"verdicts": checks, "passed": all(c["ok"] for c in checks)}
    forecasts, outcomes = result["forecasts"], result["outcomes"]
    for c in checks:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['series']:<8} {c['why']}")
    print(
        f"soak_ledger: {'PASSED' if result['passed'] else 'FAILED'}: {len(rows)} runs, {forecasts} forecasts, {outcomes} closes"
    )
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    if not args.no_markdown:
        xs = [r["run"] for r in rows]
        panels = [("RSS of the job's process (MB)", {"RSS": [r["rss_mb"] for r in rows]}),
                  ("seconds a run", {"wall": [r["seconds"] for r in rows], "CPU": [r["cpu_s"] for r in rows]})]  # fmt: skip
        chart(xs, panels, PNG, xlabel="run (one fake trading day each)")
        update_section(ROOT / "BENCHMARKS.md", "soak_ledger", markdown(result))
    return 0 if result["passed"] else 1


def markdown(r: dict) -> str:
    rows = r["rows"]
    secs, cpu = sorted(x["seconds"] for x in rows), sorted(x["cpu_s"] for x in rows)
    return "\n".join([
        "## Soak: the ledger's daily job, 200 days in a row",
        "",
        f"`python benchmarks/soak_ledger.py --runs {r['runs']}`, started {r['started']}, load average {r['load_before'][0]} "
        f"before, {r['load_after'][0]} after. {r['runs']} runs of `ledger.live.run` on consecutive NYSE sessions "
        f"({rows[0]['day']} to {rows[-1]['day']}) for {', '.join(r['watchlist'])}, each opening and closing the one "
        f"SQLite database, against a real local API; yfinance replaced by the snapshot, one download failing every 7th "
        f"day. {r['forecasts']} forecasts and {r['outcomes']} closes recorded. Median run {secs[len(secs) // 2]:.2f} s "
        f"wall (min {secs[0]:.2f}, max {secs[-1]:.2f}), {cpu[len(cpu) // 2]:.2f} s of the job's CPU; the database grew "
        f"to {rows[-1]['db_kb']} KB (insert-only, by design). "
        f"Raw rows: `benchmarks/soak_ledger.json`. Verdict: **{'PASSED' if r['passed'] else 'FAILED'}** "
        f"(first {WINDOW} runs against the last {WINDOW}).",
        "",
        *verdict_table(r["verdicts"]),
        "",
        "![the job's RSS and time per run over 200 runs](docs/soak_ledger.png)",
    ])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
