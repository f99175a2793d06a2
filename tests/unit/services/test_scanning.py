"""ScanService's job handler on a real SQLite store and filesystem blob store: a scan asked
for while its job runs is answered by the same job, and a last attempt that fails records the
scan FAILED. The scanner is the real one, wrapped to act at the moment that matters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from moorage.app import Registry, wire
from moorage.config import Settings
from moorage.domain.digests import Digest
from moorage.domain.jobs import Job
from moorage.domain.manifests import ParsedManifest
from moorage.ports.clock import system_clock
from moorage.ports.scans import ScanStatus
from moorage.services.advisories import import_paths
from moorage.services.image_scanner import ImageScanner, ScanResult
from moorage.services.images import ImageId
from moorage.services.scanning import SCAN_JOB, ScanService
from moorage.storage.blobs.filesystem import FilesystemBlobStore
from moorage.storage.metadata.sql.store import open_sql_metadata_store
from tests.e2e.client import image_manifest
from tests.scan_images import FIXTURES, debian_layer, image_config

ACCOUNT = "123456789012"
REPOSITORY = "scan/service"
TRACKER = FIXTURES / "advisories" / "debian-tracker-bookworm.json"


class SteppedScanner(ImageScanner):
    """The real scanner, awaiting ``before`` ahead of each scan (with the scan's number)."""

    def __init__(self, registry: Registry, before: Callable[[int], Awaitable[None]]) -> None:
        super().__init__(registry.metadata, registry.blob_store)
        self.before = before
        self.scans = 0

    async def scan(self, manifest: ParsedManifest, *, os_packages_only: bool) -> ScanResult:
        self.scans += 1
        await self.before(self.scans)
        return await super().scan(manifest, os_packages_only=os_packages_only)


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    metadata = await open_sql_metadata_store(f"sqlite+aiosqlite:///{tmp_path / 'moorage.db'}")
    blob_store = FilesystemBlobStore(tmp_path / "blobs")
    registry = wire(Settings(data_dir=tmp_path), metadata, blob_store)
    await import_paths(metadata, [TRACKER], system_clock)
    await registry.repositories.create(ACCOUNT, REPOSITORY)
    try:
        yield registry
    finally:
        await registry.close()


async def push_debian(registry: Registry) -> Digest:
    layer = debian_layer()
    config = image_config([layer])
    for blob in (config, layer):

        async def body(data: bytes = blob) -> AsyncIterator[bytes]:
            yield data

        await registry.uploads.upload(ACCOUNT, REPOSITORY, Digest.of(blob), body())
    stored = await registry.images.put_image(
        ACCOUNT, REPOSITORY, image_manifest(config, [layer]).decode(), tag="v1"
    )
    return stored.manifest.digest


def service(registry: Registry, scanner: ImageScanner) -> ScanService:
    return ScanService(
        registry.metadata,
        registry.blob_store,
        registry.images,
        registry.uploads,
        scanner,
        system_clock,
        registry_host=lambda _: "127.0.0.1:5000",
    )


async def scan_job(registry: Registry) -> Job:
    async with registry.metadata.read() as tx:
        (job,) = await tx.list_jobs(kind=SCAN_JOB)
    return job


async def test_a_scan_asked_for_during_the_job_is_answered_by_it(registry: Registry) -> None:
    digest = await push_debian(registry)
    _, first = await registry.scanning.start_scan(ACCOUNT, REPOSITORY, ImageId(digest=str(digest)))
    job = await scan_job(registry)
    newer_at = first.requested_at + timedelta(seconds=1)

    async def ask_again(number: int) -> None:
        if number == 1:  # a push or StartImageScan lands while the first scan runs
            async with registry.metadata.transaction() as tx:
                await tx.start_image_scan(first.repository_id, digest, "BASIC", newer_at)

    scanner = SteppedScanner(registry, ask_again)
    await service(registry, scanner).handle_scan_job(job)

    assert scanner.scans == 2  # the first outcome was refused; the job scanned again
    async with registry.metadata.read() as tx:
        scan = await tx.get_image_scan(first.repository_id, digest)
        findings = await tx.scan_findings(first.repository_id, digest)
    assert scan is not None
    assert (scan.status, scan.requested_at) == (ScanStatus.COMPLETE, newer_at)
    assert len(findings) == 13


async def test_the_last_failed_attempt_records_the_scan_failed(registry: Registry) -> None:
    digest = await push_debian(registry)
    _, started = await registry.scanning.start_scan(
        ACCOUNT, REPOSITORY, ImageId(digest=str(digest))
    )
    job = await scan_job(registry)

    async def break_down(_: int) -> None:
        raise OSError("the blob store went away")

    failing = service(registry, SteppedScanner(registry, break_down))
    with pytest.raises(OSError, match="went away"):
        await failing.handle_scan_job(job)  # not the last attempt: still in progress
    async with registry.metadata.read() as tx:
        scan = await tx.get_image_scan(started.repository_id, digest)
    assert scan is not None
    assert scan.status is ScanStatus.IN_PROGRESS

    last = replace(job, attempts=job.max_attempts)
    with pytest.raises(OSError, match="went away"):
        await failing.handle_scan_job(last)
    async with registry.metadata.read() as tx:
        scan = await tx.get_image_scan(started.repository_id, digest)
    assert scan is not None
    assert scan.status is ScanStatus.FAILED
    assert scan.description == "The scan failed: the blob store went away"
