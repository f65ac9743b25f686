"""The function's code: events -> validation -> inference -> JSON. Standard library, numpy, onnxruntime
and orjson only: no torch, pandas, scikit-learn, joblib or pickle at run time."""
