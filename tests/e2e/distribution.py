"""CNCF distribution (Debian's ``docker-registry``) on a free loopback port: a foreign
registry for moorage to cache from and replicate to.

Its access log (one ``"GET /v2/... HTTP/1.1" 200`` line a request) tells a test what reached
it: :meth:`Distribution.requests`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

from tests.e2e.server import free_port

DISTRIBUTION = shutil.which("docker-registry") or "/usr/bin/docker-registry"

CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""
AUTH = """\
auth:
  htpasswd:
    realm: distribution
    path: {htpasswd}
"""

_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[0-9.]+" (\d{3})')


def installed() -> bool:
    return os.access(DISTRIBUTION, os.X_OK)


@dataclass
class Distribution:
    """One distribution process on ``root`` (kept across restarts, as its storage is)."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # (user, password): the registry then asks every request for basic credentials.
    login: tuple[str, str] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.root / "distribution.log"

    def start(self) -> Distribution:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        text = CONFIG.format(data=self.root / "data", port=self.port)
        if self.login is not None:
            htpasswd = self.root / "htpasswd"
            hashed = bcrypt.hashpw(self.login[1].encode(), bcrypt.gensalt(rounds=4)).decode()
            htpasswd.write_text(f"{self.login[0]}:{hashed}\n")
            text += AUTH.format(htpasswd=htpasswd)
        config.write_text(text)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [DISTRIBUTION, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/v2/", timeout=1).close()
                return self
            except urllib.error.HTTPError as answered:  # 401: up, and asking for a login
                if answered.code == 401 and self.login is not None:
                    return self
                raise
            except (urllib.error.URLError, ConnectionError):
                assert self.process.poll() is None, self.log_path.read_text()
                assert time.monotonic() < deadline, "distribution did not start"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None

    def requests(self, method: str | None = None, path_part: str = "") -> list[str]:
        """``METHOD path status`` of each request served so far, oldest first."""
        found = []
        for match in _REQUEST.finditer(self.log_path.read_text(errors="replace")):
            if (method is None or match[1] == method) and path_part in match[2]:
                found.append(f"{match[1]} {match[2]} {match[3]}")
        return found
