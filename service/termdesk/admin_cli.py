"""The policy owner's commands (`publish`, `versions`, `activate`, `impact`), which call a
server's RulesetAdmin service, and the store, token and TLS flags of `serve`.

    termdesk publish FILE [--comment TEXT] [--expected-version N]
    termdesk versions NAME
    termdesk activate NAME VERSION
    termdesk impact FILE [--limit N] [--since 2026-01-31T00:00:00Z]
    termdesk token ROLE NAME        make a token: the token once on stderr, its tokens-file
                                    line (the hash only) on stdout: `>> tokens` keeps it

The server is `--address` (env TERMDESK_ADDRESS, default localhost:50051); the token comes
from env TERMDESK_TOKEN (or `--token`, which other users of the machine can see).
Exit 0 on success, 1 when the server refuses (every diagnostic is printed), 2 on usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import timestamp_pb2
from grpc_status import rpc_status

from termdesk.auth import Role, hash_token, new_token
from termdesk.v1 import admin_pb2 as pb
from termdesk.v1 import admin_pb2_grpc as pb_grpc
from termdesk.v1 import termdesk_pb2

__all__ = ["add_admin_commands", "add_store_flags", "store_options"]

T = TypeVar("T")


# --- serve flags -----------------------------------------------------------------------


def add_store_flags(serve: argparse.ArgumentParser) -> None:
    add = serve.add_argument
    env = os.environ.get
    add(
        "--store",
        default=env("TERMDESK_STORE"),
        help="sqlite:///PATH or postgresql://USER@HOST/DB (env TERMDESK_STORE; default: "
        "SQLite in --data-dir; with --rulesets and no --store, read-only from files)",
    )
    add(
        "--data-dir",
        type=Path,
        default=Path(env("TERMDESK_DATA_DIR", "termdesk-data")),
        help="where the default SQLite store lives (env TERMDESK_DATA_DIR)",
    )
    add(
        "--tokens-file",
        type=Path,
        default=env("TERMDESK_TOKENS_FILE"),
        help="lines `ROLE NAME sha256:HEX` (env TERMDESK_TOKENS_FILE); TERMDESK_ADMIN_TOKEN "
        "adds one policy_owner token; without an admin token the admin service is off",
    )
    add(
        "--evaluate-auth",
        choices=["loopback", "token", "open"],
        default=env("TERMDESK_EVALUATE_AUTH", "loopback"),
        help="who may call Evaluate without a token (env TERMDESK_EVALUATE_AUTH): loopback "
        "(default) only this machine, token nobody, open everybody",
    )
    add(
        "--reload-interval",
        type=float,
        default=float(env("TERMDESK_RELOAD_INTERVAL", "1")),
        help="seconds between checks of the store's active versions (env TERMDESK_RELOAD_INTERVAL)",
    )
    add(
        "--decision-retention-days",
        type=int,
        default=int(env("TERMDESK_DECISION_RETENTION_DAYS", "90")),
        help="days the decision log keeps a decision (env TERMDESK_DECISION_RETENTION_DAYS)",
    )
    add(
        "--tls-cert",
        type=Path,
        default=env("TERMDESK_TLS_CERT"),
        help="PEM certificate chain: serve TLS (env TERMDESK_TLS_CERT; with --tls-key)",
    )
    add(
        "--tls-key",
        type=Path,
        default=env("TERMDESK_TLS_KEY"),
        help="PEM private key of --tls-cert (env TERMDESK_TLS_KEY)",
    )
    add(
        "--tls-client-ca",
        type=Path,
        default=env("TERMDESK_TLS_CLIENT_CA"),
        help="PEM CA bundle: clients must present a certificate it signed, mutual TLS "
        "(env TERMDESK_TLS_CLIENT_CA)",
    )


def store_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `ServerConfig` fields these flags set (the admin token from the environment)."""
    return {
        "store": args.store,
        "data_dir": args.data_dir,
        "tokens_file": Path(args.tokens_file) if args.tokens_file else None,
        "admin_token": os.environ.get("TERMDESK_ADMIN_TOKEN", ""),
        "evaluate_auth": args.evaluate_auth,
        "reload_interval": args.reload_interval,
        "decision_retention_days": args.decision_retention_days,
        "tls_cert": Path(args.tls_cert) if args.tls_cert else None,
        "tls_key": Path(args.tls_key) if args.tls_key else None,
        "tls_client_ca": Path(args.tls_client_ca) if args.tls_client_ca else None,
    }


# --- admin commands --------------------------------------------------------------------


def add_admin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    publish = _admin_parser(commands, "publish", "validate, test and publish a ruleset file")
    publish.add_argument("file", type=Path)
    publish.add_argument("--comment", default="", help="why: kept with the version")
    publish.add_argument("--name", default="", help="ruleset name (default: the file's)")
    publish.add_argument(
        "--expected-version",
        type=int,
        help="the latest version you based the edit on; refused if someone published since",
    )
    publish.set_defaults(handler=publish_command)

    versions = _admin_parser(commands, "versions", "list the stored versions of a ruleset")
    versions.add_argument("name")
    versions.set_defaults(handler=versions_command)

    activate = _admin_parser(commands, "activate", "roll back or forward to a stored version")
    activate.add_argument("name")
    activate.add_argument("version", type=int)
    activate.set_defaults(handler=activate_command)

    impact = _admin_parser(commands, "impact", "which logged decisions a draft would change")
    impact.add_argument("file", type=Path)
    impact.add_argument("--limit", type=int, default=1000, help="newest decisions to replay")
    impact.add_argument("--since", help="replay decisions from this ISO 8601 time on")
    impact.set_defaults(handler=impact_command)

    token = commands.add_parser("token", help="make a token and its tokens-file line")
    token.add_argument("role", choices=[role.value for role in Role])
    token.add_argument("name", help="who holds it: recorded in the audit log")
    token.set_defaults(handler=token_command)


def _admin_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=text, description=text)
    parser.add_argument(
        "--address",
        default=os.environ.get("TERMDESK_ADDRESS", "localhost:50051"),
        help="server address (env TERMDESK_ADDRESS)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("TERMDESK_TOKEN", ""),
        help="bearer token (prefer env TERMDESK_TOKEN)",
    )
    return parser


def _rpc(args: argparse.Namespace, call: Callable[[pb_grpc.RulesetAdminStub, Any], T]) -> T:
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
    with grpc.insecure_channel(args.address) as channel:
        return call(pb_grpc.RulesetAdminStub(channel), metadata)


def _source(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def _failed(command: str, error: grpc.RpcError) -> int:
    """Prints the server's refusal: the message and every diagnostic it carries."""
    code = error.code() if isinstance(error, grpc.Call) else None
    message = error.details() if isinstance(error, grpc.Call) else str(error)
    print(f"termdesk {command}: {code.name if code else 'ERROR'}: {message}", file=sys.stderr)
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    details: list[Any] = list(status.details) if status is not None else []
    for detail in details:
        check = pb.ValidateRulesetResponse()
        if detail.Unpack(check):
            _print_check(check, sys.stderr)
    return 1


def _print_check(check: pb.ValidateRulesetResponse, out: Any) -> None:
    for d in check.diagnostics:
        print(f"  {d.line}:{d.column}: {d.code}: {d.message}", file=out)
        if d.help:
            print(f"    help: {d.help}", file=out)
    for test in check.tests:
        if not test.passed:
            print(f"  FAIL line {test.line}: {test.name}", file=out)
            for failure in test.failures:
                print(f"    {failure}", file=out)


def publish_command(args: argparse.Namespace) -> int:
    request = pb.PublishRulesetRequest(
        name=args.name, source=_source(args.file), comment=args.comment
    )
    if args.expected_version is not None:
        request.expected_version = args.expected_version
    try:
        response = _rpc(args, lambda stub, md: stub.PublishRuleset(request, metadata=md))
    except grpc.RpcError as error:
        return _failed("publish", error)
    ruleset = response.ruleset
    print(f"published {ruleset.name} version {response.version} ({response.digest}); active")
    return 0


def versions_command(args: argparse.Namespace) -> int:
    request = pb.ListRulesetVersionsRequest(name=args.name)
    try:
        response = _rpc(args, lambda stub, md: stub.ListRulesetVersions(request, metadata=md))
    except grpc.RpcError as error:
        return _failed("versions", error)
    for v in response.versions:
        when = v.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
        marker = "*" if v.active else " "
        print(f"{marker} {v.version:>4}  {when}  {v.author:<16} {v.digest[:19]}  {v.comment}")
    return 0


def activate_command(args: argparse.Namespace) -> int:
    request = pb.ActivateRulesetVersionRequest(name=args.name, version=args.version)
    try:
        response = _rpc(args, lambda stub, md: stub.ActivateRulesetVersion(request, metadata=md))
    except grpc.RpcError as error:
        return _failed("activate", error)
    print(
        f"{args.name}: version {response.ruleset.version} is active "
        f"(was {response.previous_version})"
    )
    return 0


def impact_command(args: argparse.Namespace) -> int:
    request = pb.AnalyzeImpactRequest(source=_source(args.file), limit=args.limit)
    if args.since:
        start = timestamp_pb2.Timestamp()
        start.FromDatetime(datetime.fromisoformat(args.since))
        request.start_time.CopyFrom(start)
    try:
        response = _rpc(args, lambda stub, md: stub.AnalyzeImpact(request, metadata=md))
    except grpc.RpcError as error:
        return _failed("impact", error)
    print(
        f"{response.replayed} logged decision(s) replayed against the draft and active "
        f"version {response.active_version}: {response.changed} would change"
        + (f", {response.skipped} skipped (no longer valid)" if response.skipped else "")
    )
    for t in response.transitions:
        print(f"  {_name(t.from_decision)} -> {_name(t.to_decision)}: {t.count}")
    for c in response.changes:
        print(f"  {c.deal_id}: {_name(c.from_decision)} -> {_name(c.to_decision)}")
    return 0


def token_command(args: argparse.Namespace) -> int:
    token = new_token()
    print(f"token for {args.name} (shown once, never stored): {token}", file=sys.stderr)
    print(f"{args.role} {args.name} {hash_token(token)}")
    return 0


def _name(decision: termdesk_pb2.Decision.ValueType) -> str:
    return termdesk_pb2.Decision.Name(decision).removeprefix("DECISION_")
