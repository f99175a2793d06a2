"""Gallery page timings: ``python -m bench.gallery [--repositories 10000] [--tags 100000]
[--requests 300] [--out docs/benchmarks.md]``.

A data folder is seeded straight through the metadata store (SQLite, the embedded default)
with ``--repositories`` public repositories across 100 registries, each with catalog data
(a description, OS and architecture badges, about text) and ``--tags`` tags in all: one tag
in five names a two-platform index, the others a single image whose config blob is in the
blob store (the page reads it for the platform). Then a real ``moorage serve`` answers
``--requests`` gallery searches (text, filters, both, and the next page) and as many
repository pages, one client at a time over one keep-alive connection; the table gives p50
and p99 of each, and the queries behind a page (two for a search; three for a repository
page: the entry with its catalog data, the tags with their images, an index's platforms).
There is no reference registry with a gallery to run beside it: the figures stand alone.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bench.report import machine_lines
from bench.sections import replace_section
from bench.servers import free_port

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
WORDS = ("web", "api", "agent", "tools", "data", "proxy", "cache", "worker", "ui", "db")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def seed(data_dir: Path, repositories: int, tags: int) -> list[tuple[str, str]]:
    """Write the registries, repositories, catalog data, manifests and tags; the
    (alias, name) of every repository."""
    from moorage.domain.digests import Digest
    from moorage.storage.blobs import build_blob_store
    from moorage.storage.metadata.sql import tables as t
    from moorage.storage.metadata.sql.store import open_sql_metadata_store

    store = await open_sql_metadata_store(f"sqlite+aiosqlite:///{data_dir / 'moorage.db'}")
    blobs = build_blob_store("filesystem", root=data_dir)
    rng = random.Random(7)
    now = datetime.now(UTC)
    aliases = [f"pub{index:03d}" for index in range(100)]
    registry_rows = [
        {"registry_id": f"{100000000000 + i}", "alias": alias, "created_at": now}
        for i, alias in enumerate(aliases)
    ]
    repo_rows, catalog_rows, manifest_rows, tag_rows, names = [], [], [], [], []
    per_repository = max(1, tags // repositories)
    for index in range(repositories):
        registry = registry_rows[index % len(registry_rows)]
        name = f"{rng.choice(WORDS)}/{rng.choice(WORDS)}-{index}"
        names.append((str(registry["alias"]), name))
        repository_id = index + 1
        repo_rows.append(
            {
                "id": repository_id,
                "registry_id": registry["registry_id"],
                "name": name,
                "created_at": now,
                "region": "public",
            }
        )
        catalog_rows.append(
            {
                "repository_id": repository_id,
                "description": f"The {name} image, built nightly",
                "architectures": rng.sample(["x86-64", "ARM 64", "ARM", "x86"], 2),
                "operating_systems": ["Linux"] if index % 10 else ["Windows"],
                "categories": [],
                "about_text": "# About\n\nIt **works**.\n\n```\ndocker run it\n```\n" * 5,
                "usage_text": "Pull it.",
                "updated_at": now,
            }
        )
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": index}).encode()
        upload = str(uuid.uuid4())
        await blobs.start_upload(upload)
        await blobs.write_upload(upload, 0, _one(config))
        await blobs.commit_upload(upload, Digest.parse(_digest(config)), len(config))
        for number in range(per_repository):
            layer = {"mediaType": "l", "digest": _digest(f"{index}/{number}".encode()), "size": 9}
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"digest": _digest(config), "size": len(config), "mediaType": "c"},
                    "layers": [layer],
                }
            ).encode()
            rows = [(manifest, OCI_MANIFEST)]
            if number % 5 == 0:
                child = manifest
                index_doc = json.dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": OCI_INDEX,
                        "manifests": [
                            {
                                "digest": _digest(child),
                                "size": len(child),
                                "mediaType": OCI_MANIFEST,
                                "platform": {"os": "linux", "architecture": arch},
                            }
                            for arch in ("amd64", "arm64")
                        ],
                    }
                ).encode()
                rows.append((index_doc, OCI_INDEX))
            for payload, media_type in rows:
                manifest_rows.append(
                    {
                        "repository_id": repository_id,
                        "digest": _digest(payload),
                        "media_type": media_type,
                        "size": len(payload),
                        "payload": payload,
                        "annotations": {},
                        "pushed_at": now - timedelta(minutes=number),
                        "pull_count": rng.randrange(1000),
                    }
                )
            tagged = rows[-1][0]
            tag_rows.append(
                {
                    "repository_id": repository_id,
                    "name": f"v{number}",
                    "manifest_digest": _digest(tagged),
                    "updated_at": now - timedelta(minutes=number),
                }
            )
    async with store._engine.begin() as connection:  # a bench may write rows directly
        for table, rows_ in (
            (t.public_registries, registry_rows),
            (t.repositories, repo_rows),
            (t.public_catalog_data, catalog_rows),
            (t.manifests, manifest_rows),
            (t.tags, tag_rows),
        ):
            for start in range(0, len(rows_), 5000):
                await connection.execute(insert(table), rows_[start : start + 5000])
    await store.close()
    await blobs.close()
    return names


def _timings(port: int, paths: list[str]) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    seconds = []
    for path in paths:
        started = time.perf_counter()
        connection.request("GET", path)
        answer = connection.getresponse()
        body = answer.read()
        seconds.append(time.perf_counter() - started)
        if answer.status != 200 or b"<main" not in body:
            raise RuntimeError(f"{path}: {answer.status}")
    connection.close()
    return seconds


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-gallery-") as work:
        data_dir = Path(work) / "data"
        data_dir.mkdir()
        started = time.monotonic()
        names = asyncio.run(seed(data_dir, args.repositories, args.tags))
        seeded = time.monotonic() - started
        port = free_port()
        command = ["moorage", "serve", "--emulator", "--no-workers", "--port", str(port)]
        server = subprocess.Popen(
            [*command, "--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    _timings(port, ["/gallery/"])
                    break
                except (OSError, RuntimeError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            rng = random.Random(11)
            searches = [
                rng.choice(
                    [
                        f"/gallery/?q={rng.choice(WORDS)}",
                        "/gallery/?os=Linux&arch=ARM+64",
                        f"/gallery/?q={rng.choice(WORDS)}&os=Windows",
                        f"/gallery/?after={rng.choice(names)[0]}/{rng.choice(WORDS)}",
                        "/gallery/",
                    ]
                )
                for _ in range(args.requests)
            ]
            pages = ["/gallery/{}/{}".format(*rng.choice(names)) for _ in range(args.requests)]
            _timings(port, searches[:20] + pages[:20])  # warm up
            search_s = _timings(port, searches)
            page_s = _timings(port, pages)
        finally:
            server.terminate()
            server.wait(timeout=30)
    rows = [
        ("gallery search", search_s),
        ("repository page", page_s),
    ]
    lines = [
        f"Seeded {args.repositories:,} public repositories and {args.tags:,} tags "
        f"in {seeded:.0f} s; {args.requests} requests of each kind, one client, keep-alive.",
        "",
        "| page | p50 ms | p99 ms | mean ms |",
        "|---|---|---|---|",
    ]
    for label, values in rows:
        lines.append(
            f"| {label} | {1000 * _percentile(values, 0.5):.1f} | "
            f"{1000 * _percentile(values, 0.99):.1f} | {1000 * statistics.mean(values):.1f} |"
        )
    lines += ["", *machine_lines()]
    table = "\n".join(lines)
    print(table)
    if args.out:
        replace_section(args.out, "gallery", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
