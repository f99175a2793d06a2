"""Garbage collection over a store of many small blobs: ``python -m bench.gc [options]``.

Both registries get the same store through their HTTP APIs: ``--blobs`` small random blobs
(64-512 bytes) pushed into one repository, image manifests (``--layers`` layers each, plus a
config blob) referencing the first half of them, the other half never referenced, and every
``--delete-every``-th image deleted by digest so that its layers and config become garbage too.
Then each registry collects:

- moorage keeps serving, and ``moorage gc --grace-period 0 --upload-grace-period 0`` runs next
  to it on the same data directory (after a timed ``--dry-run``), while a paced reader GETs
  manifests and HEADs referenced blobs, to show that the registry stays available;
- distribution is stopped, ``docker-registry garbage-collect CONFIG`` runs (after a timed
  ``--dry-run``), and the server is started again: its collection is offline.

Each collection's wall time, CPU time and peak RSS come from ``wait4`` on the collecting
process. Blob files and bytes are counted on disk before and after; afterwards every kept
manifest and every referenced blob must answer 200 (a sample of them is downloaded and its
digest checked), and a sample of the garbage must answer 404. The table goes to stdout and,
with ``--out``, into the ``gc`` section of ``docs/benchmarks.md`` (`bench.sections`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bench.oci_client import (
    OCI_CONFIG,
    OCI_LAYER,
    Descriptor,
    OciClient,
    UnexpectedResponseError,
    image_manifest,
    sha256_digest,
)
from bench.report import machine_lines
from bench.sections import replace_section
from bench.servers import (
    READY_TIMEOUT_S,
    SERVERS,
    RunningServer,
    ServerError,
    start_server,
    stop_on_sigterm,
    wait_for_quiet,
)

REPO = "bench/gc"
T = TypeVar("T")
MiB = 1 << 20


@dataclass(frozen=True)
class GcParams:
    """Sizes and counts of one run (`--quick` shrinks ``blobs``)."""

    blobs: int = 100_000
    min_size: int = 64
    max_size: int = 512
    layers: int = 50
    delete_every: int = 10
    concurrency: int = 32
    verify_bodies: int = 500
    verify_garbage: int = 500
    reader_rps: float = 50.0
    seed: int = 1


@dataclass(frozen=True)
class Image:
    """One image of the plan: its config blob, manifest bytes and the layer indices it uses."""

    config: bytes
    manifest: bytes
    digest: str
    tag: str
    layers: range


@dataclass
class Plan:
    """The store both registries get: blobs, images, and which images are deleted."""

    blobs: list[bytes]
    digests: list[str]
    images: list[Image]
    deleted: set[int]

    @property
    def kept(self) -> list[Image]:
        return [img for i, img in enumerate(self.images) if i not in self.deleted]

    def referenced(self) -> list[tuple[str, int]]:
        """Digest and size of every blob a kept manifest references (layers and configs)."""
        out = []
        for img in self.kept:
            out.append((sha256_digest(img.config), len(img.config)))
            out += [(self.digests[i], len(self.blobs[i])) for i in img.layers]
        return out

    def garbage(self) -> list[str]:
        """Digest of every blob that no kept manifest references after the deletes."""
        referenced = {d for d, _ in self.referenced()}
        dead_configs = [sha256_digest(self.images[i].config) for i in sorted(self.deleted)]
        return [d for d in self.digests if d not in referenced] + dead_configs


def make_plan(p: GcParams) -> Plan:
    """Generate the blobs and manifests (deterministic for a seed; random bytes)."""
    rng = random.Random(p.seed)
    blobs = [rng.randbytes(rng.randint(p.min_size, p.max_size)) for _ in range(p.blobs)]
    digests = [sha256_digest(b) for b in blobs]
    images = []
    for j in range(p.blobs // 2 // p.layers):
        layers = range(j * p.layers, (j + 1) * p.layers)
        config = json.dumps({"architecture": "amd64", "os": "linux", "bench": f"gc-{j}"}).encode()
        manifest = image_manifest(
            Descriptor(OCI_CONFIG, sha256_digest(config), len(config)),
            [Descriptor(OCI_LAYER, digests[i], len(blobs[i])) for i in layers],
        )
        images.append(Image(config, manifest, sha256_digest(manifest), f"img-{j}", layers))
    deleted = {j for j in range(len(images)) if j % p.delete_every == p.delete_every - 1}
    return Plan(blobs, digests, images, deleted)


# -- on disk ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskUsage:
    """Blob files under the blob root, and every file under the data directory."""

    blob_files: int
    files: int
    apparent_bytes: int  # like `du -sb` (files only)
    allocated_bytes: int  # st_blocks: what the filesystem spends on them


def disk_usage(data_dir: Path, blob_root: Path) -> DiskUsage:
    """Count files and bytes under `data_dir` and the blob files under `blob_root`."""
    files = apparent = allocated = blob_files = 0
    for dirpath, _dirs, names in os.walk(data_dir):
        in_blobs = Path(dirpath).is_relative_to(blob_root)
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            files += 1
            apparent += st.st_size
            allocated += st.st_blocks * 512
            blob_files += in_blobs
    return DiskUsage(blob_files, files, apparent, allocated)


def blob_root(name: str, data_dir: Path) -> Path:
    """Where each registry keeps blob bytes (manifests too, for distribution)."""
    if name == "distribution":
        return data_dir / "docker" / "registry" / "v2" / "blobs"
    return data_dir / "blobs"


# -- HTTP ------------------------------------------------------------------------------------


async def _pool(
    items: Sequence[T], worker: Callable[[T], Awaitable[object]], concurrency: int
) -> None:
    """Run ``worker(item)`` for every item with at most `concurrency` in flight."""
    it = iter(items)

    async def run() -> None:
        for item in it:
            await worker(item)

    await asyncio.gather(*(run() for _ in range(concurrency)))


async def delete_manifest(client: OciClient, name: str, digest: str) -> None:
    """DELETE a manifest by digest; both registries answer 202."""
    url = client.url(f"/v2/{name}/manifests/{digest}")
    async with client.session.delete(url) as resp:
        if resp.status != 202:
            await client._fail("DELETE", url, resp)
        await resp.read()


async def push_store(client: OciClient, plan: Plan, p: GcParams) -> dict[str, float]:
    """Push every blob, config and manifest, then delete the planned images; time each step."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    await _pool(
        list(range(len(plan.blobs))),
        lambda i: client.push_blob_bytes(REPO, plan.blobs[i], plan.digests[i]),
        p.concurrency,
    )
    await _pool(plan.images, lambda img: client.push_blob_bytes(REPO, img.config), p.concurrency)
    out["push_blobs_s"] = time.perf_counter() - start
    start = time.perf_counter()
    await _pool(
        plan.images, lambda img: client.put_manifest(REPO, img.tag, img.manifest), p.concurrency
    )
    deleted = [plan.images[i].digest for i in sorted(plan.deleted)]
    await _pool(deleted, lambda d: delete_manifest(client, REPO, d), p.concurrency)
    out["push_manifests_s"] = time.perf_counter() - start
    return out


async def _blob_status(client: OciClient, digest: str) -> int:
    async with client.session.head(client.url(f"/v2/{REPO}/blobs/{digest}")) as resp:
        await resp.read()
        return resp.status


async def verify(client: OciClient, plan: Plan, p: GcParams) -> dict[str, float]:
    """Check the store after collection: what is referenced answers 200, garbage 404."""
    rng = random.Random(p.seed + 1)
    kept_ok = ref_ok = garbage_gone = 0
    referenced = plan.referenced()

    async def manifest(img: Image) -> None:
        nonlocal kept_ok
        body = await client.get_manifest(REPO, img.tag)
        kept_ok += body == img.manifest  # after the await: `x += await ...` loses updates

    async def head(item: tuple[str, int]) -> None:
        nonlocal ref_ok
        status = await _blob_status(client, item[0])
        ref_ok += status == 200

    async def pull(item: tuple[str, int]) -> None:
        await client.pull_blob(REPO, item[0], verify=True)

    async def gone(digest: str) -> None:
        nonlocal garbage_gone
        status = await _blob_status(client, digest)
        garbage_gone += status == 404

    start = time.perf_counter()
    await _pool(plan.kept, manifest, p.concurrency)
    await _pool(referenced, head, p.concurrency)
    sample = rng.sample(referenced, min(p.verify_bodies, len(referenced)))
    await _pool(sample, pull, p.concurrency)  # raises on a wrong status or body
    garbage = plan.garbage()
    await _pool(rng.sample(garbage, min(p.verify_garbage, len(garbage))), gone, p.concurrency)
    return {
        "manifests_ok": kept_ok,
        "manifests_expected": len(plan.kept),
        "referenced_ok": ref_ok,
        "referenced_expected": len(referenced),
        "garbage_404": garbage_gone,
        "garbage_sampled": min(p.verify_garbage, len(garbage)),
        "verify_s": time.perf_counter() - start,
    }


@dataclass
class ReaderStats:
    """Reads served while a collection ran: count, failures and latencies."""

    ok: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_error: str = ""


async def paced_reader(
    client: OciClient, plan: Plan, rps: float, stop: asyncio.Event
) -> ReaderStats:
    """GET a kept manifest, then HEAD one of its layers, `rps` requests a second until `stop`."""
    stats = ReaderStats()
    rng = random.Random(7)
    kept = plan.kept
    interval = 1 / rps
    next_at = time.perf_counter()
    while not stop.is_set():
        img = rng.choice(kept)
        digest = plan.digests[rng.choice(img.layers)]
        for is_manifest in (True, False):
            start = time.perf_counter()
            try:
                if is_manifest:
                    await client.get_manifest(REPO, img.tag)
                elif not await client.blob_exists(REPO, digest):
                    raise ValueError(f"HEAD {digest} -> 404 during collection")
                stats.ok += 1
            except (UnexpectedResponseError, aiohttp.ClientError, ValueError) as e:
                stats.failed += 1
                stats.first_error = stats.first_error or f"{type(e).__name__}: {e}"
            stats.latencies_ms.append((time.perf_counter() - start) * 1000)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    return stats


# -- collecting ------------------------------------------------------------------------------


@dataclass
class Collection:
    """One run of a collector process, measured by ``wait4``."""

    argv: list[str]
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    returncode: int
    output: str


def run_measured(argv: list[str], log_path: Path) -> Collection:
    """Run `argv` to completion; return its wall time, CPU time and peak RSS (``wait4``).

    Output (progress bars, distribution's one line per blob) goes to `log_path`; the
    returned `output` is its tail.
    """
    with log_path.open("wb") as log:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # we reaped it, not Popen
    tail = log_path.read_text(errors="replace")[-1500:]
    return Collection(
        argv,
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss * 1024,
        process.returncode,
        tail,
    )


def gc_commands(name: str, server: RunningServer) -> tuple[list[str], list[str]]:
    """The dry-run and the real collection commands for `server`'s data."""
    if name == "distribution":
        config = str(server.data_dir.parent / "config.yml")
        exe = server.argv[0]
        return [exe, "garbage-collect", "--dry-run", config], [exe, "garbage-collect", config]
    exe = server.argv[0]
    real = [
        exe,
        "gc",
        "--data-dir",
        str(server.data_dir),
        "--grace-period",
        "0",
        "--upload-grace-period",
        "0",
    ]
    return [*real[:2], "--dry-run", *real[2:]], real


def halt(server: RunningServer, timeout_s: float = 20.0) -> None:
    """SIGTERM the server and wait, keeping its data (`RunningServer.stop` deletes it)."""
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def restart(server: RunningServer) -> None:
    """Start `server`'s command again on its data directory and port; wait until ready."""
    with server.log_path.open("ab") as log:
        server.process = subprocess.Popen(
            server.argv, stdout=log, stderr=subprocess.STDOUT, cwd=server.data_dir.parent
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(server.base_url + "/v2/", timeout=2):
                return
        except OSError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise ServerError(f"{server.spec.name} did not come back{server.log()}")
        time.sleep(0.1)


# -- one registry ----------------------------------------------------------------------------


@dataclass
class Result:
    """Everything measured on one registry."""

    name: str
    version: str = ""
    command: list[str] = field(default_factory=list)
    setup: dict[str, float] = field(default_factory=dict)
    before: DiskUsage | None = None
    after: DiskUsage | None = None
    dry_run: Collection | None = None
    collection: Collection | None = None
    offline_s: float = 0.0
    reader: ReaderStats | None = None
    checks: dict[str, float] = field(default_factory=dict)
    error: str = ""


def _session(p: GcParams) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=p.concurrency + 2),
        timeout=aiohttp.ClientTimeout(total=None, sock_read=300),
    )


async def bench_one(name: str, plan: Plan, p: GcParams, workdir: Path) -> Result:
    """Build the store on registry `name`, collect, count, verify; stop the server."""
    result = Result(name, SERVERS[name].version())
    server = await asyncio.to_thread(start_server, SERVERS[name])
    result.command = server.argv
    root = blob_root(name, server.data_dir)
    dry_argv, gc_argv = gc_commands(name, server)
    try:
        async with _session(p) as session:
            client = OciClient(session, server.base_url)
            print(f"{name}: pushing {len(plan.blobs):,} blobs ...", file=sys.stderr, flush=True)
            result.setup = await push_store(client, plan, p)
        result.before = await asyncio.to_thread(disk_usage, server.data_dir, root)
        print(f"{name}: collecting ...", file=sys.stderr, flush=True)
        if name == "distribution":
            offline_start = time.perf_counter()
            await asyncio.to_thread(halt, server)
            result.dry_run = await asyncio.to_thread(run_measured, dry_argv, workdir / "dry.log")
            result.collection = await asyncio.to_thread(run_measured, gc_argv, workdir / "gc.log")
            await asyncio.to_thread(restart, server)
            result.offline_s = time.perf_counter() - offline_start
        else:
            result.dry_run = await asyncio.to_thread(run_measured, dry_argv, workdir / "dry.log")
            async with _session(p) as session:
                stop = asyncio.Event()
                reader = asyncio.create_task(
                    paced_reader(OciClient(session, server.base_url), plan, p.reader_rps, stop)
                )
                try:
                    result.collection = await asyncio.to_thread(
                        run_measured, gc_argv, workdir / "gc.log"
                    )
                finally:
                    stop.set()
                    result.reader = await reader
        for run in (result.dry_run, result.collection):
            if run.returncode != 0:
                raise RuntimeError(f"{shlex.join(run.argv)} exited {run.returncode}\n{run.output}")
        result.after = await asyncio.to_thread(disk_usage, server.data_dir, root)
        async with _session(p) as session:
            result.checks = await verify(OciClient(session, server.base_url), plan, p)
    except Exception as e:
        result.error = f"{type(e).__name__}: {e}" + server.log(800)
    finally:
        await asyncio.to_thread(server.stop)
    return result


# -- report ----------------------------------------------------------------------------------


def _rows(
    results: list[Result], plan: Plan, p: GcParams
) -> list[tuple[str, list[float | None], int, bool]]:
    """(label, value per registry, digits, whether a ratio means anything) for the table."""

    # Any: a registry that failed half-way has None where a figure would be; it shows "-".
    def each(get: Callable[[Any], float]) -> list[float | None]:
        out: list[float | None] = []
        for r in results:
            try:
                out.append(float(get(r)))
            except (AttributeError, TypeError, KeyError):
                out.append(None)
        return out

    def p99(r: Any) -> float:
        lat: list[float] = sorted(r.reader.latencies_ms)
        return lat[min(len(lat) - 1, int(len(lat) * 0.99))]

    return [
        ("push setup: blobs and configs, s", each(lambda r: r.setup["push_blobs_s"]), 1, True),
        (
            "push setup: manifest PUTs and DELETEs, s",
            each(lambda r: r.setup["push_manifests_s"]),
            1,
            True,
        ),
        ("blob files before", each(lambda r: r.before.blob_files), 0, False),
        ("blob files after", each(lambda r: r.after.blob_files), 0, False),
        ("blob files freed", each(lambda r: r.before.blob_files - r.after.blob_files), 0, False),
        (
            "bytes before (apparent, du -sb), MiB",
            each(lambda r: r.before.apparent_bytes / MiB),
            1,
            True,
        ),
        ("bytes after (apparent), MiB", each(lambda r: r.after.apparent_bytes / MiB), 1, True),
        ("disk allocated before, MiB", each(lambda r: r.before.allocated_bytes / MiB), 1, True),
        ("disk allocated after, MiB", each(lambda r: r.after.allocated_bytes / MiB), 1, True),
        ("gc --dry-run, wall s", each(lambda r: r.dry_run.wall_s), 2, True),
        ("gc, wall s", each(lambda r: r.collection.wall_s), 2, True),
        ("gc, CPU s", each(lambda r: r.collection.cpu_s), 2, True),
        ("gc, peak RSS MiB", each(lambda r: r.collection.peak_rss_bytes / MiB), 1, True),
        ("registry offline (stop, gc, restart), s", each(lambda r: r.offline_s), 2, False),
        ("reads served during gc", each(lambda r: r.reader.ok if r.reader else 0), 0, False),
        ("reads failed during gc", each(lambda r: r.reader.failed), 0, False),
        ("read p99 during gc, ms", each(p99), 1, False),
        ("kept manifests GET 200 after gc", each(lambda r: r.checks["manifests_ok"]), 0, False),
        ("referenced blobs HEAD 200 after gc", each(lambda r: r.checks["referenced_ok"]), 0, False),
        (
            f"garbage sample HEAD 404 (of {p.verify_garbage})",
            each(lambda r: r.checks["garbage_404"]),
            0,
            False,
        ),
    ]


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(results: list[Result], plan: Plan, p: GcParams, markdown: bool) -> str:
    """The comparison table (Markdown or plain text), moorage/distribution ratio last."""
    header = ["", *(r.name for r in results)]
    ratio = len(results) == 2 and [r.name for r in results] == ["moorage", "distribution"]
    if ratio:
        header.append("moorage/distribution")
    rows = []
    for label, values, digits, comparable in _rows(results, plan, p):
        row = [label, *(_fmt(v, digits) for v in values)]
        if ratio:
            a, b = values
            row.append(f"{a / b:.2f}x" if comparable and a is not None and b else "")
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, ["-" * w for w in widths], *rows]
    )


def expected(plan: Plan, p: GcParams) -> str:
    garbage = len(plan.garbage())
    return (
        f"{p.blobs:,} blobs of {p.min_size}-{p.max_size} bytes pushed into `{REPO}` with "
        f"{p.concurrency} concurrent clients, plus {len(plan.images):,} config blobs; "
        f"{len(plan.images):,} image manifests of {p.layers} layers reference the first half; "
        f"{len(plan.deleted):,} of them (every {p.delete_every}th) are then deleted by digest. "
        f"Garbage: {garbage:,} blobs ({p.blobs - p.blobs // 2:,} never referenced, "
        f"{len(plan.deleted) * p.layers:,} layers and {len(plan.deleted):,} configs of deleted "
        f"images); kept: {len(plan.referenced()):,} blobs and {len(plan.kept):,} manifests."
    )


def render_markdown(
    results: list[Result], plan: Plan, p: GcParams, command: str, started: datetime, busy: float
) -> str:
    """The ``gc`` section of ``docs/benchmarks.md``."""
    versions = []
    for r in results:
        versions.append(f"- {r.name}: {r.version}, run as `{shlex.join(r.command)}`")
        if r.collection:
            versions.append(f"  - collected with `{shlex.join(r.collection.argv)}`")
    out = [
        f"## Garbage collection, {p.blobs:,} blobs",
        "",
        f"Run at {started:%Y-%m-%d %H:%M} UTC with:",
        "",
        "```sh",
        command,
        "```",
        "",
        expected(plan, p),
        "",
        *machine_lines(),
        f"- other processes used {busy:.1f} CPUs when the run started (the machine is shared)",
        *versions,
        "",
        render(results, plan, p, markdown=True),
        "",
        "- moorage collects **online**: `moorage gc` runs next to the serving process on the same",
        "  data directory, while a paced reader (GET a kept manifest, HEAD one of its layers,",
        f"  {p.reader_rps:g} requests/s in all) runs against the server; the reads rows count it.",
        "  distribution's `garbage-collect` is **offline**: the registry must be stopped (or made",
        "  read-only) while it runs, so the benchmark stops the server, runs the `--dry-run` and",
        "  the collection, and starts it again; the offline row is that whole window. moorage's",
        "  `--dry-run` also runs before its collection, with the server up.",
        "- Wall, CPU (user+system) and peak RSS of the collecting process come from `wait4`.",
        "  distribution keeps manifests as blobs, so its blob files include the manifests (and the",
        "  deleted manifests' files are freed too); moorage keeps manifests in its database.",
        "  Bytes count every file under each data directory (moorage: SQLite database included,",
        "  which a collection does not shrink).",
        "- After collection every kept manifest is fetched and compared, every referenced blob",
        f"  answers HEAD 200, {p.verify_bodies} of them are downloaded with their digest checked,",
        f"  and {p.verify_garbage} garbage blobs are expected to answer 404.",
    ]
    out += [f"- {r.name} failed: `{r.error.splitlines()[0]}`" for r in results if r.error]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gc", description=__doc__.split("\n")[0])
    parser.add_argument("--blobs", type=int, default=GcParams.blobs)
    parser.add_argument("--quick", action="store_true", help="2,000 blobs: a smoke run")
    parser.add_argument("--registries", default="moorage,distribution")
    parser.add_argument("--out", type=Path, help="write the gc section of this Markdown file")
    parser.add_argument("--quiet-wait", type=float, default=30.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    p = GcParams(blobs=2000 if args.quick else args.blobs)
    started = datetime.now(UTC)
    command = shlex.join(["python", "-m", "bench.gc", *sys.argv[1:]])
    plan = make_plan(p)
    busy = wait_for_quiet(args.quiet_wait)
    print(f"other processes use {busy:.1f} CPUs", file=sys.stderr)
    results = []
    for name in args.registries.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-gc-{name}-") as tmp:
            results.append(asyncio.run(bench_one(name, plan, p, Path(tmp))))
    print(expected(plan, p))
    print(render(results, plan, p, markdown=False))
    for r in results:
        if r.error:
            print(f"{r.name}: {r.error}", file=sys.stderr)
    if args.out:
        replace_section(args.out, "gc", render_markdown(results, plan, p, command, started, busy))
    failed = any(r.error for r in results) or any(
        r.checks.get("referenced_ok") != r.checks.get("referenced_expected")
        or r.checks.get("manifests_ok") != r.checks.get("manifests_expected")
        for r in results
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
