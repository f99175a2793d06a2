"""Enhanced scanning against a real server with IAM on: the registry set to ENHANCED with a
continuous-scan rule, findings in Inspector's shape (operating system and language packages),
repositories outside the rule not scanned, StartImageScan refused, and an image scanned again
when ``moorage advisories import`` brings an advisory that concerns it.

The image: Debian 12 (os-release and the ``bookworm-vulnset`` dpkg database) in one layer, and
aiohttp 3.8.5 installed with pip in a second. Expected, by hand from the fixtures: the thirteen
Debian findings of ``test_scanning.py``, and PYSEC-2023-246 (CVE-2023-47627; aiohttp fixed in
3.8.6; CVSS 3.1 vector AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N, base score 7.5, HIGH).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.aws import ecr_client
from tests.e2e.client import digest_of
from tests.e2e.conftest import IamServer
from tests.e2e.ecr.helpers import aws_error
from tests.e2e.ecr.layer_api import put_image
from tests.e2e.server import run_cli
from tests.scan_images import FIXTURES, debian_layer, image_config, tar_layer

pytestmark = pytest.mark.e2e

ADVISORIES = FIXTURES / "advisories"
SITE_PACKAGES = "usr/local/lib/python3.11/site-packages"
AIOHTTP_METADATA = b"Metadata-Version: 2.1\nName: aiohttp\nVersion: 3.8.5\n"


@pytest.fixture(scope="module")
def ecr(iam_server: IamServer) -> Any:
    client = ecr_client(iam_server.url, iam_server.admin)
    client.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[
            {
                "scanFrequency": "CONTINUOUS_SCAN",
                "repositoryFilters": [{"filter": "enhanced/*", "filterType": "WILDCARD"}],
            }
        ],
    )
    return client


def import_advisories(server: IamServer, *paths: Path) -> None:
    data_dir = str(server.process.data_dir)
    result = run_cli("advisories", "import", *map(str, paths), "--data-dir", data_dir)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def advisories(iam_server: IamServer) -> None:
    import_advisories(
        iam_server,
        ADVISORIES / "debian-tracker-bookworm.json",
        ADVISORIES / "PYSEC-2023-246.yaml",
    )


def push_app(ecr: Any, repository: str) -> tuple[str, str]:
    """The two-layer image; (manifest digest, the pip layer's digest)."""
    base = debian_layer()
    app = tar_layer({f"{SITE_PACKAGES}/aiohttp-3.8.5.dist-info/METADATA": AIOHTTP_METADATA})
    digest, _ = put_image(ecr, repository, image_config([base, app]), [base, app], "v1")
    return digest, digest_of(app)


def findings_of(ecr: Any, repository: str, digest: str) -> list[dict[str, Any]]:
    ecr.get_waiter("image_scan_complete").wait(
        repositoryName=repository,
        imageId={"imageDigest": digest},
        WaiterConfig={"Delay": 1, "MaxAttempts": 60},
    )
    pages = ecr.get_paginator("describe_image_scan_findings").paginate(
        repositoryName=repository, imageId={"imageDigest": digest}
    )
    found: list[dict[str, Any]] = []
    for page in pages:
        scan = page["imageScanFindings"]
        assert "findings" not in scan  # enhanced scans answer in Inspector's shape only
        found += scan["enhancedFindings"]
    return found


def package_of(finding: dict[str, Any]) -> dict[str, Any]:
    (package,) = finding["packageVulnerabilityDetails"]["vulnerablePackages"]
    return dict(package)


def test_enhanced_findings_cover_language_packages(
    ecr: Any, advisories: None, iam_server: IamServer
) -> None:
    ecr.create_repository(repositoryName="enhanced/app")
    digest, app_layer = push_app(ecr, "enhanced/app")
    findings = findings_of(ecr, "enhanced/app", digest)
    assert len(findings) == 14

    (aiohttp,) = [f for f in findings if package_of(f)["name"] == "aiohttp"]
    assert aiohttp["packageVulnerabilityDetails"]["vulnerabilityId"] == "CVE-2023-47627"
    assert aiohttp["severity"] == "HIGH"
    assert aiohttp["score"] == 7.5
    assert aiohttp["fixAvailable"] == "YES"
    assert aiohttp["remediation"]["recommendation"]["text"] == "Upgrade aiohttp to 3.8.6"
    assert set(aiohttp["packageVulnerabilityDetails"]["relatedVulnerabilities"]) == {
        "GHSA-gfw2-4jvh-wgfg"
    }
    assert package_of(aiohttp) == {
        "name": "aiohttp",
        "version": "3.8.5",
        "fixedInVersion": "3.8.6",
        "packageManager": "PYTHONPKG",
        "filePath": f"{SITE_PACKAGES}/aiohttp-3.8.5.dist-info/METADATA",
        "sourceLayerHash": app_layer,
    }
    (resource,) = aiohttp["resources"]
    image = resource["details"]["awsEcrContainerImage"]
    assert (image["imageHash"], image["repositoryName"], image["imageTags"]) == (
        digest,
        "enhanced/app",
        ["v1"],
    )

    (libssl,) = [
        f
        for f in findings
        if package_of(f)["name"] == "libssl3" and f["title"].startswith("CVE-2026-75803")
    ]
    package = package_of(libssl)
    assert (package["version"], package["release"], package["packageManager"]) == (
        "3.0.20",
        "1~deb12u2",
        "OS",
    )
    assert package["fixedInVersion"] == "3.0.22-1~deb12u2"
    (glibc,) = [f for f in findings if package_of(f)["name"] == "libc6"]
    assert glibc["fixAvailable"] == "NO"
    assert package_of(glibc)["fixedInVersion"] == "NotAvailable"

    code, _ = aws_error(
        ecr.start_image_scan, repositoryName="enhanced/app", imageId={"imageDigest": digest}
    )
    assert code == "ValidationException"


def test_a_repository_outside_the_rules_is_not_scanned(ecr: Any, advisories: None) -> None:
    ecr.create_repository(repositoryName="plain/app")
    digest, _ = push_app(ecr, "plain/app")
    time.sleep(1)  # a scan, had one been enqueued, would have started by now
    code, _ = aws_error(
        ecr.describe_image_scan_findings,
        repositoryName="plain/app",
        imageId={"imageDigest": digest},
    )
    assert code == "ScanNotFoundException"


def test_new_advisories_rescan_continuously_scanned_images(
    ecr: Any, advisories: None, iam_server: IamServer, tmp_path: Path
) -> None:
    """An advisory for bash (which the image has, as source bash 5.2.15-2), imported after
    the scan, shows up in the image's findings without anyone asking for a scan. The record is
    made up for the test, in the Debian tracker's format."""
    ecr.create_repository(repositoryName="enhanced/continuous")
    digest, _ = push_app(ecr, "enhanced/continuous")
    assert len(findings_of(ecr, "enhanced/continuous", digest)) == 14

    record = {
        "bash": {
            "CVE-2099-0001": {
                "description": "made up for moorage's continuous scanning test",
                "releases": {
                    "bookworm": {
                        "status": "resolved",
                        "fixed_version": "5.2.15-2+deb12u1",
                        "urgency": "medium",
                        "repositories": {"bookworm": "5.2.15-2"},
                    }
                },
            }
        }
    }
    tracker = tmp_path / "bash-tracker.json"
    tracker.write_text(json.dumps(record))
    import_advisories(iam_server, tracker)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = ecr.describe_image_scan_findings(
            repositoryName="enhanced/continuous", imageId={"imageDigest": digest}
        )
        if answer["imageScanStatus"]["status"] == "COMPLETE":
            names = {
                f["packageVulnerabilityDetails"]["vulnerabilityId"]
                for f in answer["imageScanFindings"]["enhancedFindings"]
            }
            if "CVE-2099-0001" in names:
                break
        time.sleep(0.5)
    else:
        raise AssertionError("the image was not scanned again after the import")
    findings = findings_of(ecr, "enhanced/continuous", digest)
    assert len(findings) == 15
    (bash,) = [f for f in findings if package_of(f)["name"] == "bash"]
    assert package_of(bash)["fixedInVersion"] == "5.2.15-2+deb12u1"
    assert bash["severity"] == "MEDIUM"

    # A newer download of the same file no longer has the bash advisory (it has another, for a
    # package the image does not have): the advisory is withdrawn, and the image scanned again.
    record = {"not-installed": {"CVE-2099-0002": record["bash"]["CVE-2099-0001"]}}
    tracker.write_text(json.dumps(record))
    result = run_cli(
        "advisories", "import", str(tracker), "--data-dir", str(iam_server.process.data_dir)
    )
    assert result.returncode == 0, result.stderr
    assert "bash-tracker.json: 1 record, 0 errors, 1 withdrawn" in result.stdout
    wait_for(
        lambda: (
            len(
                ecr.describe_image_scan_findings(
                    repositoryName="enhanced/continuous", imageId={"imageDigest": digest}
                )
                .get("imageScanFindings", {})
                .get("enhancedFindings", [])
            )
            == 14
        ),
        "the withdrawn advisory's finding did not go",
    )


def wait_for(condition: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(failure)
