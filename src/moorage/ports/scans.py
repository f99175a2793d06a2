"""The image scan records port: the latest scan of each image, its findings, and which
packages it found (what continuous scanning rescans an image for).

Part of every metadata transaction (``MetadataTransaction`` includes :class:`ScanRecords`). An
image has at most one scan, the latest; it goes with its manifest. The SQL schema is in
``storage/metadata/sql/tables.py``; the scanning itself in ``services/scanning.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from moorage.domain.digests import Digest
from moorage.domain.findings import Finding
from moorage.domain.models import Repository
from moorage.scanning.advisories.keys import PackageKey


class ScanStatus(StrEnum):
    """ECR's ``ScanStatus`` values that this registry reports."""

    IN_PROGRESS = "IN_PROGRESS"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    UNSUPPORTED_IMAGE = "UNSUPPORTED_IMAGE"


# What a scan says while it runs (its ``description``).
IN_PROGRESS_DESCRIPTION = "The scan is in progress."


@dataclass(frozen=True, slots=True)
class ImageScan:
    """The latest scan of one image, without its findings (``scan_findings`` reads them).

    ``requested_at``: when this scan was asked for (StartImageScan or the push), which ECR's
    one-scan-per-day quota counts from. ``scan_type``: BASIC or ENHANCED, the registry's
    scanning type when the scan was asked for. ``severity_counts`` only has severities that
    occur.
    """

    repository_id: int
    digest: Digest
    scan_type: str
    status: ScanStatus
    description: str
    requested_at: datetime
    completed_at: datetime | None = None
    advisories_updated_at: datetime | None = None
    severity_counts: Mapping[str, int] = field(default_factory=dict)
    sbom_digest: Digest | None = None


class ScanRecords(Protocol):
    async def start_image_scan(
        self, repository_id: int, digest: Digest, scan_type: str, at: datetime
    ) -> ImageScan:
        """Record that a scan of the image was asked for at ``at``: status IN_PROGRESS, the
        earlier scan's findings and packages forgotten (its SBOM's digest is kept until the
        new scan replaces it). The manifest must exist."""
        ...

    async def finish_image_scan(
        self,
        repository_id: int,
        digest: Digest,
        *,
        requested_at: datetime,
        status: ScanStatus,
        description: str,
        completed_at: datetime,
        advisories_updated_at: datetime | None = None,
        findings: Sequence[Finding] = (),
        packages: Iterable[PackageKey] = (),
        sbom_digest: Digest | None = None,
    ) -> bool:
        """Record the outcome of the scan asked for at ``requested_at``. False (nothing
        changes) when the image is gone or a newer scan was asked for since."""
        ...

    async def get_image_scan(self, repository_id: int, digest: Digest) -> ImageScan | None: ...

    async def image_scans(
        self, repository_id: int, digests: Sequence[Digest]
    ) -> dict[Digest, ImageScan]:
        """The scans of those of ``digests`` that have one."""
        ...

    async def scan_findings(self, repository_id: int, digest: Digest) -> list[Finding]:
        """The findings of the image's latest scan, in the order they were recorded."""
        ...

    async def images_with_packages(
        self, keys: Iterable[PackageKey]
    ) -> list[tuple[Repository, Digest]]:
        """The scanned images that have any of the packages, with their repositories."""
        ...
