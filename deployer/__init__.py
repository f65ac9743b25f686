"""The deployer: deploy, status, rollback and teardown against AWS (or any --endpoint-url), with boto3.

Run it as `python -m deployer` (see __main__.py); the Makefile's deploy targets and the dashboard's Deploy page do.
It reads every setting from lambda/template.yaml through lambda/'s build helpers (settings.py, package.py,
smoke.py) and imports nothing else of lambda/: the function never imports the deployer. Its parts, each
readable in one sitting:

plan.py         template.yaml -> boto3 arguments (pure; what samtranslator is compared with)
validate.py     every parameter against the template's rules and AWS's documented bounds
lifecycle.py    is a Lambda runtime still deployable? (dates and their sources in runtimes.json)
aws.py          the boto3 session, errors, tag rules
survey.py       the ownership survey: one Kind per kind of resource (teardown uses it too)
record.py       the stack's own record (layer versions, version checks, canary, front door)
layers.py       publish a layer version, its intent recorded first (the predict layer and the ledger's)
steps.py        package check, key, bucket, role, layer, logs, function, alarms
release.py      publish, verify, alias, canary, rollback
front_doors.py  REST API, HTTP API, Function URL
status.py       what is deployed
teardown.py     delete what is ours
pipeline.py     the deploy, step by step
cli.py          arguments and one-line errors (__main__.py runs it)
commands.py     deploy, status, rollback, teardown as functions (what the tests call)
"""

from __future__ import annotations

import sys
from pathlib import Path

# lambda/ is not a package (its name is a keyword): its build helpers are imported from its folder
_LAMBDA_DIR = str(Path(__file__).resolve().parents[1] / "lambda")
if _LAMBDA_DIR not in sys.path:
    sys.path.insert(0, _LAMBDA_DIR)
