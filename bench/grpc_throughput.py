"""Throughput and latency of termdesk's gRPC Evaluate, against a bare Python gRPC echo server.

    python bench/grpc_throughput.py [--duration 10 | --requests N] [--clients 4] [--streams 4]
                                    [--repeat 2] [--warmup 2] [--workers 1]
                                    [--serve-flags '--trades-per-violation 1']

What it measures, in one run:

- echo      a bare Python gRPC server (`grpc.server`, ThreadPoolExecutor with 8 threads like
            termdesk's default, a generic handler for /termdesk.v1.TermEvaluator/Evaluate)
            that returns fixed bytes of the same size as termdesk's real answer for the
            package: the cost of the Python gRPC runtime alone, the baseline;
- termdesk  `python -m termdesk.cli serve --log-level warning --workers W` (default one
            process of 8 threads; `--workers 2` runs two processes sharing the port).

Both are loaded the same way from a separate process by h2load (Debian nghttp2-client) with
a pre-framed request body, for a clean 10-term package (CLEAN_10 of bench/engine_cost.py,
APPROVE) and two violating ones, answered with verified trades, a counter-proposal and
giveaways: VIOLATING_5 (a first draft breaking 5 policies) and VIOLATING_10 (27
violations over 10 terms, the worst case); and VIOLATING_10 once more with `skip_trades`
(decision and violations only), which shows what the trades cost. Each body is
checked once with a real gRPC call first. The echo and termdesk runs of a case are adjacent
(ABBA order over the repeats) so machine noise hits both alike; each run is timed
(`h2load -D`, default 10 s) after a short untimed warm-up per server and case.

h2load counts HTTP 200 as success even when grpc-status is not 0, and a gRPC error answer
carries no message. So after every run the script checks h2load's counters, that the DATA
bytes received equal one response message per succeeded request (a shortfall estimates the
gRPC errors), that termdesk logged no error, and makes one real call to check the answer.

Prints req/s (from h2load's `finished in ... req/s` line), p50/p99 latency (from h2load's
per-request `--log-file`), the ratio termdesk/echo (median over the adjacent pairs) and the
targets: clean >= 0.5 of echo throughput, violating >= 0.2 (PASS or BELOW). It is a
benchmark, not a test: it exits 0 whatever the numbers (non-zero only when it cannot run or
a server answers wrongly).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:
    from termdesk.v1 import termdesk_pb2 as pb

SERVICE = "termdesk.v1.TermEvaluator"
METHOD = f"/{SERVICE}/Evaluate"
THREADS = 8  # termdesk's default (`ServerConfig.threads`)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # termdesk's default, set on the echo server alike
TARGETS = {
    "clean": 0.5,
    "violating-5": 0.2,
    "violating": 0.2,
    "violating-no-trades": 0.2,
}  # termdesk req/s as a share of echo req/s
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# termdesk's error records (structlog JSON), Python tracebacks, gRPC core's own error lines
_ERROR_LINE = re.compile(r'"level": "(error|critical)"|^Traceback|^E\d{4} ')


# -- the echo server (runs in its own process: `grpc_throughput.py --echo-server FILE`)


def run_echo_server(response_file: Path) -> int:
    """Serves Evaluate with fixed response bytes; prints its port; stops on SIGTERM or EOF."""
    response = response_file.read_bytes()

    def evaluate(request: bytes, context: grpc.ServicerContext) -> bytes:
        return response  # no (de)serializers: the runtime hands over and takes raw bytes

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="rpc"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(evaluate)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Evaluate": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stopping = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stopping.set()

    def until_stdin_closes() -> None:  # the parent died or is done: do not outlive it
        sys.stdin.read()
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=until_stdin_closes, daemon=True).start()
    print(json.dumps({"event": "listening", "port": port, "pid": os.getpid()}), flush=True)
    stopping.wait()
    server.stop(1).wait()
    return 0


# -- cases


@dataclass(frozen=True)
class Case:
    name: str
    request: bytes  # serialized EvaluateRequest
    body: Path  # the same, gRPC-framed, for h2load -d
    expected: str  # decision name
    min_violations: int
    max_violations: int
    skip_trades: bool  # the request asks for no trades (what a bulk pre-check would send)
    response: bytes = b""  # termdesk's serialized EvaluateResponse, filled by the pre-check

    @property
    def frame_bytes(self) -> int:
        """DATA bytes of one answer: the 5-byte gRPC prefix and the message."""
        return 5 + len(self.response)


def build_cases(directory: Path) -> list[Case]:
    """The request bodies for CLEAN_10 and VIOLATING_10, framed and written to `directory`."""
    from engine_cost import (  # noqa: PLC0415 (not in the echo server)
        CLEAN_10,
        VIOLATING_5,
        VIOLATING_10,
    )
    from google.protobuf import json_format  # noqa: PLC0415

    from termdesk.v1 import termdesk_pb2 as pb  # noqa: PLC0415

    cases = []
    for name, package, expected, low, high, skip_trades in (
        ("clean", CLEAN_10, "DECISION_APPROVE", 0, 0, False),
        ("violating-5", VIOLATING_5, "DECISION_REJECT", 5, 5, False),
        ("violating", VIOLATING_10, "DECISION_REJECT", 5, 10_000, False),
        ("violating-no-trades", VIOLATING_10, "DECISION_REJECT", 5, 10_000, True),
    ):
        request = pb.EvaluateRequest(
            package=json_format.ParseDict(package, pb.TermPackage()), skip_trades=skip_trades
        ).SerializeToString()
        body = directory / f"{name}.body"
        body.write_bytes(b"\x00" + struct.pack(">I", len(request)) + request)
        cases.append(Case(name, request, body, expected, low, high, skip_trades))
    return cases


def call(port: int, request: bytes) -> bytes:
    """One real unary call with raw bytes in and out (raises grpc.RpcError on a failure)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        # no (de)serializers: bytes in, bytes out
        evaluate: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
        answer: bytes = evaluate(request, timeout=30)
        return answer


def decode(response: bytes) -> pb.EvaluateResponse:
    from termdesk.v1 import termdesk_pb2 as pb  # noqa: PLC0415 (not in the echo server)

    return pb.EvaluateResponse.FromString(response)


def check_termdesk_answer(case: Case, response: bytes) -> str:
    """'' when termdesk's answer is right for the case, else what is wrong."""
    from termdesk.v1 import termdesk_pb2 as pb  # noqa: PLC0415 (not in the echo server)

    message = decode(response)
    name = pb.Decision.Name(message.decision)
    found = len(message.violations)
    if name != case.expected or not case.min_violations <= found <= case.max_violations:
        return f"{case.name}: got {name} with {found} violations, expected {case.expected}"
    if case.skip_trades:
        if message.trades or message.HasField("counter_proposal"):
            return f"{case.name}: trades in the answer to a request that skips them"
    elif found and not any(trade.verified for trade in message.trades):
        return f"{case.name}: no verified trade in the answer"
    if found and not case.skip_trades and not message.HasField("counter_proposal"):
        return f"{case.name}: no counter-proposal in the answer"
    if case.response and len(response) != len(case.response):
        return f"{case.name}: answer of {len(response)} bytes, first one had {len(case.response)}"
    return ""


# -- servers


@dataclass
class Server:
    name: str  # "echo" or "termdesk"
    process: subprocess.Popen[bytes]
    port: int
    log: Path | None = None  # termdesk's stdout (JSON lines)
    log_lines_seen: int = 0

    def new_errors(self) -> list[str]:
        """Error-level lines termdesk logged since the last call (INTERNAL failures)."""
        if self.log is None:
            return []
        lines = self.log.read_text(errors="replace").splitlines()
        fresh, self.log_lines_seen = lines[self.log_lines_seen :], len(lines)
        return [line for line in fresh if _ERROR_LINE.search(line)]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} server exited with code {self.process.returncode}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not stop in time; only for processes we started."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


@contextlib.contextmanager
def reserved_port() -> Iterator[int]:
    """A free port, held (bound, not listening, SO_REUSEPORT) until the server has it.

    termdesk prints its port only at info level, which would also log every decision; so
    it runs at warning level on a port picked here. gRPC binds with SO_REUSEPORT, so it can
    share the held port, and nobody else is given the port in between.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        yield int(holder.getsockname()[1])


def wait_ready(process: subprocess.Popen[bytes], port: int, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode} while starting")
            try:
                grpc.channel_ready_future(channel).result(timeout=0.5)
            except grpc.FutureTimeoutError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready after {START_TIMEOUT_S} s") from None
            else:
                return


def start_termdesk(directory: Path, workers: int, flags: Sequence[str] = ()) -> Server:
    log = directory / "termdesk.out"
    with reserved_port() as port, log.open("wb") as out:
        command = [
            sys.executable,
            "-m",
            "termdesk.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            str(workers),
            *flags,
        ]
        process = subprocess.Popen(
            command,
            cwd=directory,  # its store (./termdesk-data) starts empty in the run's directory
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches this script only; it stops the server
        )
        server = Server("termdesk", process, port, log)
        try:
            wait_ready(process, port, "termdesk")
        except BaseException:
            stop(process)
            sys.stderr.write(log.read_text(errors="replace")[-4000:])
            raise
    return server


def start_echo(case: Case, directory: Path) -> Server:
    response_file = directory / f"{case.name}.response"
    response_file.write_bytes(case.response)
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--echo-server", str(response_file)],
        stdin=subprocess.PIPE,  # closing it stops the server
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        port = _announced_port(process)
        wait_ready(process, port, "echo")
    except BaseException:
        stop(process)
        raise
    return Server("echo", process, port)


def _announced_port(process: subprocess.Popen[bytes]) -> int:
    """The port in the echo server's first line on stdout."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
    line = process.stdout.readline() if ready else b""
    if not line:
        raise RuntimeError("the echo server did not start")
    return int(json.loads(line)["port"])


# -- h2load


@dataclass
class Run:
    case: str
    server: str
    req_per_s: float
    p50_ms: float
    p99_ms: float
    done: int
    problems: list[str] = field(default_factory=list)


def h2load_command(args: argparse.Namespace, body: Path, port: int) -> list[str]:
    amount = ["-D", str(args.duration)] if args.requests is None else ["-n", str(args.requests)]
    return [
        args.h2load,
        *amount,
        "-c",
        str(args.clients),
        "-m",
        str(args.streams),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        "-d",
        str(body),
        f"http://127.0.0.1:{port}{METHOD}",
    ]


def run_h2load(command: list[str], timeout: float) -> str:
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"h2load exited with {process.returncode}:\n{text[-3000:]}")
    return text


def _number(pattern: str, text: str) -> list[float]:
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"h2load output lacks /{pattern}/:\n{text[-3000:]}")
    return [float(group) for group in found.groups()]


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def measure(args: argparse.Namespace, case: Case, server: Server, directory: Path) -> Run:
    """One timed h2load run, its numbers and everything that says the answers were wrong."""
    log_file = directory / f"{case.name}-{server.name}.tsv"
    command = h2load_command(args, case.body, server.port)
    command[1:1] = ["--log-file", str(log_file)]
    timeout = (args.duration + 120) if args.requests is None else 3600
    text = run_h2load(command, timeout)
    (req_per_s,) = _number(r"finished in [\d.]+m?s, ([\d.]+) req/s", text)
    done, succeeded, failed, errored, timeouts = _number(
        r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
        r"(\d+) failed, (\d+) errored, (\d+) timeout",
        text,
    )
    c3xx, c4xx, c5xx = _number(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    (data,) = _number(r"traffic: .*\((\d+)\) data", text)
    problems = []
    if failed or errored or timeouts or c3xx or c4xx or c5xx:
        problems.append(
            f"h2load: {failed:.0f} failed, {errored:.0f} errored, {timeouts:.0f} timeout, "
            f"{c3xx + c4xx + c5xx:.0f} non-2xx"
        )
    messages = data / case.frame_bytes
    if data < succeeded * case.frame_bytes:  # more is fine: answers in flight at the end
        problems.append(
            f"{data:.0f} DATA bytes = {messages:.1f} answers of {case.frame_bytes} bytes for "
            f"{succeeded:.0f} succeeded requests: about {succeeded - messages:.0f} gRPC errors"
        )
    problems += [f"termdesk logged: {line[:300]}" for line in server.new_errors()]
    try:
        answer = call(server.port, case.request)
    except grpc.RpcError as error:
        problems.append(f"call after the run failed: {error}")
    else:
        wrong = (
            check_termdesk_answer(case, answer)
            if server.name == "termdesk"
            else ("" if answer == case.response else "echo answered other bytes")
        )
        if wrong:
            problems.append(f"call after the run: {wrong}")
    server.check_alive()
    times_ms: list[float] = []
    statuses: dict[str, int] = {}
    with log_file.open() as rows:
        for row in rows:
            columns = row.split("\t")
            if len(columns) >= 3:
                statuses[columns[1]] = statuses.get(columns[1], 0) + 1
                times_ms.append(int(columns[2]) / 1000)
    log_file.unlink()
    if set(statuses) - {"200"}:
        problems.append(f"log-file status codes: {statuses}")
    times_ms.sort()
    return Run(
        case.name,
        server.name,
        req_per_s,
        percentile(times_ms, 0.50),
        percentile(times_ms, 0.99),
        int(done),
        problems,
    )


def warm_up(args: argparse.Namespace, case: Case, server: Server) -> None:
    command = h2load_command(args, case.body, server.port)
    command[1:3] = ["-D", str(args.warmup)]
    run_h2load(command, args.warmup + 120)  # termdesk's errors, if any, show in the next run
    server.check_alive()


# -- report


@dataclass
class CaseResult:
    case: Case
    runs: list[Run]
    ratios: list[float]

    def median(self, server: str, attribute: str) -> float:
        values: list[float] = [getattr(run, attribute) for run in self.runs if run.server == server]
        return statistics.median(values)


def describe_machine(args: argparse.Namespace) -> list[str]:
    version = subprocess.run(
        [args.h2load, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"machine: {platform.platform()}, {os.cpu_count()} cpu, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}, {version}",
        f"load average at start: {load}",
    ]


def report(args: argparse.Namespace, results: list[CaseResult], header: list[str]) -> None:
    amount = f"{args.duration} s" if args.requests is None else f"{args.requests} requests"
    example = h2load_command(args, Path("BODY"), 0)
    example[-1] = example[-1].replace(":0/", ":PORT/")
    print()
    print("\n".join(header))
    print(f"load average at end:   {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(
        f"each run: {amount}, {args.clients} clients x {args.streams} streams, after a "
        f"{args.warmup} s warm-up per server and case; {args.repeat} echo/termdesk pair(s) "
        "per case (ABBA order), medians shown"
    )
    print(f"h2load: {shlex.join(example)} --log-file LOG")
    print(f"servers: echo = bare grpc.server, {THREADS} threads, fixed answer of termdesk's size;")
    print(
        f"         termdesk = python -m termdesk.cli serve --log-level warning "
        f"--workers {args.workers} {args.serve_flags}".rstrip()
        + f" ({THREADS} threads each)"
    )
    print()
    print(
        f"{'case':<19} {'answer':>7} {'echo req/s':>11} {'termdesk req/s':>15} "
        f"{'ratio':>6} {'target':>7} {'':5}  {'echo p50/p99 ms':>16}  {'termdesk p50/p99 ms':>20}"
    )
    for result in results:
        case = result.case
        ratio = statistics.median(result.ratios)
        target = TARGETS[case.name]
        verdict = "PASS" if ratio >= target else "BELOW"
        echo_latency = (
            f"{result.median('echo', 'p50_ms'):.1f} / {result.median('echo', 'p99_ms'):.1f}"
        )
        termdesk_latency = (
            f"{result.median('termdesk', 'p50_ms'):.1f} / {result.median('termdesk', 'p99_ms'):.1f}"
        )
        print(
            f"{case.name:<19} {len(case.response):>6}B "
            f"{result.median('echo', 'req_per_s'):>11.0f} "
            f"{result.median('termdesk', 'req_per_s'):>15.0f} {ratio:>6.2f} "
            f"{'>= ' + format(target, '.1f'):>7} {verdict:5}  {echo_latency:>16}  "
            f"{termdesk_latency:>20}"
        )
    print("\nratio: median over the pairs of termdesk req/s / echo req/s of the adjacent echo run")
    problems = [
        (run, problem) for result in results for run in result.runs for problem in run.problems
    ]
    if problems:
        print("\nWRONG ANSWERS OR ERRORS UNDER LOAD (the numbers above are suspect):")
        for run, problem in problems:
            print(f"  {run.case}/{run.server}: {problem}")
    else:
        print(
            "checks: every request answered HTTP 200 with one full message, termdesk logged no "
            "error, a real call after each run gave the right answer"
        )


# -- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument(
        "--duration", type=int, default=None, help="seconds per timed run (default 10)"
    )
    amount.add_argument(
        "--requests", type=int, default=None, help="requests per timed run instead of a duration"
    )
    parser.add_argument("--clients", type=int, default=4, help="h2load connections (default 4)")
    parser.add_argument(
        "--streams", type=int, default=4, help="concurrent streams per connection (default 4)"
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="echo/termdesk pairs per case (default 2)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed seconds per server and case (default 2)"
    )
    parser.add_argument("--h2load", default="h2load", help="h2load executable")
    parser.add_argument(
        "--workers", type=int, default=1, help="termdesk server processes (default 1)"
    )
    parser.add_argument(
        "--serve-flags",
        default="",
        help="more flags for `termdesk serve`, e.g. '--trades-per-violation 1' (default none)",
    )
    parser.add_argument("--echo-server", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.duration is None and args.requests is None:
        args.duration = 10
    if min(args.clients, args.streams, args.repeat, args.warmup) < 1:
        parser.error("--clients, --streams, --repeat and --warmup must be at least 1")
    if (args.duration or 1) < 1 or (args.requests or 1) < 1:
        parser.error("--duration and --requests must be at least 1")
    if args.echo_server is None and shutil.which(args.h2load) is None:
        parser.error(f"{args.h2load} not found (Debian/Ubuntu: apt-get install nghttp2-client)")
    return args


def precheck(case: Case, port: int) -> Case:
    """Two real calls to termdesk: the answer is right and its size is stable."""
    response = call(port, case.request)
    wrong = check_termdesk_answer(case, response)
    case = dataclasses.replace(case, response=response)
    wrong = wrong or check_termdesk_answer(case, call(port, case.request))
    if wrong:
        raise RuntimeError(f"pre-check against termdesk failed: {wrong}")
    return case


def benchmark(args: argparse.Namespace, directory: Path, stack: contextlib.ExitStack) -> None:
    header = describe_machine(args)
    print("\n".join(header), flush=True)
    cases = build_cases(directory)
    termdesk = start_termdesk(directory, args.workers, shlex.split(args.serve_flags))
    stack.callback(stop, termdesk.process)
    cases = [precheck(case, termdesk.port) for case in cases]
    for case in cases:
        message = decode(case.response)
        print(
            f"pre-check {case.name}: {case.expected.removeprefix('DECISION_')}, "
            f"{len(message.violations)} violations, request {len(case.request)} B, "
            f"answer {len(case.response)} B, "
            f"ruleset {message.ruleset.name} v{message.ruleset.version}",
            flush=True,
        )
    results = []
    for case in cases:
        echo = start_echo(case, directory)
        stack.callback(stop, echo.process)
        servers = {"echo": echo, "termdesk": termdesk}
        for server in servers.values():
            warm_up(args, case, server)
        runs: list[Run] = []
        ratios: list[float] = []
        for repeat in range(args.repeat):
            order = ("echo", "termdesk") if repeat % 2 == 0 else ("termdesk", "echo")
            pair = {}
            for name in order:
                run = measure(args, case, servers[name], directory)
                pair[name] = run
                runs.append(run)
                flag = "" if not run.problems else f"  PROBLEMS: {'; '.join(run.problems)}"
                print(
                    f"  {case.name:<19} {name:<9} {run.req_per_s:>8.0f} req/s  "
                    f"p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:6.1f} ms  "
                    f"({run.done} done){flag}",
                    flush=True,
                )
            ratios.append(pair["termdesk"].req_per_s / pair["echo"].req_per_s)
        stop(echo.process)
        results.append(CaseResult(case, runs, ratios))
    report(args, results, header)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.echo_server is not None:
        return run_echo_server(args.echo_server)

    def on_sigterm(number: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # unwinds through the cleanup below

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="grpc-throughput-") as temporary,
            contextlib.ExitStack() as stack,
        ):
            benchmark(args, Path(temporary), stack)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped, temporary files removed", file=sys.stderr)
        return 130
    except (RuntimeError, grpc.RpcError, OSError) as error:
        print(f"grpc_throughput: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
