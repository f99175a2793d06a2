"""The CycloneDX SBOM of an inventory, and the OCI referrer manifest that attaches it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from moorage import __version__
from moorage.domain.digests import Digest
from moorage.domain.findings import Finding, Severity
from moorage.domain.inventory import Inventory, OperatingSystem, Package, PackageType
from moorage.domain.manifests import OCI_MANIFEST, parse_manifest
from moorage.scanning.sbom import (
    EMPTY_CONFIG_BYTES,
    EMPTY_CONFIG_DIGEST,
    SBOM_MEDIA_TYPE,
    ScannedImage,
    build_sbom,
    referrer_manifest,
)

IMAGE_DIGEST = Digest.parse("sha256:" + "ab" * 32)
LAYER_1 = Digest.parse("sha256:" + "01" * 32)
LAYER_2 = Digest.parse("sha256:" + "02" * 32)
CREATED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
IMAGE = ScannedImage("registry.example:5000", "team/Web-App", IMAGE_DIGEST, ("1.0", "latest"))

OPENSSL = Package(
    PackageType.DEB,
    "libssl3",
    "3.0.11-1~deb12u2",
    "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
    "var/lib/dpkg/status",
    layer=LAYER_1,
    source_name="openssl",
    source_version="3.0.11-1~deb12u2",
    arch="amd64",
)
REQUESTS = Package(
    PackageType.PYPI,
    "requests",
    "2.31.0",
    "pkg:pypi/requests@2.31.0",
    "usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA",
    layer=LAYER_2,
)
SIX_SYSTEM = Package(
    PackageType.PYPI,
    "six",
    "1.16.0",
    "pkg:pypi/six@1.16.0",
    "opt/a/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA",
    layer=LAYER_2,
)
SIX_VENV = Package(
    PackageType.PYPI,
    "six",
    "1.16.0",
    "pkg:pypi/six@1.16.0",
    "opt/b/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA",
    layer=LAYER_2,
)
INVENTORY = Inventory(
    os=OperatingSystem("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)"),
    packages=(SIX_VENV, REQUESTS, OPENSSL, SIX_SYSTEM),
)


def finding(package: Package, name: str, **changes: Any) -> Finding:
    values: dict[str, Any] = {
        "name": name,
        "advisory_id": name,
        "aliases": (),
        "package": package,
        "fixed_versions": (),
        "severity": Severity.HIGH,
        "cvss_v3_score": 7.5,
        "cvss_v3_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
        "title": f"{name} in {package.name}",
        "description": "Something bad.",
        "links": (f"https://advisories.example/{name}",),
        "source": "debian",
    }
    values.update(changes)
    return Finding(**values)


FINDINGS = (
    finding(OPENSSL, "CVE-2024-0727", fixed_versions=("3.0.13-1~deb12u1",)),
    finding(
        REQUESTS,
        "CVE-2024-35195",
        advisory_id="GHSA-9wx4-h78v-vm56",
        severity=Severity.MEDIUM,
        cvss_v3_score=5.6,
        cvss_v3_vector="CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N",
        fixed_versions=("2.32.0",),
        source="ghsa",
    ),
    finding(
        SIX_VENV,
        "CVE-2099-0001",
        severity=Severity.UNDEFINED,
        cvss_v3_score=None,
        cvss_v3_vector=None,
        links=(),
    ),
)


def sbom(findings: tuple[Finding, ...] = FINDINGS) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        build_sbom(INVENTORY, image=IMAGE, created=CREATED, findings=findings)
    )
    return document


def components_by_ref(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in document["components"]}


def properties(component: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component.get("properties", [])}


def test_header_and_metadata() -> None:
    document = sbom()
    assert document["bomFormat"] == "CycloneDX"
    assert document["specVersion"] == "1.6"
    assert document["serialNumber"].startswith("urn:uuid:")
    metadata = document["metadata"]
    assert datetime.fromisoformat(metadata["timestamp"]) == CREATED
    assert metadata["tools"]["components"] == [
        {
            "bom-ref": f"moorage@{__version__}",
            "name": "moorage",
            "type": "application",
            "version": __version__,
        }
    ]
    image = metadata["component"]
    assert image["type"] == "container"
    assert image["name"] == "team/Web-App"
    assert image["version"] == str(IMAGE_DIGEST)
    purl = f"pkg:oci/web-app@{IMAGE_DIGEST}?repository_url=registry.example:5000/team/Web-App"
    assert image["purl"] == purl
    assert image["bom-ref"] == purl
    assert sorted(p["value"] for p in image["properties"]) == ["1.0", "latest"]


def test_components_packages_and_os() -> None:
    document = sbom()
    components = components_by_ref(document)
    assert len(components) == len(document["components"]) == 5
    os = components["os:debian@12"]
    assert (os["type"], os["name"], os["version"]) == ("operating-system", "debian", "12")
    assert "purl" not in os
    deb = components[OPENSSL.purl]
    assert (deb["type"], deb["name"], deb["version"]) == ("library", "libssl3", OPENSSL.version)
    assert deb["purl"] == OPENSSL.purl
    assert properties(deb) == {
        "moorage:package:type": "deb",
        "moorage:package:path": "var/lib/dpkg/status",
        "moorage:package:layer": str(LAYER_1),
        "moorage:package:source-name": "openssl",
        "moorage:package:source-version": "3.0.11-1~deb12u2",
    }
    pypi = components[REQUESTS.purl]
    assert pypi["purl"] == "pkg:pypi/requests@2.31.0"
    assert "moorage:package:source-name" not in properties(pypi)


def test_shared_purls_get_distinct_bom_refs_by_path() -> None:
    components = components_by_ref(sbom())
    assert f"{SIX_SYSTEM.purl}|{SIX_SYSTEM.path}" in components
    assert f"{SIX_VENV.purl}|{SIX_VENV.path}" in components
    assert SIX_SYSTEM.purl not in components  # no copy is privileged with the bare purl
    paths = {
        properties(c)["moorage:package:path"]
        for c in components.values()
        if c.get("purl") == "pkg:pypi/six@1.16.0"
    }
    assert paths == {SIX_SYSTEM.path, SIX_VENV.path}


def test_same_purl_and_path_in_two_layers_still_unique() -> None:
    again = Package(**{**_fields(SIX_VENV), "layer": LAYER_1})
    inventory = Inventory(os=None, packages=(SIX_VENV, again, SIX_VENV))
    document = json.loads(build_sbom(inventory, image=IMAGE, created=CREATED))
    refs = [c["bom-ref"] for c in document["components"]]
    assert len(refs) == len(set(refs)) == 2  # the exact duplicate is one component


def test_dependencies_image_depends_on_every_component() -> None:
    document = sbom()
    root = next(d for d in document["dependencies"] if d["ref"] == IMAGE.purl)
    assert sorted(root["dependsOn"]) == sorted(components_by_ref(document))


def test_vulnerabilities() -> None:
    document = sbom()
    refs = components_by_ref(document)
    vulnerabilities = {v["id"]: v for v in document["vulnerabilities"]}
    assert set(vulnerabilities) == {"CVE-2024-0727", "CVE-2024-35195", "CVE-2099-0001"}
    for vulnerability in vulnerabilities.values():
        assert [a["ref"] for a in vulnerability["affects"]] != []
        assert all(a["ref"] in refs for a in vulnerability["affects"])

    ssl = vulnerabilities["CVE-2024-0727"]
    assert ssl["affects"] == [{"ref": OPENSSL.purl}]
    assert ssl["source"] == {"name": "debian", "url": "https://advisories.example/CVE-2024-0727"}
    assert ssl["recommendation"] == "Upgrade libssl3 to 3.0.13-1~deb12u1"
    [rating] = ssl["ratings"]
    assert rating["severity"] == "high"
    assert rating["score"] == 7.5
    assert rating["method"] == "CVSSv31"
    assert rating["vector"].endswith("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N")

    requests = vulnerabilities["CVE-2024-35195"]
    assert requests["ratings"][0]["method"] == "CVSSv3"
    assert requests["ratings"][0]["severity"] == "medium"
    assert [r["id"] for r in requests["references"]] == ["GHSA-9wx4-h78v-vm56"]

    unrated = vulnerabilities["CVE-2099-0001"]
    assert unrated["affects"] == [{"ref": f"{SIX_VENV.purl}|{SIX_VENV.path}"}]
    assert unrated["ratings"] == [{"severity": "unknown", "source": {"name": "debian"}}]
    assert "recommendation" not in unrated


def test_finding_for_an_unknown_package_is_refused() -> None:
    stranger = Package(PackageType.NPM, "left-pad", "1.0.0", "pkg:npm/left-pad@1.0.0", "x")
    with pytest.raises(ValueError, match="not in the inventory"):
        sbom((finding(stranger, "CVE-2016-0001"),))


def test_deterministic() -> None:
    first = build_sbom(INVENTORY, image=IMAGE, created=CREATED, findings=FINDINGS)
    shuffled = Inventory(os=INVENTORY.os, packages=tuple(reversed(INVENTORY.packages)))
    second = build_sbom(shuffled, image=IMAGE, created=CREATED, findings=FINDINGS[::-1])
    assert first == second
    later = build_sbom(INVENTORY, image=IMAGE, created=CREATED + timedelta(seconds=1))
    assert json.loads(later)["serialNumber"] != json.loads(first)["serialNumber"]


def test_created_must_be_aware_and_is_reported_in_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_sbom(INVENTORY, image=IMAGE, created=CREATED.replace(tzinfo=None))
    plus_two = CREATED.astimezone(timezone(timedelta(hours=2)))
    assert build_sbom(INVENTORY, image=IMAGE, created=plus_two) == build_sbom(
        INVENTORY, image=IMAGE, created=CREATED
    )


@pytest.mark.parametrize("findings", [(), FINDINGS])
def test_valid_against_the_cyclonedx_1_6_schema(findings: tuple[Finding, ...]) -> None:
    # jsonschema is the library's optional extra; the test environment has it through oras.
    pytest.importorskip("jsonschema")
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    document = build_sbom(INVENTORY, image=IMAGE, created=CREATED, findings=findings)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(document.decode())
    assert error is None, error


def _fields(package: Package) -> dict[str, Any]:
    return {name: getattr(package, name) for name in Package.__slots__}


# --- the referrer manifest -------------------------------------------------------------------


def manifest_bytes(**changes: Any) -> bytes:
    values: dict[str, Any] = {
        "sbom_digest": Digest.of(b"sbom"),
        "sbom_size": 4,
        "subject_digest": IMAGE_DIGEST,
        "subject_media_type": OCI_MANIFEST,
        "subject_size": 1234,
        "created": CREATED,
    }
    values.update(changes)
    return referrer_manifest(**values)


def test_empty_config_is_the_sha256_of_an_empty_object() -> None:
    assert hashlib.sha256(EMPTY_CONFIG_BYTES).hexdigest() == EMPTY_CONFIG_DIGEST.hex
    assert Digest.of(EMPTY_CONFIG_BYTES) == EMPTY_CONFIG_DIGEST


def test_referrer_manifest_fields() -> None:
    document = json.loads(manifest_bytes(annotations={"com.example.team": "web"}))
    assert document["schemaVersion"] == 2
    assert document["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert document["artifactType"] == SBOM_MEDIA_TYPE == "application/vnd.cyclonedx+json"
    assert document["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    [layer] = document["layers"]
    assert layer["mediaType"] == SBOM_MEDIA_TYPE
    assert layer["digest"] == str(Digest.of(b"sbom"))
    assert layer["size"] == 4
    assert document["subject"] == {
        "mediaType": OCI_MANIFEST,
        "digest": str(IMAGE_DIGEST),
        "size": 1234,
    }
    assert document["annotations"] == {
        "com.example.team": "web",
        "org.opencontainers.image.created": "2024-05-06T07:08:09Z",
        "com.moorage.sbom.scanner": f"moorage {__version__}",
    }


def test_referrer_manifest_is_accepted_by_our_parser() -> None:
    raw = manifest_bytes()
    parsed = parse_manifest(raw, OCI_MANIFEST)
    assert parsed.referrer_artifact_type == SBOM_MEDIA_TYPE
    assert parsed.subject is not None
    assert parsed.subject.digest == IMAGE_DIGEST
    assert [b.digest for b in parsed.blob_references()] == [
        EMPTY_CONFIG_DIGEST,
        Digest.of(b"sbom"),
    ]


def test_referrer_manifest_is_deterministic_and_ours_win() -> None:
    first = manifest_bytes(annotations={"b": "2", "a": "1"})
    assert first == manifest_bytes(annotations={"a": "1", "b": "2"})
    assert b", " not in first  # compact separators
    clash = json.loads(manifest_bytes(annotations={"org.opencontainers.image.created": "x"}))
    assert clash["annotations"]["org.opencontainers.image.created"] == "2024-05-06T07:08:09Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        manifest_bytes(created=CREATED.replace(tzinfo=None))
