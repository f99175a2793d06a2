"""Start, watch and stop the registries under test.

A registry is only "a command line and a base URL": `ServerSpec` builds the command for a port
and a fresh data directory, `start_server` runs it, polls ``GET /v2/`` until 200 or 401, and
returns a `RunningServer`. While it runs, `RunningServer.usage` reads the process tree's CPU
seconds and peak RSS from ``/proc`` (no psutil), so workloads can take deltas and the report
can show totals for the whole run. `RunningServer.stop` sends SIGTERM and waits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ServerSpec:
    """How to run one registry: a name, a command builder and a version probe."""

    name: str
    command: Callable[[int, Path], list[str]]
    version: Callable[[], str]


@dataclass(frozen=True)
class Usage:
    """CPU seconds and peak resident memory of a process tree at one instant.

    `cpu_s` is utime+stime of every live process in the tree plus what their reaped children
    used (cutime+cstime). `peak_rss_bytes` adds up VmHWM of the live processes: exact for a
    single process, an upper bound for several (their peaks need not coincide).
    """

    cpu_s: float
    peak_rss_bytes: int
    processes: int


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    """Return `pid` and all its descendants that are alive now."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += _children(p)
    return tree


def _proc_usage(pid: int) -> tuple[float, int]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the parenthesised command name; utime is field 14 (index 11 here).
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    hwm_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm_kib = int(line.split()[1])
    return ticks / CLK_TCK, hwm_kib * 1024


def tree_usage(pid: int) -> Usage:
    """Measure CPU seconds and peak RSS of `pid` and its descendants (see `Usage`)."""
    cpu, rss, count = 0.0, 0, 0
    for p in process_tree(pid):
        try:
            c, r = _proc_usage(p)
        except (OSError, ValueError):
            continue  # exited between listing and reading
        cpu, rss, count = cpu + c, rss + r, count + 1
    return Usage(cpu, rss, count)


def system_busy_s() -> float:
    """Return the CPU seconds all cores have spent busy since boot (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def wait_for_quiet(max_wait_s: float, cores: float = 0.3, window_s: float = 2.0) -> float:
    """Wait until other work uses less than `cores` CPUs over `window_s`, at most `max_wait_s`.

    The machine may be shared; this keeps a run from starting in the middle of someone else's
    build. Returns the CPUs in use over the last window (the caller reports it).
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        before = system_busy_s()
        time.sleep(window_s)
        busy = (system_busy_s() - before) / window_s
        if busy < cores or time.monotonic() >= deadline:
            return busy


class ServerError(RuntimeError):
    """The server did not become ready, or exited early; the message carries its log tail."""


@dataclass
class RunningServer:
    """A started registry process, its base URL, data directory and log file."""

    spec: ServerSpec
    argv: list[str]
    process: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    log_path: Path

    def usage(self) -> Usage:
        """Measure the server's process tree now; raises `ServerError` if it has exited."""
        if self.process.poll() is not None:
            raise ServerError(f"{self.spec.name} exited ({self.process.returncode})" + self.log())
        return tree_usage(self.process.pid)

    def log(self, limit: int = 2000) -> str:
        """Return the last `limit` characters of the server's combined stdout/stderr."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n--- server log tail ---\n" + text[-limit:] if text else ""

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM the server, wait for it (SIGKILL after `timeout_s`), delete its data."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)
        return self.process.returncode


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/v2/", timeout=2) as resp:
            return int(resp.status) == 200
    except urllib.error.HTTPError as e:
        return e.code == 401
    except OSError:
        return False


def start_server(spec: ServerSpec) -> RunningServer:
    """Start `spec` on a free loopback port with a fresh data directory; wait until ready.

    Raises `ServerError` (with the log tail) if it exits or is not ready within a minute.
    """
    work = Path(tempfile.mkdtemp(prefix=f"bench-{spec.name}-"))
    data_dir = work / "data"
    data_dir.mkdir()
    port = free_port()
    log_path = work / "server.log"
    argv = spec.command(port, data_dir)
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    server = RunningServer(spec, argv, process, f"http://127.0.0.1:{port}", data_dir, log_path)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _ready(server.base_url):
        if process.poll() is not None or time.monotonic() > deadline:
            log_tail = server.log()
            server.stop()
            raise ServerError(f"{spec.name} did not become ready at {server.base_url}{log_tail}")
        time.sleep(0.1)
    return server


# -- the two registries ----------------------------------------------------------------------

DISTRIBUTION_BIN = "/usr/bin/docker-registry"

DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data_dir}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def _distribution_command(port: int, data_dir: Path) -> list[str]:
    config = data_dir.parent / "config.yml"
    config.write_text(DISTRIBUTION_CONFIG.format(data_dir=data_dir, port=port))
    return [DISTRIBUTION_BIN, "serve", str(config)]


def _distribution_version() -> str:
    out = subprocess.run([DISTRIBUTION_BIN, "--version"], capture_output=True, text=True)
    words = (out.stdout or out.stderr).split()  # "<path> github.com/docker/distribution 2.8.2+ds1"
    return " ".join(reversed(words[-2:])) if len(words) >= 2 else "unknown"


def _moorage_command(port: int, data_dir: Path) -> list[str]:
    exe = shutil.which("moorage") or "moorage"
    return [
        exe,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--create-on-push",
        "*",
        # Open /v2/ like the reference registry's default; every request still goes through
        # authentication and the policy engine (as the emulator account's root).
        "--emulator",
        # warning, like distribution's `warn` with its access log off: no line per request.
        "--log-level",
        "warning",
    ]


def _moorage_version() -> str:
    from importlib.metadata import version

    def git(*args: str) -> str:
        here = Path(__file__).resolve().parent
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=here).stdout

    rev = git("rev-parse", "--short", "HEAD").strip()
    # The package is installed editable: the server runs whatever src/ holds right now.
    dirty = " + uncommitted changes in src/" if git("status", "--porcelain", "--", "../src") else ""
    return version("moorage") + (f" (git {rev}{dirty})" if rev else "")


SERVERS: dict[str, ServerSpec] = {
    "moorage": ServerSpec("moorage", _moorage_command, _moorage_version),
    "distribution": ServerSpec("distribution", _distribution_command, _distribution_version),
}


def stop_on_sigterm() -> None:
    """Make SIGTERM interrupt the benchmark as Ctrl-C does, so that its ``finally`` blocks
    stop the registries it started (by default SIGTERM ends Python at once, leaving them)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
