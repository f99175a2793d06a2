"""Fleet benchmarks: ``python -m bench.fleet [--out docs/benchmarks.md] [options]``.

Replication. Deployment A (us-east-1) replicates to deployment B (eu-west-1, which trusts
A's replication key), each a real ``moorage serve`` with IAM on this machine. An image is
pushed to A with no rule, a rule to B is put, and StartReplicationBackfill copies it; the
time is from the start to COMPLETE. The reference is ``skopeo copy`` of the same image from
A to B (another repository), the ceiling a client could reach between the same two servers.
Two images: ``--layers`` (200) layers of 64 KiB, and one layer of ``--big-mib`` (1024) MiB of
random bytes. Goal: moorage >= 0.8x of skopeo (ratio = skopeo's time / moorage's).

Pull-through cache. A CNCF distribution holds an image of ``--cache-mib`` (500) MiB in 5
layers; moorage caches it (a rule ``hub`` -> that registry), and so does a second
distribution in proxy mode (``proxy.remoteurl``). ``skopeo copy`` pulls through each: the
first pull (nothing cached: each fetches from the upstream while it serves), then a cached
pull (the median of three). Goal: moorage >= 1.0x of distribution on both.

Every server starts on a free loopback port with a fresh data folder in one temporary
directory, and stops at the end; the table goes to stdout and, with ``--out``, into the
``fleet`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench.report import machine_lines
from bench.sections import replace_section
from bench.servers import DISTRIBUTION_BIN, free_port

MOORAGE = shutil.which("moorage") or "moorage"
SKOPEO = shutil.which("skopeo") or "/usr/bin/skopeo"
EUROPE = "eu-west-1"
ACCOUNT = "123456789012"


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=3600
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])}... failed: {result.stderr[-2000:]}")
    return result


def wait_http(url: str, timeout: float = 60.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer") from None
            time.sleep(0.1)


class Process:
    def __init__(self, command: list[str], log: Path, ready: str) -> None:
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        wait_http(ready)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def moorage(data_dir: Path, port: int, *args: str) -> Process:
    command = [
        MOORAGE,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
        *args,
    ]
    return Process(
        command, data_dir.parent / f"{data_dir.name}.log", f"http://127.0.0.1:{port}/healthz"
    )


def distribution(root: Path, port: int, proxy: str | None = None) -> Process:
    root.mkdir(parents=True, exist_ok=True)
    config = (
        f"version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    if proxy:
        config += f"proxy:\n  remoteurl: {proxy}\n"
    (root / "config.yml").write_text(config)
    return Process(
        [DISTRIBUTION_BIN, "serve", str(root / "config.yml")],
        root / "log",
        f"http://127.0.0.1:{port}/v2/",
    )


def admin_key(data_dir: Path) -> tuple[str, str]:
    out = run(MOORAGE, "admin", "init", "--data-dir", str(data_dir)).stdout
    key = out.split("Access key id:")[1].split()[0]
    secret = out.split("Secret access key:")[1].split()[0]
    return key, secret


def ecr(url: str, key: tuple[str, str], region: str = "us-east-1") -> Any:
    return boto3.client(
        "ecr",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"max_attempts": 3}),
    )


def login(client: Any) -> str:
    token = client.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode()


def layout(path: Path, layers: list[int], seed: int) -> None:
    """An OCI layout of one image whose layers are tars of ``layers`` random bytes each."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    descriptors, diff_ids = [], []
    generator = _random(seed)
    for index, size in enumerate(layers):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo(f"layer-{index}.bin")
            info.size = size
            tar.addfile(info, io.BytesIO(generator(size)))
        data = raw.getvalue()
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", **put(data)})
        diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
    config = put(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        ).encode()
    )
    manifest = put(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": descriptors,
            }
        ).encode()
    )
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        **manifest,
                        "annotations": {"org.opencontainers.image.ref.name": "v1"},
                    }
                ],
            }
        )
    )


def _random(seed: int) -> Callable[[int], bytes]:
    state = hashlib.sha256(str(seed).encode()).digest()

    def make(size: int) -> bytes:
        nonlocal state
        state = hashlib.sha256(state).digest()
        return os.urandom(size) if size > 1 << 20 else (state * (size // 32 + 1))[:size]

    return make


def skopeo(*args: str) -> float:
    started = time.monotonic()
    run(SKOPEO, "--insecure-policy", *args)
    return time.monotonic() - started


def replication_case(root: Path, name: str, layers: list[int]) -> tuple[float, float]:
    a_dir, b_dir = root / f"{name}-a" / "data", root / f"{name}-b" / "data"
    a_key, b_key = admin_key(a_dir), admin_key(b_dir)
    public = run(MOORAGE, "replication", "public-key", "--data-dir", str(a_dir)).stdout.strip()
    b_port, a_port = free_port(), free_port()
    b = moorage(b_dir, b_port, "--region", EUROPE, "--replication-trusted-key", public)
    a = moorage(a_dir, a_port, "--replication-peer", f"{EUROPE}=http://127.0.0.1:{b_port}")
    try:
        image = root / f"{name}-image"
        layout(image, layers, seed=len(layers))
        a_ecr, b_ecr = (
            ecr(f"http://127.0.0.1:{a_port}", a_key),
            ecr(f"http://127.0.0.1:{b_port}", b_key, EUROPE),
        )
        a_ecr.create_repository(repositoryName="bench/app")
        b_ecr.create_repository(repositoryName="bench/skopeo")
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            login(a_ecr),
            f"oci:{image}:v1",
            f"docker://127.0.0.1:{a_port}/bench/app:v1",
        )
        reference = skopeo(
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--src-creds",
            login(a_ecr),
            "--dest-creds",
            login(b_ecr),
            f"docker://127.0.0.1:{a_port}/bench/app:v1",
            f"docker://127.0.0.1:{b_port}/bench/skopeo:v1",
        )
        destination = {"region": EUROPE, "registryId": ACCOUNT}
        a_ecr.put_replication_configuration(
            replicationConfiguration={
                "rules": [
                    {
                        "destinations": [destination],
                        "repositoryFilters": [
                            {"filter": "bench/app", "filterType": "PREFIX_MATCH"}
                        ],
                    }
                ]
            }
        )
        started = time.monotonic()
        backfill = a_ecr.start_replication_backfill(destination=destination)[
            "replicationBackfillId"
        ]
        while True:
            status = a_ecr.describe_replication_backfill_results(replicationBackfillId=backfill)
            if status["status"] in ("COMPLETE", "FAILED", "STOPPED"):
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        if status["progress"]["completedReplicationCount"] != 1:
            raise RuntimeError(f"the backfill did not copy the image: {status}")
        return elapsed, reference
    finally:
        a.stop()
        b.stop()


def cache_case(root: Path, mib: int) -> dict[str, float]:
    upstream_port, proxy_port, moorage_port = free_port(), free_port(), free_port()
    upstream = distribution(root / "upstream", upstream_port)
    proxy = distribution(root / "proxy", proxy_port, proxy=f"http://127.0.0.1:{upstream_port}")
    cache_dir = root / "cache" / "data"
    cache = moorage(cache_dir, moorage_port, "--emulator")
    try:
        image = root / "cache-image"
        layout(image, [mib * 1024 * 1024 // 5] * 5, seed=mib)
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{image}:v1",
            f"docker://127.0.0.1:{upstream_port}/library/big:v1",
        )
        client = ecr(f"http://127.0.0.1:{moorage_port}", ("AKIAEMULATOR", "secret"))
        client.create_pull_through_cache_rule(
            ecrRepositoryPrefix="hub", upstreamRegistryUrl=f"127.0.0.1:{upstream_port}"
        )
        sources = {
            "moorage": f"docker://127.0.0.1:{moorage_port}/hub/library/big:v1",
            "distribution": f"docker://127.0.0.1:{proxy_port}/library/big:v1",
        }
        times: dict[str, float] = {}
        for label, source in sources.items():
            into = root / f"pulled-{label}"
            pull = ("copy", "--src-tls-verify=false", source, f"dir:{into}")
            times[f"{label} first"] = skopeo(*pull)
            cached = []
            for _ in range(3):
                shutil.rmtree(into)
                cached.append(skopeo(*pull))
            times[f"{label} cached"] = statistics.median(cached)
        return times
    finally:
        for process in (cache, proxy, upstream):
            process.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=200)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--cache-mib", type=int, default=500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="moorage-fleet-") as temp:
        root = Path(temp)
        many = replication_case(root, "many", [64 * 1024] * args.layers)
        big = replication_case(root, "big", [args.big_mib * 1024 * 1024])
        cache = cache_case(root, args.cache_mib)
    lines = [
        "## Fleet: replication and pull-through cache",
        "",
        "`python -m bench.fleet` (bench/fleet.py says what each case does); seconds, one run.",
        "",
        *machine_lines(),
        "",
        "| case | moorage | reference | ratio (reference / moorage) | goal |",
        "|---|---|---|---|---|",
        f"| replication, {args.layers} layers of 64 KiB | {many[0]:.2f} "
        f"| skopeo copy {many[1]:.2f} | {many[1] / many[0]:.2f}x | >= 0.8x |",
        f"| replication, 1 layer of {args.big_mib} MiB | {big[0]:.2f} | skopeo copy {big[1]:.2f} "
        f"| {big[1] / big[0]:.2f}x | >= 0.8x |",
        f"| pull-through, first pull of {args.cache_mib} MiB | {cache['moorage first']:.2f} "
        f"| distribution proxy {cache['distribution first']:.2f} "
        f"| {cache['distribution first'] / cache['moorage first']:.2f}x | >= 1.0x |",
        f"| pull-through, cached pull of {args.cache_mib} MiB (median of 3) "
        f"| {cache['moorage cached']:.2f} | distribution proxy {cache['distribution cached']:.2f} "
        f"| {cache['distribution cached'] / cache['moorage cached']:.2f}x | >= 1.0x |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        replace_section(args.out, "fleet", text)


if __name__ == "__main__":
    main()
