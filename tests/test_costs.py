"""The cost model against numbers worked out by hand, both free-tier settings and both architectures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dashboard.costs import Usage, billed_ms, cost_per_prediction, guide_claim, monthly_cost


def line(result, prefix):
    return next(x["usd"] for x in result["lines"] if x["item"].startswith(prefix))


def test_the_guides_scenario_before_the_free_tier():
    # 100 a day x 30 = 3,000 requests; 3,000 x 0.1 s x 0.5 GB = 150 GB-s
    r = monthly_cost(Usage(requests_per_day=100, duration_ms=100, memory_mb=512, free_tier=False))
    assert line(r, "Lambda requests") == pytest.approx(3000 * 0.20 / 1e6)  # $0.0006
    assert line(r, "Lambda compute") == pytest.approx(150 * 0.0000166667)  # $0.0025
    assert line(r, "API Gateway REST") == pytest.approx(3000 * 3.50 / 1e6)  # $0.0105
    assert r["total_usd"] == pytest.approx(0.0006 + 0.0025 + 0.0105, rel=1e-5)
    assert r["quantities"]["gb_seconds"] == pytest.approx(150)


def test_the_same_scenario_is_free_within_the_free_tier():
    r = monthly_cost(Usage(requests_per_day=100, duration_ms=100, memory_mb=512, free_tier=True))
    assert r["total_usd"] == 0


@pytest.mark.parametrize("arch, price", [("x86_64", 0.0000166667), ("arm64", 0.0000133334)])
def test_architectures(arch, price):
    # 1,000,000 a day x 30 = 30M requests x 2 ms x 0.25 GB = 15,000 GB-s
    r = monthly_cost(Usage(requests_per_day=1_000_000, duration_ms=2, memory_mb=256, arch=arch, api="http", free_tier=False))
    assert line(r, "Lambda compute") == pytest.approx(15_000 * price)
    assert line(r, "API Gateway HTTP") == pytest.approx(30.0)
    assert line(r, "Lambda requests") == pytest.approx(6.0)


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_free_tier_is_subtracted(arch):
    # 2M requests/month, 1M free -> 1M paid = $0.20; 500,000 GB-s, 400,000 free
    u = Usage(requests_per_day=2_000_000 / 30, duration_ms=250, memory_mb=1024, arch=arch, api="rest")
    r = monthly_cost(u)
    price = 0.0000166667 if arch == "x86_64" else 0.0000133334
    assert line(r, "Lambda requests") == pytest.approx(0.20)
    assert line(r, "Lambda compute") == pytest.approx(100_000 * price, rel=1e-6)
    assert line(r, "API Gateway REST") == pytest.approx(3.50)


def test_billing_in_whole_milliseconds():
    assert [billed_ms(x) for x in (0.2, 1.0, 1.01, 2.5, 99.9)] == [1, 1, 2, 3, 100]
    a = monthly_cost(Usage(requests_per_day=1000, duration_ms=0.3, memory_mb=128, free_tier=False, api="none"))
    b = monthly_cost(Usage(requests_per_day=1000, duration_ms=1.0, memory_mb=128, free_tier=False, api="none"))
    assert a["total_usd"] == b["total_usd"]


def test_init_is_billed_for_cold_starts():
    # 30,000 requests, 10% cold, 400 ms INIT at 0.5 GB = 3,000 x 0.4 x 0.5 = 600 GB-s
    r = monthly_cost(
        Usage(requests_per_day=1000, duration_ms=1, memory_mb=512, cold_start_share=0.1, init_ms=400, free_tier=False, api="none")
    )
    assert line(r, "Lambda INIT") == pytest.approx(600 * 0.0000166667)


def test_days_and_logs():
    r = monthly_cost(
        Usage(
            requests_per_day=1_000_000,
            duration_ms=1,
            memory_mb=128,
            days=31,
            log_bytes_per_request=1000,
            free_tier=False,
            api="none",
        )
    )
    assert r["quantities"]["requests"] == 31_000_000
    assert line(r, "CloudWatch Logs") == pytest.approx(31 * 0.5)


def test_batching_cuts_cost_per_prediction():
    u = Usage(requests_per_day=10_000, duration_ms=1, memory_mb=256, api="rest")
    single, batch = (
        cost_per_prediction(u, 1),
        cost_per_prediction(Usage(requests_per_day=10_000, duration_ms=3, memory_mb=256), 32),
    )
    assert batch < single / 10


def test_the_guide_is_off():
    g = guide_claim()
    assert g["real_usd"] == pytest.approx(0.0136, rel=1e-4) and g["ratio"] > 25


@pytest.mark.parametrize(
    "bad", [dict(arch="sparc"), dict(api="grpc"), dict(memory_mb=64), dict(cold_start_share=2.0), dict(requests_per_day=-1)]
)
def test_bad_inputs(bad):
    with pytest.raises(ValueError):
        Usage(**{"requests_per_day": 1, **bad})


def test_cli_json_and_table(root):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "dashboard.costs",
            "--requests-per-day",
            "100",
            "--duration-ms",
            "100",
            "--memory-mb",
            "512",
            "--no-free-tier",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=root,
    )
    out = json.loads(r.stdout)
    assert out["total_usd"] == pytest.approx(0.0136, rel=1e-4) and {x["item"] for x in out["lines"]} >= {"Lambda requests"}
    assert out["inputs"]["memory_mb"] == 512
    r = subprocess.run(
        [sys.executable, "-m", "dashboard.costs", "--requests-per-day", "100"], capture_output=True, text=True, cwd=root
    )
    assert "TOTAL" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "dashboard.costs", "--requests-per-day", "100", "--arch", "sparc"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_snapstart_replaces_init_with_restores_and_a_cache_worked_by_hand():
    from dashboard import costs

    u = costs.Usage(
        requests_per_day=10_000,
        duration_ms=2,
        memory_mb=256,
        cold_start_share=0.01,
        init_ms=550,
        snapstart=True,
        free_tier=False,
        api="none",
    )
    lines = {line["item"]: line["usd"] for line in costs.monthly_cost(u)["lines"]}
    assert "Lambda INIT (cold starts)" not in lines
    assert lines["SnapStart cache"] == pytest.approx(0.25 * 30 * 86400 * 1.5046e-6)  # $0.975
    assert lines["SnapStart restores"] == pytest.approx(3000 * 0.25 * 1.397998e-4)  # $0.105
    b = costs.snapstart_breakeven(550, 256)
    assert not b["pays"] and b["init_ms_to_break_even"] == pytest.approx(1.397998e-4 / 1.66667e-5 * 1000, rel=1e-6)
