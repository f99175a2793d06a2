"""What a scan found: one finding per vulnerability and affected package of an image.

Pure values, made by ``moorage.scanning.matching`` from an image's inventory and the imported
advisories, stored with the scan and shown by DescribeImageScanFindings in ECR's basic and
enhanced shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from moorage.domain.inventory import Package


class Severity(StrEnum):
    """ECR's ``FindingSeverity``: UNDEFINED when the advisory gives no rating."""

    INFORMATIONAL = "INFORMATIONAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"
    UNDEFINED = "UNDEFINED"


def severity_from_cvss(score: float) -> Severity:
    """NVD's CVSS v3 bands: 0 none (INFORMATIONAL), 0.1-3.9 low, 4-6.9 medium, 7-8.9 high,
    9-10 critical."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.INFORMATIONAL


@dataclass(frozen=True, slots=True)
class Finding:
    """A vulnerability of one installed package.

    ``name``: the CVE id when the advisory has one (ECR names findings by CVE), else the
    advisory's id. ``fixed_versions`` is empty when no fix exists (an unfixed vulnerability).
    ``links``: the advisory's references, the advisory's own page first.
    """

    name: str
    advisory_id: str
    aliases: tuple[str, ...]
    package: Package
    fixed_versions: tuple[str, ...]
    severity: Severity
    cvss_v3_score: float | None
    cvss_v3_vector: str | None
    title: str
    description: str
    links: tuple[str, ...]
    source: str

    @property
    def installed_version(self) -> str:
        return self.package.version

    @property
    def fix_available(self) -> bool:
        return bool(self.fixed_versions)
