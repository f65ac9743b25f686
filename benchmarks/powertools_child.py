"""aws-lambda-powertools' Logger + Metrics against the hand-written EMF line.

python powertools_child.py import-powertools
python powertools_child.py import-ours LAMBDA_DIR
python powertools_child.py warm LAMBDA_DIR
"""

import json
import os
import sys
import time

mode = sys.argv[1]
if mode == "import-powertools":
    t = time.perf_counter()
    from aws_lambda_powertools import Logger, Metrics

    Logger(service="x")
    Metrics(namespace="x", service="x")
    print(time.perf_counter() - t)
elif mode == "import-ours":
    sys.path.insert(0, sys.argv[2])
    t = time.perf_counter()
    from forecast import telemetry  # noqa: F401

    print(time.perf_counter() - t)
else:
    sys.path.insert(0, sys.argv[2])
    real = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.metrics import MetricUnit
    from forecast import telemetry

    logger = Logger(service="financial-forecasting", stream=sys.stdout)
    metrics = Metrics(namespace="FinancialForecasting", service="financial-forecasting")

    def pt():
        logger.info(
            "request",
            extra={
                "request_id": "abc",
                "route": "/predict",
                "ticker": "AAPL",
                "status": 200,
                "latency_ms": 0.2,
                "model_version": "v",
            },
        )
        metrics.add_dimension(name="Route", value="/predict")
        metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=0.2)
        metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="ColdStart", unit=MetricUnit.Count, value=0)
        metrics.flush_metrics()

    def ours():
        telemetry.emit(
            request_id="abc",
            route="/predict",
            method="POST",
            status=200,
            latency_ms=0.2,
            model_version="v",
            ticker="AAPL",
            predictions=1,
            cold_start=False,
            out=sys.stdout,
        )

    res = {"powertools": [], "ours": []}
    for _ in range(200):
        pt()
        ours()
    for _ in range(5):
        for name, f in (("powertools", pt), ("ours", ours)):
            ts = []
            for _ in range(2000):
                t = time.perf_counter_ns()
                f()
                ts.append(time.perf_counter_ns() - t)
            ts.sort()
            res[name].append(ts[len(ts) // 2])
    real.write(json.dumps(res))
