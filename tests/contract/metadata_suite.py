"""The MetadataStore contract (``moorage.ports.metadata``), run against every adapter.

To run it on an adapter, subclass :class:`MetadataStoreSuite` in a ``test_metadata_*.py``
module and provide:

- a fixture ``bare_store`` that yields an open, empty store and closes it afterwards;
- :meth:`MetadataStoreSuite.leftovers`, which counts what the store still holds.

Every test gets a fresh store and must leave it empty: the ``store`` fixture fails the test
at teardown otherwise (a test that forgets to clean up hides state from the next one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from moorage.domain.digests import Digest
from moorage.domain.errors import (
    BlobUnknown,
    ManifestUnknown,
    RepositoryAlreadyExists,
    UploadUnknown,
)
from moorage.domain.models import (
    AccountSetting,
    ManifestRecord,
    ManifestReference,
    PolicyTexts,
    ReferenceKind,
    Repository,
    TagMutability,
    UploadSession,
)
from moorage.ports.metadata import MetadataStore, MetadataTransaction

REGISTRY = "123456789012"
OTHER_REGISTRY = "210987654321"
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SIGNATURE = "application/vnd.example.signature"
SBOM = "application/vnd.example.sbom"


def digest_of(label: str) -> Digest:
    return Digest.of(label.encode())


def manifest_record(
    repository_id: int,
    payload: bytes,
    *,
    media_type: str = OCI_MANIFEST,
    pushed_at: datetime = T0,
    artifact_type: str | None = None,
    subject: Digest | None = None,
    annotations: Mapping[str, str] | None = None,
) -> ManifestRecord:
    return ManifestRecord(
        repository_id=repository_id,
        digest=Digest.of(payload),
        media_type=media_type,
        size=len(payload),
        payload=payload,
        pushed_at=pushed_at,
        artifact_type=artifact_type,
        config_media_type=artifact_type,
        subject=subject,
        annotations=dict(annotations or {}),
    )


def blob_ref(digest: Digest) -> ManifestReference:
    return ManifestReference(digest, ReferenceKind.BLOB)


def child_ref(digest: Digest) -> ManifestReference:
    return ManifestReference(digest, ReferenceKind.MANIFEST)


async def create_repository(
    store: MetadataStore, name: str = "team/app", registry_id: str = REGISTRY
) -> Repository:
    async with store.transaction() as tx:
        return await tx.create_repository(registry_id, name, T0)


async def delete_repositories(store: MetadataStore, *repositories: Repository) -> None:
    async with store.transaction() as tx:
        for repository in repositories:
            await tx.delete_repository(repository.id)


async def delete_blobs(store: MetadataStore, *digests: Digest) -> None:
    async with store.transaction() as tx:
        for digest in digests:
            await tx.delete_blob(digest)


async def push_blob(tx: MetadataTransaction, repository_id: int, label: str) -> Digest:
    """Record a blob and link it to the repository, as a completed upload does."""
    digest = digest_of(label)
    await tx.put_blob(digest, len(label), T0)
    await tx.link_blob(repository_id, digest, T0)
    return digest


def assert_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.utcoffset() == timedelta(0), f"{value!r} is not in UTC"


class _DeliberateError(Exception):
    """Raised inside a transaction to make it roll back."""


class MetadataStoreSuite:
    """The contract. Subclasses provide the ``bare_store`` fixture and :meth:`leftovers`."""

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        """What ``store`` still holds: a count per kind of record (table, collection)."""
        raise NotImplementedError

    @pytest.fixture
    async def store(self, bare_store: MetadataStore) -> AsyncIterator[MetadataStore]:
        yield bare_store
        remaining = {kind: n for kind, n in (await self.leftovers(bare_store)).items() if n}
        assert not remaining, f"the test left records in the store: {remaining}"

    # -- repositories -------------------------------------------------------------------

    async def test_create_and_get_repository(self, store: MetadataStore) -> None:
        created = await create_repository(store, "team/app")
        assert created.registry_id == REGISTRY
        assert created.name == "team/app"
        assert created.created_at == T0
        async with store.read() as tx:
            assert await tx.get_repository(REGISTRY, "team/app") == created
            assert await tx.get_repository(REGISTRY, "team/other") is None
            assert await tx.get_repository(OTHER_REGISTRY, "team/app") is None
        await delete_repositories(store, created)

    async def test_create_repository_twice_raises(self, store: MetadataStore) -> None:
        first = await create_repository(store, "team/app")
        with pytest.raises(RepositoryAlreadyExists):
            async with store.transaction() as tx:
                await tx.create_repository(REGISTRY, "team/app", T0)
        # The same name in another registry is another repository.
        other = await create_repository(store, "team/app", OTHER_REGISTRY)
        assert other.id != first.id
        await delete_repositories(store, first, other)

    async def test_each_region_is_a_registry_of_its_own(self, store: MetadataStore) -> None:
        """On AWS every (account, region) is a registry: the same name in two regions is two
        repositories, and registry-level records are per region too."""
        europe = store.in_region("eu-west-1")
        assert (store.region, europe.region) == ("us-east-1", "eu-west-1")
        home = await create_repository(store, "team/app")
        away = await create_repository(europe, "team/app")
        assert away.id != home.id
        assert (home.region, away.region) == ("us-east-1", "eu-west-1")
        async with europe.transaction() as tx:
            await tx.put_registry_policy(REGISTRY, "europe's policy", T0)
            await tx.put_account_setting(REGISTRY, AccountSetting.BLOB_MOUNTING.value, "ENABLED")
            await tx.put_repository_policy(away.id, "away's policy", T0)
        async with store.read() as tx:
            assert await tx.get_repository(REGISTRY, "team/app") == home
            assert [r.id for r in await tx.list_repositories(REGISTRY)] == [home.id]
            assert await tx.get_registry_policy(REGISTRY) is None
            assert await tx.list_account_settings(REGISTRY) == {}
            policies = await tx.read_policies(REGISTRY, "team/app")
            assert (policies.registry_policy, policies.repository_policy) == (None, None)
            assert await tx.regions_in_use() == ["eu-west-1", "us-east-1"]
        async with europe.read() as tx:
            assert await tx.get_repository(REGISTRY, "team/app") == away
            policies = await tx.read_policies(REGISTRY, "team/app")
            assert policies.registry_policy == "europe's policy"
            assert policies.repository_policy == "away's policy"
        async with europe.transaction() as tx:
            assert await tx.delete_registry_policy(REGISTRY) == "europe's policy"
            assert await tx.delete_account_setting(REGISTRY, AccountSetting.BLOB_MOUNTING.value)
        await europe.close()  # a no-op: the store it came from owns the connections
        await delete_repositories(store, home, away)

    async def test_duplicate_repository_leaves_the_transaction_usable(
        self, store: MetadataStore
    ) -> None:
        existing = await create_repository(store, "team/app")
        async with store.transaction() as tx:
            with pytest.raises(RepositoryAlreadyExists):
                await tx.create_repository(REGISTRY, "team/app", T0)
            found = await tx.get_repository(REGISTRY, "team/app")
            extra = await tx.create_repository(REGISTRY, "team/extra", T0)
        assert found == existing
        await delete_repositories(store, existing, extra)

    async def test_list_repositories_in_binary_order_with_pagination(
        self, store: MetadataStore
    ) -> None:
        # Bytewise: "-" < "." < "/" < "_" < letters; a linguistic collation orders them otherwise.
        names = ["ab", "a_b", "a/b", "a.b", "a-b"]
        created = [await create_repository(store, name) for name in names]
        elsewhere = await create_repository(store, "a-a", OTHER_REGISTRY)
        async with store.read() as tx:
            listed = [r.name for r in await tx.list_repositories(REGISTRY)]
            page1 = [r.name for r in await tx.list_repositories(REGISTRY, limit=2)]
            page2 = [r.name for r in await tx.list_repositories(REGISTRY, after="a.b", limit=2)]
            rest = [r.name for r in await tx.list_repositories(REGISTRY, after="a_b")]
            beyond = await tx.list_repositories(REGISTRY, after="b")
        assert listed == ["a-b", "a.b", "a/b", "a_b", "ab"]
        assert page1 == ["a-b", "a.b"]
        assert page2 == ["a/b", "a_b"]
        assert rest == ["ab"]
        assert beyond == []
        await delete_repositories(store, *created, elsewhere)

    async def test_delete_repository_deletes_everything_it_owns(self, store: MetadataStore) -> None:
        doomed = await create_repository(store, "team/doomed")
        kept = await create_repository(store, "team/kept")
        async with store.transaction() as tx:
            layer = await push_blob(tx, doomed.id, "layer")
            await tx.link_blob(kept.id, layer, T0)
            image = manifest_record(doomed.id, b'{"image": 1}')
            index = manifest_record(doomed.id, b'{"index": 1}', media_type=OCI_INDEX)
            await tx.put_manifest(image, [blob_ref(layer)])
            await tx.put_manifest(index, [child_ref(image.digest)])
            await tx.put_tag(doomed.id, "latest", index.digest, T0)
            await tx.create_upload(UploadSession("upload-1", doomed.id, 10, T0, T0))
        async with store.transaction() as tx:
            await tx.delete_repository(doomed.id)
        async with store.read() as tx:
            assert await tx.get_repository(REGISTRY, "team/doomed") is None
            assert await tx.get_manifest(doomed.id, image.digest) is None
            assert await tx.resolve_tag(doomed.id, "latest") is None
            assert await tx.list_tags(doomed.id) == []
            assert await tx.manifest_parents(doomed.id, image.digest) == []
            assert await tx.get_linked_blob(doomed.id, layer) is None
            assert await tx.get_upload("upload-1") is None
            # Blobs are registry-wide, and the other repository's link stays.
            assert await tx.get_blob(layer) is not None
            assert await tx.get_linked_blob(kept.id, layer) is not None
        await delete_repositories(store, kept)
        await delete_blobs(store, layer)

    # -- blobs --------------------------------------------------------------------------

    async def test_put_blob_is_idempotent(self, store: MetadataStore) -> None:
        digest = digest_of("blob")
        async with store.transaction() as tx:
            await tx.put_blob(digest, 4, T0)
        async with store.transaction() as tx:
            await tx.put_blob(digest, 4, T0 + timedelta(hours=1))
        async with store.read() as tx:
            blob = await tx.get_blob(digest)
            assert await tx.get_blob(digest_of("unknown")) is None
        assert blob is not None
        assert (blob.digest, blob.size, blob.created_at) == (digest, 4, T0)
        await delete_blobs(store, digest)

    async def test_unrecorded_blobs(self, store: MetadataStore) -> None:
        recorded = [digest_of(f"recorded {n}") for n in range(3)]
        async with store.transaction() as tx:
            for digest in recorded:
                await tx.put_blob(digest, 4, T0)
        others = {digest_of(f"file only {n}") for n in range(600)}  # more than one IN list
        async with store.read() as tx:
            assert await tx.unrecorded_blobs([*recorded, *others]) == others
            assert await tx.unrecorded_blobs(recorded) == set()
            assert await tx.unrecorded_blobs([]) == set()
        await delete_blobs(store, *recorded)

    async def test_link_blob_is_idempotent_and_unlink_reports(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        async with store.transaction() as tx:
            digest = await push_blob(tx, repository.id, "layer")
            await tx.link_blob(repository.id, digest, T0 + timedelta(minutes=1))
        async with store.read() as tx:
            linked = await tx.get_linked_blob(repository.id, digest)
        assert linked is not None
        assert (linked.digest, linked.size) == (digest, len("layer"))
        async with store.transaction() as tx:
            assert await tx.unlink_blob(repository.id, digest) is True
            assert await tx.unlink_blob(repository.id, digest) is False
            assert await tx.get_linked_blob(repository.id, digest) is None
            assert await tx.get_blob(digest) is not None
        await delete_repositories(store, repository)
        await delete_blobs(store, digest)

    async def test_link_unrecorded_blob_raises(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        with pytest.raises(BlobUnknown):
            async with store.transaction() as tx:
                await tx.link_blob(repository.id, digest_of("never recorded"), T0)
        await delete_repositories(store, repository)

    async def test_delete_blob_removes_every_link(self, store: MetadataStore) -> None:
        one = await create_repository(store, "team/one")
        two = await create_repository(store, "team/two")
        async with store.transaction() as tx:
            digest = await push_blob(tx, one.id, "shared")
            await tx.link_blob(two.id, digest, T0)
        async with store.transaction() as tx:
            await tx.delete_blob(digest)
        async with store.read() as tx:
            assert await tx.get_blob(digest) is None
            assert await tx.get_linked_blob(one.id, digest) is None
            assert await tx.get_linked_blob(two.id, digest) is None
        await delete_repositories(store, one, two)

    async def test_missing_blobs(self, store: MetadataStore) -> None:
        here = await create_repository(store, "team/here")
        there = await create_repository(store, "team/there")
        async with store.transaction() as tx:
            linked = {await push_blob(tx, here.id, f"layer-{i}") for i in range(3)}
            elsewhere = await push_blob(tx, there.id, "elsewhere")
        unknown = {digest_of(f"unknown-{i}") for i in range(1200)}  # more than one IN list
        async with store.transaction() as tx:  # it locks what it finds: a write transaction
            assert await tx.missing_blobs(here.id, linked) == set()
            assert await tx.missing_blobs(here.id, []) == set()
            assert await tx.missing_blobs(here.id, linked | {elsewhere}) == {elsewhere}
            assert await tx.missing_blobs(here.id, linked | unknown) == unknown
        await delete_repositories(store, here, there)
        await delete_blobs(store, *linked, elsewhere)

    async def test_linked_blob_sizes(self, store: MetadataStore) -> None:
        here = await create_repository(store, "team/here")
        there = await create_repository(store, "team/there")
        async with store.transaction() as tx:
            linked = await push_blob(tx, here.id, "layer")
            elsewhere = await push_blob(tx, there.id, "elsewhere")
        async with store.transaction() as tx:
            sizes = await tx.linked_blob_sizes(here.id, [linked, elsewhere, digest_of("x")])
            recorded = await tx.get_blob(linked)
        assert recorded is not None
        assert sizes == {linked: recorded.size}
        await delete_repositories(store, here, there)
        await delete_blobs(store, linked, elsewhere)

    # -- manifests ----------------------------------------------------------------------

    async def test_put_and_get_manifest_keeps_every_field(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        subject = digest_of("subject")
        record = manifest_record(
            repository.id,
            b'{"schemaVersion": 2}',
            artifact_type=SIGNATURE,
            subject=subject,
            annotations={"org.opencontainers.image.created": "2024-05-01", "k": "v"},
        )
        async with store.transaction() as tx:
            assert await tx.put_manifest(record, []) is True
        async with store.read() as tx:
            stored = await tx.get_manifest(repository.id, record.digest)
            assert await tx.get_manifest(repository.id, digest_of("other")) is None
        assert stored == record
        await delete_repositories(store, repository)

    async def test_put_manifest_twice_changes_nothing(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        async with store.transaction() as tx:
            layer = await push_blob(tx, repository.id, "layer")
            other = await push_blob(tx, repository.id, "other")
            first = manifest_record(repository.id, b'{"m": 1}')
            assert await tx.put_manifest(first, [blob_ref(layer)]) is True
        again = manifest_record(
            repository.id, b'{"m": 1}', pushed_at=T0 + timedelta(days=1), annotations={"a": "b"}
        )
        async with store.transaction() as tx:
            assert await tx.put_manifest(again, [blob_ref(other)]) is False
        async with store.read() as tx:
            assert await tx.get_manifest(repository.id, first.digest) == first
        async with store.transaction() as tx:
            # The references are still the first ones: a blob the manifest does not use.
            await tx.delete_blob(other)
            assert await tx.delete_manifest(repository.id, first.digest) is True
        await delete_repositories(store, repository)
        await delete_blobs(store, layer)

    async def test_image_listings(self, store: MetadataStore) -> None:
        """ListImages' and DescribeImages' queries: order, tag filters, cursors, sizes."""
        repository = await create_repository(store)
        async with store.transaction() as tx:
            config = await push_blob(tx, repository.id, "config")
            layer = await push_blob(tx, repository.id, "a layer of 17 b")
            image = manifest_record(repository.id, b'{"image": 1}')
            other = manifest_record(repository.id, b'{"image": 2}')
            index = manifest_record(repository.id, b'{"index": 1}', media_type=OCI_INDEX)
            await tx.put_manifest(image, [blob_ref(config), blob_ref(layer)])
            await tx.put_manifest(other, [blob_ref(layer)])
            await tx.put_manifest(index, [child_ref(image.digest), child_ref(other.digest)])
            for tag in ("b", "a"):
                await tx.put_tag(repository.id, tag, image.digest, T0)
            await tx.put_tag(repository.id, "multi", index.digest, T0)
        by_digest = sorted([image.digest, other.digest, index.digest], key=str)
        expected = sorted(
            [
                (image.digest, "a"),
                (image.digest, "b"),
                (other.digest, None),
                (index.digest, "multi"),
            ],
            key=lambda entry: (str(entry[0]), entry[1] or ""),
        )
        async with store.read() as tx:
            listed = await tx.list_manifests(repository.id)
            assert [m.digest for m in listed] == by_digest
            assert all(m.payload == b"" for m in listed)
            tagged = await tx.list_manifests(repository.id, tagged=True)
            assert {m.digest for m in tagged} == {image.digest, index.digest}
            untagged = await tx.list_manifests(repository.id, tagged=False)
            assert [m.digest for m in untagged] == [other.digest]
            after = await tx.list_manifests(repository.id, after=by_digest[0], limit=1)
            assert [m.digest for m in after] == by_digest[1:2]

            assert await tx.list_image_ids(repository.id) == expected
            # Page by page, each page resuming after the last entry of the one before.
            pages: list[tuple[Digest, str | None]] = []
            cursor: tuple[Digest, str] | None = None
            while page := await tx.list_image_ids(repository.id, after=cursor, limit=1):
                pages += page
                cursor = (page[-1][0], page[-1][1] or "")
            assert pages == expected
            assert await tx.list_image_ids(repository.id, tagged=False) == [(other.digest, None)]
            assert len(await tx.list_image_ids(repository.id, tagged=True)) == 3

            digests = [image.digest, other.digest, index.digest]
            assert await tx.tags_by_manifest(repository.id, digests) == {
                image.digest: ["a", "b"],
                index.digest: ["multi"],
            }
            assert await tx.blob_totals(repository.id, digests) == {
                image.digest: len("config") + len("a layer of 17 b"),
                other.digest: len("a layer of 17 b"),
            }
            assert await tx.manifest_children(repository.id, digests) == {
                index.digest: sorted([image.digest, other.digest], key=str)
            }
        await delete_repositories(store, repository)
        await delete_blobs(store, config, layer)

    async def test_put_manifest_accepts_repeated_references(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        async with store.transaction() as tx:
            layer = await push_blob(tx, repository.id, "empty layer")
            record = manifest_record(repository.id, b'{"layers": [1, 1]}')
            assert await tx.put_manifest(record, [blob_ref(layer), blob_ref(layer)]) is True
        await delete_repositories(store, repository)
        await delete_blobs(store, layer)

    async def test_payload_bytes_are_kept_exactly(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        not_utf8 = b'{"x": "\xff\xfe\x00\x80"}\r\n\x00'
        four_mib = bytes(range(256)) * (4 * 1024 * 1024 // 256)
        records = [manifest_record(repository.id, p) for p in (not_utf8, four_mib)]
        async with store.transaction() as tx:
            for record in records:
                await tx.put_manifest(record, [])
            await tx.put_tag(repository.id, "big", records[1].digest, T0)
        async with store.read() as tx:
            small = await tx.get_manifest(repository.id, records[0].digest)
            big = await tx.resolve_tag(repository.id, "big")
        assert small is not None
        assert small.payload == not_utf8
        assert big is not None
        assert len(big.payload) == 4 * 1024 * 1024
        assert Digest.of(big.payload) == records[1].digest
        await delete_repositories(store, repository)

    async def test_missing_manifests(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        other = await create_repository(store, "team/other")
        present = manifest_record(repository.id, b'{"present": 1}')
        elsewhere = manifest_record(other.id, b'{"elsewhere": 1}')
        async with store.transaction() as tx:
            await tx.put_manifest(present, [])
            await tx.put_manifest(elsewhere, [])
        absent = digest_of("absent")
        async with store.read() as tx:
            assert await tx.missing_manifests(repository.id, [present.digest]) == set()
            assert await tx.missing_manifests(repository.id, []) == set()
            assert await tx.missing_manifests(
                repository.id, [present.digest, absent, elsewhere.digest]
            ) == {absent, elsewhere.digest}
        await delete_repositories(store, repository, other)

    async def test_manifest_parents(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        other = await create_repository(store, "team/other")
        child = manifest_record(repository.id, b'{"child": 1}')
        indexes = [
            manifest_record(repository.id, b'{"index": %d}' % i, media_type=OCI_INDEX)
            for i in range(3)
        ]
        unrelated = manifest_record(repository.id, b'{"unrelated": 1}')
        async with store.transaction() as tx:
            await tx.put_manifest(child, [])
            await tx.put_manifest(unrelated, [])
            for index in indexes:
                await tx.put_manifest(index, [child_ref(child.digest), child_ref(unrelated.digest)])
            # The same digests in another repository are not parents here.
            await tx.put_manifest(replace(child, repository_id=other.id), [])
            await tx.put_manifest(
                replace(indexes[0], repository_id=other.id), [child_ref(child.digest)]
            )
        async with store.read() as tx:
            parents = await tx.manifest_parents(repository.id, child.digest)
            assert await tx.manifest_parents(repository.id, indexes[0].digest) == []
        assert parents == sorted((i.digest for i in indexes), key=str)
        await delete_repositories(store, repository, other)

    async def test_blob_users_are_the_manifests_using_a_blob(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        other = await create_repository(store, "team/other")
        async with store.transaction() as tx:
            layer = await push_blob(tx, repository.id, "layer")
            unused = await push_blob(tx, repository.id, "unused")
            await tx.link_blob(other.id, layer, T0)
            first = manifest_record(repository.id, b'{"m": 1}')
            second = manifest_record(repository.id, b'{"m": 2}')
            index = manifest_record(repository.id, b'{"i": 1}', media_type=OCI_INDEX)
            await tx.put_manifest(first, [blob_ref(layer)])
            await tx.put_manifest(second, [blob_ref(layer)])
            await tx.put_manifest(index, [child_ref(first.digest)])
            await tx.put_manifest(replace(first, repository_id=other.id), [blob_ref(unused)])
        async with store.read() as tx:
            assert await tx.blob_users(repository.id, layer) == sorted(
                [first.digest, second.digest], key=str
            )
            assert await tx.blob_users(repository.id, unused) == []
            # Child manifests of an index are not blob users.
            assert await tx.blob_users(repository.id, first.digest) == []
            assert await tx.blob_users(other.id, layer) == []
        await delete_repositories(store, repository, other)
        await delete_blobs(store, layer, unused)

    async def test_repositories_with_blob(self, store: MetadataStore) -> None:
        first = await create_repository(store, "b/repo")
        second = await create_repository(store, "a/repo")
        foreign = await create_repository(store, "a/repo", registry_id=OTHER_REGISTRY)
        async with store.transaction() as tx:
            layer = await push_blob(tx, first.id, "layer")
            await tx.link_blob(second.id, layer, T0)
            await tx.link_blob(foreign.id, layer, T0)
        async with store.read() as tx:
            assert await tx.repositories_with_blob(REGISTRY, layer) == ["a/repo", "b/repo"]
            assert await tx.repositories_with_blob(OTHER_REGISTRY, layer) == ["a/repo"]
            assert await tx.repositories_with_blob(REGISTRY, digest_of("absent")) == []
        await delete_repositories(store, first, second, foreign)
        await delete_blobs(store, layer)

    async def test_count_manifests(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        other = await create_repository(store, "team/other")
        async with store.transaction() as tx:
            assert await tx.count_manifests(repository.id) == 0
            await tx.put_manifest(manifest_record(repository.id, b'{"m": 1}'), [])
            await tx.put_manifest(manifest_record(repository.id, b'{"m": 2}'), [])
            await tx.put_manifest(manifest_record(other.id, b'{"m": 1}'), [])
        async with store.read() as tx:
            assert await tx.count_manifests(repository.id) == 2
            assert await tx.count_manifests(other.id) == 1
        await delete_repositories(store, repository, other)

    async def test_blob_references_are_not_parents(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        async with store.transaction() as tx:
            layer = await push_blob(tx, repository.id, "layer")
            await tx.put_manifest(manifest_record(repository.id, b'{"m": 1}'), [blob_ref(layer)])
            assert await tx.manifest_parents(repository.id, layer) == []
        await delete_repositories(store, repository)
        await delete_blobs(store, layer)

    async def test_delete_manifest_removes_its_tags_and_references(
        self, store: MetadataStore
    ) -> None:
        repository = await create_repository(store)
        child = manifest_record(repository.id, b'{"child": 1}')
        index = manifest_record(repository.id, b'{"index": 1}', media_type=OCI_INDEX)
        async with store.transaction() as tx:
            await tx.put_manifest(child, [])
            await tx.put_manifest(index, [child_ref(child.digest)])
            await tx.put_tag(repository.id, "multi", index.digest, T0)
            await tx.put_tag(repository.id, "also-multi", index.digest, T0)
            await tx.put_tag(repository.id, "single", child.digest, T0)
        async with store.transaction() as tx:
            assert await tx.delete_manifest(repository.id, index.digest) is True
            assert await tx.delete_manifest(repository.id, index.digest) is False
        async with store.read() as tx:
            assert await tx.get_manifest(repository.id, index.digest) is None
            assert await tx.list_tags(repository.id) == ["single"]
            assert await tx.manifest_parents(repository.id, child.digest) == []
            assert await tx.get_manifest(repository.id, child.digest) == child
        await delete_repositories(store, repository)

    async def test_manifest_parents_many(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        other = await create_repository(store, "team/other")
        children = [manifest_record(repository.id, b'{"child": %d}' % i) for i in range(3)]
        indexes = [
            manifest_record(repository.id, b'{"index": %d}' % i, media_type=OCI_INDEX)
            for i in range(3)
        ]
        async with store.transaction() as tx:
            layer = await push_blob(tx, repository.id, "layer")
            for child in children:
                await tx.put_manifest(child, [blob_ref(layer)])
            # children[0] is listed by all three indexes, children[1] by one, children[2] by
            # none; indexes[2] is itself listed by indexes[0] (an index of indexes).
            await tx.put_manifest(indexes[2], [child_ref(children[0].digest)])
            await tx.put_manifest(indexes[1], [child_ref(children[0].digest)])
            await tx.put_manifest(
                indexes[0],
                [
                    child_ref(children[0].digest),
                    child_ref(children[1].digest),
                    child_ref(indexes[2].digest),
                ],
            )
            # The same digests in another repository are not parents here.
            await tx.put_manifest(replace(children[2], repository_id=other.id), [])
            await tx.put_manifest(
                replace(indexes[0], repository_id=other.id), [child_ref(children[2].digest)]
            )
        async with store.read() as tx:
            parents = await tx.manifest_parents_many(
                repository.id, [*(c.digest for c in children), indexes[2].digest, layer]
            )
            assert await tx.manifest_parents_many(repository.id, []) == {}
        assert parents == {
            children[0].digest: sorted((i.digest for i in indexes), key=str),
            children[1].digest: [indexes[0].digest],
            indexes[2].digest: [indexes[0].digest],
        }
        await delete_repositories(store, repository, other)
        await delete_blobs(store, layer)

    async def test_delete_manifests_removes_them_with_their_tags_and_references(
        self, store: MetadataStore
    ) -> None:
        repository = await create_repository(store)
        other = await create_repository(store, "team/other")
        child = manifest_record(repository.id, b'{"child": 1}')
        index = manifest_record(repository.id, b'{"index": 1}', media_type=OCI_INDEX)
        doomed = manifest_record(repository.id, b'{"doomed": 1}')
        async with store.transaction() as tx:
            for record in (child, doomed):
                await tx.put_manifest(record, [])
                await tx.put_manifest(replace(record, repository_id=other.id), [])
            await tx.put_manifest(index, [child_ref(child.digest)])
            await tx.put_tag(repository.id, "multi", index.digest, T0)
            await tx.put_tag(repository.id, "doomed", doomed.digest, T0)
            await tx.put_tag(repository.id, "single", child.digest, T0)
            await tx.put_tag(other.id, "doomed", doomed.digest, T0)
        async with store.transaction() as tx:
            absent = digest_of("absent")
            deleted = await tx.delete_manifests(
                repository.id, [index.digest, doomed.digest, absent, index.digest]
            )
            assert deleted == 2
            assert await tx.delete_manifests(repository.id, [index.digest, doomed.digest]) == 0
            assert await tx.delete_manifests(repository.id, []) == 0
        async with store.read() as tx:
            assert await tx.missing_manifests(repository.id, [index.digest, doomed.digest]) == {
                index.digest,
                doomed.digest,
            }
            assert await tx.list_tags(repository.id) == ["single"]
            assert await tx.manifest_parents(repository.id, child.digest) == []
            assert await tx.get_manifest(repository.id, child.digest) == child
            # The same digest in another repository stays, with its tag.
            assert await tx.list_tags(other.id) == ["doomed"]
        await delete_repositories(store, repository, other)

    async def test_deleting_manifests_starts_the_grace_period_of_their_blobs(
        self, store: MetadataStore
    ) -> None:
        """More manifests than one statement's list of digests holds, each with a layer of
        its own, and one layer they share: every one of those blobs counts as used when
        they go, so that garbage collection spares it for its grace period."""
        repository = await create_repository(store)
        count = 1100
        records = [manifest_record(repository.id, b'{"m": %d}' % i) for i in range(count)]
        async with store.transaction() as tx:
            shared = await push_blob(tx, repository.id, "shared")
            own = [await push_blob(tx, repository.id, f"own {i}") for i in range(0, count, 100)]
            for i, record in enumerate(records):
                layers = [shared, own[i // 100]] if i % 100 == 0 else [shared]
                await tx.put_manifest(record, [blob_ref(layer) for layer in layers])
            untouched = await push_blob(tx, repository.id, "never referenced")
        deleted_at = T0 + timedelta(days=1)
        async with store.transaction() as tx:
            assert (
                await tx.delete_manifests(
                    repository.id, [r.digest for r in records], now=deleted_at
                )
                == count
            )
        async with store.read() as tx:
            before = await tx.gc_blob_candidates(deleted_at - timedelta(seconds=1))
            after = await tx.gc_blob_candidates(deleted_at + timedelta(seconds=1))
        assert [blob.digest for blob in before] == [untouched]
        assert {blob.digest for blob in after} == {shared, untouched, *own}
        await delete_repositories(store, repository)
        await delete_blobs(store, shared, untouched, *own)

    async def test_delete_manifest_starts_the_grace_period_of_its_blobs(
        self, store: MetadataStore
    ) -> None:
        repository = await create_repository(store)
        async with store.transaction() as tx:
            layer = await push_blob(tx, repository.id, "layer")
            record = manifest_record(repository.id, b'{"m": 1}')
            await tx.put_manifest(record, [blob_ref(layer)])
        deleted_at = T0 + timedelta(days=1)
        async with store.transaction() as tx:
            assert await tx.delete_manifest(repository.id, record.digest, now=deleted_at)
        async with store.read() as tx:
            assert await tx.gc_blob_candidates(deleted_at - timedelta(seconds=1)) == []
            [candidate] = await tx.gc_blob_candidates(deleted_at + timedelta(seconds=1))
        assert candidate.digest == layer
        await delete_repositories(store, repository)
        await delete_blobs(store, layer)

    async def test_list_referrers(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        other = await create_repository(store, "team/other")
        subject = digest_of("subject image")  # need not exist
        signature = manifest_record(
            repository.id, b'{"sig": 1}', artifact_type=SIGNATURE, subject=subject
        )
        sboms = [
            manifest_record(
                repository.id,
                b'{"sbom": %d}' % i,
                artifact_type=SBOM,
                subject=subject,
                pushed_at=T0 + timedelta(minutes=i + 1),
                annotations={"n": str(i)},
            )
            for i in range(2)
        ]
        about_other = manifest_record(
            repository.id, b'{"sig": 2}', artifact_type=SIGNATURE, subject=digest_of("other")
        )
        async with store.transaction() as tx:
            for record in [signature, *sboms, about_other]:
                await tx.put_manifest(record, [])
            await tx.put_manifest(replace(signature, repository_id=other.id), [])
        async with store.read() as tx:
            everything = await tx.list_referrers(repository.id, subject)
            only_sboms = await tx.list_referrers(repository.id, subject, SBOM)
            none = await tx.list_referrers(repository.id, subject, "application/none")
        assert [r.digest for r in everything] == [signature.digest] + [s.digest for s in sboms]
        assert [r.digest for r in only_sboms] == [s.digest for s in sboms]
        assert none == []
        for found, expected in zip(only_sboms, sboms, strict=True):
            assert found.payload in (b"", expected.payload)
            assert found == replace(expected, payload=found.payload)
        await delete_repositories(store, repository, other)

    async def test_touch_manifest_pull_only_moves_forward(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        record = manifest_record(repository.id, b'{"m": 1}')
        async with store.transaction() as tx:
            await tx.put_manifest(record, [])
        pulls = [T0 + timedelta(hours=2), T0 + timedelta(hours=1), T0 + timedelta(hours=3)]
        seen = []
        for pulled_at in pulls:
            async with store.transaction() as tx:
                await tx.touch_manifest_pull(repository.id, record.digest, pulled_at)
                await tx.touch_manifest_pull(repository.id, digest_of("absent"), pulled_at)
            async with store.read() as tx:
                stored = await tx.get_manifest(repository.id, record.digest)
            assert stored is not None
            seen.append(stored.last_pulled_at)
        assert seen == [pulls[0], pulls[0], pulls[2]]
        await delete_repositories(store, repository)

    # -- tags ---------------------------------------------------------------------------

    async def test_resolve_tag(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        record = manifest_record(repository.id, b'{"m": 1}', annotations={"a": "b"})
        async with store.transaction() as tx:
            await tx.put_manifest(record, [])
            await tx.put_tag(repository.id, "v1", record.digest, T0)
        async with store.read() as tx:
            assert await tx.resolve_tag(repository.id, "v1") == record
            assert await tx.resolve_tag(repository.id, "v2") is None
        await delete_repositories(store, repository)

    async def test_put_tag_moves_and_returns_the_old_target(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        first = manifest_record(repository.id, b'{"m": 1}')
        second = manifest_record(repository.id, b'{"m": 2}')
        t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
        async with store.transaction() as tx:
            await tx.put_manifest(first, [])
            await tx.put_manifest(second, [])
            assert await tx.put_tag(repository.id, "latest", first.digest, T0) is None
        async with store.transaction() as tx:
            assert await tx.put_tag(repository.id, "latest", second.digest, t1) == first.digest
        async with store.transaction() as tx:
            # Pointing a tag where it already points changes nothing.
            assert await tx.put_tag(repository.id, "latest", second.digest, t2) == second.digest
        async with store.read() as tx:
            tag = await tx.get_tag(repository.id, "latest")
            assert await tx.get_tag(repository.id, "missing") is None
            assert await tx.tags_of(repository.id, first.digest) == []
        assert tag is not None
        assert (tag.repository_id, tag.name, tag.digest) == (repository.id, "latest", second.digest)
        assert tag.updated_at == t1
        await delete_repositories(store, repository)

    async def test_put_tag_on_unknown_manifest_raises(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        other = await create_repository(store, "team/other")
        record = manifest_record(repository.id, b'{"m": 1}')
        elsewhere = manifest_record(other.id, b'{"elsewhere": 1}')
        async with store.transaction() as tx:
            await tx.put_manifest(record, [])
            await tx.put_manifest(elsewhere, [])
            await tx.put_tag(repository.id, "latest", record.digest, T0)
        for target in (digest_of("absent"), elsewhere.digest):
            with pytest.raises(ManifestUnknown):
                async with store.transaction() as tx:
                    await tx.put_tag(repository.id, "latest", target, T0)
            with pytest.raises(ManifestUnknown):
                async with store.transaction() as tx:
                    await tx.put_tag(repository.id, "new", target, T0)
        async with store.read() as tx:
            assert await tx.list_tags(repository.id) == ["latest"]
            assert await tx.resolve_tag(repository.id, "latest") == record
        await delete_repositories(store, repository, other)

    async def test_delete_tag(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        record = manifest_record(repository.id, b'{"m": 1}')
        async with store.transaction() as tx:
            await tx.put_manifest(record, [])
            await tx.put_tag(repository.id, "latest", record.digest, T0)
        async with store.transaction() as tx:
            assert await tx.delete_tag(repository.id, "latest") is True
            assert await tx.delete_tag(repository.id, "latest") is False
        async with store.read() as tx:
            assert await tx.get_manifest(repository.id, record.digest) == record
        await delete_repositories(store, repository)

    async def test_list_tags_in_binary_order_with_pagination(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        record = manifest_record(repository.id, b'{"m": 1}')
        names = ["b", "a", "B", "Z", "a-1", "a_1", "1.0"]
        async with store.transaction() as tx:
            await tx.put_manifest(record, [])
            for name in names:
                await tx.put_tag(repository.id, name, record.digest, T0)
        async with store.read() as tx:
            everything = await tx.list_tags(repository.id)
            first = await tx.list_tags(repository.id, limit=3)
            following = await tx.list_tags(repository.id, after=first[-1], limit=3)
            after_gap = await tx.list_tags(repository.id, after="C")
            past_end = await tx.list_tags(repository.id, after="b")
            of_digest = await tx.tags_of(repository.id, record.digest)
        assert everything == ["1.0", "B", "Z", "a", "a-1", "a_1", "b"]
        assert first == ["1.0", "B", "Z"]
        assert following == ["a", "a-1", "a_1"]
        assert after_gap == ["Z", "a", "a-1", "a_1", "b"]
        assert past_end == []
        assert of_digest == everything
        await delete_repositories(store, repository)

    async def test_tags_of(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        one = manifest_record(repository.id, b'{"m": 1}')
        two = manifest_record(repository.id, b'{"m": 2}')
        async with store.transaction() as tx:
            await tx.put_manifest(one, [])
            await tx.put_manifest(two, [])
            for name in ("v1", "stable", "V1"):
                await tx.put_tag(repository.id, name, one.digest, T0)
            await tx.put_tag(repository.id, "v2", two.digest, T0)
        async with store.read() as tx:
            assert await tx.tags_of(repository.id, one.digest) == ["V1", "stable", "v1"]
            assert await tx.tags_of(repository.id, two.digest) == ["v2"]
            assert await tx.tags_of(repository.id, digest_of("absent")) == []
        await delete_repositories(store, repository)

    async def test_put_tag_without_move_leaves_another_target(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        one = manifest_record(repository.id, b'{"m": 1}')
        two = manifest_record(repository.id, b'{"m": 2}')
        async with store.transaction() as tx:
            await tx.put_manifest(one, [])
            await tx.put_manifest(two, [])
            assert await tx.put_tag(repository.id, "v1", one.digest, T0, move=False) is None
        later = T0 + timedelta(hours=1)
        async with store.transaction() as tx:
            # The same target again is no move; another target is refused, not written.
            assert await tx.put_tag(repository.id, "v1", one.digest, later, move=False) == (
                one.digest
            )
            assert await tx.put_tag(repository.id, "v1", two.digest, later, move=False) == (
                one.digest
            )
        with pytest.raises(ManifestUnknown):
            async with store.transaction() as tx:
                await tx.put_tag(repository.id, "v2", digest_of("absent"), T0, move=False)
        async with store.read() as tx:
            tag = await tx.get_tag(repository.id, "v1")
            assert await tx.list_tags(repository.id) == ["v1"]
        assert tag is not None
        assert (tag.digest, tag.updated_at) == (one.digest, T0)
        await delete_repositories(store, repository)

    async def test_concurrent_creations_of_one_unmovable_tag_keep_the_first(
        self, store: MetadataStore
    ) -> None:
        repository = await create_repository(store)
        records = [manifest_record(repository.id, b'{"racer": %d}' % i) for i in range(10)]
        async with store.transaction() as tx:
            for record in records:
                await tx.put_manifest(record, [])

        async def race(record: ManifestRecord) -> Digest | None:
            async with store.transaction() as tx:
                # Everyone looks first and finds no tag, then everyone writes.
                await tx.get_tag(repository.id, "v1")
                await asyncio.sleep(0)
                return await tx.put_tag(repository.id, "v1", record.digest, T0, move=False)

        outcomes = await asyncio.gather(*(race(record) for record in records))
        async with store.read() as tx:
            tag = await tx.get_tag(repository.id, "v1")
        assert tag is not None
        winners = [r.digest for r, old in zip(records, outcomes, strict=True) if old is None]
        assert winners == [tag.digest]
        assert [old for old in outcomes if old is not None] == [tag.digest] * 9
        await delete_repositories(store, repository)

    # -- repository settings, resource tags and policies --------------------------------

    async def test_repositories_have_ecr_default_settings(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        async with store.read() as tx:
            stored = await tx.get_repository(REGISTRY, "team/app")
        assert stored == repository
        assert repository.image_tag_mutability is TagMutability.MUTABLE
        assert repository.mutability_exclusion_filters == ()
        assert repository.scan_on_push is False
        assert (repository.encryption_type, repository.kms_key) == ("AES256", None)
        await delete_repositories(store, repository)

    async def test_create_repository_keeps_its_settings(self, store: MetadataStore) -> None:
        key = "arn:aws:kms:us-east-1:123456789012:key/" + "0" * 36
        async with store.transaction() as tx:
            created = await tx.create_repository(
                REGISTRY,
                "team/app",
                T0,
                image_tag_mutability=TagMutability.IMMUTABLE_WITH_EXCLUSION,
                mutability_exclusion_filters=["latest", "dev-*"],
                scan_on_push=True,
                encryption_type="KMS",
                kms_key=key,
            )
        async with store.read() as tx:
            stored = await tx.get_repository(REGISTRY, "team/app")
            listed = await tx.list_repositories(REGISTRY)
        assert stored == created
        assert listed == [created]
        assert created.image_tag_mutability is TagMutability.IMMUTABLE_WITH_EXCLUSION
        assert created.mutability_exclusion_filters == ("latest", "dev-*")
        assert created.scan_on_push is True
        assert (created.encryption_type, created.kms_key) == ("KMS", key)
        await delete_repositories(store, created)

    async def test_update_repository_settings(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        other = await create_repository(store, "team/other")
        async with store.transaction() as tx:
            mutability = await tx.update_repository_settings(
                repository.id,
                image_tag_mutability=TagMutability.MUTABLE_WITH_EXCLUSION,
                mutability_exclusion_filters=("release-*",),
            )
            scanning = await tx.update_repository_settings(repository.id, scan_on_push=True)
            unchanged = await tx.update_repository_settings(repository.id)
            absent = await tx.update_repository_settings(
                max(repository.id, other.id) + 1000, scan_on_push=True
            )
        expected = replace(
            repository,
            image_tag_mutability=TagMutability.MUTABLE_WITH_EXCLUSION,
            mutability_exclusion_filters=("release-*",),
            scan_on_push=True,
        )
        assert mutability == replace(expected, scan_on_push=False)
        assert scanning == unchanged == expected
        assert absent is None
        async with store.transaction() as tx:
            back = await tx.update_repository_settings(
                repository.id,
                image_tag_mutability=TagMutability.IMMUTABLE,
                mutability_exclusion_filters=(),
            )
        async with store.read() as tx:
            assert await tx.get_repository(REGISTRY, "team/app") == back
            assert await tx.get_repository(REGISTRY, "team/other") == other
        assert back == replace(
            expected, image_tag_mutability=TagMutability.IMMUTABLE, mutability_exclusion_filters=()
        )
        await delete_repositories(store, repository, other)

    async def test_repository_tags(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        other = await create_repository(store, "team/other")
        async with store.transaction() as tx:
            assert await tx.put_repository_tags(repository.id, {"b": "1", "a": "", "B": "x"}) == 3
            assert await tx.put_repository_tags(other.id, {"a": "elsewhere"}) == 1
        async with store.transaction() as tx:
            # Existing keys are overwritten; the count is of the tags afterwards.
            assert await tx.put_repository_tags(repository.id, {"a": "new", "c": "3"}) == 4
            assert await tx.put_repository_tags(repository.id, {}) == 4
        async with store.read() as tx:
            assert await tx.list_repository_tags(repository.id) == {
                "B": "x",
                "a": "new",
                "b": "1",
                "c": "3",
            }
            assert list(await tx.list_repository_tags(repository.id)) == ["B", "a", "b", "c"]
            assert await tx.get_repository_tag(repository.id, "a") == "new"
            assert await tx.get_repository_tag(repository.id, "A") is None
            assert await tx.get_repository_tag(other.id, "a") == "elsewhere"
        async with store.transaction() as tx:
            assert await tx.delete_repository_tags(repository.id, ["a", "absent", "a"]) == 1
            assert await tx.delete_repository_tags(repository.id, []) == 0
        async with store.read() as tx:
            assert await tx.list_repository_tags(repository.id) == {"B": "x", "b": "1", "c": "3"}
            assert await tx.list_repository_tags(other.id) == {"a": "elsewhere"}
        await delete_repositories(store, repository, other)

    async def test_resource_tag_writers_take_turns(self, store: MetadataStore) -> None:
        repository = await create_repository(store)

        async def tag(i: int) -> int:
            async with store.transaction() as tx:
                count = await tx.put_repository_tags(repository.id, {f"k{i}-a": "", f"k{i}-b": ""})
                await asyncio.sleep(0)  # let the others try while this one is open
                return count

        counts = await asyncio.gather(*(tag(i) for i in range(8)))
        # Each writer counted every tag committed before it: no two saw the same total.
        assert sorted(counts) == list(range(2, 17, 2))
        await delete_repositories(store, repository)

    async def test_repository_policy(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        other = await create_repository(store, "team/other")
        text = '{ "Version" : "2012-10-17",\n  "Statement": [] }\n'
        async with store.transaction() as tx:
            assert await tx.get_repository_policy(repository.id) is None
            assert await tx.delete_repository_policy(repository.id) is None
            await tx.put_repository_policy(repository.id, text, T0)
        async with store.read() as tx:
            assert await tx.get_repository_policy(repository.id) == text
            assert await tx.get_repository_policy(other.id) is None
        async with store.transaction() as tx:
            await tx.put_repository_policy(repository.id, "replaced", T0 + timedelta(hours=1))
        async with store.transaction() as tx:
            assert await tx.delete_repository_policy(repository.id) == "replaced"
            assert await tx.delete_repository_policy(repository.id) is None
            assert await tx.get_repository_policy(repository.id) is None
        await delete_repositories(store, repository, other)

    async def test_delete_repository_deletes_its_tags_and_policy(
        self, store: MetadataStore
    ) -> None:
        doomed = await create_repository(store, "team/doomed")
        async with store.transaction() as tx:
            await tx.put_repository_tags(doomed.id, {"team": "a"})
            await tx.put_repository_policy(doomed.id, "{}", T0)
            await tx.put_registry_policy(REGISTRY, "{}", T0)
        async with store.transaction() as tx:
            await tx.delete_repository(doomed.id)
        reborn = await create_repository(store, "team/doomed")
        async with store.read() as tx:
            assert await tx.list_repository_tags(doomed.id) == {}
            assert await tx.get_repository_policy(doomed.id) is None
            # A new repository of the same name starts bare; the registry's policy stays.
            assert await tx.list_repository_tags(reborn.id) == {}
            assert await tx.get_repository_policy(reborn.id) is None
            assert await tx.get_registry_policy(REGISTRY) == "{}"
        async with store.transaction() as tx:
            assert await tx.delete_registry_policy(REGISTRY) == "{}"
        await delete_repositories(store, reborn)

    # -- registry policy and account settings -------------------------------------------

    async def test_registry_policy(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            assert await tx.get_registry_policy(REGISTRY) is None
            assert await tx.delete_registry_policy(REGISTRY) is None
            await tx.put_registry_policy(REGISTRY, "first", T0)
            await tx.put_registry_policy(OTHER_REGISTRY, "other", T0)
        async with store.transaction() as tx:
            await tx.put_registry_policy(REGISTRY, "second", T0 + timedelta(hours=1))
        async with store.read() as tx:
            assert await tx.get_registry_policy(REGISTRY) == "second"
            assert await tx.get_registry_policy(OTHER_REGISTRY) == "other"
        async with store.transaction() as tx:
            assert await tx.delete_registry_policy(REGISTRY) == "second"
            assert await tx.delete_registry_policy(REGISTRY) is None
            assert await tx.delete_registry_policy(OTHER_REGISTRY) == "other"

    async def test_account_settings(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            assert await tx.get_account_setting(REGISTRY, "BLOB_MOUNTING") is None
            assert await tx.list_account_settings(REGISTRY) == {}
            await tx.put_account_setting(REGISTRY, "REGISTRY_POLICY_SCOPE", "V1")
            await tx.put_account_setting(REGISTRY, "BLOB_MOUNTING", "ENABLED")
            await tx.put_account_setting(OTHER_REGISTRY, "BLOB_MOUNTING", "DISABLED")
        async with store.transaction() as tx:
            await tx.put_account_setting(REGISTRY, "BLOB_MOUNTING", "DISABLED")
        async with store.read() as tx:
            assert await tx.get_account_setting(REGISTRY, "BLOB_MOUNTING") == "DISABLED"
            settings = await tx.list_account_settings(REGISTRY)
            assert await tx.list_account_settings(OTHER_REGISTRY) == {"BLOB_MOUNTING": "DISABLED"}
        assert list(settings.items()) == [
            ("BLOB_MOUNTING", "DISABLED"),
            ("REGISTRY_POLICY_SCOPE", "V1"),
        ]
        async with store.transaction() as tx:
            assert await tx.delete_account_setting(REGISTRY, "BLOB_MOUNTING") is True
            assert await tx.delete_account_setting(REGISTRY, "BLOB_MOUNTING") is False
            assert await tx.get_account_setting(REGISTRY, "BLOB_MOUNTING") is None
            assert await tx.delete_account_setting(REGISTRY, "REGISTRY_POLICY_SCOPE") is True
            assert await tx.delete_account_setting(OTHER_REGISTRY, "BLOB_MOUNTING") is True

    async def test_read_policies(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        bare = await create_repository(store, "team/bare")
        elsewhere = await create_repository(store, "team/app", OTHER_REGISTRY)
        async with store.read() as tx:
            assert await tx.read_policies(REGISTRY, "team/app") == PolicyTexts(None, None, None)
            assert await tx.read_policies(REGISTRY, None) == PolicyTexts(None, None, None)
        async with store.transaction() as tx:
            await tx.put_repository_policy(repository.id, "repository", T0)
            await tx.put_repository_policy(elsewhere.id, "elsewhere", T0)
            await tx.put_registry_policy(REGISTRY, "registry", T0)
            await tx.put_account_setting(REGISTRY, "REGISTRY_POLICY_SCOPE", "V1")
            await tx.put_account_setting(REGISTRY, "BLOB_MOUNTING", "DISABLED")
            await tx.put_repository_tags(repository.id, {"team": "web", "cost": "42"})
            await tx.put_repository_tags(elsewhere.id, {"team": "other"})
        async with store.read() as tx:
            assert await tx.read_policies(REGISTRY, "team/app") == PolicyTexts(
                "repository", "registry", "V1", {"team": "web", "cost": "42"}
            )
            assert await tx.read_policies(REGISTRY, "team/bare") == PolicyTexts(
                None, "registry", "V1"
            )
            assert await tx.read_policies(REGISTRY, "team/absent") == PolicyTexts(
                None, "registry", "V1"
            )
            assert await tx.read_policies(REGISTRY, None) == PolicyTexts(None, "registry", "V1")
            assert await tx.read_policies(OTHER_REGISTRY, "team/app") == PolicyTexts(
                "elsewhere", None, None, {"team": "other"}
            )
            many = await tx.read_policies_many(REGISTRY, ["team/absent", "team/app", "team/bare"])
            assert many == {
                "team/absent": PolicyTexts(None, "registry", "V1"),
                "team/app": PolicyTexts(
                    "repository", "registry", "V1", {"team": "web", "cost": "42"}
                ),
                "team/bare": PolicyTexts(None, "registry", "V1"),
            }
            assert await tx.read_policies_many(OTHER_REGISTRY, ["team/app"]) == {
                "team/app": PolicyTexts("elsewhere", None, None, {"team": "other"})
            }
            assert await tx.read_policies_many(REGISTRY, []) == {}
        async with store.transaction() as tx:
            await tx.delete_registry_policy(REGISTRY)
            await tx.delete_account_setting(REGISTRY, "REGISTRY_POLICY_SCOPE")
            await tx.delete_account_setting(REGISTRY, "BLOB_MOUNTING")
        await delete_repositories(store, repository, bare, elsewhere)

    # -- time ---------------------------------------------------------------------------

    async def test_timestamps_come_back_aware_and_in_utc(self, store: MetadataStore) -> None:
        paris = timezone(timedelta(hours=2))
        local = datetime(2024, 5, 1, 14, 0, 0, 654321, tzinfo=paris)  # 12:00:00.654321Z
        async with store.transaction() as tx:
            repository = await tx.create_repository(REGISTRY, "team/app", local)
            blob = digest_of("blob")
            await tx.put_blob(blob, 4, local)
            record = manifest_record(repository.id, b'{"m": 1}', pushed_at=local)
            await tx.put_manifest(record, [])
            await tx.touch_manifest_pull(repository.id, record.digest, local)
            await tx.put_tag(repository.id, "latest", record.digest, local)
            await tx.create_upload(UploadSession("upload-1", repository.id, 0, local, local))
        async with store.read() as tx:
            stored_repository = await tx.get_repository(REGISTRY, "team/app")
            stored_blob = await tx.get_blob(blob)
            stored_manifest = await tx.get_manifest(repository.id, record.digest)
            tag = await tx.get_tag(repository.id, "latest")
            upload = await tx.get_upload("upload-1")
        assert stored_repository is not None
        assert stored_blob is not None
        assert stored_manifest is not None
        assert tag is not None
        assert upload is not None
        values = [
            repository.created_at,
            stored_repository.created_at,
            stored_blob.created_at,
            stored_manifest.pushed_at,
            stored_manifest.last_pulled_at,
            tag.updated_at,
            upload.started_at,
            upload.updated_at,
        ]
        for value in values:
            assert_utc(value)
            assert value == local
        await delete_repositories(store, repository)
        await delete_blobs(store, blob)

    # -- upload sessions ----------------------------------------------------------------

    async def test_upload_session_lifecycle(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        session = UploadSession("5c1a-upload", repository.id, 0, T0, T0)
        async with store.transaction() as tx:
            await tx.create_upload(session)
        later = T0 + timedelta(seconds=30)
        async with store.transaction() as tx:
            assert await tx.get_upload(session.id) == session
            await tx.update_upload(session.id, 1024, later)
        async with store.read() as tx:
            assert await tx.get_upload(session.id) == UploadSession(
                session.id, repository.id, 1024, T0, later
            )
            assert await tx.get_upload("absent") is None
        with pytest.raises(UploadUnknown):
            async with store.transaction() as tx:
                await tx.update_upload("absent", 1, later)
        async with store.transaction() as tx:
            await tx.delete_upload(session.id)
            await tx.delete_upload(session.id)
        async with store.read() as tx:
            assert await tx.get_upload(session.id) is None
        await delete_repositories(store, repository)

    async def test_list_uploads_updated_before(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        sessions = [
            UploadSession(f"upload-{i}", repository.id, i, T0, T0 + timedelta(hours=i))
            for i in (2, 0, 1)
        ]
        async with store.transaction() as tx:
            for session in sessions:
                await tx.create_upload(session)
        # The same instant as T0 + 90 min, in another zone: the comparison is by instant.
        cutoff = (T0 + timedelta(minutes=90)).astimezone(timezone(timedelta(hours=-5)))
        async with store.read() as tx:
            stale = await tx.list_uploads_updated_before(cutoff)
            at_start = await tx.list_uploads_updated_before(T0)
        assert [s.id for s in stale] == ["upload-0", "upload-1"]
        assert at_start == []
        await delete_repositories(store, repository)

    # -- garbage collection (docs/gc.md) ------------------------------------------------

    async def test_gc_candidates_are_unreferenced_and_unused_since_the_cutoff(
        self, store: MetadataStore
    ) -> None:
        here = await create_repository(store, "team/here")
        there = await create_repository(store, "team/there")
        cutoff = T0 + timedelta(hours=1)
        async with store.transaction() as tx:
            unused = sorted(
                [await push_blob(tx, here.id, f"unused-{i}") for i in range(5)], key=str
            )
            referenced_elsewhere = await push_blob(tx, here.id, "referenced elsewhere")
            await tx.link_blob(there.id, referenced_elsewhere, T0)
            await tx.put_manifest(
                manifest_record(there.id, b'{"m": "there"}'), [blob_ref(referenced_elsewhere)]
            )
            recent = digest_of("recent")
            await tx.put_blob(recent, 6, cutoff)
            # Linking again is a use: it moves the blob out of the grace period's reach.
            relinked = await push_blob(tx, here.id, "relinked")
            await tx.link_blob(there.id, relinked, cutoff + timedelta(seconds=1))
            # So is recording it again (an upload of the same bytes).
            reput = await push_blob(tx, here.id, "reput")
            await tx.put_blob(reput, 5, cutoff)
        async with store.read() as tx:
            everything = await tx.gc_blob_candidates(cutoff)
            first = await tx.gc_blob_candidates(cutoff, limit=2)
            rest = await tx.gc_blob_candidates(cutoff, after=first[-1].digest, limit=10)
            none_yet = await tx.gc_blob_candidates(T0)
        assert [b.digest for b in everything] == unused
        assert [b.digest for b in first + rest] == unused
        assert everything[0].size == len("unused-0")
        assert none_yet == []
        await delete_repositories(store, here, there)
        await delete_blobs(store, *unused, referenced_elsewhere, recent, relinked, reput)

    async def test_delete_unreferenced_blobs(self, store: MetadataStore) -> None:
        here = await create_repository(store, "team/here")
        there = await create_repository(store, "team/there")
        cutoff = T0 + timedelta(hours=1)
        async with store.transaction() as tx:
            garbage = await push_blob(tx, here.id, "garbage")
            await tx.link_blob(there.id, garbage, T0)
            referenced = await push_blob(tx, here.id, "referenced")
            used = await push_blob(tx, here.id, "used")
            # Candidates a moment ago; since then referenced, and used.
            await tx.put_manifest(manifest_record(there.id, b"{}"), [blob_ref(referenced)])
            await tx.link_blob(there.id, used, cutoff)
        unknown = digest_of("never recorded")
        async with store.transaction() as tx:
            deleted = await tx.delete_unreferenced_blobs(
                [garbage, referenced, used, unknown], cutoff
            )
        assert [(b.digest, b.size) for b in deleted] == [(garbage, len("garbage"))]
        async with store.read() as tx:
            assert await tx.get_blob(garbage) is None
            assert await tx.repositories_with_blob(REGISTRY, garbage) == []
            assert await tx.get_blob(referenced) is not None
            assert await tx.get_blob(used) is not None
        async with store.transaction() as tx:
            assert await tx.delete_unreferenced_blobs([garbage], cutoff) == []
        await delete_repositories(store, here, there)
        await delete_blobs(store, referenced, used)

    async def test_gc_referrer_candidates_are_orphaned_untagged_and_old(
        self, store: MetadataStore
    ) -> None:
        here = await create_repository(store, "team/here")
        there = await create_repository(store, "team/there")
        cutoff = T0 + timedelta(hours=1)
        gone = digest_of("deleted image")
        image = manifest_record(here.id, b'{"image": 1}')
        orphans = [
            manifest_record(here.id, b'{"sig": %d}' % i, artifact_type=SIGNATURE, subject=gone)
            for i in range(3)
        ]
        present = manifest_record(
            here.id, b'{"sig": "p"}', artifact_type=SIGNATURE, subject=image.digest
        )
        tagged = manifest_record(here.id, b'{"sig": "t"}', artifact_type=SIGNATURE, subject=gone)
        young = manifest_record(
            here.id, b'{"sig": "y"}', artifact_type=SIGNATURE, subject=gone, pushed_at=cutoff
        )
        # Its subject's digest is a manifest of "here" only: in "there" it is orphaned.
        elsewhere = replace(present, repository_id=there.id)
        async with store.transaction() as tx:
            for record in [image, *orphans, present, tagged, young, elsewhere]:
                await tx.put_manifest(record, [])
            await tx.put_tag(here.id, "signed", tagged.digest, T0)
        expected = sorted([(r.repository_id, str(r.digest)) for r in [*orphans, elsewhere]])
        async with store.read() as tx:
            everything = await tx.gc_referrer_candidates(cutoff)
            first = await tx.gc_referrer_candidates(cutoff, limit=2)
            last = first[-1]
            rest = await tx.gc_referrer_candidates(
                cutoff, after=(last.repository_id, last.digest), limit=10
            )
            none_yet = await tx.gc_referrer_candidates(T0)
        assert [(r.repository_id, str(r.digest)) for r in everything] == expected
        assert [(r.repository_id, str(r.digest)) for r in first + rest] == expected
        assert everything[0].subject == gone
        assert everything[-1].subject == image.digest
        assert everything[0].payload == b""
        assert none_yet == []
        await delete_repositories(store, here, there)

    async def test_delete_orphaned_referrers(self, store: MetadataStore) -> None:
        """Deleted as images are (tags and references go, the blobs' grace period restarts),
        after a re-check: a tag or a subject pushed since the candidates were read saves a
        referrer. The referrers of a deleted referrer are orphaned in turn."""
        repository = await create_repository(store)
        cutoff = T0 + timedelta(hours=1)
        deleted_at = T0 + timedelta(hours=2)
        gone = digest_of("deleted image")
        async with store.transaction() as tx:
            layer = await push_blob(tx, repository.id, "signature layer")
        orphan, later_tagged, subject_arrives, young = (
            manifest_record(
                repository.id,
                b'{"sig": "%s"}' % name,
                artifact_type=SIGNATURE,
                subject=digest_of(name.decode()) if name == b"arrives" else gone,
                pushed_at=cutoff if name == b"young" else T0,
            )
            for name in (b"orphan", b"tagged", b"arrives", b"young")
        )
        of_orphan = manifest_record(
            repository.id, b'{"sig": "of orphan"}', artifact_type=SIGNATURE, subject=orphan.digest
        )
        async with store.transaction() as tx:
            await tx.put_manifest(orphan, [blob_ref(layer)])
            for record in (later_tagged, subject_arrives, young, of_orphan):
                await tx.put_manifest(record, [])
        async with store.read() as tx:
            candidates = await tx.gc_referrer_candidates(cutoff)
        assert {r.digest for r in candidates} == {
            orphan.digest,
            later_tagged.digest,
            subject_arrives.digest,
        }
        # Meanwhile a tag, and the subject of another, are pushed.
        arrived = manifest_record(repository.id, b"arrives")
        assert arrived.digest == subject_arrives.subject
        async with store.transaction() as tx:
            await tx.put_manifest(arrived, [])
            await tx.put_tag(repository.id, "keep", later_tagged.digest, T0)
        unknown = digest_of("never pushed")
        async with store.transaction() as tx:
            deleted = await tx.delete_orphaned_referrers(
                repository.id,
                [r.digest for r in candidates] + [young.digest, unknown],
                cutoff,
                now=deleted_at,
            )
        assert deleted == [orphan.digest]
        async with store.read() as tx:
            assert await tx.get_manifest(repository.id, orphan.digest) is None
            for kept in (later_tagged, subject_arrives, young, of_orphan):
                assert await tx.get_manifest(repository.id, kept.digest) is not None
            # Its layer's grace period starts again at the deletion.
            assert await tx.gc_blob_candidates(deleted_at - timedelta(seconds=1)) == []
            assert [
                b.digest for b in await tx.gc_blob_candidates(deleted_at + timedelta(seconds=1))
            ] == [layer]
            # The next pass finds the referrer of the referrer.
            assert [r.digest for r in await tx.gc_referrer_candidates(cutoff)] == [of_orphan.digest]
        async with store.transaction() as tx:
            assert await tx.delete_orphaned_referrers(
                repository.id, [of_orphan.digest], cutoff, now=deleted_at
            ) == [of_orphan.digest]
            assert await tx.delete_orphaned_referrers(repository.id, [], cutoff) == []
        await delete_repositories(store, repository)
        await delete_blobs(store, layer)

    async def test_gc_of_a_referrer_waits_for_a_tag_being_pushed(
        self, store: MetadataStore
    ) -> None:
        repository = await create_repository(store)
        referrer = manifest_record(
            repository.id, b'{"sig": 1}', artifact_type=SIGNATURE, subject=digest_of("gone")
        )
        async with store.transaction() as tx:
            await tx.put_manifest(referrer, [])
        tagging = asyncio.Event()

        async def tag() -> None:
            async with store.transaction() as tx:
                await tx.put_tag(repository.id, "keep", referrer.digest, T0)
                tagging.set()
                await asyncio.sleep(0.2)  # collection runs now, and must wait

        async def collect() -> list[Digest]:
            await tagging.wait()
            async with store.transaction() as tx:
                return await tx.delete_orphaned_referrers(
                    repository.id, [referrer.digest], T0 + timedelta(days=1)
                )

        _, deleted = await asyncio.gather(tag(), collect())
        assert deleted == []
        async with store.read() as tx:
            assert await tx.tags_of(repository.id, referrer.digest) == ["keep"]
        await delete_repositories(store, repository)

    async def test_lock_blob_files_names_the_unrecorded(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        async with store.transaction() as tx:
            recorded = await push_blob(tx, repository.id, "recorded")
        orphans = {digest_of(f"orphan-{i}") for i in range(3)}
        async with store.transaction() as tx:
            assert await tx.lock_blob_files([recorded, *orphans]) == orphans
            assert await tx.lock_blob_files([]) == set()
        await delete_repositories(store, repository)
        await delete_blobs(store, recorded)

    async def test_lock_blob_files_makes_writers_take_turns(self, store: MetadataStore) -> None:
        """Collection deletes bytes and an upload records them under this lock."""
        digest = digest_of("contended")
        order: list[str] = []
        held = asyncio.Event()

        async def first() -> None:
            async with store.transaction() as tx:
                await tx.lock_blob_files([digest])
                held.set()
                await asyncio.sleep(0.2)
                order.append("first done")

        async def second() -> None:
            await held.wait()
            async with store.transaction() as tx:
                await tx.lock_blob_files([digest])
                order.append("second locked")

        await asyncio.gather(first(), second())
        assert order == ["first done", "second locked"]

    async def test_lock_manifest_waits_for_a_tag_being_pushed(self, store: MetadataStore) -> None:
        """A lifecycle run locks an image, then compares its tags with those it evaluated:
        a tag pushed meanwhile must be among them."""
        repository = await create_repository(store)
        record = manifest_record(repository.id, b"an image")
        async with store.transaction() as tx:
            await tx.put_manifest(record, [])
        tagging = asyncio.Event()

        async def tag() -> None:
            async with store.transaction() as tx:
                await tx.put_tag(repository.id, "prod", record.digest, T0)
                tagging.set()
                await asyncio.sleep(0.2)  # the lock is asked for now, and must wait

        async def lock() -> list[str]:
            await tagging.wait()
            async with store.transaction() as tx:
                assert await tx.lock_manifest(repository.id, record.digest)
                return await tx.tags_of(repository.id, record.digest)

        _, tags = await asyncio.gather(tag(), lock())
        assert tags == ["prod"]
        async with store.transaction() as tx:
            assert not await tx.lock_manifest(repository.id, digest_of("absent"))
        await delete_repositories(store, repository)

    async def test_a_tag_push_waits_for_a_manifest_lock(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        record = manifest_record(repository.id, b"an image")
        async with store.transaction() as tx:
            await tx.put_manifest(record, [])
        order: list[str] = []
        locked = asyncio.Event()

        async def lock() -> None:
            async with store.transaction() as tx:
                assert await tx.lock_manifest(repository.id, record.digest)
                locked.set()
                await asyncio.sleep(0.2)
                order.append("lock released")

        async def tag() -> None:
            await locked.wait()
            async with store.transaction() as tx:
                await tx.put_tag(repository.id, "prod", record.digest, T0)
            order.append("tagged")

        await asyncio.gather(lock(), tag())
        assert order == ["lock released", "tagged"]
        await delete_repositories(store, repository)

    async def test_lock_manifests_wait_for_a_tag_being_pushed(self, store: MetadataStore) -> None:
        """A lifecycle run locks a batch of images, then compares their tags with those it
        evaluated: a tag pushed meanwhile must be among them."""
        repository = await create_repository(store)
        records = [manifest_record(repository.id, b"image %d" % i) for i in range(3)]
        async with store.transaction() as tx:
            for record in records:
                await tx.put_manifest(record, [])
        tagging = asyncio.Event()

        async def tag() -> None:
            async with store.transaction() as tx:
                await tx.put_tag(repository.id, "prod", records[1].digest, T0)
                tagging.set()
                await asyncio.sleep(0.2)  # the locks are asked for now, and must wait

        async def lock() -> dict[Digest, list[str]]:
            await tagging.wait()
            async with store.transaction() as tx:
                digests = [r.digest for r in records]
                absent = digest_of("absent")
                assert await tx.lock_manifests(repository.id, [*digests, absent]) == set(digests)
                return await tx.tags_by_manifest(repository.id, digests)

        _, tags = await asyncio.gather(tag(), lock())
        assert tags == {records[1].digest: ["prod"]}
        async with store.transaction() as tx:
            assert await tx.lock_manifests(repository.id, [digest_of("absent")]) == set()
            assert await tx.lock_manifests(repository.id, []) == set()
        await delete_repositories(store, repository)

    async def test_a_tag_push_waits_for_manifest_locks(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        records = [manifest_record(repository.id, b"image %d" % i) for i in range(3)]
        async with store.transaction() as tx:
            for record in records:
                await tx.put_manifest(record, [])
        order: list[str] = []
        locked = asyncio.Event()

        async def lock() -> None:
            async with store.transaction() as tx:
                await tx.lock_manifests(repository.id, [r.digest for r in records])
                locked.set()
                await asyncio.sleep(0.2)
                order.append("locks released")

        async def tag() -> None:
            await locked.wait()
            async with store.transaction() as tx:
                await tx.put_tag(repository.id, "prod", records[2].digest, T0)
            order.append("tagged")

        await asyncio.gather(lock(), tag())
        assert order == ["locks released", "tagged"]
        await delete_repositories(store, repository)

    async def test_overlapping_manifest_locks_take_turns(self, store: MetadataStore) -> None:
        """Two lifecycle runs locking overlapping batches, listed in opposite orders: the
        second waits for the first (neither deadlocks), then finds what it left."""
        repository = await create_repository(store)
        records = [manifest_record(repository.id, b"image %d" % i) for i in range(4)]
        async with store.transaction() as tx:
            for record in records:
                await tx.put_manifest(record, [])
        order: list[str] = []
        locked = asyncio.Event()

        async def first() -> None:
            async with store.transaction() as tx:
                assert len(await tx.lock_manifests(repository.id, [r.digest for r in records])) == 4
                locked.set()
                await asyncio.sleep(0.2)
                await tx.delete_manifests(repository.id, [records[0].digest])
                order.append("first done")

        async def second() -> set[Digest]:
            await locked.wait()
            async with store.transaction() as tx:
                found = await tx.lock_manifests(repository.id, [r.digest for r in records[::-1]])
                order.append("second locked")
            return found

        _, found = await asyncio.gather(first(), second())
        assert order == ["first done", "second locked"]
        assert found == {r.digest for r in records[1:]}
        await delete_repositories(store, repository)

    async def test_gc_waits_for_a_manifest_put_that_checked_its_blobs(
        self, store: MetadataStore
    ) -> None:
        repository = await create_repository(store)
        async with store.transaction() as tx:
            layer = await push_blob(tx, repository.id, "layer")
        checked = asyncio.Event()

        async def put_manifest() -> None:
            async with store.transaction() as tx:
                assert await tx.missing_blobs(repository.id, [layer]) == set()
                checked.set()
                await asyncio.sleep(0.2)  # collection runs now, and must wait
                await tx.put_manifest(manifest_record(repository.id, b"{}"), [blob_ref(layer)])

        async def collect() -> list[Digest]:
            await checked.wait()
            async with store.transaction() as tx:
                deleted = await tx.delete_unreferenced_blobs([layer], T0 + timedelta(days=1))
            return [blob.digest for blob in deleted]

        _, deleted = await asyncio.gather(put_manifest(), collect())
        assert deleted == []
        async with store.read() as tx:
            assert await tx.get_linked_blob(repository.id, layer) is not None
        await delete_repositories(store, repository)
        await delete_blobs(store, layer)

    async def test_a_manifest_put_after_gc_finds_the_blob_gone(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        async with store.transaction() as tx:
            layer = await push_blob(tx, repository.id, "layer")
        deleting = asyncio.Event()

        async def collect() -> None:
            async with store.transaction() as tx:
                assert await tx.delete_unreferenced_blobs([layer], T0 + timedelta(days=1))
                deleting.set()
                await asyncio.sleep(0.2)  # the PUT's check runs now, and must wait

        async def check() -> set[Digest]:
            await deleting.wait()
            async with store.transaction() as tx:
                return await tx.missing_blobs(repository.id, [layer])

        _, missing = await asyncio.gather(collect(), check())
        assert missing == {layer}
        await delete_repositories(store, repository)

    async def test_delete_stale_uploads(self, store: MetadataStore) -> None:
        repository = await create_repository(store)
        sessions = [
            UploadSession(f"upload-{i}", repository.id, 10 * i, T0, T0 + timedelta(hours=i))
            for i in (3, 0, 2, 1)
        ]
        async with store.transaction() as tx:
            for session in sessions:
                await tx.create_upload(session)
        cutoff = T0 + timedelta(minutes=150)
        async with store.transaction() as tx:
            first = await tx.delete_stale_uploads(cutoff, limit=2)
        async with store.transaction() as tx:
            second = await tx.delete_stale_uploads(cutoff, limit=2)
            assert await tx.delete_stale_uploads(cutoff, limit=2) == []
        assert [s.id for s in first] == ["upload-0", "upload-1"]
        assert [(s.id, s.size) for s in second] == [("upload-2", 20)]
        async with store.read() as tx:
            assert await tx.get_upload("upload-3") is not None
            assert await tx.get_upload("upload-0") is None
        await delete_repositories(store, repository)

    # -- transactions -------------------------------------------------------------------

    async def test_exception_rolls_the_transaction_back(self, store: MetadataStore) -> None:
        blob = digest_of("layer")

        async def push_then_fail() -> None:
            async with store.transaction() as tx:
                repository = await tx.create_repository(REGISTRY, "team/app", T0)
                await push_blob(tx, repository.id, "layer")
                record = manifest_record(repository.id, b'{"m": 1}')
                await tx.put_manifest(record, [blob_ref(blob)])
                await tx.put_tag(repository.id, "latest", record.digest, T0)
                await tx.create_upload(UploadSession("upload-1", repository.id, 0, T0, T0))
                raise _DeliberateError

        with pytest.raises(_DeliberateError):
            await push_then_fail()
        async with store.read() as tx:
            assert await tx.get_repository(REGISTRY, "team/app") is None
            assert await tx.get_blob(blob) is None
            assert await tx.get_upload("upload-1") is None
        # The store's teardown check confirms that no row at all was left.

    async def test_reads_do_not_wait_for_an_open_write(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            repository = await tx.create_repository(REGISTRY, "team/app", T0)
            async with asyncio.timeout(5), store.read() as reader:
                # Not committed yet, so not visible.
                assert await reader.get_repository(REGISTRY, "team/app") is None
        async with store.read() as reader:
            assert await reader.get_repository(REGISTRY, "team/app") == repository
        await delete_repositories(store, repository)

    async def test_twenty_concurrent_write_transactions_all_succeed(
        self, store: MetadataStore
    ) -> None:
        shared = digest_of("shared base layer")

        async def push(i: int) -> Repository:
            async with store.transaction() as tx:
                # Read first, then write: the pattern that deadlocks naive SQLite writers.
                assert await tx.get_repository(REGISTRY, f"team/app-{i:02d}") is None
                repository = await tx.create_repository(REGISTRY, f"team/app-{i:02d}", T0)
                await tx.put_blob(shared, 17, T0)
                await tx.link_blob(repository.id, shared, T0)
                await asyncio.sleep(0)  # let the others interleave
                record = manifest_record(repository.id, b'{"app": %d}' % i)
                assert await tx.put_manifest(record, [blob_ref(shared)])
                await tx.put_tag(repository.id, "latest", record.digest, T0)
                return repository

        repositories = await asyncio.gather(*(push(i) for i in range(20)))
        async with store.read() as tx:
            listed = await tx.list_repositories(REGISTRY)
            for i, repository in enumerate(repositories):
                latest = await tx.resolve_tag(repository.id, "latest")
                assert latest is not None
                assert latest.payload == b'{"app": %d}' % i
        assert [r.name for r in listed] == [f"team/app-{i:02d}" for i in range(20)]
        await delete_repositories(store, *repositories)
        await delete_blobs(store, shared)

    async def test_concurrent_puts_of_one_manifest_store_it_once(
        self, store: MetadataStore
    ) -> None:
        repository = await create_repository(store)
        record = manifest_record(repository.id, b'{"m": "raced"}')

        async def put() -> bool:
            async with store.transaction() as tx:
                # Everyone looks first and finds nothing, then everyone inserts.
                await tx.get_manifest(repository.id, record.digest)
                await asyncio.sleep(0)
                return await tx.put_manifest(record, [])

        outcomes = await asyncio.gather(*(put() for _ in range(20)))
        assert sorted(outcomes) == [False] * 19 + [True]
        await delete_repositories(store, repository)
