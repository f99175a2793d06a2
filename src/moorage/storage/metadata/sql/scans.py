"""The ScanRecords port on SQL: a mixin of the store's transaction (``store.py``).

A scan's findings are one JSON document in its row (read whole by DescribeImageScanFindings,
which pages through them in memory: an image has hundreds of findings, not millions); the
packages it found are rows, so that an import of advisories finds the images they concern
through an index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, delete, select, update

from moorage.domain.digests import Digest
from moorage.domain.findings import Finding, Severity
from moorage.domain.inventory import Package, PackageType
from moorage.domain.models import Repository
from moorage.ports.scans import IN_PROGRESS_DESCRIPTION, ImageScan, ScanStatus
from moorage.scanning.advisories.keys import PackageKey
from moorage.storage.metadata.sql.rows import chunks, repository_of, stored_digest
from moorage.storage.metadata.sql.tables import image_scan_packages, image_scans, repositories

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _InsertFactory, _Statements


class SqlScanRecords:
    """Scan records on the transaction's connection ``_c``; ``_insert`` is the dialect's
    INSERT. Both are set by ``_SqlTransaction.__init__``."""

    _c: _Statements
    _insert: _InsertFactory

    async def start_image_scan(
        self, repository_id: int, digest: Digest, scan_type: str, at: datetime
    ) -> ImageScan:
        values: dict[str, Any] = {
            "scan_type": scan_type,
            "status": ScanStatus.IN_PROGRESS.value,
            "description": IN_PROGRESS_DESCRIPTION,
            "requested_at": at,
            "completed_at": None,
            "advisories_updated_at": None,
            "severity_counts": {},
            "findings": [],
        }
        await self._c.execute(
            delete(image_scan_packages).where(
                image_scan_packages.c.repository_id == repository_id,
                image_scan_packages.c.digest == str(digest),
            )
        )
        statement = (
            self._insert(image_scans)
            .values(repository_id=repository_id, digest=str(digest), **values)
            .on_conflict_do_update(index_elements=["repository_id", "digest"], set_=values)
        )
        await self._c.execute(statement)
        return ImageScan(
            repository_id, digest, scan_type, ScanStatus.IN_PROGRESS, values["description"], at
        )

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
        counts: dict[str, int] = {}
        for finding in findings:
            counts[finding.severity.value] = counts.get(finding.severity.value, 0) + 1
        statement = (
            update(image_scans)
            .where(
                image_scans.c.repository_id == repository_id,
                image_scans.c.digest == str(digest),
                image_scans.c.requested_at == requested_at,
            )
            .values(
                status=status.value,
                description=description,
                completed_at=completed_at,
                advisories_updated_at=advisories_updated_at,
                severity_counts=counts,
                findings=[finding_document(f) for f in findings],
                sbom_digest=None if sbom_digest is None else str(sbom_digest),
            )
        )
        if not (await self._c.execute(statement)).rowcount:
            return False
        # A second outcome of the same scan (a job run again after its lease ran out) replaces
        # the first one's packages.
        await self._c.execute(
            delete(image_scan_packages).where(
                image_scan_packages.c.repository_id == repository_id,
                image_scan_packages.c.digest == str(digest),
            )
        )
        rows = [
            {"repository_id": repository_id, "digest": str(digest), "ecosystem": e, "name": n}
            for e, n in sorted(set(packages))
        ]
        for chunk in chunks(rows):
            await self._c.execute(self._insert(image_scan_packages).values(chunk))
        return True

    async def get_image_scan(self, repository_id: int, digest: Digest) -> ImageScan | None:
        scans = await self.image_scans(repository_id, [digest])
        return scans.get(digest)

    async def image_scans(
        self, repository_id: int, digests: Sequence[Digest]
    ) -> dict[Digest, ImageScan]:
        found: dict[Digest, ImageScan] = {}
        columns = [c for c in image_scans.c if c.name != "findings"]
        for chunk in chunks(str(d) for d in digests):
            query = select(*columns).where(
                image_scans.c.repository_id == repository_id, image_scans.c.digest.in_(chunk)
            )
            for row in await self._c.execute(query):
                scan = _scan(row)
                found[scan.digest] = scan
        return found

    async def scan_findings(self, repository_id: int, digest: Digest) -> list[Finding]:
        query = select(image_scans.c.findings).where(
            image_scans.c.repository_id == repository_id, image_scans.c.digest == str(digest)
        )
        documents = (await self._c.execute(query)).scalar()
        return [finding_from_document(d) for d in documents or ()]

    async def images_with_packages(
        self, keys: Iterable[PackageKey]
    ) -> list[tuple[Repository, Digest]]:
        # By ecosystem, then ``name IN (...)``: the (ecosystem, name) index is walked on both
        # dialects, which a row-value IN is not on SQLite.
        names_by_ecosystem: dict[str, set[str]] = {}
        for ecosystem, name in keys:
            names_by_ecosystem.setdefault(ecosystem, set()).add(name)
        found: dict[tuple[int, str], Repository] = {}
        for ecosystem, names in sorted(names_by_ecosystem.items()):
            for chunk in chunks(sorted(names)):
                images = (
                    select(image_scan_packages.c.repository_id, image_scan_packages.c.digest)
                    .where(
                        image_scan_packages.c.ecosystem == ecosystem,
                        image_scan_packages.c.name.in_(chunk),
                    )
                    .distinct()
                    .subquery()
                )
                query = select(repositories, images.c.digest).join(
                    images, images.c.repository_id == repositories.c.id
                )
                for row in await self._c.execute(query):
                    found[(row.id, row.digest)] = repository_of(row)
        return [(found[key], stored_digest(key[1])) for key in sorted(found)]


def _scan(row: Row[Any]) -> ImageScan:
    return ImageScan(
        repository_id=row.repository_id,
        digest=stored_digest(row.digest),
        scan_type=row.scan_type,
        status=ScanStatus(row.status),
        description=row.description,
        requested_at=row.requested_at,
        completed_at=row.completed_at,
        advisories_updated_at=row.advisories_updated_at,
        severity_counts=dict(row.severity_counts or {}),
        sbom_digest=None if row.sbom_digest is None else stored_digest(row.sbom_digest),
    )


def finding_document(finding: Finding) -> dict[str, Any]:
    """A finding as stored: plain JSON, keys spelled out so that old rows stay readable."""
    package = finding.package
    return {
        "name": finding.name,
        "advisory_id": finding.advisory_id,
        "aliases": list(finding.aliases),
        "package": {
            "type": package.type.value,
            "name": package.name,
            "version": package.version,
            "purl": package.purl,
            "path": package.path,
            "layer": None if package.layer is None else str(package.layer),
            "source_name": package.source_name,
            "source_version": package.source_version,
            "arch": package.arch,
            "namespace": package.namespace,
        },
        "fixed_versions": list(finding.fixed_versions),
        "severity": finding.severity.value,
        "cvss_v3_score": finding.cvss_v3_score,
        "cvss_v3_vector": finding.cvss_v3_vector,
        "title": finding.title,
        "description": finding.description,
        "links": list(finding.links),
        "source": finding.source,
    }


def finding_from_document(document: Mapping[str, Any]) -> Finding:
    package = document["package"]
    return Finding(
        name=document["name"],
        advisory_id=document["advisory_id"],
        aliases=tuple(document["aliases"]),
        package=Package(
            type=PackageType(package["type"]),
            name=package["name"],
            version=package["version"],
            purl=package["purl"],
            path=package["path"],
            layer=None if package["layer"] is None else stored_digest(package["layer"]),
            source_name=package["source_name"],
            source_version=package["source_version"],
            arch=package["arch"],
            namespace=package["namespace"],
        ),
        fixed_versions=tuple(document["fixed_versions"]),
        severity=Severity(document["severity"]),
        cvss_v3_score=document["cvss_v3_score"],
        cvss_v3_vector=document["cvss_v3_vector"],
        title=document["title"],
        description=document["description"],
        links=tuple(document["links"]),
        source=document["source"],
    )
