"""The local stand-in for API Gateway and the Lambda runtime: serves dist/lambda_function.zip over HTTP as AWS would.

    python -m local_api [--port 3000]        (`make local-api`; `make run` starts it beside the dashboard)

__main__.py     the command line: build or pick the packages, start the gateway and the workers, drain on SIGTERM
gateway.py      API Gateway (REST, one stage): key, throttle, routes, the proxy event, the invocation log
gatekeeper.py   one thread for every socket: timeouts, connection and buffer budgets, back-pressure
http_framing.py HTTP/1.1 request framing as a careful proxy reads it
runtime.py      the execution environments: awslambdaric worker processes, replaced when they crash or hang
runtime_api.py  the Lambda Runtime API those workers poll

It imports lambda/'s build helpers (package.py, settings.py, runtime_python.py) and models/; nothing in lambda/
imports it. The function itself runs only inside the workers, from the built zip.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lambda/ is not a package (its name is a keyword): its build helpers are imported from its folder
_LAMBDA_DIR = str(ROOT / "lambda")
if _LAMBDA_DIR not in sys.path:
    sys.path.insert(0, _LAMBDA_DIR)
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # models/, when started from elsewhere
