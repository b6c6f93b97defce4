"""Runs the console's ASGI app with uvicorn on a thread of the serving process.

The console lives in worker 0 beside gRPC (as /metrics does): its sessions are in this
process's memory, and it calls the same `PolicyAdmin` the RulesetAdmin service uses.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from pathlib import Path

import uvicorn

from termdesk.auth import Tokens
from termdesk.console import ConsoleError
from termdesk.console.app import create_app
from termdesk.console.web import Console
from termdesk.policy import PolicyAdmin
from termdesk.trades import TradeLimits
from termdesk.vocabulary import Limits

__all__ = ["ConsoleServer", "is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConsoleServer:
    """The console on `host:port`; `start` returns once it accepts connections."""

    def __init__(
        self,
        admin: PolicyAdmin,
        tokens: Tokens,
        *,
        host: str,
        port: int,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        allow_insecure: bool = False,
        limits: Limits | None = None,
        trade_limits: TradeLimits | None = None,
    ) -> None:
        tls = tls_cert is not None and tls_key is not None
        if not tls and not is_loopback_host(host) and not allow_insecure:
            raise ConsoleError(
                f"the console would serve sign-in tokens without TLS on {host}, which is not "
                "a loopback address: give --tls-cert and --tls-key, bind it to 127.0.0.1 "
                "with --console-host, or accept the risk with --console-insecure"
            )
        self.console = Console(
            admin,
            tokens,
            admin.vocabulary,
            tls=tls,
            limits=limits or Limits(),
            trade_limits=trade_limits or TradeLimits(),
        )
        try:
            self._socket = socket.create_server(
                (host.strip("[]"), port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
            )
        except OSError as error:
            raise ConsoleError(
                f"the console cannot listen on {host}:{port}: {error.strerror or error}"
            ) from error
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.console),
            log_config=None,  # termdesk's structlog setup owns the logs
            access_log=False,  # an access log line could carry a query string
            ssl_certfile=str(tls_cert) if tls else None,
            ssl_keyfile=str(tls_key) if tls else None,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="console", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> None:
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            threading.Event().wait(0.02)
        if not self._server.started:
            raise ConsoleError(f"the console did not start on port {self.port}")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()
        self.console.evaluators.close()
