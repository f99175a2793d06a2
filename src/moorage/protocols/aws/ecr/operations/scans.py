"""Image scans: StartImageScan, DescribeImageScanFindings, and the scan fields of
DescribeImages (shared reference §6.3, §6.4).

A scan starts ``IN_PROGRESS`` and a job completes it (``services/scanning.py``), so the
``ImageScanComplete`` waiter sees both states. Findings are reported in the shape of the scan
type the image was scanned with: ``findings`` for basic scanning, ``enhancedFindings`` for
enhanced (Amazon Inspector's shape). Pages hold ``maxResults`` findings (default 100, as ECR's
console asks for), in the scanner's order (severity, then name); the token is the offset,
scoped to the operation, repository and image.

Basic findings carry, as ECR's do, ``package_name``, ``package_version``, ``CVSS3_SCORE`` and
``CVSS3_VECTOR`` attributes, and also ``fixed_in_version`` (the versions that fix it, comma
separated) and ``source_package_name`` where the package was built from another source: a
user of the basic shape should not need the enhanced one to know what to upgrade to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from moorage.domain.findings import Finding
from moorage.domain.inventory import PackageType
from moorage.ports.scans import ImageScan, ScanStatus
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.errors import INVALID_PARAMETER, ApiError
from moorage.protocols.aws.operations import operation
from moorage.protocols.aws.pagination import decode_token, encode_token
from moorage.services.images import ImageId
from moorage.services.scanning import ScanReport

if TYPE_CHECKING:  # app.py imports this module to mount it
    from moorage.app import Registry

DEFAULT_FINDINGS_PAGE = 100
BASIC = "BASIC"

# Inspector's packageManager names, by package type.
_PACKAGE_MANAGERS = {
    PackageType.DEB: "OS",
    PackageType.APK: "OS",
    PackageType.RPM: "OS",
    PackageType.PYPI: "PYTHONPKG",
    PackageType.NPM: "NODEPKG",
    PackageType.GOLANG: "GOBINARY",
    PackageType.MAVEN: "JAR",
}
_EPOCH_VERSION_RELEASE = re.compile(r"^(?:(\d+):)?(.+?)(?:-([^-]+))?$")


def image_scan_status(scan: ImageScan) -> dict[str, Any]:
    return {"status": scan.status.value, "description": scan.description}


def findings_summary(scan: ImageScan) -> dict[str, Any] | None:
    """DescribeImages' ``imageScanFindingsSummary``: present once a scan completed."""
    if scan.status is not ScanStatus.COMPLETE:
        return None
    return {
        "image_scan_completed_at": scan.completed_at,
        "vulnerability_source_updated_at": scan.advisories_updated_at,
        "finding_severity_counts": dict(scan.severity_counts),
    }


@operation("StartImageScan")
async def start_image_scan(ctx: ApiContext[Registry], params: dict[str, Any]) -> Mapping[str, Any]:
    """Ask for a basic scan. Raises RepositoryNotFound, ImageNotFound, InvalidParameter,
    ValidationException (ENHANCED registry), UnsupportedImageType, LimitExceeded."""
    name: str = params["repository_name"]
    image_id = _image_id(params["image_id"])
    record, scan = await ctx.services.scanning.start_scan(ctx.registry_id, name, image_id)
    return {
        "registry_id": ctx.registry_id,
        "repository_name": name,
        "image_id": {"image_digest": str(record.digest), "image_tag": image_id.tag},
        # A scan just started has no description yet: ECR's answer (the AWS CLI reference's
        # start-image-scan example) is {"status": "IN_PROGRESS"} alone.
        "image_scan_status": {"status": scan.status.value},
    }


@operation("DescribeImageScanFindings")
async def describe_image_scan_findings(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """The image's latest scan and a page of its findings. Raises RepositoryNotFound,
    ImageNotFound, InvalidParameter, ScanNotFound."""
    name: str = params["repository_name"]
    image_id = _image_id(params["image_id"])
    report = await ctx.services.scanning.report(ctx.registry_id, name, image_id)
    scope = f"DescribeImageScanFindings/{ctx.registry_id}/{name}/{report.manifest.digest}"
    start = _offset(decode_token(scope, params.get("next_token")))
    limit = params.get("max_results") or DEFAULT_FINDINGS_PAGE
    page = report.findings[start : start + limit]
    more = start + limit < len(report.findings)
    result: dict[str, Any] = {
        "registry_id": ctx.registry_id,
        "repository_name": name,
        "image_id": {"image_digest": str(report.manifest.digest), "image_tag": image_id.tag},
        "image_scan_status": image_scan_status(report.scan),
        "next_token": encode_token(scope, [str(start + limit)]) if more else None,
    }
    summary = findings_summary(report.scan)
    if summary is not None:
        if report.scan.scan_type == BASIC:
            summary["findings"] = [_basic(f) for f in page]
        else:
            summary["enhanced_findings"] = [_enhanced(ctx, report, f) for f in page]
        result["image_scan_findings"] = summary
    return result


def _image_id(params: Mapping[str, Any]) -> ImageId:
    return ImageId(params.get("image_digest"), params.get("image_tag"))


def _offset(cursor: list[str] | None) -> int:
    if cursor is None:
        return 0
    if len(cursor) != 1 or not cursor[0].isdigit():
        raise ApiError(
            INVALID_PARAMETER, "Invalid parameter at 'nextToken': the token is not valid"
        )
    return int(cursor[0])


def _basic(finding: Finding) -> dict[str, Any]:
    package = finding.package
    attributes = [
        ("package_version", package.version),
        ("package_name", package.name),
        ("source_package_name", package.source_name if package.source_name else None),
        ("CVSS3_VECTOR", finding.cvss_v3_vector),
        ("CVSS3_SCORE", None if finding.cvss_v3_score is None else str(finding.cvss_v3_score)),
        ("fixed_in_version", ", ".join(finding.fixed_versions) or None),
    ]
    return {
        "name": finding.name,
        "description": finding.description or finding.title,
        "uri": finding.links[0] if finding.links else None,
        "severity": finding.severity.value,
        "attributes": [{"key": k, "value": v} for k, v in attributes if v is not None],
    }


def _enhanced(ctx: ApiContext[Registry], report: ScanReport, finding: Finding) -> dict[str, Any]:
    package = finding.package
    digest = str(report.manifest.digest)
    repository_arn = ctx.repository_arn(report.repository)
    completed = report.scan.completed_at
    cvss = (
        [
            {
                "base_score": finding.cvss_v3_score,
                "scoring_vector": finding.cvss_v3_vector,
                "source": finding.source,
                "version": "3.1"
                if (finding.cvss_v3_vector or "").startswith("CVSS:3.1")
                else "3.0",
            }
        ]
        if finding.cvss_v3_score is not None
        else []
    )
    epoch, version, release = _split_version(package.type, package.version)
    vulnerable = {
        "arch": package.arch,
        "epoch": epoch,
        "file_path": package.path,
        "name": package.name,
        "package_manager": _PACKAGE_MANAGERS.get(package.type, package.type.value.upper()),
        "release": release,
        "source_layer_hash": None if package.layer is None else str(package.layer),
        "version": version,
        "fixed_in_version": ", ".join(finding.fixed_versions) or "NotAvailable",
    }
    fixed = finding.fixed_versions
    recommendation = f"Upgrade {package.name} to {' or '.join(fixed)}" if fixed else "None provided"
    return {
        "aws_account_id": ctx.registry_id,
        "description": finding.description or finding.title,
        "finding_arn": f"{repository_arn}/{digest}/{finding.name}/{package.purl}",
        "first_observed_at": completed,
        "last_observed_at": completed,
        "package_vulnerability_details": {
            "cvss": cvss,
            "reference_urls": list(finding.links),
            "related_vulnerabilities": [a for a in finding.aliases if a != finding.name],
            "source": finding.source,
            "source_url": finding.links[0] if finding.links else None,
            "vendor_severity": finding.severity.value,
            "vulnerability_id": finding.name,
            "vulnerable_packages": [vulnerable],
        },
        "remediation": {"recommendation": {"text": recommendation}},
        "resources": [
            {
                "details": {
                    "aws_ecr_container_image": {
                        "image_hash": digest,
                        "image_tags": list(report.tags) or None,
                        "pushed_at": report.manifest.pushed_at,
                        "registry": ctx.registry_id,
                        "repository_name": report.repository,
                    }
                },
                "id": f"{repository_arn}/{digest}",
                "type": "AWS_ECR_CONTAINER_IMAGE",
            }
        ],
        "score": finding.cvss_v3_score,
        "score_details": (
            {
                "cvss": {
                    "score": finding.cvss_v3_score,
                    "score_source": finding.source,
                    "scoring_vector": finding.cvss_v3_vector,
                    "version": cvss[0]["version"],
                }
            }
            if cvss
            else None
        ),
        "severity": finding.severity.value,
        "status": "ACTIVE",
        "title": f"{finding.name} - {package.name}",
        "type": "PACKAGE_VULNERABILITY",
        "updated_at": completed,
        "fix_available": "YES" if fixed else "NO",
        "exploit_available": None,
    }


def _split_version(kind: PackageType, text: str) -> tuple[int | None, str, str | None]:
    """Inspector's epoch, version and release: ``1:2.36-9+deb12u4`` is (1, "2.36",
    "9+deb12u4") for OS packages; a language package's version is whole."""
    if kind not in (PackageType.DEB, PackageType.RPM, PackageType.APK):
        return None, text, None
    match = _EPOCH_VERSION_RELEASE.match(text)
    if match is None:
        return None, text, None
    epoch, version, release = match.groups()
    return (int(epoch) if epoch else None), version, release
