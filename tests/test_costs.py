"""The cost model against numbers worked out by hand, both free-tier settings and both architectures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.costs import Usage, billed_ms, cost_per_prediction, front_door_costs, guide_claim, monthly_cost


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


# --- one billing rule, one list of front doors, one price list ----------------------------------------------------


@pytest.mark.parametrize("ms, billed", [(0, 1), (0.2, 1), (1.0, 1), (1.0000000001, 1), (1.01, 2), (2.5, 3), (99.9, 100)])
def test_the_one_billing_rule(ms, billed):
    from models.billing import billed_ms as rule

    assert rule(ms) == billed
    assert billed_ms is rule  # the cost model bills with the same function


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_the_billing_rule_refuses_what_is_not_a_duration(bad):
    from models.billing import billed_ms as rule

    with pytest.raises(ValueError, match="duration"):
        rule(bad)


def test_usage_and_the_local_log_use_the_one_billing_rule(root):
    """The local API's log and the CloudWatch summary bill with models.billing, not a rule of their own."""
    import ast

    from models import cloudwatch

    assert cloudwatch.billed_ms is billed_ms and "math.ceil" not in Path(cloudwatch.__file__).read_text()
    source = (root / "local_api" / "gateway.py").read_text()
    assert "from models.billing import billed_ms" in source and "math.ceil" not in source
    # the log record's "billed_ms" is computed by that function and nothing else (the test reads the code, not a
    # record, so it holds whatever arguments the log writer takes)
    values = [
        v
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Dict)
        for k, v in zip(node.keys, node.values, strict=True)
        if isinstance(k, ast.Constant) and k.value == "billed_ms"
    ]
    assert len(values) == 1
    calls = [n for n in ast.walk(values[0]) if isinstance(n, ast.Call)]
    assert [ast.unparse(c.func) for c in calls] == ["billed_ms"], ast.unparse(values[0])


def test_front_doors_are_defined_once_in_the_template(root):
    import yaml

    from dashboard import costs

    sys.path.insert(0, str(root / "lambda"))
    try:
        import settings
    finally:
        sys.path.remove(str(root / "lambda"))
    raw = (root / "lambda" / "template.yaml").read_text()
    allowed = next(line for line in raw.split("FrontDoor:", 1)[1].splitlines() if "AllowedValues" in line)
    assert costs.FRONT_DOORS == settings.FRONT_DOORS == tuple(yaml.safe_load(allowed)["AllowedValues"])
    assert costs.PRICED_ACCESS == (*costs.FRONT_DOORS, "none")
    for door in costs.FRONT_DOORS:  # every front door the template allows is priced (a Function URL at $0)
        Usage(requests_per_day=1, api=door)
    assert costs.request_usd("rest") == 3.5e-06 and costs.request_usd("http") == 1e-06 and costs.request_usd("url") == 0


PRICE_PROSE = r"(REST|HTTP)[^$]{0,80}?\(\$(\d+\.\d\d)\s+(?:a|per)\s+million"


def prose_files(root):
    yield root / "README.md"
    yield root / "lambda" / "template.yaml"
    yield from (root / "lambda").rglob("*.py")
    yield from (root / "deployer").rglob("*.py")
    yield from (root / "local_api").rglob("*.py")
    yield from (root / "dashboard").rglob("*.py")


def test_per_million_prices_in_prose_match_the_price_list(root):
    """Where a file writes a front door's price as prose, it is the price list's; the dashboard writes none by hand."""
    import re

    from dashboard import costs

    seen = 0
    for path in prose_files(root):
        text = path.read_text()
        for m in re.finditer(PRICE_PROSE, text):
            seen += 1
            door = m.group(1).lower()
            assert float(m.group(2)) == pytest.approx(costs.request_usd(door) * 1e6), f"{path}: {m.group(0)!r}"
        if path.is_relative_to(root / "dashboard"):
            assert not re.search(r"\$\d+\.\d\d\s*(/M\b|a million|per million)", text), f"{path} writes a price by hand"
    assert seen >= 3  # README, template.yaml and deploy's help say it in words
    assert costs.door_price_text("rest") == "$3.50 a million calls" and costs.door_price_text("url") == "no per-request charge"


def test_readme_front_door_table_is_what_the_cli_prints(root):
    """The README's per-million table and its command: the figures the CLI and the Cost monitor compute."""
    import re

    from dashboard import costs

    readme = (root / "README.md").read_text()
    assert "python -m dashboard.costs --front-doors --memory-mb 256`" in readme
    bench = costs.benchmark_durations()
    fd = costs.front_door_costs(costs.handler_ms(1, bench) * costs.cpu_scale(256), 256)
    table = readme.split("| front door | USD per million predictions |", 1)[1].split("\n\n", 1)[0]
    rows = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"--api (\w+)`[^|]*\| \**(\$[\d.]+)\**[^|]*\| \**([\d.]+)x", table)
    }
    assert set(rows) == set(costs.FRONT_DOORS)
    for door, (usd, times) in rows.items():
        assert usd == costs.money(fd["doors"][door]) and float(times) == round(fd["times_cheaper"][door], 1)
    assert costs.money(fd["guide_usd"]) in table


# --- the cost model's remaining rules, worked by hand -------------------------------------------------------------


def test_the_free_tier_covers_invocations_first_then_init():
    # 300,000 calls x 1 s x 1 GB = 300,000 GB-s; 30,000 cold starts x 5 s x 1 GB = 150,000 GB-s of INIT.
    # 400,000 free GB-s: 300,000 go to the calls, 100,000 to INIT, so 50,000 GB-s of INIT are paid.
    u = Usage(requests_per_day=10_000, duration_ms=1000, memory_mb=1024, cold_start_share=0.1, init_ms=5000, api="none")
    r = monthly_cost(u)
    assert line(r, "Lambda compute") == 0
    assert line(r, "Lambda INIT") == pytest.approx(50_000 * 1.66667e-5)  # $0.83
    assert r["total_usd"] == pytest.approx(50_000 * 1.66667e-5)
    paid = monthly_cost(Usage(**{**u.__dict__, "free_tier": False}))
    assert line(paid, "Lambda INIT") == pytest.approx(150_000 * 1.66667e-5)


def test_ephemeral_storage_above_the_free_512_mb():
    # 30,000 calls x 0.1 s = 3,000 s; 1,024 - 512 = 512 MB = 0.5 GB paid: 1,500 GB-s x $0.0000000309
    r = monthly_cost(Usage(requests_per_day=1000, duration_ms=100, memory_mb=512, ephemeral_mb=1024, free_tier=False, api="none"))
    assert line(r, "Lambda ephemeral storage") == pytest.approx(1500 * 3.09e-8)
    r512 = monthly_cost(Usage(requests_per_day=1000, duration_ms=100, memory_mb=512, ephemeral_mb=512, api="none"))
    assert not any(x["item"].startswith("Lambda ephemeral") for x in r512["lines"])
    with pytest.raises(ValueError, match="ephemeral_mb"):
        Usage(requests_per_day=1, ephemeral_mb=256)


@pytest.mark.parametrize("arch, gbs_price", [("x86_64", 1.66667e-5), ("arm64", 1.33334e-5)])
def test_front_door_costs_by_hand(arch, gbs_price):
    # a million calls of 1.41 ms -> 2 ms billed x 0.25 GB = 500 GB-s; the guide: 100 ms x 0.5 GB = 50,000 GB-s, x86, REST
    fd = front_door_costs(1.41, 256, arch)
    compute = 500 * gbs_price
    assert fd["doors"]["url"] == pytest.approx(0.20 + compute)
    assert fd["doors"]["http"] == pytest.approx(0.20 + compute + 1.00)
    assert fd["doors"]["rest"] == pytest.approx(0.20 + compute + 3.50)
    assert fd["guide_usd"] == pytest.approx(0.20 + 50_000 * 1.66667e-5 + 3.50)  # the guide's design stays x86
    assert fd["times_cheaper"]["url"] == pytest.approx(fd["guide_usd"] / fd["doors"]["url"])
    assert fd["inputs"] == {"duration_ms": 1.41, "billed_ms": 2, "memory_mb": 256, "arch": arch, "batch": 1}
    # 32 predictions a call of 20 ms: a call's price over 32
    b = front_door_costs(19.9, 256, arch, 32)
    assert b["doors"]["url"] == pytest.approx((0.20 + 1e6 * 0.020 * 0.25 * gbs_price) / 32)


def test_handler_time_for_a_batch_follows_the_benchmark(tmp_path):
    from dashboard import costs

    runs = [{"p50_us": 200.0 + i, "batch32_p50_ms": 3.1 + i, "p99_us": 0, "batch32_p99_ms": 0} for i in (0, 2, 1)]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"warm": {"ours": runs}, "cold": {"median_answer_s": {"ours": 0.085}}}))
    b = costs.benchmark_durations(path)
    assert b["single_ms"] == pytest.approx(0.201) and b["batch32_ms"] == pytest.approx(4.1) and b["init_ms"] == pytest.approx(85)
    assert costs.handler_ms(1, b) == pytest.approx(0.201) and costs.handler_ms(32, b) == pytest.approx(4.1)
    assert costs.handler_ms(2, b, single_ms=1.0) == pytest.approx(1.0 + (4.1 - 0.201) / 31)
    with pytest.raises(ValueError, match="1..64"):
        costs.handler_ms(65, b)
    assert costs.benchmark_durations(tmp_path / "missing.json") is None


@pytest.mark.parametrize(
    "usd, text",
    [(0, "$0"), (0.0136, "$0.014"), (0.0025, "$0.0025"), (0.0996, "$0.10"), (0.35, "$0.35"), (4.5333, "$4.53"),
     (1234.5, "$1,234"), (2.1e-7, "$0.00000021")],
)  # fmt: skip
def test_money_is_readable(usd, text):
    from dashboard.costs import money

    assert money(usd) == text


PLAN = {
    "usage_plan": {"throttle": {"rateLimit": 50.0, "burstLimit": 100}, "quota": {"limit": 300_000, "period": "MONTH"}},
    "http": {"throttle": {"ThrottlingRateLimit": 50.0, "ThrottlingBurstLimit": 100}},
    "url": {"reserved_concurrency": 10},
}


def test_what_caps_the_spend_follows_the_front_door():
    from dashboard.costs import spend_cap

    base = dict(requests_per_day=20_000, duration_ms=2.0, memory_mb=256, free_tier=False)
    rest = spend_cap(Usage(**base, api="rest"), PLAN)
    assert rest["cap_requests"] == 300_000 and rest["exceeds"] and "usage plan" in rest["what"]  # 600,000 > 300,000
    assert rest["cap_usd"] == pytest.approx(monthly_cost(Usage(**{**base, "requests_per_day": 10_000}, api="rest"))["total_usd"])
    http = spend_cap(Usage(**base, api="http"), PLAN)
    assert http["cap_requests"] == 50 * 30 * 86400 and not http["exceeds"] and "no usage plan" in http["what"]
    url = spend_cap(Usage(**base, api="url"), PLAN)
    assert url["cap_requests"] == pytest.approx(10 * 500 * 30 * 86400) and "reserved concurrency" in url["what"]
    assert spend_cap(Usage(**{**base, "requests_per_day": 10_000}, api="rest"), PLAN)["exceeds"] is False


def test_cli_front_doors_read_the_benchmark(root):
    from dashboard import costs

    r = subprocess.run(
        [sys.executable, "-m", "dashboard.costs", "--front-doors", "--memory-mb", "256", "--json"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    out = json.loads(r.stdout)
    bench = costs.benchmark_durations()
    assert out["inputs"]["duration_ms"] == pytest.approx(bench["single_ms"] * 1769 / 256)
    assert "benchmarks/results.json" in out["source"]
    r = subprocess.run(
        [sys.executable, "-m", "dashboard.costs", "--front-doors", "--batch", "65"], capture_output=True, text=True, cwd=root
    )
    assert r.returncode == 2 and "1..64" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--front-doors", "--memory-mb", "0"], "--memory-mb must be 128..10240"),  # once a ZeroDivisionError
        (["--front-doors", "--duration-ms", "nan"], "must be a finite number"),
        (["--requests-per-day", "nan"], "must be a finite number"),
        (["--requests-per-day", "inf", "--json"], "must be a finite number"),  # once "$inf" and JSON with Infinity
        (["--requests-per-day", "100", "--duration-ms", "inf"], "must be a finite number"),  # once an OverflowError
        (["--requests-per-day", "5", "--days", "0"], "--days must be at least 1"),
    ],
)
def test_cli_nonsense_is_a_one_line_usage_error(argv, says, capsys):
    from dashboard import costs

    with pytest.raises(SystemExit) as exc:
        costs.main(argv)
    assert exc.value.code == 2 and says in capsys.readouterr().err
