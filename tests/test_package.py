"""The packages: within limits, reproducible, stripped, and runnable alone from their extracted zips."""

from __future__ import annotations

import hashlib
import json
import zipfile

import package
import pytest
import runtime_python
import smoke

from tests.support import LAMBDA_DIR, RUNTIME_DIR

TARGET = package.Target.from_template()
PYC = f"__pycache__/lambda_handler.cpython-{TARGET.abi[2:]}.pyc"


def test_sizes_within_limits(built_packages):
    fn, layer = built_packages
    assert fn.stat().st_size <= package.LIMITS["function_zip"]
    assert layer.stat().st_size <= package.LIMITS["layer_zip"]
    total = package.unzipped_size(fn) + package.unzipped_size(layer)
    assert total <= package.LIMITS["unzipped_total"] < package.LAMBDA_UNZIPPED_LIMIT
    assert package.report(fn, layer) == []


def test_function_zip_holds_only_the_function(built_packages):
    names = set(zipfile.ZipFile(built_packages[0]).namelist())
    assert {"lambda_handler.py", "forecast/inference.py", "runtime/manifest.json", "runtime/model.onnx"} <= names
    assert PYC in names, "the .pyc must come from the runtime's CPython, or Lambda compiles on every cold start"
    for tooling in ("package.py", "smoke.py", "template.yaml", "settings.py", "runtime_python.py", "openapi.yaml"):
        assert tooling not in names
    assert not any(n.startswith("events/") for n in names)


def test_pyc_are_unchecked_hash(built_packages):
    with zipfile.ZipFile(built_packages[0]) as zf:
        header = zf.read(PYC)[:8]
    flags = int.from_bytes(header[4:8], "little")
    assert flags == 0b01, "expected hash-based, unchecked .pyc (flags=1)"


def test_layer_is_stripped_and_linux_x86_64(built_packages):
    names = zipfile.ZipFile(built_packages[1]).namelist()
    assert all(n.startswith("python/") for n in names)
    assert not any("/tests/" in n or n.endswith((".pyi", ".h")) for n in names)
    assert not any("/onnxruntime/transformers/" in n or "/onnxruntime/quantization/" in n for n in names)
    so = [n for n in names if n.endswith(".so")]
    assert any("onnxruntime_pybind11_state" in n for n in so)
    assert all(f"cpython-{TARGET.abi[2:]}-x86_64" in n or "/numpy.libs/" in n or "/onnxruntime/capi/" in n for n in so), so
    assert not any("/capi/libonnxruntime.so" in n for n in names), "the C API library is never loaded: strip it"
    wheels = {n.split("/")[1] for n in names if n.endswith(".dist-info/WHEEL")}
    pins = [
        line.split("==") for line in package.REQUIREMENTS.read_text().splitlines() if "==" in line and not line.startswith("#")
    ]
    assert {f"{name}-{version}.dist-info" for name, version in pins} <= wheels


def test_layer_needs_no_newer_glibc_than_amazon_linux_2023(built_packages):
    needs = package.glibc_needed(built_packages[1])
    assert any("onnxruntime_pybind11_state" in n for n in needs) and any("numpy" in n for n in needs)
    assert max(needs.values()) <= package.MAX_GLIBC == (2, 34), {n: v for n, v in needs.items() if v > (2, 34)}
    assert package.check_glibc(built_packages[1]) == []


def test_the_glibc_check_fails_above_2_34(built_packages, monkeypatch):
    import package_checks

    monkeypatch.setattr(package_checks, "MAX_GLIBC", (2, 17))
    failures = package.check_glibc(built_packages[1])
    assert failures and "newer than Amazon Linux 2023" in failures[0]


@pytest.mark.slow
def test_arm64_build_fits_the_same_limits(tmp_path, capsys):
    """Nothing here runs arm64 code: the build is checked for wheels, size and glibc only."""
    import dataclasses

    arm = dataclasses.replace(TARGET, arch="arm64")
    layer = package.build_layer(tmp_path / "layer.zip", quiet=True, target=arm)
    fn = package.build_function(tmp_path / "fn.zip", arm)
    assert package.report(fn, layer) == [] and package.check_glibc(layer) == []
    so = [n for n in zipfile.ZipFile(layer).namelist() if n.endswith(".so")]
    assert any(f"cpython-{TARGET.abi[2:]}-aarch64" in n for n in so) and not any("x86_64" in n for n in so)


def test_target_comes_from_the_template():
    import settings

    s = settings.function_settings()
    assert s["Runtime"] == f"python{TARGET.python}" and s["Architectures"] == [TARGET.arch]
    assert "--python-version" in TARGET.pip_args() and "manylinux_2_28_x86_64" in TARGET.pip_args()
    assert not any(t.startswith("manylinux_2_29") or t.startswith("manylinux_2_3") for t in TARGET.pip_args())


def test_function_zip_is_reproducible(built_packages, tmp_path):
    again = package.build_function(tmp_path / "again.zip", TARGET)
    assert package.sha256_file(again) == package.sha256_file(built_packages[0])


@pytest.mark.slow
def test_layer_zip_is_reproducible(built_packages, tmp_path):
    again = package.build_layer(tmp_path / "layer.zip", quiet=True, target=TARGET)
    assert package.sha256_file(again) == package.sha256_file(built_packages[1])


def test_a_limit_breach_fails_with_a_clear_message(built_packages, monkeypatch, capsys):
    monkeypatch.setitem(package.LIMITS, "layer_zip", 1024)
    failures = package.report(*built_packages)
    assert failures and "layer_zip" in failures[0] and "over the" in failures[0]
    assert "OVER" in capsys.readouterr().out


def test_tampered_model_refuses_to_package(tmp_path, monkeypatch):
    import shutil

    import package_build

    rt = tmp_path / "runtime"
    shutil.copytree(RUNTIME_DIR, rt)
    (rt / "model.onnx").write_bytes(b"not a model")
    monkeypatch.setattr(package_build, "RUNTIME_SRC", rt)
    with pytest.raises(SystemExit, match="sha256"):
        package.build_function(tmp_path / "fn.zip")


def test_stale_detection(built_packages, tmp_path, monkeypatch):
    assert not package.is_stale()
    src = tmp_path / "stale-probe.py"
    src.write_text("x = 1\n")
    monkeypatch.setattr(package, "function_inputs", lambda: [src])
    assert package.is_stale()


def test_extracted_zips_run_alone_on_the_runtime_python(built_packages, tmp_path):
    """Both zips in an empty folder; CPython 3.13 with nothing else on its path answers every sample event,
    without the onnxruntime C API library the build strips."""
    python = package.interpreter(TARGET)
    out = smoke.run_isolated(
        *built_packages, [json.loads((LAMBDA_DIR / "events" / "direct_invoke.json").read_text())], python, workdir=tmp_path
    )
    assert out["version"] == TARGET.python
    assert all(p.startswith(str(tmp_path)) for p in out["paths"]), out["paths"]
    assert not any("site-packages" in p for p in out["sys_path"])
    assert out["answers"][0]["prediction"] > 0
    assert smoke.check(*built_packages, python) == []


def test_a_broken_package_fails_the_smoke_check_naming_the_event(built_packages, tmp_path):
    broken = tmp_path / "fn.zip"
    with zipfile.ZipFile(built_packages[0]) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "forecast/validation.py":
                data = b"raise ImportError('simulated broken build')\n"
            if item.filename.startswith("forecast/__pycache__/validation."):
                continue
            dst.writestr(item, data)
    failures = smoke.check(broken, built_packages[1], package.interpreter(TARGET))
    assert failures and "simulated broken build" in failures[0]


def test_runtime_python_is_found_or_explained(monkeypatch):
    assert runtime_python.find(TARGET.python) is not None
    monkeypatch.setenv("FUNCTION_PYTHON", "/nonexistent/python3.13")
    with pytest.raises(SystemExit, match="FUNCTION_PYTHON"):
        runtime_python.find(TARGET.python)
    assert "pyenv install 3.99" in runtime_python.how_to_get("3.99")
    monkeypatch.delenv("FUNCTION_PYTHON")
    assert runtime_python.find("3.99") is None


def test_tampered_manifest_hash_fails_the_sha256_check(built_packages):
    data = json.loads((RUNTIME_DIR / "manifest.json").read_text())
    assert hashlib.sha256((RUNTIME_DIR / "model.onnx").read_bytes()).hexdigest() == data["files"]["model.onnx"]["sha256"]


# --- the ledger's own function and layer ---------------------------------------------------------------------


def test_the_ledger_function_holds_the_job_and_only_the_models_it_imports(tmp_path):
    """ledger/ and the models/ modules ledger.handler imports, alone: importing it from the extracted zip loads every
    ledger and models module from there (so nothing is missing) and never torch (so net/train/export stay out)."""
    import subprocess
    import sys

    zip_path = package.build_ledger_function(tmp_path / "ledger_function.zip", TARGET)
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert {"ledger/handler.py", "ledger/dynamo.py", "models/metrics.py", "models/client.py"} <= names
    assert not {"models/net.py", "models/train.py", "models/export.py", "lambda_handler.py"} & names
    assert f"ledger/__pycache__/handler.cpython-{TARGET.abi[2:]}.pyc" in names
    root = tmp_path / "fn"
    zipfile.ZipFile(zip_path).extractall(root)
    probe = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); import ledger.handler;"
        "mods = {m: getattr(sys.modules[m], '__file__', '') for m in sys.modules if m.split('.')[0] in ('ledger', 'models')};"
        "out = [m for m, f in mods.items() if not f.startswith(sys.argv[1])];"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'outside': out}))"
    )
    # -I: the checkout is not on sys.path, so a module the zip lacks fails to import instead of coming from here
    r = subprocess.run([sys.executable, "-I", "-c", probe, str(root)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout) == {"torch": False, "outside": []}


@pytest.mark.slow
def test_the_ledger_layer_runs_the_job_on_the_runtime_python_within_lambdas_limit(tmp_path):
    """The real ledger layer (pandas, arch, yfinance, exchange-calendars for the runtime's CPython, from PyPI): with the
    ledger function it fits Lambda's 250 MB unzipped, and on CPython 3.13 alone it imports the job and fits a GARCH."""
    import subprocess

    fn, layer = package.ensure_ledger_built(layer=True, quiet=True, target=TARGET)
    assert package.ledger_report(fn, layer) == []
    names = zipfile.ZipFile(layer).namelist()
    assert not any("/tests/" in n for n in names) and not any(n.startswith("python/lxml/") for n in names)
    probe = (
        "import sys; sys.path[:0] = sys.argv[1:3]; import ledger.handler, exchange_calendars, numpy as np;"
        "from models import metrics; g = metrics.fit_garch(np.random.default_rng(0).normal(0, 0.01, 400));"
        "assert 0 <= g['alpha'] + g['beta'] < 1, g; assert 'torch' not in sys.modules; print('ok')"
    )
    for z, d in ((fn, "fn"), (layer, "layer")):
        zipfile.ZipFile(z).extractall(tmp_path / d)
    cmd = [str(package.interpreter(TARGET)), "-I", "-c", probe, str(tmp_path / "fn"), str(tmp_path / "layer" / "python")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_the_layer_does_not_carry_the_folder_it_was_built_in(tmp_path):
    """pip's RECORD lists the console scripts it wrote to bin/, hashed with the installing interpreter's path in their
    shebang: two checkouts built different layers until strip kept only the RECORD lines of files that ship."""
    import package_build

    records = []
    for checkout in ("/home/a/project/.venv/bin/python", "/tmp/elsewhere/.venv/bin/python"):
        site = tmp_path / checkout.split("/")[2] / "python"
        (site / "numpy").mkdir(parents=True)
        (site / "numpy" / "__init__.py").write_text("x = 1\n")
        (site / "numpy" / "tests").mkdir()
        (site / "numpy" / "tests" / "test_x.py").write_text("def test(): pass\n")
        (site / "bin").mkdir()
        (site / "bin" / "f2py").write_text(f"#!{checkout}\nimport numpy\n")
        info = site / "numpy-2.0.dist-info"
        info.mkdir()
        (info / "RECORD").write_text(
            "numpy/__init__.py,sha256=abc,6\n"
            "numpy/tests/test_x.py,sha256=def,17\n"
            f"../../bin/f2py,sha256={hash(checkout) & 0xFFFF:x},{len(checkout) + 14}\n"
            "numpy-2.0.dist-info/RECORD,,\n"
        )
        package_build.strip(site)
        records.append((info / "RECORD").read_text())
    assert records[0] == records[1]
    assert records[0] == "numpy/__init__.py,sha256=abc,6\nnumpy-2.0.dist-info/RECORD,,\n"
