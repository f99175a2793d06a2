"""Basic image scanning against a real server with IAM on: advisories imported offline with
``moorage advisories import`` beside the running server, a Debian 12 image pushed to a
repository that scans on push, then the AWS CLI's ``ecr wait image-scan-complete`` and
``ecr describe-image-scan-findings``, DescribeImages' scan fields, the SBOM referrer, and
StartImageScan's limits through boto3.

The image is built from real files: Debian 12's os-release and the dpkg status database
``bookworm-vulnset.dpkg-status``. The advisories are ``debian-tracker-bookworm.json``, in the
Debian Security Tracker's format. The expected findings below were worked out by hand from
those two files (fixtures README): a source package's advisory applies to every binary package
built from it, an advisory fixed in a version at or below the installed one does not apply, a
fixed version of "0" means never affected, an entry for another release does not apply, and an
open one applies with no fix.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.aws import admin_init, aws_json, ecr_client
from tests.e2e.client import OCI_INDEX, image_index
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import aws_error
from tests.e2e.ecr.layer_api import put_image
from tests.e2e.server import ServerProcess, run_cli
from tests.postgres import create_throwaway_database, drop_database
from tests.scan_images import FIXTURES, debian_layer, image_config, tar_layer

pytestmark = pytest.mark.e2e

TRACKER = FIXTURES / "advisories" / "debian-tracker-bookworm.json"
SBOM_TYPE = "application/vnd.cyclonedx+json"

# (finding, package, installed version, fixed in, severity), from the fixtures by hand.
EXPECTED = {
    ("CVE-2026-103111", "libpcre2-8-0", "10.42-1", "10.42-1+deb12u2", "HIGH"),
    ("CVE-2026-75803", "libssl3", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2", "HIGH"),
    ("CVE-2026-75803", "openssl", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2", "HIGH"),
    ("CVE-2025-59375", "libexpat1", "2.5.0-1+deb12u2", "2.5.0-1+deb12u5", "MEDIUM"),
    ("CVE-2025-48060", "jq", "1.6-2.1+deb12u2", "1.6-2.1+deb12u3", "LOW"),
    ("CVE-2025-48060", "libjq1", "1.6-2.1+deb12u2", "1.6-2.1+deb12u3", "LOW"),
    ("CVE-2021-4217", "unzip", "6.0-28", "6.0-28+deb12u1", "INFORMATIONAL"),
    ("CVE-2010-4756", "libc-bin", "2.36-9+deb12u14", None, "INFORMATIONAL"),
    ("CVE-2010-4756", "libc6", "2.36-9+deb12u14", None, "INFORMATIONAL"),
    ("CVE-2026-63072", "libssl3", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2", "UNDEFINED"),
    ("CVE-2026-63072", "openssl", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2", "UNDEFINED"),
    ("TEMP-1147318-639065", "liblzma5", "5.4.1-1+deb12u1", "5.4.1-1+deb12u2", "UNDEFINED"),
    ("TEMP-1147318-639065", "xz-utils", "5.4.1-1+deb12u1", "5.4.1-1+deb12u2", "UNDEFINED"),
}
EXPECTED_COUNTS = {"HIGH": 3, "MEDIUM": 1, "LOW": 2, "INFORMATIONAL": 3, "UNDEFINED": 4}


@pytest.fixture(scope="module")
def ecr(iam_server: IamServer) -> Any:
    return ecr_client(iam_server.url, iam_server.admin)


@pytest.fixture(scope="module")
def advisories(iam_server: IamServer) -> None:
    """The tracker file imported with the CLI while the server runs on the same data."""
    result = run_cli(
        "advisories", "import", str(TRACKER), "--data-dir", str(iam_server.process.data_dir)
    )
    assert result.returncode == 0, result.stderr


def push_debian(ecr: Any, repository: str, tag: str, seed: str = "") -> str:
    layer = debian_layer()
    digest, _ = put_image(ecr, repository, image_config([layer], seed), [layer], tag)
    return digest


def wait_for_scan(ecr: Any, repository: str, digest: str) -> None:
    ecr.get_waiter("image_scan_complete").wait(
        repositoryName=repository,
        imageId={"imageDigest": digest},
        WaiterConfig={"Delay": 1, "MaxAttempts": 60},
    )


def summary(finding: dict[str, Any]) -> tuple[str, str, str, str | None, str]:
    attributes = {a["key"]: a["value"] for a in finding["attributes"]}
    return (
        finding["name"],
        attributes["package_name"],
        attributes["package_version"],
        attributes.get("fixed_in_version"),
        finding["severity"],
    )


def test_scan_on_push_reports_the_debian_findings_with_the_aws_cli(
    iam_server: IamServer, ecr: Any, advisories: None, tmp_path: Path
) -> None:
    """The issue's scenario: import offline, push to a scan-on-push repository, wait with the
    CLI's waiter, read the findings with the CLI."""
    ecr.create_repository(
        repositoryName="scan/debian", imageScanningConfiguration={"scanOnPush": True}
    )
    digest = push_debian(ecr, "scan/debian", "bookworm")
    cli = (iam_server.url, iam_server.admin, tmp_path)
    image = ("--repository-name", "scan/debian", "--image-id", "imageTag=bookworm")
    aws_json(*cli, "ecr", "wait", "image-scan-complete", *image)
    answer = aws_json(*cli, "ecr", "describe-image-scan-findings", *image)

    assert answer["imageId"] == {"imageDigest": digest, "imageTag": "bookworm"}
    assert answer["imageScanStatus"] == {
        "status": "COMPLETE",
        "description": "The scan was completed successfully.",
    }
    findings = answer["imageScanFindings"]
    assert {summary(f) for f in findings["findings"]} == EXPECTED
    assert len(findings["findings"]) == len(EXPECTED)
    assert findings["findingSeverityCounts"] == EXPECTED_COUNTS
    assert "imageScanCompletedAt" in findings
    assert "vulnerabilitySourceUpdatedAt" in findings
    # Most severe first, and every finding links to its advisory.
    severities = [f["severity"] for f in findings["findings"]]
    assert severities[:3] == ["HIGH"] * 3
    assert severities[-4:] == ["UNDEFINED"] * 4
    by_name = {f["name"]: f for f in findings["findings"]}
    assert by_name["CVE-2025-59375"]["uri"] == (
        "https://security-tracker.debian.org/tracker/CVE-2025-59375"
    )
    libssl = next(
        f
        for f in findings["findings"]
        if f["name"] == "CVE-2026-75803" and summary(f)[1] == "libssl3"
    )
    attributes = {a["key"]: a["value"] for a in libssl["attributes"]}
    assert attributes["source_package_name"] == "openssl"


def test_describe_images_shows_the_scan(ecr: Any, advisories: None) -> None:
    ecr.create_repository(
        repositoryName="scan/described", imageScanningConfiguration={"scanOnPush": True}
    )
    digest = push_debian(ecr, "scan/described", "v1", seed="described")
    wait_for_scan(ecr, "scan/described", digest)
    details = ecr.describe_images(repositoryName="scan/described")["imageDetails"]
    by_digest = {d["imageDigest"]: d for d in details}
    detail = by_digest.pop(digest)
    assert detail["imageScanStatus"]["status"] == "COMPLETE"
    assert detail["imageScanFindingsSummary"]["findingSeverityCounts"] == EXPECTED_COUNTS
    # The other image is the scan's SBOM (an artifact with the image as subject), unscanned.
    (sbom,) = by_digest.values()
    assert sbom["subjectManifestDigest"] == digest
    assert "imageScanStatus" not in sbom


def test_the_sbom_is_a_referrer_of_the_image(
    iam_server: IamServer, ecr: Any, advisories: None
) -> None:
    """The scan pushes a CycloneDX SBOM with the image as its subject: the referrers API and
    ListImageReferrers list it, and ``moorage sbom`` prints it."""
    ecr.create_repository(
        repositoryName="scan/sbom", imageScanningConfiguration={"scanOnPush": True}
    )
    digest = push_debian(ecr, "scan/sbom", "v1", seed="sbom")
    wait_for_scan(ecr, "scan/sbom", digest)

    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    listing = requests.get(
        f"{iam_server.url}/v2/scan/sbom/referrers/{digest}",
        headers={"Authorization": f"Basic {token}"},
        timeout=10,
    )
    assert listing.status_code == 200, listing.text
    (referrer,) = listing.json()["manifests"]
    assert referrer["artifactType"] == SBOM_TYPE

    result = run_cli("sbom", "scan/sbom:v1", "--data-dir", str(iam_server.process.data_dir))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["bomFormat"] == "CycloneDX"
    assert document["metadata"]["component"]["version"] == digest
    purls = {c.get("purl") for c in document["components"]}
    assert any(p and p.startswith("pkg:deb/debian/libssl3@3.0.20-1~deb12u2") for p in purls)
    assert len([p for p in purls if p and p.startswith("pkg:deb/")]) == 144


def test_pages_of_findings(ecr: Any, advisories: None) -> None:
    ecr.create_repository(
        repositoryName="scan/paged", imageScanningConfiguration={"scanOnPush": True}
    )
    digest = push_debian(ecr, "scan/paged", "v1", seed="paged")
    wait_for_scan(ecr, "scan/paged", digest)
    pages = list(
        ecr.get_paginator("describe_image_scan_findings").paginate(
            repositoryName="scan/paged",
            imageId={"imageDigest": digest},
            PaginationConfig={"PageSize": 5},
        )
    )
    assert [len(p["imageScanFindings"]["findings"]) for p in pages] == [5, 5, 3]
    seen = [summary(f) for p in pages for f in p["imageScanFindings"]["findings"]]
    assert set(seen) == EXPECTED
    assert len(seen) == len(EXPECTED)


def test_start_image_scan_and_its_limits(ecr: Any, advisories: None) -> None:
    """A repository without scan on push: no scan until StartImageScan; one per day; an index
    cannot be scanned; an image with no operating system is UNSUPPORTED_IMAGE."""
    ecr.create_repository(repositoryName="scan/manual")
    digest = push_debian(ecr, "scan/manual", "v1", seed="manual")
    image_id = {"imageDigest": digest}
    code, _ = aws_error(
        ecr.describe_image_scan_findings, repositoryName="scan/manual", imageId=image_id
    )
    assert code == "ScanNotFoundException"
    # ECR echoes the image id as given, 'null' for the part left out.
    _, message = aws_error(
        ecr.describe_image_scan_findings, repositoryName="scan/manual", imageId={"imageTag": "v1"}
    )
    assert message.startswith(
        "Image scan does not exist for the image with '{imageDigest:'null', imageTag:'v1'}' in "
        "the repository with name 'scan/manual'"
    )

    started = ecr.start_image_scan(repositoryName="scan/manual", imageId={"imageTag": "v1"})
    assert started["imageId"] == {"imageDigest": digest, "imageTag": "v1"}
    assert started["imageScanStatus"] == {"status": "IN_PROGRESS"}  # no description yet, as ECR
    wait_for_scan(ecr, "scan/manual", digest)
    code, message = aws_error(ecr.start_image_scan, repositoryName="scan/manual", imageId=image_id)
    assert code == "LimitExceededException"
    assert message == "The scan quota per image has been exceeded. Wait and try again."

    _, manifest = put_image(ecr, "scan/manual", image_config([]), [], None)
    ecr.put_image(
        repositoryName="scan/manual",
        imageManifest=image_index([manifest]).decode(),
        imageManifestMediaType=OCI_INDEX,
        imageTag="index",
    )
    code, _ = aws_error(
        ecr.start_image_scan, repositoryName="scan/manual", imageId={"imageTag": "index"}
    )
    assert code == "UnsupportedImageTypeException"
    code, _ = aws_error(
        ecr.start_image_scan, repositoryName="scan/manual", imageId={"imageTag": "nope"}
    )
    assert code == "ImageNotFoundException"

    bare = tar_layer({"app/hello.txt": b"hello\n"})
    bare_digest, _ = put_image(ecr, "scan/manual", image_config([bare]), [bare], "bare")
    ecr.start_image_scan(repositoryName="scan/manual", imageId={"imageDigest": bare_digest})
    scan = wait_unsupported(ecr, "scan/manual", bare_digest)
    assert scan["status"] == "UNSUPPORTED_IMAGE"
    assert scan["description"].startswith("UnsupportedImageError: ")
    assert "os-release" in scan["description"]


def wait_unsupported(ecr: Any, repository: str, digest: str) -> dict[str, Any]:
    """The waiter fails on UNSUPPORTED_IMAGE (not COMPLETE, not FAILED): poll until done."""
    for _ in range(60):
        answer = ecr.describe_image_scan_findings(
            repositoryName=repository, imageId={"imageDigest": digest}
        )
        status: dict[str, Any] = answer["imageScanStatus"]
        if status["status"] != "IN_PROGRESS":
            return status
        time.sleep(0.5)
    raise AssertionError("the scan did not finish")


def test_the_same_scan_on_postgresql(tmp_path: Path) -> None:
    """The scan-on-push scenario with the metadata (and so the advisories, the scans and the
    job queue) in PostgreSQL: the same findings, and the SBOM referrer."""
    database_url = asyncio.run(create_throwaway_database())
    data_dir = tmp_path / "data"
    on_postgres = ("--database-url", database_url)
    process: ServerProcess | None = None
    try:
        admin = admin_init(data_dir, *on_postgres)
        tracker = ("advisories", "import", str(TRACKER), "--data-dir", str(data_dir))
        imported = run_cli(*tracker, *on_postgres)
        assert imported.returncode == 0, imported.stderr
        process = ServerProcess(data_dir=data_dir, extra_args=list(on_postgres)).start()
        ecr = ecr_client(process.url, admin)
        ecr.create_repository(
            repositoryName="scan/pg", imageScanningConfiguration={"scanOnPush": True}
        )
        digest = push_debian(ecr, "scan/pg", "v1")
        wait_for_scan(ecr, "scan/pg", digest)
        answer = ecr.describe_image_scan_findings(
            repositoryName="scan/pg", imageId={"imageDigest": digest}
        )
        findings = answer["imageScanFindings"]
        assert {summary(f) for f in findings["findings"]} == EXPECTED
        assert findings["findingSeverityCounts"] == EXPECTED_COUNTS
        referrers = ecr.list_image_referrers(
            repositoryName="scan/pg", subjectId={"imageDigest": digest}
        )["referrers"]
        assert [r["artifactType"] for r in referrers] == [SBOM_TYPE]
    finally:
        if process is not None:
            code = process.stop()
            assert code == 0, process.log()
        asyncio.run(drop_database(database_url))
