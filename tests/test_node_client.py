"""The Node.js client's own test (clients/node, node:test) against a real `termdesk serve`:
`npm ci` installs the locked dependencies, then `npm test` calls the server this module
starts. Needs Node 20+ and npm with the npm registry."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_server import ServerProcess

NODE_CLIENT = Path(__file__).resolve().parents[1] / "clients" / "node"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = ServerProcess(tmp_path_factory.mktemp("node"))
    yield running
    running.stop()


def npm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("npm")
    if executable is None:
        pytest.fail("no `npm` on PATH: the Node.js client test needs Node 20+ and npm")
    return subprocess.run(
        [executable, *args],
        cwd=NODE_CLIENT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class TestNodeClient:
    def test_node_client_reads_a_decision_and_a_field_violation(
        self, server: ServerProcess
    ) -> None:
        """`npm test` passes against the running server (its output shows on failure)."""
        installed = npm("ci", "--no-audit", "--no-fund")
        assert 0 == installed.returncode, installed.stdout + installed.stderr
        tested = npm("test", env={**os.environ, "TERMDESK_ADDRESS": server.address})
        assert 0 == tested.returncode, tested.stdout + tested.stderr
        assert "# fail 0" in tested.stdout
