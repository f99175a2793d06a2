"""``python -m bench.scan``: scan time of a Debian image, and advisory import time.

Issue target: scanning a Debian image of ~150 packages and ~350 MB takes under 5 s.

The image (``bench/scan_image.py`` says what is in it) is built once into a temporary
directory: three gzip layers, ~7,000 files, ~350 MiB uncompressed, with the 144 packages of
``bookworm-vulnset.dpkg-status`` and 30 Python distributions. Its blobs are stored in a
filesystem blob store through the registry's own code (``moorage.app.open_registry``, the
upload port: start, write, commit), shared by every backend.

Then, for each metadata backend (SQLite in the data directory, and PostgreSQL in a database
created for the run and dropped after), starting from an empty database:

1. import the whole Go vulnerability database and the whole PyPA advisory database through
   ``services.advisories.import_paths`` (what ``moorage advisories import`` runs), timed
   each: records, seconds, records/s; then the Debian tracker fixture
   (``tests/fixtures/vulnscan/advisories/debian-tracker-bookworm.json``), so that lookups run
   against a table of realistic size;
2. ``ImageScanner.scan`` of the image, basic (``os_packages_only=True``) and enhanced
   (``False``), ``--repeats`` times each, median;
3. the same pipeline in its phases, timed apart: reading the layers (``read_layers``),
   the inventory (``scanning.inventory.inventory``), the advisory lookup (one read transaction:
   ``advisories_for`` and ``advisories_updated_at``) and matching (``matching.match``).

Advisory databases and the dpkg status come from ``/work/shared/data/vulnscan`` (the shared
data set; ``--data`` to look elsewhere); the benchmark stops with a message naming what is
missing. The layers are in the page cache when scanned (they were just written), as
they are for a scan on push.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench import scan_image
from bench.report import machine_lines
from bench.scan_image import BuiltLayer, build_image
from bench.sections import replace_section
from moorage.app import Registry, open_registry
from moorage.config import Settings
from moorage.domain.digests import Digest
from moorage.domain.manifests import parse_manifest
from moorage.ports.clock import system_clock
from moorage.scanning.inventory import inventory as build_inventory
from moorage.scanning.inventory import wanted
from moorage.scanning.layers import Layer, read_layers
from moorage.scanning.matching import lookup_keys, match
from moorage.services.advisories import import_paths
from moorage.services.image_scanner import ImageScanner

TARGET_S = 5.0
POSTGRES_SERVER = os.environ.get("MOORAGE_TEST_POSTGRES_SERVER", "postgres@127.0.0.1:5432")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEBIAN_TRACKER = REPO_ROOT / "tests/fixtures/vulnscan/advisories/debian-tracker-bookworm.json"
IMPORTED = ("golang-vulndb-osv-a752ea5.tar.gz", "pypa-advisory-db-3ccb612.tar.gz")


@dataclass
class Import:
    name: str
    records: int
    errors: int
    seconds: float


@dataclass
class BackendRun:
    backend: str
    imports: list[Import] = field(default_factory=list)
    advisories: int = 0
    phases: dict[str, list[float]] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=dict)
    packages: dict[str, int] = field(default_factory=dict)

    def median(self, phase: str) -> float:
        return statistics.median(self.phases[phase])


# -- the image in the blob store -------------------------------------------------------------


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(4 << 20):
            yield chunk


async def store_image(registry: Registry, layers: list[BuiltLayer]) -> bytes:
    """Put the config and layer blobs in the registry's blob store; return the manifest."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
            "config": {"Cmd": ["gunicorn", "app.service:app"]},
        }
    ).encode()
    config_path = layers[0].path.parent / "config.json"
    config_path.write_bytes(config)
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    blobs = [(config_path, config_digest, len(config))]
    blobs += [(layer.path, layer.digest, layer.size) for layer in layers]
    store = registry.blob_store
    for path, digest, size in blobs:
        upload = str(uuid.uuid4())
        await store.start_upload(upload)
        written = await store.write_upload(upload, 0, _chunks(path))
        assert written == size, (written, size)
        await store.commit_upload(upload, Digest.parse(digest), size)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": scan_image.MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": scan_image.CONFIG_MEDIA_TYPE,
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": scan_image.LAYER_MEDIA_TYPE,
                    "digest": layer.digest,
                    "size": layer.size,
                }
                for layer in layers
            ],
        }
    ).encode()


# -- one backend -----------------------------------------------------------------------------


async def _timed(
    phases: dict[str, list[float]], name: str, step: Callable[[], Awaitable[object]]
) -> object:
    started = time.perf_counter()
    result = await step()
    phases.setdefault(name, []).append(time.perf_counter() - started)
    return result


async def bench_backend(
    backend: str, settings: Settings, manifest_bytes: bytes, advisories_dir: Path, repeats: int
) -> BackendRun:
    run = BackendRun(backend)
    registry = await open_registry(settings)
    try:
        for name in IMPORTED:
            print(f"{backend}: importing {name} ...", file=sys.stderr, flush=True)
            (report,) = await import_paths(registry.metadata, [advisories_dir / name], system_clock)
            run.imports.append(Import(name, report.records, report.errors, report.seconds))
        (report,) = await import_paths(registry.metadata, [DEBIAN_TRACKER], system_clock)
        run.imports.append(
            Import(DEBIAN_TRACKER.name, report.records, report.errors, report.seconds)
        )
        run.advisories = sum(i.records for i in run.imports)

        manifest = parse_manifest(manifest_bytes, scan_image.MANIFEST_MEDIA_TYPE)
        scanner = ImageScanner(registry.metadata, registry.blob_store)
        layers: list[Layer] = []
        for descriptor in manifest.layers:
            location = await registry.blob_store.locate(descriptor.digest)
            assert location is not None
            assert location.path is not None
            layers.append((descriptor.digest, descriptor.media_type, location.path))

        for i in range(repeats):
            print(f"{backend}: scan {i + 1}/{repeats} ...", file=sys.stderr, flush=True)
            for label, os_only in (("basic", True), ("enhanced", False)):
                result = await _timed(
                    run.phases,
                    f"scan {label}",
                    lambda os_only=os_only: scanner.scan(manifest, os_packages_only=os_only),
                )
                run.findings[label] = len(result.findings)  # type: ignore[attr-defined]
                run.packages[label] = len(result.inventory.packages)  # type: ignore[attr-defined]
                assert result.unsupported is None, result.unsupported  # type: ignore[attr-defined]

            # The enhanced scan's pipeline, phase by phase (ImageScanner.scan runs the same).
            started = time.perf_counter()
            files = await read_layers(layers, wanted)
            read_done = time.perf_counter()
            inventory = build_inventory(files)
            inventory_done = time.perf_counter()
            keys = lookup_keys(inventory)
            async with registry.metadata.read() as tx:
                found = await tx.advisories_for(keys)
                await tx.advisories_updated_at()
            lookup_done = time.perf_counter()
            findings = match(inventory, found)
            match_done = time.perf_counter()
            assert len(findings) == run.findings["enhanced"]
            for name, seconds in (
                ("read layers", read_done - started),
                ("inventory", inventory_done - read_done),
                ("advisory lookup", lookup_done - inventory_done),
                ("match", match_done - lookup_done),
            ):
                run.phases.setdefault(name, []).append(seconds)
            run.packages["keys"] = len(keys)
            run.packages["keys with advisories"] = sum(1 for k in keys if found.get(k))
    finally:
        await registry.close()
    return run


async def _postgres_admin(statement: str) -> None:
    try:
        connection = await asyncpg.connect(f"postgresql://{POSTGRES_SERVER}/test", timeout=10)
    except (OSError, asyncpg.PostgresError) as error:
        raise SystemExit(
            f"PostgreSQL is not reachable at {POSTGRES_SERVER} ({error!r}); start it, set "
            "MOORAGE_TEST_POSTGRES_SERVER, or pass --backends sqlite"
        ) from None
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def run_all(
    backends: list[str], layers: list[BuiltLayer], work: Path, advisories_dir: Path, repeats: int
) -> list[BackendRun]:
    data_dir = work / "data"
    # The blobs go in once, through a registry on SQLite; every backend reads the same store.
    registry = await open_registry(Settings(data_dir=data_dir))
    try:
        manifest = await store_image(registry, layers)
    finally:
        await registry.close()
    results = []
    for backend in backends:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{work / 'bench-scan.db'}"
            settings = Settings(data_dir=data_dir, database_url=url)
            results.append(
                await bench_backend(backend, settings, manifest, advisories_dir, repeats)
            )
        else:
            name = f"bench_scan_{uuid.uuid4().hex[:8]}"
            await _postgres_admin(f'CREATE DATABASE "{name}"')
            try:
                url = f"postgresql+asyncpg://{POSTGRES_SERVER}/{name}"
                settings = Settings(data_dir=data_dir, database_url=url)
                results.append(
                    await bench_backend(backend, settings, manifest, advisories_dir, repeats)
                )
            finally:
                await _postgres_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
    return results


# -- report ----------------------------------------------------------------------------------

SCAN_PHASES = ("scan basic", "scan enhanced")
SPLIT_PHASES = ("read layers", "inventory", "advisory lookup", "match")


def render(
    results: list[BackendRun], layers: list[BuiltLayer], repeats: int, command: str, build_s: float
) -> str:
    files = sum(layer.files for layer in layers)
    uncompressed = sum(layer.uncompressed for layer in layers)
    compressed = sum(layer.size for layer in layers)
    cols = " | ".join(r.backend for r in results)
    first = results[0]
    lines = [
        "## Image scan, Debian image of ~150 packages and ~350 MB",
        "",
        f"Run at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with:",
        "",
        "```sh",
        command,
        "```",
        "",
        f"The image: {len(layers)} gzip layers (base, apt, app), {files:,} files, "
        f"{uncompressed / 2**20:,.0f} MiB uncompressed, {compressed / 2**20:,.0f} MiB "
        f"compressed, built in {build_s:.0f} s (not timed): `etc/os-release` of Debian 12 and "
        "the 144 packages of `bookworm-vulnset.dpkg-status` (from `/work/shared/data/vulnscan`), "
        "binaries and shared libraries (random bytes), documentation, Perl and Python sources "
        f"(text), {len(scan_image.PYTHON_PACKAGES)} Python distributions in site-packages; see "
        "`bench/scan_image.py`. Blobs in the filesystem blob store; the advisory table holds "
        "the whole Go and PyPA databases and the Debian tracker fixture. "
        f"Seconds, median of {repeats}. Target: a scan under {TARGET_S:g} s.",
        "",
        *machine_lines()[:3],
        "",
        f"| scan (`ImageScanner.scan`) | {cols} |",
        "|---|" + "---:|" * len(results),
    ]
    for phase in SCAN_PHASES:
        lines.append(f"| {phase} | " + " | ".join(f"{r.median(phase):.2f}" for r in results) + " |")
    lines += [
        "",
        f"| enhanced scan, phase by phase | {cols} |",
        "|---|" + "---:|" * len(results),
    ]
    for phase in SPLIT_PHASES:
        lines.append(f"| {phase} | " + " | ".join(f"{r.median(phase):.3f}" for r in results) + " |")
    total = [sum(r.median(p) for p in SPLIT_PHASES) for r in results]
    lines.append("| sum | " + " | ".join(f"{t:.2f}" for t in total) + " |")
    lines += [
        "",
        f"Found: {first.packages['basic']} OS packages (basic), {first.packages['enhanced']} "
        f"packages in all (enhanced), {first.packages['keys']} lookup keys of which "
        f"{first.packages['keys with advisories']} have advisories; findings "
        f"{first.findings['basic']} (basic), {first.findings['enhanced']} (enhanced).",
        "",
        f"| advisory import (`import_paths`; a new database, Go first) | {cols} |",
        "|---|" + "---:|" * len(results),
    ]
    for i, imp in enumerate(first.imports[: len(IMPORTED)]):
        lines.append(
            f"| {imp.name}: records | "
            + " | ".join(f"{r.imports[i].records:,}" for r in results)
            + " |"
        )
        lines.append(
            f"| {imp.name}: seconds | "
            + " | ".join(f"{r.imports[i].seconds:.1f}" for r in results)
            + " |"
        )
        lines.append(
            f"| {imp.name}: records/s | "
            + " | ".join(f"{r.imports[i].records / r.imports[i].seconds:,.0f}" for r in results)
            + " |"
        )
    verdicts = []
    for r in results:
        for phase in SCAN_PHASES:
            verdict = "PASS" if r.median(phase) < TARGET_S else "FAIL"
            verdicts.append(f"{r.backend} {phase.split()[1]} {r.median(phase):.2f} s {verdict}")
    lines += ["", "Verdict: " + ", ".join(verdicts) + "."]
    return "\n".join(lines) + "\n"


def _check_data(advisories_dir: Path) -> str | None:
    missing = [
        str(path)
        for path in (
            scan_image.DPKG_STATUS,
            scan_image.OS_RELEASE,
            DEBIAN_TRACKER,
            *(advisories_dir / name for name in IMPORTED),
        )
        if not path.is_file()
    ]
    if not missing:
        return None
    return (
        "bench.scan needs the shared vulnerability-scanning data set "
        f"(/work/shared/data/vulnscan) and the repository's fixtures; missing: {', '.join(missing)}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--mib", type=int, default=350, help="uncompressed image size [350]")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument(
        "--advisories",
        type=Path,
        default=scan_image.DATA / "advisories",
        help="folder holding the Go and PyPA database archives",
    )
    ap.add_argument("--out", type=Path, help="write the section 'scan' of this Markdown file")
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ("sqlite", "postgresql")]
    if unknown:
        print(f"unknown backend: {', '.join(unknown)}", file=sys.stderr)
        return 2
    problem = _check_data(args.advisories)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        work = Path(tmp)
        print(f"building the image ({args.mib} MiB) ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        image_dir = work / "image"
        image_dir.mkdir()
        layers = build_image(image_dir, args.mib)
        build_s = time.perf_counter() - started
        results = asyncio.run(run_all(backends, layers, work, args.advisories, args.repeats))
    command = "python -m bench.scan " + shlex.join(argv if argv is not None else sys.argv[1:])
    markdown = render(results, layers, args.repeats, command, build_s)
    print(markdown)
    if args.out:
        replace_section(args.out, "scan", markdown)
        print(f"wrote the scan section of {args.out}", file=sys.stderr)
    failed = any(r.median(p) >= TARGET_S for r in results for p in SCAN_PHASES)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
