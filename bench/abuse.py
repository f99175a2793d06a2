"""What one hostile client costs everyone else: ``python -m bench.abuse [options]``.

A real ``moorage serve`` (IAM on, two accounts) runs with its open-file limit at 1,024, as on
a default Linux login. An *honest* client of account A, from 127.0.0.1, pulls a 4 KiB blob and
pushes a 16 KiB one in a loop; an *attacker*, account B from 127.0.0.2, runs one attack at a
time beside it for ``--seconds``:

- ``idle``: no attack, the baseline;
- ``slowloris``: 1,100 connections that send a request line and a header line every 5 s, and
  reconnect when closed;
- ``trickle``: 70 uploads of a declared 100 MB that send one byte every 5 s;
- ``unsigned-bodies``: 40 connections at a time, each POSTing a 30 MiB body to the API with no
  signature, as fast as they can;
- ``pattern-bomb``: a repository policy denying ``ecr:`` + 13 ``*`` + ``X``, and
  DescribeRepositories on that repository in a loop (each call evaluates the policy);
- ``fuzz``: the seeded malformed-request generator of tests/e2e/test_hostile_clients.py, for
  the whole run (its 500s are counted: the test suite runs it briefly and requires none).

The attacker runs in a process of its own, so that the honest client's event loop is not
the attacker's too. For each it reports the server's peak RSS, the honest client's
operations, p50 and p99 latency and errors. ``--before DIR`` also runs the server from
another checkout's ``src`` (the commit before the fixes, say), so that both columns come
from the same machine and run.
The table goes to stdout and, with ``--out``, into the ``abuse`` section of
docs/benchmarks.md (`bench.sections`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import boto3
from botocore.config import Config

from bench.report import machine_lines
from bench.sections import replace_section
from bench.servers import free_port

HONEST = "127.0.0.1"
ATTACKER = "127.0.0.2"
ACCOUNT_A, ACCOUNT_B = "111111111111", "222222222222"
REGION = "us-east-1"
SCENARIOS = ("idle", "slowloris", "trickle", "unsigned-bodies", "pattern-bomb", "fuzz")
_KEY_ID = re.compile(r"Access key id:\s+(\S+)")
_SECRET = re.compile(r"Secret access key:\s+(\S+)")


@dataclass
class Target:
    """Where the server listens and the accounts' keys: all an attack needs (picklable, for
    the attacker's own process)."""

    url: str
    port: int
    keys: dict[str, tuple[str, str]]

    def ecr(self, account: str) -> Any:
        key, secret = self.keys[account]
        return boto3.client(
            "ecr",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, read_timeout=120),
        )


@dataclass
class Server(Target):
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def rss(self) -> int:
        total = 0
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total = int(line.split()[1]) * 1024
        return total


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def start(source: Path | None, work: Path) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    if source is not None:
        env["PYTHONPATH"] = str(source / "src")
    data = work / "data"
    keys: dict[str, tuple[str, str]] = {}
    for account, name in ((ACCOUNT_A, "honest"), (ACCOUNT_B, "attacker")):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "moorage",
                "admin",
                "init",
                "--data-dir",
                str(data),
                "--account-id",
                account,
                "--name",
                name,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        key, secret = _KEY_ID.search(out), _SECRET.search(out)
        if key is None or secret is None:
            raise RuntimeError(f"admin init printed no key: {out}")
        keys[account] = (key.group(1), secret.group(1))
    port = free_port()
    log_path = work / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "moorage",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data),
                "--log-level",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_limit_files,
        )
    server = Server(f"http://127.0.0.1:{port}", port, keys, process, log_path)
    deadline = time.monotonic() + 60
    while True:
        with suppress(OSError):
            import urllib.request

            if urllib.request.urlopen(f"{server.url}/healthz", timeout=2).status == 200:
                break
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(log_path.read_text()[-3000:])
        time.sleep(0.2)
    server.ecr(ACCOUNT_A).create_repository(repositoryName="honest/app")
    server.ecr(ACCOUNT_B).create_repository(repositoryName="attacker/app")
    return server


def docker_password(server: Server, account: str) -> str:
    token = server.ecr(account).get_authorization_token()["authorizationData"][0]
    return base64.b64decode(token["authorizationToken"]).decode().split(":", 1)[1]


# -- the honest client -------------------------------------------------------------------------


@dataclass
class Honest:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    blob: bytes = field(default_factory=lambda: os.urandom(4096))

    def session(self, password: str) -> aiohttp.ClientSession:
        headers = {"Authorization": aiohttp.encode_basic_auth("AWS", password)}
        connector = aiohttp.TCPConnector(local_addr=(HONEST, 0))
        timeout = aiohttp.ClientTimeout(total=30)
        return aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout)

    async def prepare(self, server: Server, password: str) -> None:
        """Push the blob the loop pulls, before any attack starts."""
        async with self.session(password) as http:
            await self._push(http, server.url, self.blob, self.digest)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.blob).hexdigest()

    async def run(self, server: Server, password: str, until: float) -> None:
        blob, digest = self.blob, self.digest
        async with self.session(password) as http:
            count = 0
            while time.monotonic() < until:
                count += 1
                started = time.monotonic()
                try:
                    if count % 5 == 0:
                        fresh = os.urandom(16384)
                        await self._push(
                            http, server.url, fresh, "sha256:" + hashlib.sha256(fresh).hexdigest()
                        )
                    else:
                        async with http.get(f"{server.url}/v2/honest/app/blobs/{digest}") as r:
                            body = await r.read()
                            if r.status != 200 or body != blob:
                                raise RuntimeError(f"pull answered {r.status}")
                except Exception as exc:
                    self.errors += 1
                    if len(self.error_samples) < 3:
                        self.error_samples.append(repr(exc)[:200])
                self.latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.02)

    @staticmethod
    async def _push(http: aiohttp.ClientSession, url: str, blob: bytes, digest: str) -> None:
        async with http.post(
            f"{url}/v2/honest/app/blobs/uploads/", params={"digest": digest}, data=blob
        ) as response:
            if response.status != 201:
                raise RuntimeError(f"push answered {response.status}: {await response.text()}")


# -- the attacks -------------------------------------------------------------------------------


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(ATTACKER, 0))


async def slowloris(server: Target, until: float, _: str) -> None:
    async def one() -> None:
        while time.monotonic() < until:
            with suppress(OSError, asyncio.IncompleteReadError):
                _, writer = await _open(server.port)
                writer.write(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
                while time.monotonic() < until and not writer.is_closing():
                    await asyncio.sleep(5)
                    writer.write(b"X-a: b\r\n")
                    await writer.drain()
                writer.close()
            await asyncio.sleep(0.5)

    await asyncio.gather(*(one() for _ in range(1100)), return_exceptions=True)


async def trickle(server: Target, until: float, password: str) -> None:
    auth = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()

    async def one() -> None:
        while time.monotonic() < until:
            with suppress(OSError, asyncio.IncompleteReadError, ValueError):
                reader, writer = await _open(server.port)
                writer.write(
                    b"POST /v2/attacker/app/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n"
                    + f"Authorization: {auth}\r\nContent-Length: 0\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                location = re.search(rb"Location: (\S+)", head, re.I)
                if location is None:
                    writer.close()
                    await asyncio.sleep(1)
                    continue
                writer.write(
                    b"PATCH "
                    + location.group(1)
                    + b" HTTP/1.1\r\nHost: x\r\n"
                    + f"Authorization: {auth}\r\n".encode()
                    + b"Content-Type: application/octet-stream\r\n"
                    + b"Content-Length: 100000000\r\n\r\n"
                )
                while time.monotonic() < until and not writer.is_closing():
                    writer.write(b"a")
                    await writer.drain()
                    await asyncio.sleep(5)
                writer.close()
            await asyncio.sleep(0.5)

    await asyncio.gather(*(one() for _ in range(70)), return_exceptions=True)


async def unsigned_bodies(server: Target, until: float, _: str) -> None:
    chunk = b" " * (1 << 20)

    async def one() -> None:
        while time.monotonic() < until:
            with suppress(OSError, asyncio.IncompleteReadError):
                reader, writer = await _open(server.port)
                writer.write(
                    b"POST / HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/x-amz-json-1.1\r\n"
                    b"X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.UploadLayerPart\r\n"
                    + f"Content-Length: {30 << 20}\r\n\r\n".encode()
                )
                for _ in range(30):
                    if writer.is_closing():
                        break
                    writer.write(chunk)
                    await writer.drain()
                await reader.read(65536)
                writer.close()

    await asyncio.gather(*(one() for _ in range(40)), return_exceptions=True)


async def pattern_bomb(server: Target, until: float, _: str) -> None:
    client = server.ecr(ACCOUNT_B)
    with suppress(client.exceptions.RepositoryAlreadyExistsException):
        client.create_repository(repositoryName="attacker/bomb")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "ecr:" + "*" * 13 + "X"}],
    }
    client.set_repository_policy(repositoryName="attacker/bomb", policyText=json.dumps(policy))

    def loop() -> None:
        # Paced: the cost measured is the pattern's, not that of a flood of requests.
        while time.monotonic() < until:
            with suppress(Exception):
                client.describe_repositories(repositoryNames=["attacker/bomb"])
            time.sleep(0.1)

    await asyncio.gather(*(asyncio.to_thread(loop) for _ in range(2)))


_CHECKOUT = str(Path(__file__).resolve().parent.parent)


async def fuzz(server: Target, until: float, _: str) -> None:
    sys.path.insert(0, _CHECKOUT)
    from tests.e2e.client import raw_request
    from tests.e2e.test_hostile_clients import Generator

    generator = Generator(seed=int(time.time()))
    failures = 0

    def loop() -> None:
        nonlocal failures
        while time.monotonic() < until:
            _, headers, body = generator.api_request()
            headers.pop("Authorization", None)
            with suppress(OSError):
                if raw_request(server.port, "POST", "/", headers, body=body).status >= 500:
                    failures += 1
            method, path, oci_headers, oci_body = generator.oci_request()
            with suppress(OSError, UnicodeEncodeError):
                response = raw_request(server.port, method, path, oci_headers, body=oci_body)
                if response.status >= 500:
                    failures += 1
            time.sleep(0.02)  # paced, as the pattern bomb: malformed, not many

    await asyncio.to_thread(loop)
    FUZZ_FAILURES.append(failures)


FUZZ_FAILURES: list[int] = []


def _attack_process(
    name: str, target: Target, until_wall: float, password: str, failures: Any
) -> None:
    """An attack in a process of its own: the honest client's event loop does not share its
    time with the attacker's (only the machine's two cores)."""
    until = time.monotonic() + (until_wall - time.time())
    asyncio.run(ATTACKS[name](target, until, password))
    failures.value = sum(FUZZ_FAILURES)


ATTACKS: dict[str, Callable[[Target, float, str], Awaitable[None]]] = {
    "slowloris": slowloris,
    "trickle": trickle,
    "unsigned-bodies": unsigned_bodies,
    "pattern-bomb": pattern_bomb,
    "fuzz": fuzz,
}


@dataclass(frozen=True)
class Row:
    scenario: str
    peak_rss_mib: float
    operations: int
    p50_ms: float
    p99_ms: float
    errors: int
    samples: tuple[str, ...]


async def scenario(server: Server, name: str, seconds: float) -> Row:
    passwords = {a: docker_password(server, a) for a in (ACCOUNT_A, ACCOUNT_B)}
    honest = Honest()
    await honest.prepare(server, passwords[ACCOUNT_A])
    until = time.monotonic() + seconds
    peak = server.rss()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            with suppress(OSError):
                peak = max(peak, server.rss())
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    attacker = None
    failures = multiprocessing.get_context("spawn").Value("i", 0)
    if name in ATTACKS:
        target = Target(server.url, server.port, server.keys)
        attacker = multiprocessing.get_context("spawn").Process(
            target=_attack_process,
            args=(name, target, time.time() + seconds, passwords[ACCOUNT_B], failures),
        )
        attacker.start()
    try:
        await asyncio.wait_for(honest.run(server, passwords[ACCOUNT_A], until), seconds + 60)
    finally:
        if attacker is not None:
            attacker.join(60)
            if attacker.is_alive():
                attacker.kill()
        stop.set()
        sampler.join()
    if name == "fuzz":
        FUZZ_FAILURES.append(failures.value)
    ordered = sorted(honest.latencies) or [0.0]
    return Row(
        name,
        peak / (1 << 20),
        len(honest.latencies),
        statistics.median(ordered) * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        honest.errors,
        tuple(honest.error_samples),
    )


def run(source: Path | None, names: list[str], seconds: float) -> list[Row]:
    rows = []
    for name in names:
        work = Path(tempfile.mkdtemp(prefix="bench-abuse-"))
        server = start(source, work)  # a fresh server per attack: no attack inherits another's
        try:
            rows.append(asyncio.run(scenario(server, name, seconds)))
        finally:
            assert server.process is not None
            server.process.terminate()
            try:
                server.process.wait(30)
            except subprocess.TimeoutExpired:
                server.process.kill()
            shutil.rmtree(work, ignore_errors=True)
        print(f"  {rows[-1]}", file=sys.stderr)
    return rows


def _label(source: Path | None) -> str:
    where = source or Path(__file__).resolve().parent.parent
    out = subprocess.run(
        ["git", "log", "-1", "--format=%h"], capture_output=True, text=True, cwd=where
    )
    return out.stdout.strip() or str(where)


def table(columns: list[tuple[str, list[Row]]]) -> str:
    header = "| attack |" + "".join(
        f" {label}: RSS MiB | honest ops | p50 ms | p99 ms | errors |" for label, _ in columns
    )
    rule = "|---|" + "---:|---:|---:|---:|---:|" * len(columns)
    lines = [header, rule]
    for index, row in enumerate(columns[0][1]):
        cells = [row.scenario]
        for _, rows in columns:
            r = rows[index]
            cells += [
                f"{r.peak_rss_mib:.0f}",
                str(r.operations),
                f"{r.p50_ms:.1f}",
                f"{r.p99_ms:.1f}",
                str(r.errors),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per attack [20]")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="attacks to run")
    parser.add_argument(
        "--before", type=Path, help="a checkout of the commit before the fixes: a second column"
    )
    parser.add_argument("--out", type=Path, help="write the abuse section of this Markdown file")
    args = parser.parse_args(argv)
    names = args.only or list(SCENARIOS)
    if "idle" not in names:
        names.insert(0, "idle")
    columns: list[tuple[str, list[Row]]] = []
    if args.before is not None:
        print(f"before ({_label(args.before)}):", file=sys.stderr)
        columns.append((f"before {_label(args.before)}", run(args.before, names, args.seconds)))
    print(f"now ({_label(None)}):", file=sys.stderr)
    columns.append((f"now {_label(None)}", run(None, names, args.seconds)))
    text = table(columns)
    print(text)
    if FUZZ_FAILURES:
        print(f"fuzz: 5xx answers per run: {FUZZ_FAILURES}")
    if args.out is not None:
        body = "\n".join(
            [
                "## Hostile clients (`python -m bench.abuse"
                + (" --before DIR" if args.before else "")
                + f" --seconds {args.seconds:g}`)",
                "",
                "The honest client (account A, 127.0.0.1) pulls a 4 KiB blob and pushes a 16 KiB",
                "one in a loop while the attacker (account B, 127.0.0.2) runs one attack; a fresh",
                "server per attack, its open-file limit at 1,024. RSS is the server's peak.",
                "",
                *machine_lines(),
                "",
                text,
                "",
                *(
                    ["5xx answers to the fuzz generator: " + ", ".join(map(str, FUZZ_FAILURES))]
                    if FUZZ_FAILURES
                    else []
                ),
            ]
        )
        replace_section(args.out, "abuse", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
