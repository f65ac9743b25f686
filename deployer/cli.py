"""The command line: parse, run one command, and turn every failure into one line on stderr (exit 2)."""

from __future__ import annotations

import argparse
import json
import sys

import settings

from .aws import Aws, DeployError


def parse_param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--param takes NAME=VALUE (a template parameter), got {text!r}")
    return name, value


def endpoint_url(text: str) -> str:
    """--endpoint-url as botocore will need it: an http(s) URL with a host and a valid port, checked before any call."""
    from urllib.parse import urlsplit

    try:
        u = urlsplit(text)
        u.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL ({e}); e.g. http://127.0.0.1:5000") from None
    if u.scheme not in ("http", "https") or not u.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL with a host; e.g. http://127.0.0.1:5000")
    return text


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deployer", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["deploy", "status", "rollback", "teardown", "plan"])
    p.add_argument("--region", default=None, help="AWS region (default: your AWS config or AWS_DEFAULT_REGION)")
    p.add_argument("--profile", default=None, help="AWS profile from ~/.aws")
    p.add_argument(
        "--endpoint-url",
        default=None,
        type=endpoint_url,
        help="send every call here instead of AWS (an emulator such as moto server)",
    )
    p.add_argument("--stage", default=None, help="API Gateway stage (default: the template's StageName, prod)")
    p.add_argument(
        "--param",
        action="append",
        type=parse_param,
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter, as sam deploy's --parameter-overrides (repeatable)",
    )
    p.add_argument(
        "--api",
        choices=list(settings.FRONT_DOORS),
        default=None,
        help="deploy: the front door - rest, http or url (default: the one that is live, else the template's, rest)",
    )
    p.add_argument("--url-auth", choices=["none", "iam"], default=None, help="deploy --api url: NONE or AWS_IAM (default: keep)")
    p.add_argument("--allow-public", action="store_true", help="deploy: allow widening an AWS_IAM Function URL to public access")
    p.add_argument(
        "--canary", type=float, default=None, metavar="PERCENT", help="deploy: route PERCENT of live to the new version first"
    )
    p.add_argument(
        "--canary-minutes", type=float, default=10.0, metavar="M", help="deploy --canary: watch this many minutes (default 10)"
    )
    p.add_argument(
        "--to", default=None, metavar="VERSION", help="rollback: a version that passed its check (default: the one before)"
    )
    p.add_argument("--purge", action="store_true", help="teardown: also delete the versioned model bucket")
    p.add_argument("--json", action="store_true", help="print the result as JSON (for the dashboard)")
    p.add_argument("--show-key", action="store_true", help="status: print the API key's value")
    p.add_argument("--no-build", action="store_true", help="deploy dist/ as it is")
    p.add_argument("--no-verify", action="store_true", help="deploy: do not invoke the new version (an emulator cannot run code)")
    p.add_argument("--arch", choices=["x86_64", "arm64"], default=None, help="deploy: instruction set (default: the template's)")
    p.add_argument("--snapstart", action="store_true", help="deploy: turn on SnapStart for published versions (Python 3.12+)")
    p.add_argument(
        "--ledger",
        choices=["on", "off"],
        default=None,
        help="deploy: the track record's table, daily job and schedule (default: the template's Ledger, off)",
    )
    return p


def params_of(args: argparse.Namespace) -> dict:
    """Template parameters from the flags; --param last, so it names any parameter the flags do not."""
    flags = {
        "Architecture": args.arch,
        "SnapStart": "PublishedVersions" if args.snapstart else None,
        "FrontDoor": args.api,
        "StageName": args.stage,
        "UrlAuthType": {"none": "NONE", "iam": "AWS_IAM"}.get(args.url_auth or ""),
        "Ledger": args.ledger,
    }
    # an empty --stage "" is a value (refused by the template's pattern), never a silent fallback to the default stage
    return {**{k: v for k, v in flags.items() if v is not None and v is not False}, **dict(args.param)}


def main(argv: list[str] | None = None, doc: str = "") -> int:
    from . import pipeline, release, status, teardown
    from .survey import survey

    p = parser(doc)
    args = p.parse_args(argv)
    if args.canary is not None and not 0 < args.canary < 100:
        p.error("--canary takes a percentage between 0 and 100 (exclusive)")
    if args.canary_minutes <= 0:
        p.error("--canary-minutes takes a positive number of minutes")
    params = params_of(args)
    try:
        plan = pipeline.validated_plan(params)
        if args.command == "plan":
            from .plan import plan_text

            print(json.dumps(plan, indent=1, default=str) if args.json else plan_text(plan))
            return 0
        aws = Aws(args.region, args.profile, args.endpoint_url)
        if args.command == "deploy":
            result = pipeline.deploy(
                aws,
                build=not args.no_build,
                params=params,
                canary=args.canary,
                canary_minutes=args.canary_minutes,
                verify=not args.no_verify,
                allow_public=args.allow_public,
            )
        elif args.command == "status":
            result = status.status(aws, plan, show_key=args.show_key)
            if not args.json:
                status.print_status(result)
        elif args.command == "rollback":
            survey(aws, plan)  # a foreign namesake stops rollback too
            result = release.rollback(aws, plan, args.to)
        else:
            result = teardown.teardown(aws, plan, purge=args.purge)
    except DeployError as e:
        print(f"deployer: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # botocore's errors, reworded: no traceback for a configuration problem
        print(f"deployer: {explain(e, args)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    return 0


def explain(e: Exception, args) -> str:
    import botocore.exceptions as bx

    if isinstance(e, bx.NoCredentialsError | bx.PartialCredentialsError):
        return "no usable AWS credentials: run `aws configure`, set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or pass --profile"
    if isinstance(e, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        where = args.endpoint_url or "AWS"
        return f"cannot reach {where}: {e}. Check the network{' and that the emulator is running' if args.endpoint_url else ''}"
    if isinstance(e, bx.ClientError):
        code = e.response.get("Error", {}).get("Code", "")
        if code in (
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "AuthFailure",
        ):
            return f"AWS rejected the credentials ({code}): refresh them with `aws configure` or `aws sso login`"
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return (
                f"permission denied ({code}): {e.response['Error'].get('Message', '')}. The deploying identity needs "
                "Lambda, API Gateway, IAM, S3, SSM, Logs and CloudWatch permissions (and, for the ledger's survey, "
                "DynamoDB, SQS and EventBridge Scheduler read access)"
            )
        return f"AWS error {code}: {e.response.get('Error', {}).get('Message', e)}"
    if isinstance(e, bx.BotoCoreError):
        return f"{type(e).__name__}: {e}"
    from botocore.parsers import ResponseParserError

    if isinstance(e, ResponseParserError):  # not a BotoCoreError: an answer in no AWS API's format
        where = args.endpoint_url or "AWS"
        return f"{where} answered something that is not an AWS API's response: is it an AWS endpoint or emulator?"
    raise e
