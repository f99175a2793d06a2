"""The benchmark workloads, one async function each, all written against `OciClient`.

Every workload takes a `Context` and returns ``{metric key: value}``; the keys are described
in `bench.report.METRICS`. Each one creates the repositories it needs (``bench/<workload>...``)
so it can run alone (``--only``); setup that is not the thing measured is done first and kept
out of the timed section. Failures propagate as `UnexpectedResponseError` naming the request.

Order of `WORKLOADS` (the order of a run): push-mono, push-chunked, pull, manifest, layers,
tags, catalog.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.oci_client import (
    MANIFEST_ACCEPT,
    OCI_CONFIG,
    OCI_LAYER,
    Descriptor,
    OciClient,
    image_manifest,
    sha256_digest,
)

MB = 1_000_000
MiB = 1 << 20
WRK_SCRIPT = Path(__file__).with_name("manifest.lua")


@dataclass(frozen=True)
class Params:
    """Sizes and counts of one run (`--quick` picks the small set)."""

    blob_mib: int = 256
    chunk_mib: int = 16
    push_repeats: int = 3
    pull_repeats: int = 3
    pull_clients: int = 8
    manifest_connections: int = 32
    manifest_seconds: float = 10.0
    layers: int = 200
    layer_bytes: int = 4096
    layer_concurrency: int = 5
    tags: int = 10_000
    tag_page: int = 1000
    tag_put_concurrency: int = 8
    list_repeats: int = 10
    repos: int = 1000
    catalog_page: int = 1000
    catalog_seconds: float = 5.0
    catalog_connections: int = 4
    setup_concurrency: int = 8
    http_load: str = "wrk-ab"  # "wrk-ab" (wrk GET, ab HEAD) or "aiohttp": manifest load


QUICK = Params(
    blob_mib=16,
    chunk_mib=4,
    push_repeats=1,
    pull_repeats=1,
    manifest_seconds=2.0,
    layers=20,
    tags=500,
    tag_page=100,
    list_repeats=3,
    repos=50,
    catalog_page=20,
    catalog_seconds=1.0,
)


@dataclass(frozen=True)
class BlobFile:
    """A random blob on disk and its digest."""

    path: Path
    digest: str
    size: int


def make_blob_file(path: Path, size: int) -> BlobFile:
    """Write `size` random bytes to `path` (1 MiB at a time) and return it with its digest."""
    import hashlib

    hasher = hashlib.sha256()
    with path.open("wb") as f:
        remaining = size
        while remaining:
            chunk = os.urandom(min(MiB, remaining))
            hasher.update(chunk)
            f.write(chunk)
            remaining -= len(chunk)
        os.fsync(f.fileno())  # so no writeback of these files lands in a timed section
    return BlobFile(path, "sha256:" + hasher.hexdigest(), size)


@dataclass
class BlobFiles:
    """The large blobs shared by every registry in a run, generated once, lazily."""

    workdir: Path
    size: int
    _made: dict[str, BlobFile] = field(default_factory=dict)

    def get(self, name: str) -> BlobFile:
        """Return the blob called `name`, writing it on first use."""
        if name not in self._made:
            self._made[name] = make_blob_file(self.workdir / f"{name}.bin", self.size)
        return self._made[name]

    def prepare(self, workloads: list[str], params: Params) -> None:
        """Write every blob the selected `workloads` will use, before any server starts."""
        if {"push-mono", "pull"} & set(workloads):
            self.get("mono-0")
        for i in range(params.push_repeats):
            for kind in ("mono", "chunked"):
                if f"push-{kind}" in workloads:
                    self.get(f"{kind}-{i}")

    def cleanup(self) -> None:
        """Delete the generated files."""
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class Context:
    """What a workload gets: a client on the registry under test, the run's parameters, blobs."""

    client: OciClient
    params: Params
    blobs: BlobFiles


def mbps(nbytes: int, seconds: float) -> float:
    """Throughput in MB/s (10^6 bytes per second)."""
    return nbytes / MB / seconds


async def _timed(coro: Awaitable[object]) -> float:
    start = time.perf_counter()
    await coro
    return time.perf_counter() - start


async def _bounded(limit: int, jobs: list[Callable[[], Awaitable[None]]]) -> None:
    """Run `jobs` with at most `limit` in flight; the first failure cancels the rest."""
    queue = list(reversed(jobs))

    async def worker() -> None:
        while queue:
            await queue.pop()()

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(limit, len(jobs))):
            tg.create_task(worker())


async def push_small_image(client: OciClient, name: str, tag: str, seed: str) -> bytes:
    """Push a one-layer image (4 KiB layer + config) to `name:tag`; return the manifest bytes."""
    layer = os.urandom(4096)
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer_d = Descriptor(OCI_LAYER, await client.push_blob_bytes(name, layer), len(layer))
    config_d = Descriptor(OCI_CONFIG, await client.push_blob_bytes(name, config), len(config))
    manifest = image_manifest(config_d, [layer_d])
    await client.put_manifest(name, tag, manifest)
    return manifest


# -- 1, 2: large blob push -----------------------------------------------------------------


async def push_mono(ctx: Context) -> dict[str, float]:
    """Push `push_repeats` distinct blobs monolithically (POST + one streamed PUT); median MB/s."""
    rates = []
    for i in range(ctx.params.push_repeats):
        blob = ctx.blobs.get(f"mono-{i}")
        seconds = await _timed(
            ctx.client.push_blob_file(f"bench/push-mono-{i}", blob.path, blob.digest, blob.size)
        )
        rates.append(mbps(blob.size, seconds))
    return {"push_mono_mbps": statistics.median(rates)}


async def push_chunked(ctx: Context) -> dict[str, float]:
    """Push distinct blobs as PATCH chunks with Content-Range, then PUT; median MB/s."""
    rates = []
    chunk = ctx.params.chunk_mib * MiB
    for i in range(ctx.params.push_repeats):
        blob = ctx.blobs.get(f"chunked-{i}")
        push = ctx.client.push_blob_file_chunked(
            f"bench/push-chunked-{i}", blob.path, blob.digest, blob.size, chunk
        )
        rates.append(mbps(blob.size, await _timed(push)))
    return {"push_chunked_mbps": statistics.median(rates)}


# -- 3: large blob pull --------------------------------------------------------------------


async def pull(ctx: Context) -> dict[str, float]:
    """Pull one large blob with 1 client, then with `pull_clients` at once; median MB/s.

    An untimed first pull checks the digest and warms the server's page cache, so both
    registries are measured serving from memory.
    """
    client, p = ctx.client, ctx.params
    blob, name = ctx.blobs.get("mono-0"), "bench/pull"
    if not await client.blob_exists(name, blob.digest):
        await client.push_blob_file(name, blob.path, blob.digest, blob.size)
    if await client.pull_blob(name, blob.digest, verify=True) != blob.size:
        raise ValueError("pulled blob has the wrong length")
    single, multi = [], []
    for _ in range(p.pull_repeats):
        single.append(mbps(blob.size, await _timed(client.pull_blob(name, blob.digest))))
    for _ in range(p.pull_repeats):
        many = asyncio.gather(*(client.pull_blob(name, blob.digest) for _ in range(p.pull_clients)))
        multi.append(mbps(blob.size * p.pull_clients, await _timed(many)))
    return {"pull_1_mbps": statistics.median(single), "pull_n_mbps": statistics.median(multi)}


# -- 4: manifest GET/HEAD under load -------------------------------------------------------


def _wrk(url: str, method: str, connections: int, seconds: float) -> dict[str, float]:
    """GET load from wrk: HTTP/1.1, 2 threads; the Lua script prints a JSON summary."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    cmd += ["-s", str(WRK_SCRIPT), url, "--", method]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("{"))
    result: dict[str, float] = json.loads(line)
    return result


def _ab(url: str, method: str, connections: int, seconds: float) -> dict[str, float]:
    """HEAD load from ab (keep-alive, one thread): wrk 4.1 waits for a body after HEAD."""
    if method != "HEAD":
        raise ValueError("ab is only used for HEAD")
    with tempfile.NamedTemporaryFile("r", suffix=".csv") as csv:
        cmd = ["ab", "-q", "-k", "-i", f"-c{connections}", f"-t{seconds:g}", "-n10000000"]
        cmd += ["-e", csv.name, "-H", f"Accept: {MANIFEST_ACCEPT}", url]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        percent = dict(line.split(",") for line in csv.read().splitlines()[1:])

    def field(label: str) -> float:
        m = re.search(rf"^{label}:\s+([0-9.]+)", out, re.MULTILINE)
        return float(m.group(1)) if m else 0.0

    return {
        "requests": field("Complete requests"),
        "seconds": field("Time taken for tests"),
        "p50_us": float(percent["50"]) * 1000,
        "p99_us": float(percent["99"]) * 1000,
        "bad": field("Non-2xx responses") + field("Failed requests"),
    }


async def _aiohttp_load(
    client: OciClient, name: str, tag: str, method: str, connections: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def one_connection() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await client.get_manifest(name, tag, method)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_us": q[49] * 1e6,
        "p99_us": q[98] * 1e6,
        "bad": 0,
    }


async def manifest(ctx: Context) -> dict[str, float]:
    """GET then HEAD one manifest by tag over `manifest_connections` for a fixed time each.

    Also returns ``requests``, the number served, which the runner turns into server CPU per
    request.

    By default GET load comes from wrk and HEAD load from ab (see the report for why);
    ``--http-load aiohttp`` uses this process for both instead. Any non-2xx answer fails the
    workload, with one request replayed through `OciClient` so the failure names the status
    and body.
    """
    client, p = ctx.client, ctx.params
    name, tag = "bench/manifest", "latest"
    body = await push_small_image(client, name, tag, "manifest")
    if await client.get_manifest(name, tag) != body:
        raise ValueError("GET manifest returned other bytes than were pushed")
    out: dict[str, float] = {"requests": 0}
    for method in ("GET", "HEAD"):
        await client.get_manifest(name, tag, method)
        if p.http_load == "wrk-ab":
            tool = _wrk if method == "GET" else _ab
            url = client.url(f"/v2/{name}/manifests/{tag}")
            args = (url, method, p.manifest_connections, p.manifest_seconds)
            r = await asyncio.to_thread(tool, *args)
        else:
            r = await _aiohttp_load(
                client, name, tag, method, p.manifest_connections, p.manifest_seconds
            )
        if r["bad"]:
            await client.get_manifest(name, tag, method)  # raises with the status and body
            raise ValueError(f"{method} manifest: {r['bad']:g} requests failed under load")
        key = f"manifest_{method.lower()}"
        out["requests"] += r["requests"]
        out[f"{key}_rps"] = r["requests"] / r["seconds"]
        out[f"{key}_p50_ms"] = r["p50_us"] / 1000
        out[f"{key}_p99_ms"] = r["p99_us"] / 1000
    return out


# -- 5: many small layers ------------------------------------------------------------------


async def layers(ctx: Context) -> dict[str, float]:
    """Push an image of `layers` small random layers as docker does; total seconds.

    Per layer: HEAD (expect 404), POST, PUT with the body, `layer_concurrency` layers at a
    time (docker's default is 5 parallel uploads); then the config the same way and the
    manifest PUT. Layer data is made before the clock starts.
    """
    client, p = ctx.client, ctx.params
    name = "bench/layers"
    blobs = [os.urandom(p.layer_bytes) for _ in range(p.layers)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
    config_b = config.encode()
    descs = [Descriptor(OCI_LAYER, sha256_digest(b), len(b)) for b in blobs]
    config_d = Descriptor(OCI_CONFIG, sha256_digest(config_b), len(config_b))

    async def upload(data: bytes, digest: str) -> None:
        if not await client.blob_exists(name, digest):
            await client.push_blob_bytes(name, data, digest)

    def job(data: bytes, digest: str) -> Callable[[], Awaitable[None]]:
        return lambda: upload(data, digest)

    jobs = [job(b, d.digest) for b, d in zip(blobs, descs, strict=True)]
    jobs.append(job(config_b, config_d.digest))
    start = time.perf_counter()
    await _bounded(p.layer_concurrency, jobs)
    await client.put_manifest(name, "latest", image_manifest(config_d, descs))
    return {"layers_push_s": time.perf_counter() - start}


# -- 6: tags -------------------------------------------------------------------------------


async def tags(ctx: Context) -> dict[str, float]:
    """PUT one manifest under `tags` tags (timed as tag PUT/s), then list them.

    Measures the full list (no ``n``) and a walk of all pages with ``n=tag_page`` following
    ``Link``, each repeated `list_repeats` times; both check that every tag came back.
    """
    client, p = ctx.client, ctx.params
    name = "bench/tags"
    names = [f"t{i:05d}" for i in range(p.tags)]
    body = await push_small_image(client, name, names[0], "tags")

    def put(tag: str) -> Callable[[], Awaitable[None]]:
        return lambda: client.put_manifest(name, tag, body)

    put_s = await _timed(_bounded(p.tag_put_concurrency, [put(t) for t in names[1:]]))
    out = {"tag_put_rps": (p.tags - 1) / put_s}
    for key, page in (("tags_list_full_s", None), ("tags_list_paged_s", p.tag_page)):
        times = []
        for _ in range(p.list_repeats):
            start = time.perf_counter()
            listed, pages = await client.list_tags(name, page)
            times.append(time.perf_counter() - start)
            if sorted(listed) != names:
                raise ValueError(f"tag list (n={page}) returned {len(listed)} of {p.tags} tags")
        out[key] = statistics.median(times)
        if page:
            out["tags_list_paged_pages"] = pages
    return out


# -- 7: catalog ----------------------------------------------------------------------------


async def catalog(ctx: Context) -> dict[str, float]:
    """Create `repos` repositories by pushing one image each, then load ``/v2/_catalog``.

    Setup pushes as docker does when the blobs exist elsewhere (HEAD, then POST with
    ``mount``, uploading if the server answers 202) and PUTs the manifest; it is reported as
    image pushes/s. The measurement is ``GET /v2/_catalog?n=catalog_page`` from
    `catalog_connections` connections for `catalog_seconds`, after one full walk that checks
    every repository is listed.
    """
    client, p = ctx.client, ctx.params
    source = "bench/catalog-source"
    layer = os.urandom(4096)
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": "catalog"}).encode()
    layer_d = Descriptor(OCI_LAYER, await client.push_blob_bytes(source, layer), len(layer))
    config_d = Descriptor(OCI_CONFIG, await client.push_blob_bytes(source, config), len(config))
    body = image_manifest(config_d, [layer_d])
    await client.put_manifest(source, "latest", body)
    repos = [f"bench-catalog/r{i:05d}" for i in range(p.repos)]

    async def push(repo: str) -> None:
        await client.ensure_blob(repo, layer, layer_d.digest, source)
        await client.ensure_blob(repo, config, config_d.digest, source)
        await client.put_manifest(repo, "latest", body)

    def job(repo: str) -> Callable[[], Awaitable[None]]:
        return lambda: push(repo)

    setup_s = await _timed(_bounded(p.setup_concurrency, [job(r) for r in repos]))
    listed, _ = await client.catalog(p.catalog_page)
    missing = set(repos) - set(listed)
    if missing:
        raise ValueError(f"_catalog walk is missing {len(missing)} of {p.repos} repositories")

    entries = await client.catalog_page(p.catalog_page)
    count = 0
    deadline = time.perf_counter() + p.catalog_seconds

    async def one_connection() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await client.catalog_page(p.catalog_page)
            count += 1

    elapsed = await _timed(
        asyncio.gather(*(one_connection() for _ in range(p.catalog_connections)))
    )
    return {
        "catalog_setup_pushes_per_s": p.repos / setup_s,
        "catalog_rps": count / elapsed,
        "catalog_page_entries": entries,
    }


Workload = Callable[[Context], Awaitable[dict[str, float]]]

WORKLOADS: dict[str, Workload] = {
    "push-mono": push_mono,
    "push-chunked": push_chunked,
    "pull": pull,
    "manifest": manifest,
    "layers": layers,
    "tags": tags,
    "catalog": catalog,
}
