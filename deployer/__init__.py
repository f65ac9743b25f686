"""deploy.py's parts, each readable in one sitting (the command line is lambda/deploy.py):

plan.py         template.yaml -> boto3 arguments (pure; what samtranslator is compared with)
validate.py     every parameter against the template's rules and AWS's documented bounds
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
cli.py          arguments and one-line errors
"""
