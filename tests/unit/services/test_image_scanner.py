"""ImageScanner against a real SQLite metadata store and a real blob store (memory and
filesystem): layers pushed as blobs, advisories imported through the port, manifests parsed
as the registry parses them.

Every image is built from real package databases (``tests/fixtures/vulnscan``) and every
advisory is a real record copied byte for byte from the shared advisory archives (fixtures
README). The expected findings were worked out by hand from those records; the reasoning is
next to each expectation.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moorage.domain.digests import Digest
from moorage.domain.findings import Finding
from moorage.domain.inventory import InventoryIssue, PackageType
from moorage.domain.manifests import ParsedManifest, parse_manifest
from moorage.ports.blobs import BlobStore
from moorage.scanning.advisories.keys import PackageKey
from moorage.scanning.advisories.sources import iter_records
from moorage.services.image_scanner import ImageScanner, ScanResult
from moorage.storage.blobs.filesystem import FilesystemBlobStore
from moorage.storage.blobs.memory import MemoryBlobStore
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store
from tests.scan_images import FIXTURES, debian_layer, image_config
from tests.unit.scanning.test_detect_golang import go_binary

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
IMPORTED_AT = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
ADVISORIES = FIXTURES / "advisories"
ALPINE = FIXTURES / "alpine"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
AIOHTTP_METADATA = b"Metadata-Version: 2.1\nName: aiohttp\nVersion: 3.8.5\nSummary: Async http\n"
SITE_PACKAGES = "usr/local/lib/python3.11/site-packages"

Summary = tuple[str, str, str, tuple[str, ...], str]


# -- building images --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One tar entry: a file (``data``) or, with ``link``, a symbolic link. ``name`` is written
    into the tar as given, ``..`` and leading ``/`` included."""

    name: str
    data: bytes = b""
    mode: int = 0o644
    link: str | None = None


def layer(entries: Iterable[Entry]) -> bytes:
    """A gzip tar of ``entries`` in the given order, deterministic bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mtime = 1_700_000_000
            info.mode = entry.mode
            if entry.link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = entry.link
                archive.addfile(info)
            else:
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
    return gzip.compress(raw.getvalue(), mtime=0)


def files_layer(files: dict[str, bytes]) -> bytes:
    return layer(Entry(path, data) for path, data in files.items())


def apk_installed(release: str, versions: dict[str, str]) -> bytes:
    """``lib/apk/db/installed`` of Alpine's minirootfs ``release`` with the ``V:`` line of each
    package named in ``versions`` changed (the rest of the real record, ``o:`` included, kept)."""
    text = (ALPINE / f"alpine-{release}-minirootfs.apk-installed").read_text()
    blocks = text.split("\n\n")
    for name, version in versions.items():
        matches = [n for n, b in enumerate(blocks) if f"\nP:{name}\n" in f"\n{b}\n"]
        assert len(matches) == 1, name
        block = blocks[matches[0]]
        edited = re.sub(r"(?m)^V:.*$", f"V:{version}", block, count=1)
        assert edited != block, name
        blocks[matches[0]] = edited
    return "\n\n".join(blocks).encode()


def alpine_layer(release: str, versions: dict[str, str] | None = None) -> bytes:
    return files_layer(
        {
            "etc/os-release": (ALPINE / f"alpine-{release}-minirootfs.os-release").read_bytes(),
            "lib/apk/db/installed": apk_installed(release, versions or {}),
        }
    )


def descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data)}


async def push(blobs: BlobStore, data: bytes) -> Digest:
    digest = Digest.of(data)

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    upload = f"upload-{digest.hex[:16]}"
    await blobs.start_upload(upload)
    await blobs.write_upload(upload, 0, chunks())
    await blobs.commit_upload(upload, digest, len(data))
    return digest


async def push_image(blobs: BlobStore, layers: list[bytes]) -> ParsedManifest:
    """Push the layers and their config; the image's manifest, parsed."""
    config = image_config(layers)
    for blob in (config, *layers):
        await push(blobs, blob)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, blob) for blob in layers],
    }
    return parse_manifest(json.dumps(document).encode(), OCI_MANIFEST)


def summary(finding: Finding) -> Summary:
    return (
        finding.name,
        finding.package.name,
        finding.installed_version,
        finding.fixed_versions,
        finding.severity.value,
    )


# -- the store, the blob store, the advisories -------------------------------------------------


@pytest.fixture
async def metadata(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    store = await open_sql_metadata_store(f"sqlite+aiosqlite:///{tmp_path / 'moorage.db'}")
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["memory", "filesystem"])
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    """Both ways the scanner reads a layer: from the blob's own file (filesystem) or spooled
    from its stream (memory, like an object store)."""
    store: BlobStore
    if request.param == "memory":
        store = MemoryBlobStore()
    else:
        store = FilesystemBlobStore(tmp_path / "blobs")
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def scanner(metadata: SqlMetadataStore, blobs: BlobStore) -> ImageScanner:
    return ImageScanner(metadata, blobs)


async def import_records(metadata: SqlMetadataStore, *paths: Path) -> None:
    """Import the record files through the port, one finished import each."""
    for path in paths:
        errors: list[object] = []
        advisories = list(iter_records(path, errors.append))
        assert advisories
        assert errors == []
        async with metadata.transaction() as tx:
            import_id = await tx.begin_advisory_import(path.name, str(path), T0)
            await tx.put_advisories(import_id, advisories, T0)
            await tx.finish_advisory_import(import_id, IMPORTED_AT, len(advisories), 0)


# -- Alpine -------------------------------------------------------------------------------------

ALPINE_SECDB = ADVISORIES / "alpine-secdb" / "v3.10-main.yaml"

# Alpine 3.10's minirootfs with four packages taken back to older versions, against the whole
# of v3.10/main.yaml of the secdb archive. Alpine's secdb names source packages (the apk `o:`
# field) and fixed versions of those; the matcher compares each binary package's own version.
#
# - busybox 1.29.3-r9 (was 1.30.1-r2). secdb busybox: 1.30.1-r2 fixed CVE-2019-5747;
#   1.29.3-r10 fixed CVE-2018-20679 and CVE-2019-5747; 1.27.2-r4 fixed CVE-2017-16544,
#   CVE-2017-15873, CVE-2017-15874. 1.29.3-r9 < 1.29.3-r10, so CVE-2019-5747 (fixed in
#   1.29.3-r10 and 1.30.1-r2, both above the installed version, ascending) and CVE-2018-20679
#   apply; 1.29.3-r9 >= 1.27.2-r4, so the three 2017 CVEs do not. ssl_client and
#   busybox-binsh (also o:busybox) stay at 1.30.1-r2: fixed, no findings.
# - libcrypto1.1 and libssl1.1 1.1.1a-r1 (were 1.1.1d-r0), both o:openssl. secdb openssl:
#   1.1.1d-r0 fixed CVE-2019-1547, CVE-2019-1549, CVE-2019-1563; 1.1.1b-r1 fixed
#   CVE-2019-1543; 1.1.1a-r0 fixed CVE-2018-0734, CVE-2018-0735. 1.1.1a-r1 is below 1.1.1b-r1
#   and 1.1.1d-r0 but above 1.1.1a-r0: four CVEs, for each of the two binary packages.
# - musl 1.1.22-r2 (was 1.1.22-r3). secdb musl: 1.1.22-r3 fixed CVE-2019-14697, 1.1.15-r4
#   fixed CVE-2016-8859: one finding. musl-utils (o:musl) stays at 1.1.22-r3, the fixed
#   version itself: not affected.
# - The other packages (zlib, apk-tools, scanelf (pax-utils), ca-certificates,
#   libtls-standalone, alpine-baselayout, alpine-keys, libc-utils (libc-dev)) have no secfixes
#   in v3.10/main.yaml.
#
# The secdb rates nothing and has no CVSS scores: every finding is UNDEFINED. Findings are
# named by their CVE (the advisory id is ALPINE-v3.10/main-<CVE>, the CVE its first alias).
ALPINE_OLD_VERSIONS = {
    "busybox": "1.29.3-r9",
    "libcrypto1.1": "1.1.1a-r1",
    "libssl1.1": "1.1.1a-r1",
    "musl": "1.1.22-r2",
}
OPENSSL_FIXES = {
    "CVE-2019-1543": ("1.1.1b-r1",),
    "CVE-2019-1547": ("1.1.1d-r0",),
    "CVE-2019-1549": ("1.1.1d-r0",),
    "CVE-2019-1563": ("1.1.1d-r0",),
}
ALPINE_EXPECTED: set[Summary] = {
    ("CVE-2019-5747", "busybox", "1.29.3-r9", ("1.29.3-r10", "1.30.1-r2"), "UNDEFINED"),
    ("CVE-2018-20679", "busybox", "1.29.3-r9", ("1.29.3-r10",), "UNDEFINED"),
    ("CVE-2019-14697", "musl", "1.1.22-r2", ("1.1.22-r3",), "UNDEFINED"),
    *(
        (cve, package, "1.1.1a-r1", fixed, "UNDEFINED")
        for cve, fixed in OPENSSL_FIXES.items()
        for package in ("libcrypto1.1", "libssl1.1")
    ),
}


async def test_alpine_findings_name_the_binary_packages_of_vulnerable_sources(
    metadata: SqlMetadataStore, blobs: BlobStore, scanner: ImageScanner
) -> None:
    await import_records(metadata, ALPINE_SECDB)
    old = alpine_layer("3.10", ALPINE_OLD_VERSIONS)
    image = await push_image(blobs, [old])

    for os_packages_only in (True, False):
        result = await scanner.scan(image, os_packages_only=os_packages_only)
        assert result.unsupported is None
        assert {summary(f) for f in result.findings} == ALPINE_EXPECTED
        assert len(result.findings) == len(ALPINE_EXPECTED) == 11
        assert result.advisories_updated_at == IMPORTED_AT

    assert result.inventory.os is not None
    assert (result.inventory.os.id, result.inventory.os.version_id) == ("alpine", "3.10.3")
    libssl = [f for f in result.findings if f.package.name == "libssl1.1"]
    assert {(f.package.source_name, f.package.source_version) for f in libssl} == {
        ("openssl", "1.1.1a-r1")
    }
    assert {f.package.layer for f in result.findings} == {image.layers[0].digest}
    assert {f.package.path for f in result.findings} == {"lib/apk/db/installed"}
    first = next(f for f in result.findings if f.name == "CVE-2019-5747")
    assert first.advisory_id == "ALPINE-v3.10/main-CVE-2019-5747"
    assert first.links[0] == "https://security.alpinelinux.org/vuln/CVE-2019-5747"
    # Keys by source package: what continuous scanning rescans the image for.
    assert {
        PackageKey("Alpine:v3.10", "openssl"),
        PackageKey("Alpine:v3.10", "busybox"),
        PackageKey("Alpine:v3.10", "musl"),
        PackageKey("Alpine:v3.10", "pax-utils"),
    } <= result.packages
    assert PackageKey("Alpine:v3.10", "libssl1.1") not in result.packages

    # The real minirootfs, as released, has every fix its secdb lists.
    pristine = await push_image(blobs, [alpine_layer("3.10")])
    clean = await scanner.scan(pristine, os_packages_only=True)
    assert (clean.unsupported, clean.findings) == (None, ())
    assert len(clean.inventory.packages) == 14


async def test_alpine_3_20_is_not_matched_against_another_release(
    metadata: SqlMetadataStore, blobs: BlobStore, scanner: ImageScanner
) -> None:
    """The shared secdb archive stops at v3.11 (no v3.20/main.yaml), so an Alpine 3.20 image
    is matched against v3.10's records only to show that a release's records stay with it:
    busybox 1.29.3-r9 is vulnerable in v3.10's secdb, but the 3.20 image's packages are keyed
    ``Alpine:v3.20`` and nothing matches."""
    await import_records(metadata, ALPINE_SECDB)
    image = await push_image(
        blobs, [alpine_layer("3.20", {"busybox": "1.29.3-r9", "libssl3": "1.1.1a-r1"})]
    )
    result = await scanner.scan(image, os_packages_only=True)
    assert (result.unsupported, result.findings) == (None, ())
    assert {
        PackageKey("Alpine:v3.20", "busybox"),
        PackageKey("Alpine:v3.20", "openssl"),
    } <= result.packages
    assert not any(key.ecosystem == "Alpine:v3.10" for key in result.packages)
    busybox = next(p for p in result.inventory.packages if p.name == "busybox")
    assert (busybox.version, busybox.source_name) == ("1.29.3-r9", "busybox")


# -- Python ------------------------------------------------------------------------------------

# PYSEC-2023-246 (aliases CVE-2023-47627, GHSA-gfw2-4jvh-wgfg): aiohttp, ECOSYSTEM range
# introduced 0, fixed 3.8.6 (and 3.8.5 among its listed versions). 3.8.5 < 3.8.6: affected,
# fixed in 3.8.6. Its CVSS vector CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N scores 7.5
# (network, low complexity, no privileges or interaction, high integrity impact only): HIGH.
# Named by the CVE, its first CVE alias.
AIOHTTP_FINDING: Summary = ("CVE-2023-47627", "aiohttp", "3.8.5", ("3.8.6",), "HIGH")


def aiohttp_layer(version_metadata: bytes = AIOHTTP_METADATA) -> bytes:
    return files_layer({f"{SITE_PACKAGES}/aiohttp-3.8.5.dist-info/METADATA": version_metadata})


async def test_python_packages_only_in_enhanced_scans(
    metadata: SqlMetadataStore, blobs: BlobStore, scanner: ImageScanner
) -> None:
    await import_records(metadata, ADVISORIES / "PYSEC-2023-246.yaml")
    image = await push_image(blobs, [debian_layer("bookworm-minbase.dpkg-status"), aiohttp_layer()])

    basic = await scanner.scan(image, os_packages_only=True)
    assert (basic.unsupported, basic.findings) == (None, ())
    assert {p.type for p in basic.inventory.packages} == {PackageType.DEB}
    assert PackageKey("PyPI", "aiohttp") not in basic.packages

    enhanced = await scanner.scan(image, os_packages_only=False)
    assert enhanced.unsupported is None
    assert [summary(f) for f in enhanced.findings] == [AIOHTTP_FINDING]
    (finding,) = enhanced.findings
    assert finding.advisory_id == "PYSEC-2023-246"
    assert finding.cvss_v3_score == 7.5
    assert finding.package.path == f"{SITE_PACKAGES}/aiohttp-3.8.5.dist-info/METADATA"
    assert finding.package.layer == image.layers[1].digest
    assert finding.package.purl == "pkg:pypi/aiohttp@3.8.5"
    assert PackageKey("PyPI", "aiohttp") in enhanced.packages
    assert enhanced.advisories_updated_at == IMPORTED_AT


async def test_fixed_python_package_has_no_finding(
    metadata: SqlMetadataStore, blobs: BlobStore, scanner: ImageScanner
) -> None:
    """3.8.6 is the fixed version itself; 3.8.6 is also not among the record's versions."""
    await import_records(metadata, ADVISORIES / "PYSEC-2023-246.yaml")
    fixed = AIOHTTP_METADATA.replace(b"3.8.5", b"3.8.6")
    image = await push_image(blobs, [aiohttp_layer(fixed)])
    result = await scanner.scan(image, os_packages_only=False)
    assert (result.unsupported, result.findings) == (None, ())
    assert [(p.name, p.version) for p in result.inventory.packages] == [("aiohttp", "3.8.6")]


# -- Go ----------------------------------------------------------------------------------------


def go_modinfo(main: str, deps: dict[str, str]) -> str:
    lines = [f"path\t{main}", f"mod\t{main}\tv1.0.0\th1:main="]
    lines += [f"dep\t{path}\t{version}\th1:dep=" for path, version in deps.items()]
    return "\n".join([*lines, "build\t-compiler=gc", ""])


async def test_go_module_dependency_in_an_enhanced_scan(
    metadata: SqlMetadataStore, blobs: BlobStore, scanner: ImageScanner
) -> None:
    """GO-2022-0378 (alias GHSA-qh54-9vc5-m9fg, no CVE): github.com/foxcpp/maddy, SEMVER
    range introduced 0.5.0, fixed 0.5.2; no severity and no CVSS score.

    Three binaries depend on maddy: v0.5.1 is in [0.5.0, 0.5.2), affected, fixed in 0.5.2,
    UNDEFINED, named by the advisory id; v0.5.2 is the fix; v0.4.0 precedes the introduction.
    Their other modules (golang.org/x/text, stdlib 1.21.5) have no advisory imported."""
    await import_records(metadata, ADVISORIES / "GO-2022-0378.json")
    maddy = "github.com/foxcpp/maddy"

    def binary(main: str, version: str) -> bytes:
        deps = {maddy: version, "golang.org/x/text": "v0.3.7"}
        return go_binary("go1.21.5", go_modinfo(main, deps))

    programs = layer(
        [
            Entry("usr/local/bin/mailer", binary("example.com/mailer", "v0.5.1"), 0o755),
            Entry("usr/local/bin/fixed", binary("example.com/fixed", "v0.5.2"), 0o755),
            Entry("usr/local/bin/older", binary("example.com/older", "v0.4.0"), 0o755),
        ]
    )
    image = await push_image(blobs, [programs])
    result = await scanner.scan(image, os_packages_only=False)
    assert result.unsupported is None
    assert [summary(f) for f in result.findings] == [
        ("GO-2022-0378", maddy, "v0.5.1", ("0.5.2",), "UNDEFINED")
    ]
    (finding,) = result.findings
    assert (finding.advisory_id, finding.aliases) == ("GO-2022-0378", ("GHSA-qh54-9vc5-m9fg",))
    assert finding.package.path == "usr/local/bin/mailer"
    assert finding.package.layer == image.layers[0].digest
    assert finding.links[0] == "https://pkg.go.dev/vuln/GO-2022-0378"
    assert {PackageKey("Go", maddy), PackageKey("Go", "stdlib")} <= result.packages

    # Basic scanning ignores language packages, and without an OS has nothing to scan.
    basic = await scanner.scan(image, os_packages_only=True)
    assert basic.unsupported == "no operating system was found (no /etc/os-release)"
    assert basic.findings == ()


# -- unsupported images ------------------------------------------------------------------------


async def test_a_layer_without_os_or_packages_is_unsupported(
    metadata: SqlMetadataStore, blobs: BlobStore, scanner: ImageScanner
) -> None:
    image = await push_image(
        blobs, [files_layer({"etc/hostname": b"box\n", "srv/www/index.html": b"<p>hi</p>\n"})]
    )
    for os_packages_only in (True, False):
        result = await scanner.scan(image, os_packages_only=os_packages_only)
        assert result.unsupported == "no operating system (os-release) and no package found"
        assert result.inventory.unsupported == result.unsupported
        assert (result.findings, result.packages, result.advisories_updated_at) == (
            (),
            frozenset(),
            None,
        )


async def test_basic_scan_of_a_distroless_language_image_is_unsupported(
    metadata: SqlMetadataStore, blobs: BlobStore, scanner: ImageScanner
) -> None:
    await import_records(metadata, ADVISORIES / "PYSEC-2023-246.yaml")
    image = await push_image(blobs, [aiohttp_layer()])
    basic = await scanner.scan(image, os_packages_only=True)
    assert basic.unsupported == "no operating system was found (no /etc/os-release)"
    assert basic.findings == ()
    # What was found is still reported, for the record.
    assert [p.name for p in basic.inventory.packages] == ["aiohttp"]
    enhanced = await scanner.scan(image, os_packages_only=False)
    assert enhanced.unsupported is None
    assert [summary(f) for f in enhanced.findings] == [AIOHTTP_FINDING]


async def test_an_os_without_a_package_database_is_unsupported_by_basic_scans(
    metadata: SqlMetadataStore, blobs: BlobStore, scanner: ImageScanner
) -> None:
    os_release = (FIXTURES / "debian" / "bookworm.os-release").read_bytes()
    image = await push_image(blobs, [files_layer({"etc/os-release": os_release})])
    result = await scanner.scan(image, os_packages_only=True)
    assert result.unsupported == (
        "no package database of the operating system (debian 12) was found"
    )


async def test_indexes_and_artifacts_are_not_read(
    metadata: SqlMetadataStore, blobs: BlobStore, scanner: ImageScanner
) -> None:
    image = await push_image(blobs, [debian_layer()])
    index_payload = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {**descriptor(OCI_MANIFEST, image.payload), "platform": {"os": "linux"}},
            ],
        }
    ).encode()
    index = parse_manifest(index_payload, OCI_INDEX)
    helm_config = b"{}"
    chart = b"not a tar"
    artifact = parse_manifest(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor("application/vnd.cncf.helm.config.v1+json", helm_config),
                "layers": [
                    descriptor("application/vnd.cncf.helm.chart.content.v1.tar+gzip", chart)
                ],
            }
        ).encode(),
        OCI_MANIFEST,
    )
    # No blob of either is stored: the manifest alone decides.
    expectations = {
        index.digest: "an image index is not scanned; each of the images it lists is",
        artifact.digest: "the artifact is not a container image "
        "(artifact type application/vnd.cncf.helm.config.v1+json)",
    }
    for manifest in (index, artifact):
        for os_packages_only in (True, False):
            result = await scanner.scan(manifest, os_packages_only=os_packages_only)
            assert result == ScanResult(
                result.inventory, (), frozenset(), None, expectations[manifest.digest]
            )
            assert result.inventory.packages == ()


# -- a hostile layer over a real Debian root ---------------------------------------------------

DEBIAN_TRACKER = ADVISORIES / "debian-tracker-bookworm.json"
# From bookworm-vulnset.dpkg-status and debian-tracker-bookworm.json by hand, as in
# tests/e2e/ecr/test_scanning.py (whose docstring and the fixtures README give the reasoning):
# a source package's advisory applies to each binary package built from it, a fixed version at
# or below the installed one does not apply, "0" means never affected, another release's entry
# does not apply, an open one applies with no fix.
DEBIAN_EXPECTED: set[Summary] = {
    ("CVE-2026-103111", "libpcre2-8-0", "10.42-1", ("10.42-1+deb12u2",), "HIGH"),
    ("CVE-2026-75803", "libssl3", "3.0.20-1~deb12u2", ("3.0.22-1~deb12u2",), "HIGH"),
    ("CVE-2026-75803", "openssl", "3.0.20-1~deb12u2", ("3.0.22-1~deb12u2",), "HIGH"),
    ("CVE-2025-59375", "libexpat1", "2.5.0-1+deb12u2", ("2.5.0-1+deb12u5",), "MEDIUM"),
    ("CVE-2025-48060", "jq", "1.6-2.1+deb12u2", ("1.6-2.1+deb12u3",), "LOW"),
    ("CVE-2025-48060", "libjq1", "1.6-2.1+deb12u2", ("1.6-2.1+deb12u3",), "LOW"),
    ("CVE-2021-4217", "unzip", "6.0-28", ("6.0-28+deb12u1",), "INFORMATIONAL"),
    ("CVE-2010-4756", "libc-bin", "2.36-9+deb12u14", (), "INFORMATIONAL"),
    ("CVE-2010-4756", "libc6", "2.36-9+deb12u14", (), "INFORMATIONAL"),
    ("CVE-2026-63072", "libssl3", "3.0.20-1~deb12u2", ("3.0.22-1~deb12u2",), "UNDEFINED"),
    ("CVE-2026-63072", "openssl", "3.0.20-1~deb12u2", ("3.0.22-1~deb12u2",), "UNDEFINED"),
    ("TEMP-1147318-639065", "liblzma5", "5.4.1-1+deb12u1", ("5.4.1-1+deb12u2",), "UNDEFINED"),
    ("TEMP-1147318-639065", "xz-utils", "5.4.1-1+deb12u1", ("5.4.1-1+deb12u2",), "UNDEFINED"),
}


async def test_a_hostile_layer_does_not_stop_the_scan(
    metadata: SqlMetadataStore, blobs: BlobStore, scanner: ImageScanner
) -> None:
    """On top of a real Debian root, a layer whose entries try to replace the dpkg database
    and os-release from outside the root (refused: ``..`` above the root), an absolute path
    (read relative to the root), and a symbolic link out of the root (kept, reported, never
    followed). Had the refused entries landed, the database would be empty and the OS
    unknown: the Debian findings show they did not."""
    await import_records(metadata, DEBIAN_TRACKER)
    hostile = layer(
        [
            Entry("../../var/lib/dpkg/status", b"Package: evil\nStatus: install ok installed\n"),
            Entry("usr/../../etc/os-release", b"ID=evil\n"),
            Entry("/opt/absolute.txt", b"absolute\n"),
            Entry("usr/bin/escape", link="../../../../etc/shadow"),
        ]
    )
    image = await push_image(blobs, [debian_layer(), hostile])
    top = image.layers[1].digest

    result = await scanner.scan(image, os_packages_only=True)
    assert result.unsupported is None
    assert {summary(f) for f in result.findings} == DEBIAN_EXPECTED
    assert len(result.findings) == len(DEBIAN_EXPECTED)
    assert result.inventory.os is not None
    assert (result.inventory.os.id, result.inventory.os.version_id) == ("debian", "12")
    assert {f.package.layer for f in result.findings} == {image.layers[0].digest}
    assert set(result.inventory.issues) >= {
        InventoryIssue(
            "../../var/lib/dpkg/status", "path leaves the image root ('..'); entry refused", top
        ),
        InventoryIssue(
            "usr/../../etc/os-release", "path leaves the image root ('..'); entry refused", top
        ),
        InventoryIssue("/opt/absolute.txt", "absolute path, read relative to the image root", top),
        InventoryIssue(
            "usr/bin/escape",
            "symbolic link target '../../../../etc/shadow' leaves the image root",
            top,
        ),
    }


async def test_a_missing_layer_blob_is_an_issue_not_a_failure(
    metadata: SqlMetadataStore, blobs: BlobStore, scanner: ImageScanner
) -> None:
    """A layer never pushed (a foreign layer) is left out and reported; the rest is scanned."""
    await import_records(metadata, ALPINE_SECDB)
    old = alpine_layer("3.10", ALPINE_OLD_VERSIONS)
    absent = files_layer({"etc/motd": b"never pushed\n"})
    await push(blobs, old)
    config = image_config([old, absent])
    await push(blobs, config)
    manifest = parse_manifest(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(OCI_LAYER, old), descriptor(OCI_LAYER, absent)],
            }
        ).encode(),
        OCI_MANIFEST,
    )
    result = await scanner.scan(manifest, os_packages_only=True)
    assert {summary(f) for f in result.findings} == ALPINE_EXPECTED
    missing = InventoryIssue("", "layer not read: its blob is not stored", Digest.of(absent))
    assert missing in result.inventory.issues
