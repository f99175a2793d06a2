"""Image scanning as ECR offers it: scans asked for by StartImageScan, on push, or again when
new advisories concern an image (continuous scanning); their findings; their SBOMs.

A scan is recorded ``IN_PROGRESS`` and its job enqueued in one transaction (the push's own,
for scan on push), so that no scan is asked for without a job to do it. The job scans the image
(``image_scanner.py``), pushes the SBOM as a referrer of the image, and records the outcome:
``COMPLETE`` with findings, ``UNSUPPORTED_IMAGE`` with the reason, or ``FAILED`` when the job's
last attempt fails.

ECR's limits and modes (shared reference §6): one scan per image per 24 hours, counting the
scan on push (``LimitExceededException``); StartImageScan is for basic scanning only; basic
scanning reports operating system packages, enhanced scanning language packages too; after the
registry switches between them, the other mode's results are unavailable (ScanNotFound) until
the image is scanned again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from moorage.domain.digests import Digest
from moorage.domain.errors import (
    ManifestUnknown,
    RepositoryNotFound,
    ScanLimitExceeded,
    ScanningValidation,
    ScanNotFound,
    UnsupportedImageType,
)
from moorage.domain.findings import Finding
from moorage.domain.jobs import Job
from moorage.domain.manifests import OCI_MANIFEST, ParsedManifest, parse_manifest
from moorage.domain.models import ManifestRecord, Repository
from moorage.domain.names import RepositoryName
from moorage.domain.scanning_configuration import (
    RegistryScanningConfiguration,
    ScanFrequency,
    ScanType,
    effective_scanning,
)
from moorage.ports.blobs import BlobStore
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore, MetadataTransaction
from moorage.ports.scans import ImageScan, ScanStatus
from moorage.scanning import sbom
from moorage.scanning.advisories.keys import PackageKey
from moorage.services.image_scanner import ImageScanner, ScanResult, unsupported_reason
from moorage.services.images import ImageId, ImageService, Push, Reference, find_image
from moorage.services.repositories import require
from moorage.services.uploads import UploadService

log = logging.getLogger("moorage.scanning")

SCAN_JOB = "image-scan"
RESCAN_JOB = "advisory-rescan"
SCAN_QUOTA_PERIOD = timedelta(hours=24)

COMPLETE_DESCRIPTION = "The scan was completed successfully."
# ECR's own text for an image its basic scanner cannot read; the reason follows it.
UNSUPPORTED_DESCRIPTION = (
    "UnsupportedImageError: The operating system and/or package manager are not supported."
)
LIMIT_EXCEEDED_MESSAGE = "The scan quota per image has been exceeded. Wait and try again."


@dataclass(frozen=True, slots=True)
class ScanReport:
    """An image's latest scan and, when it is complete, its findings."""

    repository: str
    manifest: ManifestRecord
    tags: tuple[str, ...]
    scan: ImageScan
    findings: tuple[Finding, ...]


class ScanService:
    def __init__(
        self,
        metadata: MetadataStore,
        blob_store: BlobStore,
        images: ImageService,
        uploads: UploadService,
        scanner: ImageScanner,
        clock: Clock,
        *,
        registry_host: Callable[[str], str],
    ) -> None:
        self._metadata = metadata
        self._blob_store = blob_store
        self._images = images
        self._uploads = uploads
        self._scanner = scanner
        self._clock = clock
        self._registry_host = registry_host

    # -- asking for scans -----------------------------------------------------------------

    async def on_push(self, tx: MetadataTransaction, push: Push) -> None:
        """The push hook (``ImageService.add_push_hook``): scan a new image when its
        repository scans on push (or continuously), replicated copies included (the
        destination's configuration governs them, as in ECR). Indexes and artifacts are not
        scanned; a retag is not a new image."""
        repository, manifest, now = push.repository, push.manifest, push.at
        if not push.created or unsupported_reason(manifest) is not None:
            return
        config = await _configuration(tx, repository.registry_id)
        scanning = effective_scanning(config, repository.name, repository.scan_on_push)
        if scanning.scan_frequency in (ScanFrequency.SCAN_ON_PUSH, ScanFrequency.CONTINUOUS_SCAN):
            await _begin(tx, repository, manifest.digest, config.scan_type, now)

    async def start_scan(
        self, registry_id: str, name: str, image_id: ImageId
    ) -> tuple[ManifestRecord, ImageScan]:
        """StartImageScan. Raises RepositoryNotFound, ManifestUnknown (ImageNotFound),
        InvalidParameter, ScanningValidation (the registry scans ENHANCED),
        UnsupportedImageType (an index or an artifact), ScanLimitExceeded."""
        now = self._clock()
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            record = await find_image(tx, repository.id, image_id, registry_id, name)
            config = await _configuration(tx, registry_id)
            if config.scan_type is ScanType.ENHANCED:
                raise ScanningValidation(
                    "StartImageScan is only supported for basic scanning; this registry's "
                    "scan type is ENHANCED, which scans continuously or on push"
                )
            reason = unsupported_reason(parse_manifest(record.payload, record.media_type))
            if reason is not None:
                raise UnsupportedImageType(f"The image cannot be scanned: {reason}")
            previous = await tx.get_image_scan(repository.id, record.digest)
            if previous is not None and now - previous.requested_at < SCAN_QUOTA_PERIOD:
                raise ScanLimitExceeded(LIMIT_EXCEEDED_MESSAGE)
            scan = await _begin(tx, repository, record.digest, config.scan_type, now)
        return record, scan

    # -- reading results --------------------------------------------------------------------

    async def report(self, registry_id: str, name: str, image_id: ImageId) -> ScanReport:
        """DescribeImageScanFindings' data. Raises RepositoryNotFound, ManifestUnknown,
        InvalidParameter, ScanNotFound (never scanned, or scanned in the other mode)."""
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            record = await find_image(tx, repository.id, image_id, registry_id, name)
            scan = await tx.get_image_scan(repository.id, record.digest)
            config = await _configuration(tx, registry_id)
            if scan is None or scan.scan_type != config.scan_type.value:
                # The image id as the caller gave it ('null' for a part left out), as ECR
                # words it (and as in ImageNotFound's message).
                raise ScanNotFound(
                    f"Image scan does not exist for the image with '{{imageDigest:"
                    f"'{image_id.digest or 'null'}', imageTag:'{image_id.tag or 'null'}'}}' in the "
                    f"repository with name '{name}' in the registry with id '{registry_id}'"
                )
            findings: list[Finding] = []
            if scan.status is ScanStatus.COMPLETE:
                findings = await tx.scan_findings(repository.id, record.digest)
            tags = await tx.tags_of(repository.id, record.digest)
        return ScanReport(name, record, tuple(tags), scan, tuple(findings))

    async def sbom(self, registry_id: str, name: str, image_id: ImageId) -> bytes:
        """The SBOM of the image's latest complete scan (``moorage sbom``). Raises
        RepositoryNotFound, ManifestUnknown, ScanNotFound (no SBOM yet)."""
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            record = await find_image(tx, repository.id, image_id, registry_id, name)
            scan = await tx.get_image_scan(repository.id, record.digest)
        if scan is None or scan.sbom_digest is None:
            raise ScanNotFound(f"the image {name}@{record.digest} has no SBOM: it was not scanned")
        referrer = await self._images.get_manifest(
            registry_id, name, Reference(digest=scan.sbom_digest)
        )
        layer = parse_manifest(referrer.payload, referrer.media_type).layers[0]
        return b"".join([chunk async for chunk in self._blob_store.open(layer.digest)])

    # -- the jobs ---------------------------------------------------------------------------

    async def handle_scan_job(self, job: Job, _progress: object = None) -> None:
        """The job runner's handler for :data:`SCAN_JOB`. When the job's last attempt fails,
        the scan is recorded ``FAILED`` before the error goes to the runner."""
        repository_id = int(job.payload["repository_id"])
        registry_id = str(job.payload["registry_id"])
        name = str(job.payload["repository_name"])
        digest = Digest.parse(str(job.payload["digest"]))
        # Again while a newer scan was asked for during this one (its job was not enqueued:
        # this one was pending), so that the newest request is the one answered.
        while True:
            async with self._metadata.read() as tx:
                repository = await tx.get_repository(registry_id, name)
                scan = await tx.get_image_scan(repository_id, digest)
                record = await tx.get_manifest(repository_id, digest)
            if repository is None or repository.id != repository_id:
                return  # the repository is gone
            if record is None or scan is None or scan.status is not ScanStatus.IN_PROGRESS:
                return  # the image is gone, or its scan finished (a retried job)
            try:
                if await self._scan(repository, record, scan):
                    return
            except Exception as error:
                if job.attempts >= job.max_attempts:
                    await self._finish(
                        repository, scan, ScanStatus.FAILED, f"The scan failed: {error}"
                    )
                raise

    async def handle_rescan_job(self, job: Job, _progress: object = None) -> None:
        """The handler for :data:`RESCAN_JOB` (enqueued by ``moorage advisories import``):
        scan again the images of continuously scanned repositories that have a package the
        advisories written since ``payload["since"]`` name, or that the withdrawn advisories
        named (``payload["keys"]``, ``[ecosystem, name]`` pairs)."""
        since = datetime.fromisoformat(str(job.payload["since"]))
        withdrawn = job.payload.get("keys") or []
        async with self._metadata.read() as tx:
            keys = await tx.keys_changed_since(since)
            keys.update(PackageKey(str(e), str(n)) for e, n in withdrawn)
            images = await tx.images_with_packages(keys) if keys else []
        started = 0
        for repository, digest in images:
            now = self._clock()
            # The images are every region's: each is scanned as its own region configures.
            async with self._metadata.in_region(repository.region).transaction() as tx:
                config = await _configuration(tx, repository.registry_id)
                scanning = effective_scanning(config, repository.name, repository.scan_on_push)
                if scanning.scan_frequency is not ScanFrequency.CONTINUOUS_SCAN:
                    continue
                if await tx.get_manifest(repository.id, digest) is None:
                    continue
                await _begin(tx, repository, digest, config.scan_type, now)
                started += 1
        log.info("advisories changed: %d image(s) to scan again", started)

    async def _scan(self, repository: Repository, record: ManifestRecord, scan: ImageScan) -> bool:
        """Scan and record the outcome; False when a newer scan was asked for meanwhile."""
        manifest = parse_manifest(record.payload, record.media_type)
        result = await self._scanner.scan(
            manifest, os_packages_only=scan.scan_type == ScanType.BASIC.value
        )
        if result.unsupported is not None:
            description = f"{UNSUPPORTED_DESCRIPTION} {result.unsupported}"
            return await self._finish(repository, scan, ScanStatus.UNSUPPORTED_IMAGE, description)
        sbom_digest = await self._push_sbom(repository, manifest, result)
        recorded = await self._finish(
            repository, scan, ScanStatus.COMPLETE, COMPLETE_DESCRIPTION, result, sbom_digest
        )
        replaced = scan.sbom_digest if recorded else sbom_digest
        if replaced is not None and replaced != sbom_digest:
            await self._delete_sbom(repository, replaced)
        return recorded

    async def _finish(
        self,
        repository: Repository,
        scan: ImageScan,
        status: ScanStatus,
        description: str,
        result: ScanResult | None = None,
        sbom_digest: Digest | None = None,
    ) -> bool:
        async with self._metadata.transaction() as tx:
            recorded = await tx.finish_image_scan(
                repository.id,
                scan.digest,
                requested_at=scan.requested_at,
                status=status,
                description=description,
                completed_at=self._clock(),
                advisories_updated_at=None if result is None else result.advisories_updated_at,
                findings=() if result is None else result.findings,
                packages=() if result is None else result.packages,
                sbom_digest=sbom_digest,
            )
        if recorded:
            log.info(
                "scan of %s/%s@%s: %s%s",
                repository.registry_id,
                repository.name,
                scan.digest,
                status.value,
                "" if result is None else f", {len(result.findings)} finding(s)",
            )
        return recorded

    async def _push_sbom(
        self, repository: Repository, manifest: ParsedManifest, result: ScanResult
    ) -> Digest:
        """Push the scan's CycloneDX SBOM as a referrer of the image; return its manifest's
        digest."""
        registry_id, name = repository.registry_id, repository.name
        tags = await self._tags(repository, manifest.digest)
        created = self._clock()
        image = sbom.ScannedImage(
            self._registry_host(registry_id), name, manifest.digest, tuple(tags)
        )
        document = sbom.build_sbom(
            result.inventory, image=image, created=created, findings=result.findings
        )
        sbom_blob = Digest.of(document)
        await self._uploads.upload(registry_id, name, sbom_blob, _once(document))
        empty = sbom.EMPTY_CONFIG_BYTES
        await self._uploads.upload(registry_id, name, sbom.EMPTY_CONFIG_DIGEST, _once(empty))
        referrer = sbom.referrer_manifest(
            sbom_digest=sbom_blob,
            sbom_size=len(document),
            subject_digest=manifest.digest,
            subject_media_type=manifest.media_type,
            subject_size=manifest.size,
            created=created,
        )
        digest = Digest.of(referrer)
        await self._images.put_manifest(
            registry_id, name, Reference(digest=digest), referrer, OCI_MANIFEST
        )
        return digest

    async def _delete_sbom(self, repository: Repository, digest: Digest) -> None:
        reference = Reference(digest=digest)
        with contextlib.suppress(ManifestUnknown, RepositoryNotFound):  # deleted already
            await self._images.delete(repository.registry_id, repository.name, reference)

    async def _tags(self, repository: Repository, digest: Digest) -> list[str]:
        async with self._metadata.read() as tx:
            return await tx.tags_of(repository.id, digest)


async def request_rescan(
    metadata: MetadataStore,
    *,
    since: datetime,
    now: datetime,
    keys: Iterable[PackageKey] = (),
) -> None:
    """After an import of advisories: enqueue the job that scans again the continuously
    scanned images that the advisories written since ``since`` concern, or the withdrawn
    advisories (indexed under ``keys``) did (the workers of a running server pick it up)."""
    payload = {"since": since.isoformat(), "keys": [list(key) for key in sorted(set(keys))]}
    async with metadata.transaction() as tx:
        await tx.enqueue_job(RESCAN_JOB, payload, now)


async def _configuration(
    tx: MetadataTransaction, registry_id: str
) -> RegistryScanningConfiguration:
    stored = await tx.get_registry_scanning_configuration(registry_id)
    return stored if stored is not None else RegistryScanningConfiguration()


async def _begin(
    tx: MetadataTransaction,
    repository: Repository,
    digest: Digest,
    scan_type: ScanType,
    now: datetime,
) -> ImageScan:
    """Record the scan as asked for and enqueue its job (one pending job per image)."""
    scan = await tx.start_image_scan(repository.id, digest, scan_type.value, now)
    payload = {
        "registry_id": repository.registry_id,
        "region": repository.region,  # which region's services run it (workers/wiring.py)
        "repository_name": repository.name,
        "repository_id": repository.id,
        "digest": str(digest),
    }
    await tx.enqueue_job(SCAN_JOB, payload, now, dedupe_key=f"scan:{repository.id}:{digest}")
    return scan


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
