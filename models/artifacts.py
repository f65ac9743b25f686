"""The training artifacts' file names: the one place train, export, promote, evaluate and tracking read them from."""

CHECKPOINT = "lstm_multi_ticker.pth"  # the point LSTM (the name the guide uses)
BUNDLE = "scaler_ensemble_multi.pkl"  # scaler, linear member, ensemble weights, calibration (the guide's name)
RISK_CHECKPOINT = "risk_multi_ticker.pth"  # the risk model: the next return's volatility
RUNTIME_DIR = "runtime"  # what the function loads: ONNX + manifest.json
ONNX_FILE = "model.onnx"
MANIFEST = "manifest.json"
METRICS = "metrics.json"
TRAINING = (CHECKPOINT, BUNDLE, RISK_CHECKPOINT, METRICS)  # what a tracked run keeps beside runtime/
