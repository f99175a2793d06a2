"""Run ``moorage serve`` as a real process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MOORAGE = [sys.executable, "-m", "moorage"]
LISTENING = re.compile(r"moorage listening on https?://[^\s:]+:(\d+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``moorage`` command (not ``serve``) to completion."""
    return subprocess.run(
        [*MOORAGE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class ServerProcess:
    """A moorage server process. ``start`` waits until ``/healthz`` answers.

    With ``cli_options`` False the command line carries only ``extra_args``, so that the
    address and data folder must come from the environment or a config file; ``port`` must
    then match what those say (see :func:`free_port`). With ``tls_ca``, the health check
    speaks HTTPS and trusts that certificate.
    """

    data_dir: Path
    extra_args: list[str] = field(default_factory=lambda: ["--create-on-push", "*"])
    # Emulator mode opens /v2/ to anonymous clients: the registry tests need no login. Tests
    # of authentication and authorization turn it off and log in as IAM users.
    emulator: bool = True
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    cli_options: bool = True
    tls_ca: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    terminating: bool = False

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_ca else "http"
        return f"{scheme}://{self.host}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.tls_ca)) if self.tls_ca else None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start (or restart, after ``stop`` or ``kill``) on the same port and data folder.

        With ``port`` 0 the first start lets the server pick a free port (no race with
        other processes for it) and reads it from the server's "listening on" line.
        """
        self.log_path = self.data_dir.parent / f"moorage-{self.data_dir.name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.terminating = False
        command = [*MOORAGE, "serve"]
        if self.cli_options:
            command += ["--host", "127.0.0.1", "--port", str(self.port)]
            command += ["--data-dir", str(self.data_dir)]
        if self.emulator:
            command.append("--emulator")
        command += self.extra_args
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        deadline = time.monotonic() + timeout
        while not self._healthy(offset):
            if self.process.poll() is not None:
                raise RuntimeError(f"moorage exited early:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"moorage did not become healthy:\n{self.log()}")
            time.sleep(0.05)
        return self

    def _healthy(self, log_offset: int) -> bool:
        if self.port == 0:
            assert self.log_path is not None
            with self.log_path.open("rb") as log:
                log.seek(log_offset)
                found = LISTENING.search(log.read().decode(errors="replace"))
            if found is None:
                return False
            self.port = int(found.group(1))
        try:
            with urllib.request.urlopen(
                f"{self.url}/healthz", timeout=1, context=self.ssl_context()
            ) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def access_log(self) -> list[str]:
        """The access-log lines written so far, oldest first."""
        return [line for line in self.log().splitlines() if " moorage.access " in line]

    def wait_for_log(self, text: str, timeout: float = 15.0) -> None:
        wait_for(lambda: text in self.log(), timeout, f"{text!r} in the server log")

    def terminate(self) -> None:
        """SIGTERM without waiting: a graceful shutdown begins."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.terminating = True

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (unless already sent), then wait: returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None and not self.terminating:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: the crash we test recovery from."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
