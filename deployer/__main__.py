"""Deploy the forecaster to AWS with boto3 - safely, cheaply, and touching only what is ours.

    python -m deployer deploy   [--api rest|http|url] [--url-auth none|iam] [--allow-public] [--ledger on|off]
                                [--canary PCT [--canary-minutes M]] [--arch arm64] [--snapstart]
                                [--param NAME=VALUE ...] [--region R] [--profile P] [--endpoint-url URL]
    python -m deployer status   [--json] [--show-key]
    python -m deployer rollback [--to VERSION]
    python -m deployer teardown [--purge]
    python -m deployer plan     [--json]          # what the template says, as the deployer will apply it

Every setting comes from lambda/template.yaml, so `sam deploy` and this script build the same thing. A deploy:
  1. checks every parameter against the template (AllowedValues, AllowedPattern) and AWS's bounds, refuses a
     runtime AWS blocks, and any name collision with a resource that is not ours - before anything changes;
  2. runs the built zips on the runtime's CPython with the sample events, and uploads nothing that fails;
  3. publishes a version, invokes it, records whether it passed, and moves `live` only if it did - or shifts
     --canary percent to it, watches that version's own errors, latency and 5xx lines, then promotes or rolls back;
  4. keeps the front door that is live (or the one --api names) in front of `live`, and removes the others.
Rollback goes only to versions that passed their check (by default the one `live` was on before) and cancels
a canary. The parts are listed in deployer/__init__.py.
"""

import sys

from deployer.cli import main

sys.exit(main(doc=__doc__))
