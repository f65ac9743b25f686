"""The red team's scenarios against moto's server: state deploy.py must never lose (rollback, canary, front doors,
ownership, interrupted deploys) and parameters it must refuse before anything exists. Each failed before the fix."""

from __future__ import annotations

import copy
import json
import time

import pytest
import settings

from deployer import commands as deploy
from deployer import release, validate
from deployer.aws import tag_list
from deployer.plan import bucket_config
from deployer.steps import can_run, check_package
from tests import test_deploy
from tests.test_deploy import EMPTY, NAMES, TAGS, client, inventory, run, run_cli

aws, answering, small_layer = test_deploy.aws, test_deploy.answering, test_deploy.small_layer  # the same fixtures

pytestmark = pytest.mark.integration


class Killed(BaseException):
    """kill -9 at a boundary: nothing in deploy.py may catch it (no cleanup runs after a real kill)."""


def alias(url) -> dict:
    a = client("lambda", url).get_alias(FunctionName=NAMES["function"], Name="live")
    return {"version": a["FunctionVersion"], "split": (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}}


class FakeTime:
    """The canary's clock: each sleep advances it, so a watch of M minutes takes no wall time and its polls count exactly."""

    def __init__(self, monkeypatch, on_sleep=None):
        self.now, self.sleeps, self.on_sleep = time.time(), [], on_sleep
        monkeypatch.setattr(release, "clock", lambda: self.now)
        monkeypatch.setattr(release, "sleep", self.sleep)

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


# --- rollback and canary ---------------------------------------------------------------------------------


def test_rollback_skips_a_version_that_failed_its_check(aws, aws_env, answering):
    run(aws, verify=True)
    answering.bad = {"2"}
    with pytest.raises(deploy.DeployError, match="version 2 did not answer"):
        run(aws, verify=True)
    run(aws, verify=True)
    assert alias(aws_env)["version"] == "3"
    checks = {v["version"]: v["check"] for v in deploy.status(aws)["function"]["versions"]}
    assert checks == {"1": "passed", "2": "failed", "3": "passed"}
    with pytest.raises(deploy.DeployError, match="version 2 failed its post-publish check.*passed: 1, 3"):
        deploy.rollback(aws, to="2")
    assert deploy.rollback(aws) == {"from": "3", "to": "1"}, "never to the broken version 2"


def test_unchecked_versions_are_not_rollback_targets(aws, aws_env):
    run(aws)
    run(aws)
    with pytest.raises(deploy.DeployError, match="no other version passed its check"):
        deploy.rollback(aws)
    with pytest.raises(deploy.DeployError, match="never checked"):
        deploy.rollback(aws, to="1")


def test_rollback_target_compares_versions_as_numbers():
    verdicts = {"8": "passed", "9": "passed", "10": "passed"}
    assert release.rollback_target("10", verdicts, []) == "9"
    assert release.rollback_target("10", verdicts, ["8", "10"]) == "8", "the version live was on before comes first"
    assert release.rollback_target("$LATEST", verdicts, []) is None
    assert release.rollback_target("10", {**verdicts, "9": "failed"}, ["8", "9", "10"]) == "8", "never to a failed version"


def test_rollback_with_live_on_latest_is_a_clear_error(aws, aws_env, answering):
    run(aws, verify=True)
    client("lambda", aws_env).update_alias(FunctionName=NAMES["function"], Name="live", FunctionVersion="$LATEST")
    with pytest.raises(deploy.DeployError, match=r"points at \$LATEST.*rollback --to N"):
        deploy.rollback(aws)
    assert deploy.rollback(aws, to="1") == {"from": "$LATEST", "to": "1"}


def test_rollback_during_a_canary_cancels_it_and_the_canary_aborts(aws, aws_env, answering, monkeypatch):
    run(aws, verify=True)
    run(aws, verify=True)
    seen = {}

    def roll_back_midway(n):
        if n == 1:
            seen["during"] = alias(aws_env)
            seen["rollback"] = deploy.rollback(aws)

    FakeTime(monkeypatch, roll_back_midway)
    with pytest.raises(deploy.DeployError, match="canary aborted: `live` was changed by someone else"):
        run(aws, verify=True, canary=10, canary_minutes=5)
    assert seen["during"] == {"version": "2", "split": {"3": 0.1}}
    assert seen["rollback"]["cancelled_canary"] == "3" and seen["rollback"]["to"] == "2", "not two versions back"
    assert alias(aws_env) == {"version": "2", "split": {}}, "the canary must not promote after a rollback"


def test_canary_minutes_are_minutes_and_a_first_deploy_has_no_canary(aws, aws_env, answering, monkeypatch, capsys):
    t = FakeTime(monkeypatch)
    run(aws, verify=True, canary=10, canary_minutes=1)
    assert "first deploy: no canary" in capsys.readouterr().out and alias(aws_env) == {"version": "1", "split": {}}
    assert t.sleeps == []
    run(aws, verify=True, canary=10, canary_minutes=1, poll_s=30)
    assert t.sleeps == [30, 30], "a one-minute watch polled every 30 s sleeps twice"
    assert alias(aws_env) == {"version": "2", "split": {}}
    assert not [a for a in inventory(aws_env)["alarms"] if a.endswith("-canary")], "the per-version alarms go with the canary"


def test_a_canary_watches_its_own_version_5xx_lines(aws, aws_env, answering, monkeypatch):
    run(aws, verify=True)
    logs = client("logs", aws_env)

    def five_hundreds(n):
        day = time.strftime("%Y/%m/%d", time.gmtime())
        for version, status in (("1", 500), ("2", 200), ("2", 503)):
            stream = f"{day}/[{version}]abc{n}{status}"
            logs.create_log_stream(logGroupName=NAMES["log_group"], logStreamName=stream)
            line = json.dumps({"message": "request", "status": status, "route": "/predict"})
            logs.put_log_events(
                logGroupName=NAMES["log_group"],
                logStreamName=stream,
                logEvents=[{"timestamp": int(time.time() * 1000), "message": line}],
            )

    FakeTime(monkeypatch, five_hundreds)
    with pytest.raises(deploy.DeployError, match="canary rolled back: 1 answers of 5xx from version 2"):
        run(aws, verify=True, canary=10, canary_minutes=5)
    assert alias(aws_env) == {"version": "1", "split": {}}


def test_a_killed_canary_is_reported_and_repaired_by_the_next_deploy(aws, aws_env, answering, monkeypatch, capsys):
    run(aws, verify=True)

    def kill(n):
        raise Killed

    t = FakeTime(monkeypatch, kill)
    with pytest.raises(Killed):
        run(aws, verify=True, canary=20, canary_minutes=5)
    assert alias(aws_env) == {"version": "1", "split": {"2": 0.2}}
    assert not deploy.status(aws)["warnings"], "while the canary's time runs it is not yet unwatched"
    with pytest.raises(deploy.DeployError, match="a canary of version 2 is running"):
        run(aws, verify=True)
    t.now += 5 * 60 + release.CANARY_GRACE_S + 1
    [warning] = deploy.status(aws)["warnings"]
    assert "no canary is watching it" in warning
    capsys.readouterr()
    answering.bad = {"3"}  # repaired before anything else, even when the new version then fails its check
    with pytest.raises(deploy.DeployError, match="version 3 did not answer"):
        run(aws, verify=True)
    assert "repaired an unwatched canary" in capsys.readouterr().out
    assert alias(aws_env) == {"version": "1", "split": {}}


# --- front doors --------------------------------------------------------------------------------------------


def test_a_plain_deploy_keeps_the_http_api(aws, aws_env):
    first = run(aws, params={"FrontDoor": "http"})
    again = run(aws)
    assert again["front_door"] == "http" and again["api_id"] == first["api_id"] and again["url"] == first["url"]
    assert inventory(aws_env)["apis"] == [], "no REST API appears"


def test_an_iam_url_is_never_widened_silently(aws, aws_env):
    run(aws, params={"FrontDoor": "url", "UrlAuthType": "AWS_IAM"})
    lam = client("lambda", aws_env)
    run(aws, params={"FrontDoor": "url"})
    assert lam.get_function_url_config(FunctionName=NAMES["function"], Qualifier="live")["AuthType"] == "AWS_IAM"
    for params in ({"FrontDoor": "url", "UrlAuthType": "NONE"}, {"FrontDoor": "http"}):
        with pytest.raises(deploy.DeployError, match="--allow-public"):
            run(aws, params=params)
    assert lam.get_function_url_config(FunctionName=NAMES["function"], Qualifier="live")["AuthType"] == "AWS_IAM"
    run(aws, params={"FrontDoor": "url", "UrlAuthType": "NONE"}, allow_public=True)
    assert lam.get_function_url_config(FunctionName=NAMES["function"], Qualifier="live")["AuthType"] == "NONE"


def test_status_lists_every_front_door_and_warns_on_two(aws, aws_env):
    run(aws)
    client("apigatewayv2", aws_env).create_api(Name=NAMES["api"], ProtocolType="HTTP", Tags=TAGS)  # an interrupted switch
    s = deploy.status(aws)
    assert set(s["front_doors"]) == {"rest", "http"} and s["front_door"] == "rest"
    assert any("2 front doors exist" in w for w in s["warnings"])
    run(aws)
    assert set(deploy.status(aws)["front_doors"]) == {"rest"}, "the next deploy removes the stray door"


# --- ownership ----------------------------------------------------------------------------------------------


def test_a_foreign_layer_record_stops_deploy_and_teardown(aws, aws_env, built_packages):
    lam, ssm = client("lambda", aws_env), client("ssm", aws_env)
    theirs = lam.publish_layer_version(LayerName=NAMES["layer"], Content={"ZipFile": built_packages[1].read_bytes()})[
        "LayerVersionArn"
    ]
    ssm.put_parameter(Name=NAMES["record"], Value=json.dumps({"layers": [theirs]}), Type="String")
    before = inventory(aws_env)
    for act in (lambda: run(aws), lambda: deploy.teardown(aws, purge=True)):
        with pytest.raises(deploy.Collision, match="deploy record"):
            act()
    assert inventory(aws_env) == before
    assert json.loads(ssm.get_parameter(Name=NAMES["record"])["Parameter"]["Value"]) == {"layers": [theirs]}


def test_two_stacks_never_delete_each_others_layer(aws, aws_env):
    b = {"FunctionName": "stack-b", "ApiName": "stack-b-api", "ApiKeyName": "stack-b-key", "UsagePlanName": "stack-b-plan"}
    b |= {"KeyParameterName": "/stack-b/api-key", "ProjectTag": "stack-b"}
    a_layer = run(aws)["layer"]
    b_layer = run(aws, params=b)["layer"]
    assert a_layer.split(":")[-2] != b_layer.split(":")[-2], "each stack's layer is named after it"
    deploy.teardown(aws, purge=True, params=b)
    lam = client("lambda", aws_env)
    assert [v["LayerVersionArn"] for v in lam.list_layer_versions(LayerName=NAMES["layer"])["LayerVersions"]] == [a_layer]
    assert deploy.status(aws)["deployed"]


def test_the_access_log_group_is_surveyed_set_and_purged(aws, aws_env):
    iam, apigw, logs = client("iam", aws_env), client("apigateway", aws_env), client("logs", aws_env)
    role = iam.create_role(RoleName="apigw-logs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    apigw.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}])
    logs.create_log_group(logGroupName=NAMES["access_log_group"])  # someone else's, keeping ten years
    logs.put_retention_policy(logGroupName=NAMES["access_log_group"], retentionInDays=3653)
    with pytest.raises(deploy.Collision, match="REST access log"):
        run(aws)
    [group] = logs.describe_log_groups(logGroupNamePrefix=NAMES["access_log_group"])["logGroups"]
    assert group["retentionInDays"] == 3653, "a foreign group's retention is never cut"
    logs.delete_log_group(logGroupName=NAMES["access_log_group"])
    run(aws)
    [group] = logs.describe_log_groups(logGroupNamePrefix=NAMES["access_log_group"])["logGroups"]
    assert group["retentionInDays"] == 30
    deploy.teardown(aws, purge=True)
    assert not logs.describe_log_groups(logGroupNamePrefix=NAMES["access_log_group"])["logGroups"]


class Interrupting:
    """A boundary fake around one boto3 client: `operation` runs for real (optionally with `rewrite`d arguments),
    then the process "dies" before the next call - only for the call whose arguments `when` picks, if given."""

    def __init__(self, real, operation, rewrite=None, when=None):
        self.real, self.operation, self.rewrite, self.when = real, operation, rewrite, when

    def __getattr__(self, name):
        call = getattr(self.real, name)
        if name != self.operation:
            return call

        def then_die(**kwargs):
            answer = call(**(self.rewrite(kwargs) if self.rewrite else kwargs))
            if self.when is None or self.when(kwargs):
                raise Killed
            return answer

        return then_die


def test_kill_after_create_bucket_resumes_the_untagged_bucket(aws, aws_env, monkeypatch):
    untagged = Interrupting(aws("s3"), "create_bucket", rewrite=lambda kw: {"Bucket": kw["Bucket"]})  # an API without tags
    monkeypatch.setitem(aws._clients, "s3", untagged)
    with pytest.raises(Killed):
        run(aws)
    monkeypatch.setitem(aws._clients, "s3", untagged.real)
    s3 = client("s3", aws_env)
    [bucket] = inventory(aws_env)["buckets"]
    result = run(aws)
    assert result["bucket"] == bucket
    assert {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]} == TAGS
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]["Sid"] == "TlsOnly"


def test_the_bucket_is_tagged_in_the_call_that_creates_it(aws, aws_env, monkeypatch):
    """S3 takes tags in CreateBucket (moto ignores them, so the call itself is what is checked)."""
    calls = []
    monkeypatch.setitem(aws._clients, "s3", Interrupting(aws("s3"), "create_bucket", rewrite=lambda kw: calls.append(kw) or kw))
    with pytest.raises(Killed):
        run(aws)
    assert calls[0]["CreateBucketConfiguration"]["Tags"] == tag_list(TAGS)


def test_kill_after_publish_layer_version_leaks_nothing(aws, aws_env, monkeypatch):
    monkeypatch.setitem(aws._clients, "lambda", Interrupting(aws("lambda"), "publish_layer_version"))
    with pytest.raises(Killed):
        run(aws)
    assert inventory(aws_env)["layers"] == 1
    aws._clients.pop("lambda")
    deploy.teardown(aws, purge=True)
    assert {k: v for k, v in inventory(aws_env).items() if k != "buckets"} == EMPTY, "teardown deletes the leaked version"


def test_the_next_deploy_claims_a_leaked_layer_version(aws, aws_env, monkeypatch):
    monkeypatch.setitem(aws._clients, "lambda", Interrupting(aws("lambda"), "publish_layer_version"))
    with pytest.raises(Killed):
        run(aws)
    aws._clients.pop("lambda")
    result = run(aws)
    assert inventory(aws_env)["layers"] == 1 and result["layer"].endswith(":1"), "the leaked version is reused, not doubled"


class PagedLayers:
    """ListLayerVersions as AWS answers it (moto answers all at once): a few versions a call, NextMarker to go on."""

    def __init__(self, count: int, page: int = 2):
        arn = f"arn:aws:lambda:us-east-1:123456789012:layer:{NAMES['ledger_layer']}"
        self.versions = [{"Version": v, "LayerVersionArn": f"{arn}:{v}"} for v in range(count, 0, -1)]
        self.page, self.deleted = page, []

    def list_layer_versions(self, LayerName, Marker=None):
        start = int(Marker or 0)
        answer = {"LayerVersions": self.versions[start : start + self.page]}
        if start + self.page < len(self.versions):
            answer["NextMarker"] = str(start + self.page)
        return answer

    def delete_layer_version(self, LayerName, VersionNumber):
        self.deleted.append(VersionNumber)


def test_layer_versions_past_the_first_page_are_found_and_deleted():
    """Our oldest version sits on the last page: a teardown reading one page would leave it behind."""
    from deployer import layers, ledger

    lam = PagedLayers(5)
    assert [v["Version"] for v in layers.versions(lambda service: lam, NAMES["ledger_layer"])] == [5, 4, 3, 2, 1]
    rec = {"ledger_layers": [lam.versions[-1]["LayerVersionArn"]]}
    assert ledger.delete_layers(lambda service: lam, {"names": NAMES}, rec) == [1] and lam.deleted == [1]


def test_the_predict_layers_versions_past_the_first_page_are_deleted_at_teardown():
    """survey's record teardown reads every page too: our oldest predict-layer version sits on the last one."""
    import json as _json

    from deployer import survey

    lam = PagedLayers(5)
    ssm = type("Ssm", (), {"deleted": [], "delete_parameter": lambda self, Name: self.deleted.append(Name)})()
    names = dict(NAMES, layer=NAMES["ledger_layer"])  # the fake answers one layer name
    item = {"Name": "/record", "Value": _json.dumps({"layers": [lam.versions[-1]["LayerVersionArn"]]})}
    said = survey._delete_record(lambda service: {"lambda": lam, "ssm": ssm}[service], {"names": names}, item)
    assert lam.deleted == [1] and ssm.deleted == ["/record"], said


# --- validation before anything exists ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"StageName": "bad/stage"}, "StageName 'bad/stage' is not allowed"),
        ({"StageName": "health"}, "one of the API's routes"),
        ({"StageName": "predict"}, "one of the API's routes"),
        ({"ThrottleRateLimit": "fast"}, "ThrottleRateLimit must be a number, got 'fast'"),
        ({"ThrottleRateLimit": "nan"}, "ThrottleRateLimit must be a finite number"),  # NaN passes every Min/Max test
        ({"MonthlyQuota": "inf"}, "MonthlyQuota must be a finite number"),
        ({"ThrottleBurstLimit": "1.5"}, "ThrottleBurstLimit must be a whole number"),
        ({"LogRetentionDays": "31"}, "LogRetentionDays must be one of"),
        ({"FunctionName": "x" * 51}, "FunctionName"),
        ({"FunctionName": "bad name"}, "FunctionName"),
        ({"FrontDoor": "ftp"}, "FrontDoor must be one of rest, http, url"),
        ({"Nonsense": "1"}, "unknown parameter Nonsense"),
    ],
)
def test_bad_parameters_are_refused_before_anything_exists(aws, aws_env, params, match):
    with pytest.raises(deploy.DeployError, match=match):
        run(aws, params=params)
    assert {k: v for k, v in inventory(aws_env).items() if k != "buckets"} == EMPTY and inventory(aws_env)["buckets"] == []


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("MemorySize", 64, "128-10240"),
        ("MemorySize", 10241, "128-10240"),
        ("Timeout", 901, "1-900"),
        ("FunctionName", "f" * 65, "64"),
    ],
)
def test_lambdas_documented_bounds(field, value, match):
    cfg = {**deploy.plan()["function"], field: value}
    with pytest.raises(deploy.DeployError, match=match):
        validate.check_function(cfg)
    validate.check_function(deploy.plan()["function"])


def test_the_cli_refuses_a_bad_stage_and_a_bad_number_in_one_line():
    bad = (["--stage", "health"], ["--param", "ThrottleRateLimit=fast"], ["--stage", "bad/stage"], ["--stage", ""])
    for args in bad:  # an empty --stage (an unset $STAGE) is refused, never taken as the default stage
        for verb in ("deploy", "plan"):
            r = run_cli(verb, "--region", "us-east-1", *args)
            assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_an_unknown_runtime_is_refused():
    with pytest.raises(deploy.DeployError, match="not in deployer/runtimes.json"):
        validate.check_runtime("python3.99", creating=True)


# --- settings read from the template ------------------------------------------------------------------------------


def test_bucket_settings_are_the_templates_values(aws, aws_env):
    template = settings.load_template()
    cfg = bucket_config(template, "b")
    props = template["Resources"]["ModelBucket"]["Properties"]
    assert cfg["versioning"] == {"Status": props["VersioningConfiguration"]["Status"]}
    assert cfg["public_access_block"] == props["PublicAccessBlockConfiguration"]
    edited = copy.deepcopy(template)
    edited["Resources"]["ModelBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]["SSEAlgorithm"] = "aws:kms"
    assert bucket_config(edited, "b")["encryption"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    result = run(aws, params={"NoncurrentModelDays": "30"})
    s3 = client("s3", aws_env)
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=result["bucket"])["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30 and rule["ID"] == "expire-old-model-versions"
    access = s3.get_public_access_block(Bucket=result["bucket"])["PublicAccessBlockConfiguration"]
    assert access == {k: True for k in props["PublicAccessBlockConfiguration"]}
    policy = json.loads(s3.get_bucket_policy(Bucket=result["bucket"])["Policy"])
    assert policy["Statement"][0]["Resource"] == [f"arn:aws:s3:::{result['bucket']}", f"arn:aws:s3:::{result['bucket']}/*"]


def test_an_arm64_build_is_checked_for_what_can_run_here(monkeypatch):
    import smoke

    monkeypatch.setattr(smoke, "check", lambda *a: pytest.fail("arm64 code cannot run on x86_64"))

    class Ctx:
        plan = deploy.plan(params={"Architecture": "arm64"})

    msg = check_package(Ctx, None, None, machine="x86_64")
    assert "cannot run on this x86_64 machine (no emulation here)" in msg and "--no-check" not in msg
    assert can_run("x86_64", "x86_64") and can_run("arm64", "aarch64") and not can_run("arm64", "x86_64")


def test_plan_text_names_the_chosen_front_door_only():
    r = run_cli("plan")
    assert r.returncode == 0 and "SnapStart off" in r.stdout and "None" not in r.stdout and "a month" in r.stdout
    r = run_cli("plan", "--api", "url")
    assert r.returncode == 0 and "a month" not in r.stdout and "usage plan" not in r.stdout and "auth NONE" in r.stdout
    r = run_cli("plan", "--param", "StageName=v1")
    assert r.returncode == 0 and "stage v1)" in r.stdout  # an override shows in the plan it changes, not only in --json
