"""The gRPC server: TermEvaluator, health checking and reflection, and a graceful stop.

On SIGTERM or SIGINT the health status of every service turns NOT_SERVING first (load
balancers stop sending), then, after `shutdown_delay`, the server stops accepting calls
and lets the ones in flight finish for up to `shutdown_grace` seconds.

durable_rules never releases the GIL, so threads in the pool overlap only the gRPC
runtime's work; more throughput on one machine comes from more processes: `workers` > 1
starts that many server processes on the same port (SO_REUSEPORT, the kernel spreads the
connections), each with its own engine. The first process forwards SIGTERM to the others.

Rulesets come from a store (the default: SQLite under `data_dir`; or `store`, a
PostgreSQL URL shared by replicas), which also keeps the decision log and serves the
RulesetAdmin service when an admin token is configured; or, with `rulesets_dir` and no
`store`, read-only from files as before.

With `metrics_port` set, every process counts its calls (`termdesk.api.metrics`) and the
first one serves /metrics for all of them (prometheus-client's multiprocess mode, in a
fresh directory under TMPDIR unless PROMETHEUS_MULTIPROC_DIR names one). With
`otlp_endpoint` set, every process traces its calls (`termdesk.api.tracing`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.process
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from termdesk.api.admin import EvaluateTokenInterceptor, RulesetAdminServicer
from termdesk.api.servicer import RequestLimits, TermEvaluatorServicer
from termdesk.auth import Tokens
from termdesk.catalog import DEFAULT_RULESET
from termdesk.console import ConsoleError
from termdesk.decisionlog import DecisionLog
from termdesk.logs import configure_logging, get_logger
from termdesk.paths import shipped_rulesets_dir
from termdesk.policy import PolicyAdmin
from termdesk.registry import RulesetRegistry
from termdesk.reload import StoreRulesets
from termdesk.store import open_store, sqlite_url
from termdesk.v1 import admin_pb2, admin_pb2_grpc
from termdesk.v1 import termdesk_pb2 as pb
from termdesk.v1 import termdesk_pb2_grpc as pb_grpc
from termdesk.vocabulary import default_vocabulary

if TYPE_CHECKING:
    from termdesk.api.metrics import MetricsEndpoint
    from termdesk.api.tracing import Tracing
    from termdesk.console.server import ConsoleServer

__all__ = ["RunningServer", "ServerConfig", "serve", "start"]

log = get_logger("termdesk.server")

SERVICE_NAMES = (
    pb.DESCRIPTOR.services_by_name["TermEvaluator"].full_name,
    health.SERVICE_NAME,
    reflection.SERVICE_NAME,
)
ADMIN_SERVICE_NAME = admin_pb2.DESCRIPTOR.services_by_name["RulesetAdmin"].full_name


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything `termdesk serve` can be told; every field has a working default."""

    host: str = "[::]"
    port: int = 50051
    threads: int = 8
    max_message_bytes: int = 4 * 1024 * 1024
    limits: RequestLimits = field(default_factory=RequestLimits)
    rulesets_dir: Path | None = None
    default_ruleset: str = DEFAULT_RULESET
    shutdown_grace: float = 10.0
    shutdown_delay: float = 0.0
    log_packages: bool = False
    log_level: str = "info"
    workers: int = 1
    # Port of the web console (worker 0 serves it); None: no console, 0: a free one.
    console_port: int | None = None
    console_host: str = "127.0.0.1"
    console_insecure: bool = False  # the operator accepts a non-loopback console without TLS
    # Port of the Prometheus /metrics endpoint (on `host`); None: no metrics, 0: a free one.
    metrics_port: int | None = None
    # OTLP/gRPC collector to send traces to (e.g. http://otel-collector:4317); None: off.
    otlp_endpoint: str | None = None
    # Which of the `workers` processes this is; worker 0 supervises and serves /metrics.
    worker: int = 0
    store: str | None = None  # sqlite:///PATH or postgresql://...; default: SQLite in data_dir
    data_dir: Path = Path("termdesk-data")
    tokens_file: Path | None = None
    admin_token: str = field(default="", repr=False)  # never logged
    # "loopback": Evaluate needs a token unless called from this machine; "token": always;
    # "open": never.
    evaluate_auth: str = "loopback"
    reload_interval: float = 1.0
    decision_retention_days: int = 90
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # mutual TLS: clients must present a certificate

    @property
    def store_url(self) -> str | None:
        """The store to use; None in file mode (`rulesets_dir` and no `store`)."""
        if self.store is None and self.rulesets_dir is not None:
            return None
        return self.store or sqlite_url(self.data_dir)


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    registry: RulesetRegistry
    metrics_endpoint: MetricsEndpoint | None = None
    tracing: Tracing | None = None
    console: ConsoleServer | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def stop(self, grace: float, delay: float = 0.0) -> None:
        """NOT_SERVING first, then stop accepting calls; in-flight calls get `grace` s."""
        self.health.enter_graceful_shutdown()
        if self.console is not None:
            self.console.stop()
        if delay > 0:
            threading.Event().wait(delay)
        self.server.stop(grace).wait()
        for close in self.closers:
            close()
        self.registry.close()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.stop()
        if self.tracing is not None:
            self.tracing.shutdown()


@dataclass
class _StoreMode:
    """What a store-backed server runs besides the evaluator: reload, decision log, admin."""

    rulesets: StoreRulesets
    decision_log: DecisionLog
    admin: PolicyAdmin

    @classmethod
    def open(cls, url: str, config: ServerConfig) -> _StoreMode:
        vocabulary = default_vocabulary()
        store = open_store(url)
        rulesets = StoreRulesets(store, vocabulary, config.default_ruleset, config.reload_interval)
        try:
            rulesets.import_directory(config.rulesets_dir or shipped_rulesets_dir())
            rulesets.refresh()
            rulesets.registry.evaluator()  # the default ruleset must exist before we listen
        except BaseException:
            store.close()
            raise
        decision_log = DecisionLog(store, timedelta(days=config.decision_retention_days))
        decision_log.start()
        rulesets.start()
        return cls(rulesets, decision_log, PolicyAdmin(rulesets, decision_log))

    def close(self) -> None:
        self.rulesets.close()
        self.decision_log.close()
        self.rulesets.store.close()


def start(config: ServerConfig, registry: RulesetRegistry | None = None) -> RunningServer:
    """Builds and starts the server; returns once it listens (port 0 picks a free one)."""
    tokens = Tokens.load(config.tokens_file, config.admin_token)
    url = config.store_url
    mode = _StoreMode.open(url, config) if registry is None and url else None
    if mode is not None:
        registry = mode.rulesets.registry
    registry = registry or RulesetRegistry.from_directory(
        config.rulesets_dir or shipped_rulesets_dir(), config.default_ruleset
    )
    registry.evaluator()  # the default ruleset must exist before we listen
    interceptors: list[grpc.ServerInterceptor] = []
    tracing = None
    if config.otlp_endpoint:
        from termdesk.api.tracing import Tracing  # noqa: PLC0415 (heavy; only when asked)

        tracing = Tracing(config.otlp_endpoint)
        interceptors.append(tracing.interceptor())
    metrics_endpoint = None
    if config.metrics_port is not None:
        # Imported only now: prometheus-client picks its multiprocess mode on first import.
        from termdesk.api.metrics import Metrics  # noqa: PLC0415

        metrics = Metrics()
        metrics.install()
        for evaluator in registry.active():
            metrics.add_ruleset(evaluator.ruleset.name, evaluator.ruleset.version)
        interceptors.append(metrics.interceptor())
        if mode is not None:
            mode.rulesets.listeners.append(metrics.set_active)
        if config.worker == 0:
            metrics_endpoint = metrics.serve(config.host, config.metrics_port)
            log.info("metrics listening", port=metrics_endpoint.port, path="/metrics")
    if config.evaluate_auth != "open":
        interceptors.append(
            EvaluateTokenInterceptor(tokens, loopback_open=config.evaluate_auth == "loopback")
        )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="rpc"),
        interceptors=interceptors,
        options=[
            # Requests are bounded; answers are not (an explained answer is larger than
            # its request, and a decision must never be logged but lost on the way out).
            ("grpc.max_receive_message_length", config.max_message_bytes),
        ],
    )
    servicer = TermEvaluatorServicer(
        registry,
        default_vocabulary(),
        config.limits,
        log_packages=config.log_packages,
        decision_log=mode.decision_log if mode else None,
    )
    pb_grpc.add_TermEvaluatorServicer_to_server(servicer, server)
    services: tuple[str, ...] = SERVICE_NAMES
    if mode is not None and tokens.admin_enabled:
        admin_pb2_grpc.add_RulesetAdminServicer_to_server(
            RulesetAdminServicer(mode.admin, tokens), server
        )
        services = (*SERVICE_NAMES, ADMIN_SERVICE_NAME)
    else:
        log.warning(
            "admin service off",
            reason="no store: rulesets are read-only from files"
            if mode is None
            else "no admin token configured: set TERMDESK_ADMIN_TOKEN or --tokens-file",
        )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *services):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(services, server)
    port = _add_port(server, config)
    if port == 0:
        raise OSError(f"cannot listen on {config.host}:{config.port}")
    console = _start_console(config, mode, tokens)
    server.start()
    log.info(
        "listening",
        address=f"{config.host}:{port}",
        pid=os.getpid(),
        port=port,
        rulesets=registry.names(),
        default_ruleset=config.default_ruleset,
        threads=config.threads,
        store=_redacted(url),
        admin=ADMIN_SERVICE_NAME in services,
        tls=config.tls_cert is not None,
        console=f"http{'s' if console.console.tls else ''}://{config.console_host}:{console.port}/"
        if console
        else "off",
    )
    closers = [mode.close] if mode is not None else []
    return RunningServer(
        server, port, health_servicer, registry, metrics_endpoint, tracing, console, closers
    )


def _start_console(
    config: ServerConfig, mode: _StoreMode | None, tokens: Tokens
) -> ConsoleServer | None:
    """The web console, when asked for and this is worker 0 (its sessions live here)."""
    if config.console_port is None or config.worker != 0:
        return None
    if mode is None:
        raise ConsoleError(
            "the console edits rulesets in the store, but this server reads them from files: "
            "drop --rulesets, or give --store with it"
        )
    if not tokens.admin_enabled:
        log.warning(
            "console sign-in open to evaluator tokens only",
            reason="no policy-owner or auditor token: set TERMDESK_ADMIN_TOKEN or --tokens-file",
        )
    from termdesk.console.server import ConsoleServer  # noqa: PLC0415 (the web stack, when asked)

    console = ConsoleServer(
        mode.admin,
        tokens,
        host=config.console_host,
        port=config.console_port,
        tls_cert=config.tls_cert,
        tls_key=config.tls_key,
        allow_insecure=config.console_insecure,
        limits=config.limits.package,
        trade_limits=config.limits.trades,
    )
    console.start()
    return console


def _add_port(server: grpc.Server, config: ServerConfig) -> int:
    address = f"{config.host}:{config.port}"
    if config.tls_cert is None or config.tls_key is None:
        return server.add_insecure_port(address)
    credentials = grpc.ssl_server_credentials(
        [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
        root_certificates=config.tls_client_ca.read_bytes() if config.tls_client_ca else None,
        require_client_auth=config.tls_client_ca is not None,
    )
    return server.add_secure_port(address, credentials)


def _redacted(url: str | None) -> str:
    """The store URL without a password, for the log."""
    if url is None:
        return "none (read-only from files)"
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    return f"{scheme}{sep}{credentials.split(':')[0]}{at}{location}" if at else url


def serve(config: ServerConfig) -> int:
    """Runs until SIGTERM or SIGINT, then drains; returns the process exit code."""
    extra: list[structlog.typing.Processor] = []
    if config.otlp_endpoint:
        from termdesk.api.tracing import add_trace_ids  # noqa: PLC0415 (heavy; only when asked)

        extra.append(add_trace_ids)
    configure_logging(config.log_level, extra)
    stopping = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(number).name, grace_s=config.shutdown_grace)
        stopping.set()

    # Before `listening` is logged: a SIGTERM at any moment after it must drain.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    metrics_dir = _multiprocess_metrics_dir(config)
    running = start(config)
    siblings = [
        _spawn_worker(dataclasses.replace(config, port=running.port, workers=1, worker=index))
        for index in range(1, config.workers)
    ]
    lost: list[int] = []

    def watch(sibling: multiprocessing.process.BaseProcess) -> None:
        # A worker that dies leaves connections to a dead socket: stop everything, so the
        # supervisor (Kubernetes, systemd) restarts the whole server.
        sibling.join()
        if not stopping.is_set():
            log.error("worker exited", pid=sibling.pid, exit_code=sibling.exitcode)
            lost.append(sibling.exitcode or 1)
            stopping.set()

    for sibling in siblings:
        threading.Thread(target=watch, args=(sibling,), daemon=True).start()
    # Wake now and then: a signal that arrives while the main thread blocks it (as it does
    # while spawning a worker) runs its C handler on another thread, and the Python
    # handler then runs only once the main thread executes again.
    while not stopping.wait(timeout=0.5):
        pass
    for sibling in siblings:
        if sibling.is_alive():
            sibling.terminate()  # SIGTERM: each drains like this one
    running.stop(config.shutdown_grace, config.shutdown_delay)
    for sibling in siblings:
        sibling.join(config.shutdown_grace + config.shutdown_delay + 5)
    if metrics_dir is not None:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    log.info("stopped")
    return 1 if lost else 0


def _multiprocess_metrics_dir(config: ServerConfig) -> str | None:
    """A fresh directory for the workers' metric files, when this process must make one."""
    if config.metrics_port is None or config.workers < 2 or config.worker != 0:
        return None
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None  # the operator's own (it must start empty)
    directory = tempfile.mkdtemp(prefix="termdesk-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # inherited by the spawned workers
    return directory


def _spawn_worker(config: ServerConfig) -> multiprocessing.process.BaseProcess:
    # "spawn", not "fork": gRPC's threads and durable_rules' state must not be forked.
    process = multiprocessing.get_context("spawn").Process(
        target=serve, args=(config,), name="termdesk-worker", daemon=False
    )
    process.start()
    return process
