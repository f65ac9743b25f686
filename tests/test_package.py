"""The packages: within limits, reproducible, stripped, and runnable alone from their extracted zips."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import LAMBDA_DIR, RUNTIME_DIR

sys.path.insert(0, str(LAMBDA_DIR))
import package  # noqa: E402


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
    assert "__pycache__/lambda_handler.cpython-311.pyc" in names
    for tooling in ("package.py", "local_api.py", "deploy.py", "template.yaml", "settings.py"):
        assert tooling not in names
    assert not any(n.startswith("events/") for n in names)


def test_pyc_are_unchecked_hash(built_packages):
    with zipfile.ZipFile(built_packages[0]) as zf:
        header = zf.read("__pycache__/lambda_handler.cpython-311.pyc")[:8]
    flags = int.from_bytes(header[4:8], "little")
    assert flags == 0b01, "expected hash-based, unchecked .pyc (flags=1)"


def test_layer_is_stripped_and_linux_x86_64(built_packages):
    names = zipfile.ZipFile(built_packages[1]).namelist()
    assert all(n.startswith("python/") for n in names)
    assert not any("/tests/" in n or n.endswith((".pyi", ".h")) for n in names)
    assert not any("/onnxruntime/transformers/" in n or "/onnxruntime/quantization/" in n for n in names)
    so = [n for n in names if n.endswith(".so")]
    assert any("onnxruntime_pybind11_state" in n for n in so)
    assert all("x86_64" in n or "cpython-311" in n or "/numpy.libs/" in n or "/onnxruntime/capi/" in n for n in so)
    wheels = {n.split("/")[1] for n in names if n.endswith(".dist-info/WHEEL")}
    assert {"numpy-1.26.4.dist-info", "onnxruntime-1.16.3.dist-info"} <= wheels


def test_function_zip_is_reproducible(built_packages, tmp_path):
    again = package.build_function(tmp_path / "again.zip")
    assert package.sha256_file(again) == package.sha256_file(built_packages[0])


@pytest.mark.slow
def test_layer_zip_is_reproducible(built_packages, tmp_path):
    again = package.build_layer(tmp_path / "layer.zip", quiet=True)
    assert package.sha256_file(again) == package.sha256_file(built_packages[1])


def test_a_limit_breach_fails_with_a_clear_message(built_packages, monkeypatch, capsys):
    monkeypatch.setitem(package.LIMITS, "layer_zip", 1024)
    failures = package.report(*built_packages)
    assert failures and "layer_zip" in failures[0] and "over the" in failures[0]
    assert "OVER" in capsys.readouterr().out


def test_tampered_model_refuses_to_package(tmp_path, monkeypatch):
    import shutil

    rt = tmp_path / "runtime"
    shutil.copytree(RUNTIME_DIR, rt)
    (rt / "model.onnx").write_bytes(b"not a model")
    monkeypatch.setattr(package, "RUNTIME_SRC", rt)
    with pytest.raises(SystemExit, match="sha256"):
        package.build_function(tmp_path / "fn.zip")


def test_stale_detection(built_packages, tmp_path, monkeypatch):
    assert not package.is_stale()
    src = package.ROOT / "dist" / "stale-probe.py"
    src.write_text("x = 1\n")
    monkeypatch.setattr(package, "function_inputs", lambda: [src])
    try:
        assert package.is_stale()
    finally:
        src.unlink()


def test_extracted_zips_run_alone(built_packages, tmp_path, handler):
    """Both zips in an empty folder; a subprocess whose path holds nothing else gets a correct prediction."""
    task, opt = tmp_path / "task", tmp_path / "opt"
    zipfile.ZipFile(built_packages[0]).extractall(task)
    zipfile.ZipFile(built_packages[1]).extractall(opt)
    event = json.loads((LAMBDA_DIR / "events" / "direct_invoke.json").read_text())
    code = ("import sys, json; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import lambda_handler, numpy, onnxruntime; "
            "out = lambda_handler.lambda_handler(json.loads(sys.stdin.read()), None); "
            "print(json.dumps({'out': out, 'paths': [numpy.__file__, onnxruntime.__file__, lambda_handler.__file__], "
            "'sys_path': sys.path}))")
    r = subprocess.run([sys.executable, "-S", "-E", "-c", code, str(task), str(opt / "python")], input=json.dumps(event),
                       capture_output=True, text=True, cwd=tmp_path, env={"PATH": "/usr/bin", "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert all(p.startswith(str(tmp_path)) for p in res["paths"]), res["paths"]
    assert not any("site-packages" in p for p in res["sys_path"])
    expected = handler.lambda_handler(event, None)["prediction"]
    assert res["out"]["prediction"] == pytest.approx(expected, rel=1e-6)
    assert hashlib.sha256((task / "runtime" / "model.onnx").read_bytes()).hexdigest() == \
        json.loads((task / "runtime" / "manifest.json").read_text())["files"]["model.onnx"]["sha256"]
