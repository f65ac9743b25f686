"""Training smoke run, export parity, manifest hashes and the committed artifacts' honesty."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from models import dataset
from models.features import FEATURES, WINDOW

torch = pytest.importorskip("torch")


# a tiny real run: 1 epoch, the newest 200 samples per ticker, small nets; seconds
SMOKE = ["--epochs", "1", "--limit", "200", "--hidden", "8", "--layers", "1", "--risk-epochs", "1", "--risk-hidden", "4"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A tiny real run: 1 epoch, the newest 200 samples per ticker; seconds."""
    from models import train

    out = tmp_path_factory.mktemp("train")
    report = train.main([*SMOKE, "--out-dir", str(out), "--held-out", "^IXIC"])
    return out, report


def test_smoke_run_writes_every_artifact(smoke):
    out, report = smoke
    for name in (
        "lstm_multi_ticker.pth",
        "scaler_ensemble_multi.pkl",
        "risk_multi_ticker.pth",
        "metrics.json",
        "runtime/model.onnx",
        "runtime/manifest.json",
    ):
        assert (out / name).exists(), name
    assert report["test"]["overall"]["naive"]["mase"] == pytest.approx(1.0)
    assert "^IXIC" in report["held_out"]["per_ticker"]
    assert set(report["test"]["risk"]) == {"served", "ensemble_vol20", "rolling20", "ewma", "garch"}


def test_smoke_manifest_hashes_match(smoke):
    out, _ = smoke
    manifest = json.loads((out / "runtime" / "manifest.json").read_text())
    for name, meta in manifest["files"].items():
        assert hashlib.sha256((out / "runtime" / name).read_bytes()).hexdigest() == meta["sha256"]
    assert manifest["test_metrics"]["overall"]["ensemble"]["mase"] is not None


def test_checkpoint_describes_itself(smoke):
    from models.net import load_checkpoint

    out, _ = smoke
    model, ckpt = load_checkpoint(out / "lstm_multi_ticker.pth")
    assert ckpt["features"] == list(FEATURES) and ckpt["window"] == WINDOW
    assert model.cfg.hidden == 8 and model.cfg.layers == 1
    assert len(ckpt["scaler"]["mean"]) == len(FEATURES)


def test_training_is_reproducible(smoke, tmp_path):
    from models import train

    out, _ = smoke
    train.main([*SMOKE, "--out-dir", str(tmp_path), "--held-out"])
    for name in ("lstm_multi_ticker.pth", "risk_multi_ticker.pth"):
        a = torch.load(out / name, weights_only=False)["state_dict"]
        b = torch.load(tmp_path / name, weights_only=False)["state_dict"]
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)


def test_the_old_interval_is_one_flag_away(tmp_path):
    """--interval vol20 serves the old q x volatility20: the risk model's untrained state is exactly volatility20."""
    from models import train
    from models.evaluate import RuntimeModel

    train.main(
        [
            "--epochs",
            "1",
            "--limit",
            "120",
            "--hidden",
            "4",
            "--layers",
            "1",
            "--out-dir",
            str(tmp_path),
            "--held-out",
            "--interval",
            "vol20",
            "--tickers",
            "AAPL",
        ]
    )
    d = dataset.build("AAPL")
    p = RuntimeModel(tmp_path / "runtime").predict(d.X[-50:])
    np.testing.assert_allclose(p["volatility"], np.maximum(d.vol[-50:], 1e-4), rtol=1e-5)


def test_committed_manifest_hashes_match(root, manifest):
    for name, meta in manifest["files"].items():
        path = root / "models" / "runtime" / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == meta["sha256"], f"{name} changed without re-export"


def test_committed_export_parity_on_real_windows(root, manifest):
    """The ONNX model the function serves equals the PyTorch ensemble within 1e-5."""
    import onnxruntime as ort

    from models.export import load_served

    served, _, _, _ = load_served(root / "models")
    d = dataset.build("GOOG")
    X = dataset.standardize_windows(d.X[-256:], manifest["scaler"])
    with torch.no_grad():
        ref_ens, ref_mem, ref_vol = (t.numpy() for t in served(torch.from_numpy(X)))
    sess = ort.InferenceSession(str(root / "models" / "runtime" / "model.onnx"))
    got_ens, got_mem, got_vol = sess.run(manifest["onnx"]["outputs"], {"x": X})
    np.testing.assert_allclose(got_ens, ref_ens, atol=1e-5)
    np.testing.assert_allclose(got_mem, ref_mem, atol=1e-5)
    np.testing.assert_allclose(got_vol, ref_vol, atol=1e-5)
    assert manifest["onnx"]["outputs"] == ["ensemble", "members", "volatility"]
    one = sess.run(None, {"x": X[:1]})[0]  # batch 1, as a single request runs
    np.testing.assert_allclose(one, ref_ens[:1], atol=1e-5)


def test_committed_metrics_are_beside_the_naive_forecast(root, manifest):
    m = json.loads((root / "models" / "metrics.json").read_text())
    assert m["version"] == manifest["version"], "metrics.json is not about the served model"
    for block in (m["test"], m["held_out"]):
        assert set(block["overall"]) == {"ensemble", "lstm", "linear", "naive"}
        for key in ("mae_pct", "rmse_pct", "mape", "mase", "r2_return", "directional_accuracy", "interval_coverage"):
            assert key in block["overall"]["ensemble"]
        for per in block["per_ticker"].values():
            assert per["naive"]["mase"] == pytest.approx(1.0)
            assert {"mae", "rmse", "mape", "r2", "mase"} <= set(per["ensemble"])
    assert 0.7 <= m["test"]["overall"]["ensemble"]["interval_coverage"] <= 0.9
    for block in (m["test"], m["held_out"]):
        assert set(block["risk"]) == {"served", "ensemble_vol20", "rolling20", "ewma", "garch"}
        for r in block["risk"].values():
            assert {"coverage", "coverage_by_vol_tercile", "winkler", "crps", "pinball_10", "pinball_50", "pinball_90"} <= set(r)
            assert len(r["coverage_by_vol_tercile"]) == 3


def test_artifacts_stay_small(root):
    from models.artifacts import BUNDLE, CHECKPOINT, RISK_CHECKPOINT

    files = [root / "models" / n for n in (CHECKPOINT, BUNDLE, RISK_CHECKPOINT)]
    files += list((root / "models" / "runtime").iterdir())
    assert sum(f.stat().st_size for f in files) <= 5 * 1024 * 1024


def test_models_package_does_not_import_torch(root):
    code = (
        "import sys, models, models.data, models.features, models.metrics, models.evaluate; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


def test_train_help(capsys):
    """In process: torch is already imported here, while a fresh `python -m models.train --help` pays seconds for it."""
    from models import train

    with pytest.raises(SystemExit) as exit_:
        train.main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "--epochs" in out and "python -m models.train" in out


def test_the_served_model_scores_a_series_the_project_does_not_hold(root, tmp_path, capsys):
    """`python -m models.evaluate --csv FILE`: any OHLCV series, scored beside the baselines with the served calibration."""
    from models import evaluate
    from models.data import load_prices

    df = load_prices("MSFT", source="snapshot")
    df[df.index >= "2011-01-01"].to_csv(tmp_path / "msft_late.csv")
    evaluate.main(["--csv", str(tmp_path / "msft_late.csv"), "--json"])
    report = json.loads(capsys.readouterr().out)
    risk = report["test"]["risk"]
    assert set(risk) == {"served", "ensemble_vol20", "rolling20", "ewma", "garch"}
    assert 0.5 < risk["served"]["coverage"] < 1 and report["test"]["goals"]["winkler_vs_rolling"] > 0
    df.iloc[:80].to_csv(tmp_path / "short.csv")
    with pytest.raises(SystemExit, match="short has 0 usable days"):
        evaluate.main(["--csv", str(tmp_path / "short.csv")])
    with pytest.raises(SystemExit, match="cannot read"):
        evaluate.main(["--csv", str(tmp_path / "missing.csv")])
