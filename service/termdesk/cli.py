"""The `termdesk` command: one function per subcommand.

    termdesk check [PATH...]                  validate rulesets, print diagnostics
    termdesk test [PATH...]                   run rulesets' own test cases
    termdesk eval [--ruleset NAME] PACKAGE    evaluate a package (`-` reads stdin)
    termdesk eval --batch FILE.jsonl          one package per line, one result per line
    termdesk eval --no-trades ...             the decision alone, no trades
    termdesk serve [--port 50051]             the gRPC service (see `termdesk serve --help`)
    termdesk publish|versions|activate|impact the policy owner's commands (termdesk.admin_cli)

Exit codes of `eval` tell the decision: 0 APPROVE, 10 NEEDS_APPROVAL, 20 REJECT; bad
input (not JSON, or a package that does not fit the vocabulary) is 3; an unknown or
broken ruleset is 4; a usage error is 2. `eval --batch` exits 0 when every line was
evaluated and 3 when some line was bad (it still answers every other line).
`check` and `test` exit 1 when they find an error or a failing case.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from termdesk.admin_cli import add_admin_commands, add_store_flags, store_options
from termdesk.api.server import ServerConfig, serve
from termdesk.api.servicer import RequestLimits
from termdesk.auth import TokenError
from termdesk.catalog import DEFAULT_RULESET, find_ruleset, ruleset_files
from termdesk.console import ConsoleError
from termdesk.errors import PackageError, RulesetError, RulesetNotFoundError
from termdesk.evaluator import Evaluator
from termdesk.jsonview import advice_json, evaluation_json, parse_json, problems_json
from termdesk.model import Decision, TermPackage
from termdesk.paths import shipped_rulesets_dir
from termdesk.ruleset.validator import ValidationResult, read_source, validate_source
from termdesk.store import StoreError
from termdesk.testing import coverage_gaps, run_tests
from termdesk.trades import TradeAdvisor, TradeLimits
from termdesk.vocabulary import Limits, check_package, default_vocabulary

__all__ = ["EXIT_BAD_INPUT", "EXIT_BAD_RULESET", "EXIT_FOR_DECISION", "main"]

EXIT_FOR_DECISION = {Decision.APPROVE: 0, Decision.NEEDS_APPROVAL: 10, Decision.REJECT: 20}
EXIT_BAD_INPUT = 3
EXIT_BAD_RULESET = 4
# The standard OpenTelemetry variables that turn tracing on, most specific first.
OTLP_ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except _InputError as error:
        print(f"termdesk {args.command}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT if args.command == "eval" else 1
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="termdesk", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="validate rulesets and print diagnostics")
    check.add_argument("paths", nargs="*", type=Path, help="ruleset files or directories")
    check.set_defaults(handler=check_command)

    test = commands.add_parser("test", help="run the test cases of rulesets")
    test.add_argument("paths", nargs="*", type=Path, help="ruleset files or directories")
    test.add_argument(
        "--coverage",
        action="store_true",
        help="also fail when a rule lacks a passing or failing case",
    )
    test.set_defaults(handler=test_command)

    evaluate = commands.add_parser("eval", help="evaluate a term package")
    evaluate.add_argument("package", nargs="?", help="package JSON file, or - for stdin")
    evaluate.add_argument("--ruleset", default=DEFAULT_RULESET, help="ruleset name")
    evaluate.add_argument(
        "--rulesets", type=Path, default=None, help="directory of rulesets (default: shipped)"
    )
    evaluate.add_argument("--batch", type=Path, help="JSON Lines file, one package per line")
    evaluate.add_argument(
        "--no-trades",
        action="store_true",
        help="leave out trades, counter-proposal and giveaways (the decision alone)",
    )
    evaluate.set_defaults(handler=eval_command)
    _serve_parser(commands)
    add_admin_commands(commands)
    return parser


def _count(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of at least 1, not {text!r} (from the flag or its "
            "environment variable)"
        )
    return value


def _env_count(name: str, default: int) -> str:
    """The environment variable's text, or the default's: `_count` checks either."""
    return os.environ.get(name) or str(default)


def _env_first(*names: str) -> str | None:
    """The value of the first of these environment variables that is set and not empty."""
    return next((os.environ[name] for name in names if os.environ.get(name)), None)


def _serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the gRPC service",
        description="Serves termdesk.v1 over gRPC, with health checking and reflection. "
        "Every flag has an environment variable; the flag wins.",
    )
    limits = Limits()
    trades = TradeLimits()
    defaults = ServerConfig()
    add = serve.add_argument
    add(
        "--host",
        default=os.environ.get("TERMDESK_HOST", defaults.host),
        help="address to bind (env TERMDESK_HOST; default all interfaces)",
    )
    add(
        "--port",
        type=int,
        default=os.environ.get("TERMDESK_PORT") or str(defaults.port),
        help="port to bind, 0 for a free one (env TERMDESK_PORT; default 50051)",
    )
    add(
        "--rulesets",
        type=Path,
        default=os.environ.get("TERMDESK_RULESETS"),
        help="directory of <name>/ruleset.yaml (env TERMDESK_RULESETS; default: shipped)",
    )
    add(
        "--default-ruleset",
        default=os.environ.get("TERMDESK_DEFAULT_RULESET", DEFAULT_RULESET),
        help="ruleset used when a request names none (env TERMDESK_DEFAULT_RULESET)",
    )
    counts = [
        ("--threads", "TERMDESK_THREADS", defaults.threads, "RPC worker threads"),
        (
            "--max-message-bytes",
            "TERMDESK_MAX_MESSAGE_BYTES",
            defaults.max_message_bytes,
            "largest request or response",
        ),
        (
            "--max-batch",
            "TERMDESK_MAX_BATCH",
            defaults.limits.max_batch,
            "packages per EvaluateBatch call",
        ),
        ("--max-terms", "TERMDESK_MAX_TERMS", limits.max_terms, "terms per package"),
        (
            "--max-list-items",
            "TERMDESK_MAX_LIST_ITEMS",
            limits.max_list_items,
            "items per list field",
        ),
        (
            "--max-text-length",
            "TERMDESK_MAX_TEXT_LENGTH",
            limits.max_text_length,
            "characters per text field",
        ),
        (
            "--trades-per-violation",
            "TERMDESK_TRADES_PER_VIOLATION",
            trades.trades_per_violation,
            "verified trades offered per violation",
        ),
        (
            "--trade-candidates",
            "TERMDESK_TRADE_CANDIDATES",
            trades.candidates_per_violation,
            "automatic candidate trades tried per violation",
        ),
        (
            "--trade-engine-calls",
            "TERMDESK_TRADE_ENGINE_CALLS",
            trades.engine_calls,
            "engine matches per request for verifying trades and the counter-proposal; "
            "beyond it the answer says trades_truncated",
        ),
    ]
    for flag, env, default, meaning in counts:
        add(flag, type=_count, default=_env_count(env, default), help=f"{meaning} (env {env})")
    add(
        "--shutdown-grace",
        type=float,
        default=float(os.environ.get("TERMDESK_SHUTDOWN_GRACE", defaults.shutdown_grace)),
        help="seconds in-flight calls may finish after SIGTERM (env TERMDESK_SHUTDOWN_GRACE)",
    )
    add(
        "--shutdown-delay",
        type=float,
        default=float(os.environ.get("TERMDESK_SHUTDOWN_DELAY", defaults.shutdown_delay)),
        help="seconds NOT_SERVING is reported before the server stops accepting calls "
        "(env TERMDESK_SHUTDOWN_DELAY)",
    )
    add(
        "--workers",
        type=_count,
        default=_env_count("TERMDESK_WORKERS", defaults.workers),
        help="server processes sharing the port (env TERMDESK_WORKERS); the engine holds "
        "the GIL, so processes, not threads, add throughput",
    )
    add(
        "--metrics-port",
        type=int,
        default=os.environ.get("TERMDESK_METRICS_PORT") or None,
        help="serve Prometheus metrics at http://HOST:PORT/metrics, 0 for a free port "
        "(env TERMDESK_METRICS_PORT; default off)",
    )
    add(
        "--console-port",
        type=int,
        default=os.environ.get("TERMDESK_CONSOLE_PORT") or None,
        help="serve the policy owners' web console on this port, 0 for a free one "
        "(env TERMDESK_CONSOLE_PORT; default off); needs the store",
    )
    add(
        "--console-host",
        default=os.environ.get("TERMDESK_CONSOLE_HOST", defaults.console_host),
        help="address the console binds (env TERMDESK_CONSOLE_HOST; default 127.0.0.1); "
        "any other than loopback needs --tls-cert and --tls-key, or --console-insecure",
    )
    add(
        "--console-insecure",
        action="store_true",
        default=os.environ.get("TERMDESK_CONSOLE_INSECURE", "") == "1",
        help="let the console serve a non-loopback address without TLS: sign-in tokens "
        "then cross the network in the clear (env TERMDESK_CONSOLE_INSECURE=1)",
    )
    add(
        "--otlp-endpoint",
        default=_env_first(*OTLP_ENDPOINT_ENVS),
        help="send OpenTelemetry traces of the RPCs to this OTLP/gRPC collector, e.g. "
        "http://otel-collector:4317 (env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or "
        "OTEL_EXPORTER_OTLP_ENDPOINT; default off)",
    )
    add(
        "--log-level",
        default=os.environ.get("TERMDESK_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="(env TERMDESK_LOG_LEVEL)",
    )
    add(
        "--log-packages",
        action="store_true",
        default=os.environ.get("TERMDESK_LOG_PACKAGES", "") == "1",
        help="include the whole package in each decision record (env TERMDESK_LOG_PACKAGES=1)",
    )
    add_store_flags(serve)
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    """Runs the gRPC server until SIGTERM or SIGINT."""
    config = ServerConfig(
        host=args.host,
        port=args.port,
        threads=args.threads,
        max_message_bytes=args.max_message_bytes,
        limits=RequestLimits(
            package=Limits(
                max_terms=args.max_terms,
                max_list_items=args.max_list_items,
                max_text_length=args.max_text_length,
            ),
            max_batch=args.max_batch,
            trades=TradeLimits(
                trades_per_violation=args.trades_per_violation,
                candidates_per_violation=args.trade_candidates,
                engine_calls=args.trade_engine_calls,
            ),
        ),
        rulesets_dir=Path(args.rulesets) if args.rulesets else None,
        default_ruleset=args.default_ruleset,
        shutdown_grace=args.shutdown_grace,
        shutdown_delay=args.shutdown_delay,
        log_packages=args.log_packages,
        log_level=args.log_level,
        workers=args.workers,
        metrics_port=args.metrics_port,
        console_port=args.console_port,
        console_host=args.console_host,
        console_insecure=args.console_insecure,
        otlp_endpoint=args.otlp_endpoint,
        **store_options(args),
    )
    try:
        return serve(config)
    except (RulesetNotFoundError, RulesetError) as error:
        print(f"termdesk serve: {error}", file=sys.stderr)
        return EXIT_BAD_RULESET
    except (StoreError, TokenError, ConsoleError) as error:
        print(f"termdesk serve: {error}", file=sys.stderr)
        return 1


class _InputError(Exception):
    """A file named on the command line cannot be read; the message says why."""


def _paths(paths: Sequence[Path]) -> list[Path]:
    """Ruleset files under the given paths (the shipped rulesets when none is given)."""
    roots = list(paths) or [shipped_rulesets_dir()]
    for root in roots:
        if not root.exists():
            raise _InputError(f"{root}: no such file or directory")
    files = ruleset_files(roots)
    if not files:
        raise _InputError(f"no `*/ruleset.yaml` under {', '.join(map(str, roots))}")
    return files


def _read(path: Path) -> str:
    try:
        return read_source(path)
    except OSError as error:
        raise _InputError(f"{path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise _InputError(f"{path}: not UTF-8 text ({error.reason})") from error


def _validated(path: Path) -> ValidationResult:
    return validate_source(_read(path), str(path))


def check_command(args: argparse.Namespace) -> int:
    """Prints every diagnostic of every ruleset; exit 1 when any is an error."""
    errors = 0
    files = _paths(args.paths)
    for path in files:
        result = _validated(path)
        for diagnostic in result.diagnostics:
            print(diagnostic)
        errors += len(result.errors)
        if result.ok:
            print(f"{path}: ok")
    print(f"{len(files)} ruleset(s) checked, {errors} error(s)")
    return 1 if errors else 0


def test_command(args: argparse.Namespace) -> int:
    """Runs the test cases; prints failures with expected and actual, then a count."""
    passed = failed = 0
    broken = False
    for path in _paths(args.paths):
        result = _validated(path)
        if result.ruleset is None:
            broken = True
            for diagnostic in result.errors:
                print(diagnostic)
            continue
        results = run_tests(result.ruleset)
        for case_result in results:
            if case_result.passed:
                passed += 1
                continue
            failed += 1
            print(f"FAIL {path}:{case_result.case.line}: {case_result.case.name}")
            for failure in case_result.failures:
                print(f"  {failure}")
        gaps = coverage_gaps(result.ruleset, results)
        for rule_id, missing in gaps.items():
            print(f"{path}: rule {rule_id} lacks {' and '.join(missing)}")
        broken = broken or bool(args.coverage and gaps)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or broken else 0


def eval_command(args: argparse.Namespace) -> int:
    """Evaluates one package or a JSON Lines batch and prints contract-shaped JSON."""
    if (args.package is None) == (args.batch is None):
        print("termdesk eval: give one PACKAGE file (or -), or --batch FILE", file=sys.stderr)
        return 2
    try:
        ruleset = find_ruleset(args.ruleset, args.rulesets)
    except (RulesetNotFoundError, RulesetError) as error:
        print(f"termdesk eval: {error}", file=sys.stderr)
        return EXIT_BAD_RULESET
    evaluator = Evaluator(ruleset)
    try:
        if args.batch is not None:
            return _eval_batch(
                evaluator, _read(args.batch).splitlines(), sys.stdout, trades=not args.no_trades
            )
        text = sys.stdin.read() if args.package == "-" else _read(Path(args.package))
        return _eval_one(evaluator, text, trades=not args.no_trades)
    finally:
        evaluator.close()


def _answer(
    evaluator: Evaluator, package: TermPackage, *, trades: bool
) -> tuple[Decision, dict[str, object]]:
    """The decision, and the answer as `EvaluateResponse` JSON (with trades unless told)."""
    matches = evaluator.matches(package)
    evaluation = evaluator.evaluation_of(package, matches)
    record = evaluation_json(evaluation, package.deal_id)
    if trades:
        record |= advice_json(
            TradeAdvisor(evaluator, default_vocabulary()).advise(package, matches)
        )
    return evaluation.decision, record


def _eval_one(evaluator: Evaluator, text: str, *, trades: bool) -> int:
    try:
        package = check_package(parse_json(text), default_vocabulary())
    except json.JSONDecodeError as error:
        print(f"termdesk eval: the package is not JSON: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PackageError as error:
        print("termdesk eval: the package does not fit the vocabulary:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    decision, record = _answer(evaluator, package, trades=trades)
    print(json.dumps(record, indent=2))
    return EXIT_FOR_DECISION[decision]


def _eval_batch(evaluator: Evaluator, lines: Sequence[str], out: TextIO, *, trades: bool) -> int:
    bad = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record: dict[str, object]
        try:
            package = check_package(parse_json(line), default_vocabulary())
            _, record = _answer(evaluator, package, trades=trades)
        except json.JSONDecodeError as error:
            bad = True
            record = {"line": number, "error": {"code": "not_json", "message": str(error)}}
        except PackageError as error:
            bad = True
            record = {
                "line": number,
                "error": {"code": "invalid_package", "field_violations": problems_json(error)},
            }
        out.write(json.dumps(record) + "\n")
    return EXIT_BAD_INPUT if bad else 0


if __name__ == "__main__":
    sys.exit(main())
