"""The ScanRecords contract (``moorage.ports.scans``), run against every adapter.

Scan records live in the metadata transaction: an adapter runs this suite as it runs
``metadata_suite``, subclassing :class:`ScanRecordsSuite` with a ``bare_store`` fixture (an
open, empty store) and :meth:`ScanRecordsSuite.leftovers`. Every test leaves the store empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from moorage.domain.digests import Digest
from moorage.domain.findings import Finding, Severity
from moorage.domain.inventory import Package, PackageType
from moorage.domain.models import ManifestRecord
from moorage.ports.metadata import MetadataStore, MetadataTransaction
from moorage.ports.scans import ImageScan, ScanStatus
from moorage.scanning.advisories.keys import PackageKey

REGISTRY = "123456789012"
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
HOUR = timedelta(hours=1)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = Digest.parse("sha256:" + "1" * 64)
SBOM = Digest.parse("sha256:" + "5" * 64)

OPENSSL = Package(
    type=PackageType.APK,
    name="libssl3",
    version="3.3.1-r0",
    purl="pkg:apk/alpine/libssl3@3.3.1-r0?arch=x86_64&distro=alpine-3.20.3",
    path="lib/apk/db/installed",
    layer=LAYER,
    source_name="openssl",
    source_version="3.3.1-r0",
    arch="x86_64",
    namespace=None,
)
JACKSON = Package(
    type=PackageType.MAVEN,
    name="jackson-databind",
    version="2.9.8",
    purl="pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.8",
    path="app/lib/jackson-databind-2.9.8.jar",
    layer=None,
    source_name=None,
    source_version=None,
    arch=None,
    namespace="com.fasterxml.jackson.core",
)


def finding(name: str, package: Package, severity: Severity, **changes: object) -> Finding:
    """A finding with every field set to something other than its neighbour's."""
    values: dict[str, object] = {
        "name": name,
        "advisory_id": f"ADV-{name}",
        "aliases": (name, f"GHSA-{name[-4:]}"),
        "package": package,
        "fixed_versions": ("9.9.9-r0", "10.0.0-r0"),
        "severity": severity,
        "cvss_v3_score": 7.5,
        "cvss_v3_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N",
        "title": f"title of {name}: ünïcode",
        "description": f'description of {name}\nwith "quotes" and a second line',
        "links": (f"https://example.test/{name}", "https://example.test/other"),
        "source": "alpine-secdb",
    }
    values.update(changes)
    return Finding(**values)  # type: ignore[arg-type]


# Recorded in this order, which is not the matcher's (severity) order: the store keeps it.
FINDINGS = (
    finding("CVE-2024-0003", OPENSSL, Severity.UNDEFINED, cvss_v3_score=None, cvss_v3_vector=None),
    finding("CVE-2024-0001", OPENSSL, Severity.HIGH),
    finding("CVE-2024-0002", JACKSON, Severity.HIGH, fixed_versions=(), links=(), aliases=()),
    finding("GO-2024-0004", JACKSON, Severity.CRITICAL, source="golang-vulndb", title=""),
)
FINDING_COUNTS = {"UNDEFINED": 1, "HIGH": 2, "CRITICAL": 1}
KEYS = (
    PackageKey("Alpine:v3.20", "openssl"),
    PackageKey("Maven", "com.fasterxml.jackson.core:jackson-databind"),
)


def manifest(repository_id: int, label: str) -> ManifestRecord:
    payload = label.encode()
    return ManifestRecord(
        repository_id=repository_id,
        digest=Digest.of(payload),
        media_type=OCI_MANIFEST,
        size=len(payload),
        payload=payload,
        pushed_at=T0,
    )


class ScanRecordsSuite:
    """The contract. Subclasses provide the ``bare_store`` fixture and :meth:`leftovers`."""

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, bare_store: MetadataStore) -> AsyncIterator[MetadataStore]:
        yield bare_store
        async with bare_store.transaction() as tx:
            for repository in await tx.list_repositories(REGISTRY):
                await tx.delete_repository(repository.id)
        remaining = {kind: n for kind, n in (await self.leftovers(bare_store)).items() if n}
        assert not remaining, f"the test left records in the store: {remaining}"

    async def image(self, tx: MetadataTransaction, name: str, label: str) -> tuple[int, Digest]:
        """A repository ``name`` (created when new) holding a manifest made from ``label``."""
        existing = await tx.get_repository(REGISTRY, name)
        rid = existing.id if existing else (await tx.create_repository(REGISTRY, name, T0)).id
        record = manifest(rid, label)
        assert await tx.put_manifest(record, [])
        return rid, record.digest

    async def complete(
        self,
        tx: MetadataTransaction,
        rid: int,
        digest: Digest,
        packages: tuple[PackageKey, ...] = KEYS,
        at: datetime = T0,
        **changes: object,
    ) -> None:
        await tx.start_image_scan(rid, digest, "ENHANCED", at)
        finished = await tx.finish_image_scan(
            rid,
            digest,
            requested_at=at,
            status=ScanStatus.COMPLETE,
            description="The scan was completed successfully.",
            completed_at=at + HOUR,
            packages=packages,
            **changes,  # type: ignore[arg-type]
        )
        assert finished

    # -- start and finish ---------------------------------------------------------------

    async def test_start_on_an_existing_manifest_is_in_progress(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            rid, digest = await self.image(tx, "web", "a")
            assert await tx.get_image_scan(rid, digest) is None
            assert await tx.scan_findings(rid, digest) == []
            started = await tx.start_image_scan(rid, digest, "BASIC", T0)
        assert started.repository_id == rid
        assert started.digest == digest
        assert (started.scan_type, started.status, started.requested_at) == (
            "BASIC",
            ScanStatus.IN_PROGRESS,
            T0,
        )
        assert (started.completed_at, started.advisories_updated_at, started.sbom_digest) == (
            None,
            None,
            None,
        )
        assert dict(started.severity_counts) == {}
        async with store.read() as tx:
            assert await tx.get_image_scan(rid, digest) == started
            assert await tx.scan_findings(rid, digest) == []

    async def test_finish_records_findings_counts_and_packages(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            rid, digest = await self.image(tx, "web", "a")
            await tx.start_image_scan(rid, digest, "ENHANCED", T0)
        async with store.transaction() as tx:
            assert await tx.finish_image_scan(
                rid,
                digest,
                requested_at=T0,
                status=ScanStatus.COMPLETE,
                description="The scan was completed successfully.",
                completed_at=T0 + HOUR,
                advisories_updated_at=T0 - HOUR,
                findings=FINDINGS,
                packages=iter(KEYS + KEYS),  # any iterable, duplicates harmless
                sbom_digest=SBOM,
            )
        async with store.read() as tx:
            scan = await tx.get_image_scan(rid, digest)
            findings = await tx.scan_findings(rid, digest)
            images = await tx.images_with_packages(KEYS[:1])
        assert scan == ImageScan(
            repository_id=rid,
            digest=digest,
            scan_type="ENHANCED",
            status=ScanStatus.COMPLETE,
            description="The scan was completed successfully.",
            requested_at=T0,
            completed_at=T0 + HOUR,
            advisories_updated_at=T0 - HOUR,
            severity_counts=FINDING_COUNTS,
            sbom_digest=SBOM,
        )
        # Every field of every finding and of its package comes back, in recorded order.
        assert findings == list(FINDINGS)
        assert findings[1].package.layer == LAYER
        assert [(r.id, r.name) for r, d in images] == [(rid, "web")]
        assert [d for r, d in images] == [digest]

    async def test_finish_without_findings_counts_nothing(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            rid, digest = await self.image(tx, "web", "a")
            await tx.start_image_scan(rid, digest, "BASIC", T0)
            assert await tx.finish_image_scan(
                rid,
                digest,
                requested_at=T0,
                status=ScanStatus.UNSUPPORTED_IMAGE,
                description="no operating system was found",
                completed_at=T0 + HOUR,
            )
            scan = await tx.get_image_scan(rid, digest)
            assert await tx.scan_findings(rid, digest) == []
            assert await tx.images_with_packages(KEYS) == []
        assert scan is not None
        assert (scan.status, scan.description, dict(scan.severity_counts)) == (
            ScanStatus.UNSUPPORTED_IMAGE,
            "no operating system was found",
            {},
        )

    async def test_finish_is_refused_after_a_newer_start(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            rid, digest = await self.image(tx, "web", "a")
            await tx.start_image_scan(rid, digest, "BASIC", T0)
            newer = await tx.start_image_scan(rid, digest, "ENHANCED", T0 + HOUR)
        async with store.transaction() as tx:
            # The first scan ends late: its outcome is dropped, the newer scan still runs.
            assert not await tx.finish_image_scan(
                rid,
                digest,
                requested_at=T0,
                status=ScanStatus.COMPLETE,
                description="stale",
                completed_at=T0 + 2 * HOUR,
                findings=FINDINGS,
                packages=KEYS,
            )
            assert await tx.get_image_scan(rid, digest) == newer
            assert await tx.scan_findings(rid, digest) == []
            assert await tx.images_with_packages(KEYS) == []
            # A microsecond off is another request.
            assert not await tx.finish_image_scan(
                rid,
                digest,
                requested_at=T0 + HOUR + timedelta(microseconds=1),
                status=ScanStatus.FAILED,
                description="stale",
                completed_at=T0 + 2 * HOUR,
            )
            assert await tx.finish_image_scan(
                rid,
                digest,
                requested_at=T0 + HOUR,
                status=ScanStatus.FAILED,
                description="The scan failed.",
                completed_at=T0 + 2 * HOUR,
            )
            scan = await tx.get_image_scan(rid, digest)
        assert scan is not None
        assert (scan.status, scan.scan_type, scan.requested_at) == (
            ScanStatus.FAILED,
            "ENHANCED",
            T0 + HOUR,
        )

    async def test_finish_is_refused_when_the_image_is_gone(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            rid, digest = await self.image(tx, "web", "a")
            await tx.start_image_scan(rid, digest, "BASIC", T0)
        async with store.transaction() as tx:
            assert await tx.delete_manifest(rid, digest, now=T0)
        async with store.transaction() as tx:
            assert not await tx.finish_image_scan(
                rid,
                digest,
                requested_at=T0,
                status=ScanStatus.COMPLETE,
                description="done",
                completed_at=T0 + HOUR,
                findings=FINDINGS,
                packages=KEYS,
            )
            assert await tx.get_image_scan(rid, digest) is None
            assert await tx.scan_findings(rid, digest) == []
            assert await tx.images_with_packages(KEYS) == []

    async def test_finish_is_refused_when_never_started(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            rid, digest = await self.image(tx, "web", "a")
            assert not await tx.finish_image_scan(
                rid,
                digest,
                requested_at=T0,
                status=ScanStatus.COMPLETE,
                description="done",
                completed_at=T0 + HOUR,
                packages=KEYS,
            )
            assert await tx.get_image_scan(rid, digest) is None
            assert await tx.images_with_packages(KEYS) == []

    async def test_finishing_the_same_scan_twice_keeps_one_consistent_outcome(
        self, store: MetadataStore
    ) -> None:
        """A job retried after its lease ran out finishes the scan its first run finished.
        The port allows True (the second outcome replaces the first) or False (the first
        stays), not an error, and findings and packages must come from the same outcome."""
        async with store.transaction() as tx:
            rid, digest = await self.image(tx, "web", "a")
            await self.complete(tx, rid, digest, findings=FINDINGS)
        async with store.transaction() as tx:
            replaced = await tx.finish_image_scan(
                rid,
                digest,
                requested_at=T0,
                status=ScanStatus.COMPLETE,
                description="again",
                completed_at=T0 + 2 * HOUR,
                findings=FINDINGS[:1],
                packages=KEYS,
            )
        async with store.read() as tx:
            scan = await tx.get_image_scan(rid, digest)
            findings = await tx.scan_findings(rid, digest)
            images = await tx.images_with_packages(KEYS)
        assert scan is not None
        assert findings == (list(FINDINGS[:1]) if replaced else list(FINDINGS))
        assert scan.completed_at == (T0 + 2 * HOUR if replaced else T0 + HOUR)
        assert [d for _, d in images] == [digest]

    async def test_start_again_forgets_findings_and_packages_but_keeps_the_sbom(
        self, store: MetadataStore
    ) -> None:
        async with store.transaction() as tx:
            rid, digest = await self.image(tx, "web", "a")
            await self.complete(
                tx, rid, digest, findings=FINDINGS, sbom_digest=SBOM, advisories_updated_at=T0
            )
        async with store.transaction() as tx:
            again = await tx.start_image_scan(rid, digest, "BASIC", T0 + 2 * HOUR)
        async with store.read() as tx:
            scan = await tx.get_image_scan(rid, digest)
            assert await tx.scan_findings(rid, digest) == []
            assert await tx.images_with_packages(KEYS) == []
        assert scan is not None
        assert (scan.status, scan.scan_type, scan.requested_at) == (
            ScanStatus.IN_PROGRESS,
            "BASIC",
            T0 + 2 * HOUR,
        )
        assert (scan.completed_at, scan.advisories_updated_at, dict(scan.severity_counts)) == (
            None,
            None,
            {},
        )
        assert scan.sbom_digest == SBOM
        assert (again.status, again.requested_at) == (ScanStatus.IN_PROGRESS, T0 + 2 * HOUR)
        # The new scan's outcome replaces the SBOM's digest.
        other = Digest.parse("sha256:" + "6" * 64)
        async with store.transaction() as tx:
            assert await tx.finish_image_scan(
                rid,
                digest,
                requested_at=T0 + 2 * HOUR,
                status=ScanStatus.COMPLETE,
                description="done",
                completed_at=T0 + 3 * HOUR,
                findings=FINDINGS[:1],
                packages=KEYS[1:],
                sbom_digest=other,
            )
            scan = await tx.get_image_scan(rid, digest)
            assert await tx.scan_findings(rid, digest) == list(FINDINGS[:1])
            assert [d for _, d in await tx.images_with_packages(KEYS)] == [digest]
            assert await tx.images_with_packages(KEYS[:1]) == []
        assert scan is not None
        assert (scan.sbom_digest, dict(scan.severity_counts)) == (other, {"UNDEFINED": 1})

    # -- reads --------------------------------------------------------------------------

    async def test_image_scans_of_several_digests(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            rid, first = await self.image(tx, "web", "a")
            _, second = await self.image(tx, "web", "b")
            _, unscanned = await self.image(tx, "web", "c")
            other_rid, elsewhere = await self.image(tx, "api", "d")
            await self.complete(tx, rid, first, findings=FINDINGS)
            await tx.start_image_scan(rid, second, "BASIC", T0 + HOUR)
            await tx.start_image_scan(other_rid, elsewhere, "BASIC", T0)
        missing = Digest.of(b"never pushed")
        async with store.read() as tx:
            scans = await tx.image_scans(rid, [first, second, unscanned, missing, elsewhere])
            assert await tx.image_scans(rid, []) == {}
            assert set(await tx.image_scans(other_rid, [first, elsewhere])) == {elsewhere}
        assert set(scans) == {first, second}
        assert (scans[first].status, dict(scans[first].severity_counts)) == (
            ScanStatus.COMPLETE,
            FINDING_COUNTS,
        )
        assert (scans[second].status, scans[second].requested_at) == (
            ScanStatus.IN_PROGRESS,
            T0 + HOUR,
        )

    async def test_image_scans_of_more_digests_than_a_chunk(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            rid, digest = await self.image(tx, "web", "image-0")
            digests = [digest]
            for n in range(1, 520):
                digests.append((await self.image(tx, "web", f"image-{n}"))[1])
            for n, digest in enumerate(digests):
                if n % 2 == 0:
                    await tx.start_image_scan(rid, digest, "BASIC", T0)
        unknown = [Digest.of(f"unknown-{n}".encode()) for n in range(100)]
        async with store.read() as tx:
            scans = await tx.image_scans(rid, unknown + digests)
        assert set(scans) == set(digests[::2])
        assert len(scans) == 260

    async def test_images_with_packages_returns_each_image_once(self, store: MetadataStore) -> None:
        go = PackageKey("Go", "golang.org/x/net")
        async with store.transaction() as tx:
            web, first = await self.image(tx, "web", "a")
            _, second = await self.image(tx, "web", "b")
            api, third = await self.image(tx, "api", "c")
            _, not_matching = await self.image(tx, "api", "d")
            await self.complete(tx, web, first, packages=(*KEYS, go))
            await self.complete(tx, web, second, packages=KEYS[:1])
            await self.complete(tx, api, third, packages=(go, KEYS[1]))
            await self.complete(tx, api, not_matching, packages=(PackageKey("npm", "lodash"),))
        async with store.read() as tx:
            found = await tx.images_with_packages([*KEYS, go, *KEYS])
            only_go = await tx.images_with_packages(iter([go]))
            nothing = await tx.images_with_packages([PackageKey("PyPI", "openssl")])
            assert await tx.images_with_packages([]) == []
        pairs = [(repository.id, repository.name, digest) for repository, digest in found]
        assert len(pairs) == len(set(pairs)), pairs
        assert set(pairs) == {(web, "web", first), (web, "web", second), (api, "api", third)}
        repository = next(r for r, _ in found if r.id == web)
        assert (repository.registry_id, repository.created_at) == (REGISTRY, T0)
        assert {(r.name, d) for r, d in only_go} == {("web", first), ("api", third)}
        # The ecosystem is part of the key.
        assert nothing == []

    async def test_deleting_the_manifest_or_repository_forgets_the_scan(
        self, store: MetadataStore
    ) -> None:
        async with store.transaction() as tx:
            web, first = await self.image(tx, "web", "a")
            _, second = await self.image(tx, "web", "b")
            api, third = await self.image(tx, "api", "c")
            for rid, digest in ((web, first), (web, second), (api, third)):
                await self.complete(tx, rid, digest, findings=FINDINGS)
        async with store.transaction() as tx:
            assert await tx.delete_manifest(web, first, now=T0)
        async with store.read() as tx:
            assert await tx.get_image_scan(web, first) is None
            assert await tx.scan_findings(web, first) == []
            assert {d for _, d in await tx.images_with_packages(KEYS)} == {second, third}
        async with store.transaction() as tx:
            await tx.delete_repository(web, now=T0)
        async with store.read() as tx:
            assert [(r.name, d) for r, d in await tx.images_with_packages(KEYS)] == [("api", third)]
        # Pushed again, the same image has no scan.
        async with store.transaction() as tx:
            web, again = await self.image(tx, "web", "b")
            assert again == second
            assert await tx.get_image_scan(web, again) is None
            assert await tx.image_scans(web, [again]) == {}

    async def test_more_package_keys_than_a_chunk(self, store: MetadataStore) -> None:
        keys = tuple(PackageKey("npm", f"package-{n:04}") for n in range(1200))
        async with store.transaction() as tx:
            web, first = await self.image(tx, "web", "a")
            _, second = await self.image(tx, "web", "b")
            await self.complete(tx, web, first, packages=keys)
            await self.complete(tx, web, second, packages=keys[1100:] + KEYS)
        lookup = [PackageKey("npm", f"absent-{n}") for n in range(600)]
        async with store.read() as tx:
            # Only the last key, after 600 absent ones (another chunk), names the first image.
            assert [d for _, d in await tx.images_with_packages([*lookup, keys[0]])] == [first]
            both = await tx.images_with_packages(keys)
            assert await tx.images_with_packages(lookup) == []
        # Both images, each once, though every chunk of keys names the first.
        assert len(both) == 2
        assert {d for _, d in both} == {first, second}
