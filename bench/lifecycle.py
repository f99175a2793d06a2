"""``python -m bench.lifecycle``: lifecycle policy evaluation over a repository of 100,000 images.

Issue target: evaluating a 3-rule policy over 100,000 images takes under 2 s. "Evaluating"
is what the scheduled run and the preview both do before they act: read the repository's
candidates (``LifecycleRecords.lifecycle_candidates``: one query) and decide
(``services.lifecycle.plan``: parse, then the pure evaluator). We time those two phases
apart, then the whole preview (start, evaluate, store the results) and a whole dry run
(evaluate and record the audit trail), each ``--repeats`` times, on SQLite and on
PostgreSQL; last, one real run that deletes what the policy expires, through the same
service as BatchDeleteImage.

The repository is seeded straight into the tables, as a registry that has taken 100,000
pushes would hold it: push times spread over 400 days, a third of the images never pulled,
tags of three families (``prod-``, ``release-``, ``dev-``) and untagged images, and one
image in fifty listed by an index. Seeding is not timed. On PostgreSQL the seeded tables are
analyzed, as autovacuum would have done in a registry that grew to that size.

Distribution has no lifecycle policies, so this benchmark has no reference column.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import insert

from bench.report import machine_lines
from bench.sections import replace_section
from moorage.domain.models import ReferenceKind
from moorage.services.allocation import cyclic_gc_paused
from moorage.services.images import ImageService
from moorage.services.lifecycle import LifecycleService, plan, read_candidates
from moorage.services.repositories import RepositoryService
from moorage.storage.metadata.sql.engine import create_sql_engine, write_transaction
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store
from moorage.storage.metadata.sql.tables import manifest_references, manifests, tags

REGISTRY_ID = "123456789012"
REPOSITORY = "bench/lifecycle"
POSTGRES_SERVER = os.environ.get("MOORAGE_TEST_POSTGRES_SERVER", "postgres@127.0.0.1:5432")

# Three rules, one of each kind of selection and count: a prefix with a count, a wildcard
# pattern with pull age, and the catch-all ``any`` that still counts the claimed images.
POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep the 500 newest prod images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": ["prod-"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 500,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": "release images not pulled for 60 days",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["release-*"],
                    "countType": "sinceImagePulled",
                    "countUnit": "days",
                    "countNumber": 60,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 3,
                "description": "at most 20,000 images in all",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": 20000,
                },
                "action": {"type": "expire"},
            },
        ]
    }
)

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


@dataclass
class Phase:
    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class BackendRun:
    backend: str
    seed_s: float
    phases: list[Phase]
    expired: int
    remaining: int
    by_rule: dict[int, int]


def _digest(i: int, kind: str) -> str:
    return "sha256:" + hashlib.sha256(f"{kind}-{i}".encode()).hexdigest()


def _seed_rows(
    images: int, now: datetime, rng: random.Random
) -> tuple[list[dict[str, object]], list[dict[str, object]], list[dict[str, object]]]:
    """Rows of ``manifests``, ``tags`` and ``manifest_references`` for ``images`` images."""
    manifest_rows: list[dict[str, object]] = []
    tag_rows: list[dict[str, object]] = []
    reference_rows: list[dict[str, object]] = []
    for i in range(images):
        digest = _digest(i, "image")
        pushed = now - timedelta(seconds=rng.uniform(0, 400 * 86400))
        pulled = None
        if rng.random() < 2 / 3:
            pulled = pushed + timedelta(seconds=rng.uniform(0, (now - pushed).total_seconds()))
        payload = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE, "n": i})
        manifest_rows.append(
            {
                "digest": digest,
                "media_type": MANIFEST_MEDIA_TYPE,
                "size": len(payload),
                "payload": payload.encode(),
                "annotations": {},
                "pushed_at": pushed,
                "last_pulled_at": pulled,
            }
        )
        family = rng.random()
        names = []
        if family < 0.3:
            names.append(f"prod-{i}")
        elif family < 0.5:
            names.append(f"release-{i}")
            if rng.random() < 0.2:
                names.append(f"release-{i}-lts")
        elif family < 0.7:
            names.append(f"dev-{i}")
        for name in names:
            tag_rows.append({"name": name, "manifest_digest": digest, "updated_at": pushed})
    # One image in fifty is a platform image of an index listing it and its neighbour.
    for n, first in enumerate(range(0, images - 1, 100)):
        index = _digest(n, "index")
        payload = json.dumps({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "n": n})
        manifest_rows.append(
            {
                "digest": index,
                "media_type": INDEX_MEDIA_TYPE,
                "size": len(payload),
                "payload": payload.encode(),
                "annotations": {},
                "pushed_at": now - timedelta(days=rng.uniform(0, 400)),
                "last_pulled_at": None,
            }
        )
        tag_rows.append({"name": f"multi-{n}", "manifest_digest": index, "updated_at": now})
        for child in (first, first + 1):
            reference_rows.append(
                {
                    "manifest_digest": index,
                    "kind": ReferenceKind.MANIFEST.value,
                    "child_digest": _digest(child, "image"),
                }
            )
    return manifest_rows, tag_rows, reference_rows


async def _seed(url: str, images: int, now: datetime) -> tuple[int, float]:
    """Create the repository and its images at ``url``; (repository id, seconds taken)."""
    started = time.perf_counter()
    store = await open_sql_metadata_store(url)
    try:
        async with store.transaction() as tx:
            repository = await tx.create_repository(REGISTRY_ID, REPOSITORY, now)
    finally:
        await store.close()
    rows = _seed_rows(images, now, random.Random(20261127))
    engine = create_sql_engine(url)
    try:
        for table, table_rows in zip((manifests, tags, manifest_references), rows, strict=True):
            for start in range(0, len(table_rows), 5000):
                batch = [
                    {"repository_id": repository.id, **row}
                    for row in table_rows[start : start + 5000]
                ]
                async with write_transaction(engine) as connection:
                    await connection.execute(insert(table), batch)
        if engine.dialect.name == "postgresql":
            # A registry that took 100,000 pushes has statistics (autovacuum analyzes as
            # tables grow); a bulk load has none until autovacuum gets to it, mid-run.
            async with engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.exec_driver_sql("ANALYZE")
    finally:
        await engine.dispose()
    return repository.id, time.perf_counter() - started


async def _timed(phase: Phase, step: Callable[[], Awaitable[object]]) -> object:
    started = time.perf_counter()
    result = await step()
    phase.seconds.append(time.perf_counter() - started)
    return result


async def bench_backend(backend: str, url: str, images: int, repeats: int) -> BackendRun:
    now = datetime.now(UTC)
    print(f"{backend}: seeding {images:,} images ...", file=sys.stderr, flush=True)
    repository_id, seed_s = await _seed(url, images, now)
    store = await open_sql_metadata_store(url)
    assert isinstance(store, SqlMetadataStore)
    clock = lambda: datetime.now(UTC)  # noqa: E731
    repositories = RepositoryService(store, clock)
    service = LifecycleService(store, ImageService(store, repositories, clock), clock)
    read, decide, evaluation = Phase("read candidates"), Phase("evaluate"), Phase("read + evaluate")
    preview, dry_run = Phase("preview (start, evaluate, store results)"), Phase("dry run")
    expired_digests: set[str] = set()
    try:
        await service.put_policy(REGISTRY_ID, REPOSITORY, POLICY)
        for _ in range(repeats):
            print(f"{backend}: evaluating ...", file=sys.stderr, flush=True)
            # As the service does it (LifecycleService._run_one): pages of candidates in one
            # read transaction, then the plan, with the cyclic collector paused.
            with cyclic_gc_paused():
                started = time.perf_counter()
                async with store.read() as tx:
                    candidates = await read_candidates(tx, repository_id)
                read_done = time.perf_counter()
                results = plan(POLICY, candidates, clock())
                finished = time.perf_counter()
            read.seconds.append(read_done - started)
            decide.seconds.append(finished - read_done)
            evaluation.seconds.append(finished - started)
            assert len(candidates) > images
            expired_digests = {str(r.digest) for r in results}
            del candidates, results

            async def whole_preview() -> None:
                await service.start_preview(REGISTRY_ID, REPOSITORY)
                async with store.read() as tx:
                    started_preview = await tx.get_lifecycle_preview(repository_id)
                assert started_preview is not None
                assert await service.complete_preview(repository_id, started_preview.started_at)

            await _timed(preview, whole_preview)
            runs = await _timed(dry_run, lambda: service.run(repository=REPOSITORY, dry_run=True))
            assert isinstance(runs, list)
            assert len(runs[0].images) == len(expired_digests)
        print(f"{backend}: expiring {len(expired_digests):,} images ...", file=sys.stderr)
        real = Phase("run (evaluate, delete, record)")
        runs = await _timed(real, lambda: service.run(repository=REPOSITORY))
        assert isinstance(runs, list)
        deleted = [image for image in runs[0].images if image.deleted]
        by_rule = Counter(image.rule_priority for image in deleted)
        async with store.read() as tx:
            remaining = len(await tx.lifecycle_candidates(repository_id))
    finally:
        await store.close()
    return BackendRun(
        backend,
        seed_s,
        [read, decide, evaluation, preview, dry_run, real],
        expired=len(deleted),
        remaining=remaining,
        by_rule=dict(sorted(by_rule.items())),
    )


async def _postgres_admin(statement: str) -> None:
    connection = await asyncpg.connect(f"postgresql://{POSTGRES_SERVER}/test", timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def run_all(backends: list[str], images: int, repeats: int) -> list[BackendRun]:
    results = []
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'metadata.db'}"
                results.append(await bench_backend(backend, url, images, repeats))
        else:
            name = f"bench_lifecycle_{uuid.uuid4().hex[:8]}"
            await _postgres_admin(f'CREATE DATABASE "{name}"')
            try:
                url = f"postgresql+asyncpg://{POSTGRES_SERVER}/{name}"
                results.append(await bench_backend(backend, url, images, repeats))
            finally:
                await _postgres_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
    return results


def render(results: list[BackendRun], images: int, repeats: int, command: str) -> str:
    header = "| phase | " + " | ".join(r.backend for r in results) + " |"
    lines = [
        f"## Lifecycle policy evaluation, {images:,} images",
        "",
        f"Run at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with:",
        "",
        "```sh",
        command,
        "```",
        "",
        "A 3-rule policy (`prod-` prefix keeping 500, `release-*` not pulled for 60 days, "
        "`any` keeping 20,000) over one repository; see `bench/lifecycle.py` for the data. "
        f"Seconds, median of {repeats} (the real run: once). Target: read + evaluate < 2 s. "
        "Distribution has no lifecycle policies: no reference column.",
        "",
        *machine_lines(),
        "",
        header,
        "|---|" + "---|" * len(results),
    ]
    for i, phase in enumerate(results[0].phases):
        cells = [f"{r.phases[i].median:.2f}" for r in results]
        lines.append(f"| {phase.name} | " + " | ".join(cells) + " |")
    lines.append("| seeding (not a target) | " + " | ".join(f"{r.seed_s:.1f}" for r in results))
    lines[-1] += " |"
    lines += [
        "",
        "| outcome | " + " | ".join(r.backend for r in results) + " |",
        "|---|" + "---|" * len(results),
        "| images expired | " + " | ".join(f"{r.expired:,}" for r in results) + " |",
        "| expired by rule 1, 2, 3 | "
        + " | ".join(", ".join(f"{r.by_rule.get(p, 0):,}" for p in (1, 2, 3)) for r in results)
        + " |",
        "| images left | " + " | ".join(f"{r.remaining:,}" for r in results) + " |",
        "",
        "Verdict: "
        + ", ".join(
            f"{r.backend} {r.phases[2].median:.2f} s "
            + ("PASS" if r.phases[2].median < 2.0 else "FAIL")
            for r in results
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--out", type=Path, help="write the section 'lifecycle' of this Markdown file")
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ("sqlite", "postgresql")]
    if unknown:
        print(f"unknown backend: {', '.join(unknown)}", file=sys.stderr)
        return 2
    results = asyncio.run(run_all(backends, args.images, args.repeats))
    command = "python -m bench.lifecycle " + shlex.join(argv if argv is not None else sys.argv[1:])
    markdown = render(results, args.images, args.repeats, command)
    print(markdown)
    if args.out:
        replace_section(args.out, "lifecycle", markdown)
        print(f"wrote the lifecycle section of {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
