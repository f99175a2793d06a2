"""The LifecycleRecords contract (``moorage.ports.lifecycle``), run against every adapter.

Lifecycle records live in the metadata transaction: an adapter runs this suite as it runs
``metadata_suite``, subclassing :class:`LifecycleRecordsSuite` with a ``bare_store`` fixture
(an open, empty store) and :meth:`LifecycleRecordsSuite.leftovers`. Every test leaves the
store empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from moorage.domain.digests import Digest
from moorage.domain.lifecycle import ActionType, Candidate, StorageClass
from moorage.domain.models import ManifestRecord, ManifestReference, ReferenceKind
from moorage.ports.lifecycle import LifecycleRun, PreviewResult, PreviewStatus, RunImage
from moorage.ports.metadata import MetadataStore, MetadataTransaction

REGISTRY = "123456789012"
OTHER_REGISTRY = "210987654321"
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
HOUR = timedelta(hours=1)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
POLICY = '{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}'  # noqa: E501


def manifest(
    repository_id: int, label: str, pushed_at: datetime, *, index: bool = False
) -> ManifestRecord:
    payload = label.encode()
    return ManifestRecord(
        repository_id=repository_id,
        digest=Digest.of(payload),
        media_type=OCI_INDEX if index else OCI_MANIFEST,
        size=len(payload),
        payload=payload,
        pushed_at=pushed_at,
        annotations={},
    )


async def forget_runs(store: MetadataStore) -> None:
    async with store.transaction() as tx:
        await tx.delete_lifecycle_runs(datetime.max.replace(tzinfo=UTC))


class LifecycleRecordsSuite:
    """The contract. Subclasses provide the ``bare_store`` fixture and :meth:`leftovers`."""

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, bare_store: MetadataStore) -> AsyncIterator[MetadataStore]:
        yield bare_store
        await forget_runs(bare_store)
        async with bare_store.transaction() as tx:
            for registry in (REGISTRY, OTHER_REGISTRY):
                for repository in await tx.list_repositories(registry):
                    await tx.delete_repository(repository.id)
        remaining = {kind: n for kind, n in (await self.leftovers(bare_store)).items() if n}
        assert not remaining, f"the test left records in the store: {remaining}"

    async def repository(self, tx: MetadataTransaction, name: str, registry: str = REGISTRY) -> int:
        return (await tx.create_repository(registry, name, T0)).id

    # -- policies -----------------------------------------------------------------------

    async def test_put_get_replace_delete_a_policy(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            rid = await self.repository(tx, "web")
            assert await tx.get_lifecycle_policy(rid) is None
            put = await tx.put_lifecycle_policy(rid, POLICY, T0)
        assert (put.repository_id, put.text, put.set_at, put.last_evaluated_at) == (
            rid,
            POLICY,
            T0,
            None,
        )
        async with store.transaction() as tx:
            assert await tx.get_lifecycle_policy(rid) == put
            assert await tx.mark_lifecycle_evaluated(rid, POLICY, T0 + HOUR)
            assert not await tx.mark_lifecycle_evaluated(rid, "another text", T0 + HOUR)
            evaluated = await tx.get_lifecycle_policy(rid)
            assert evaluated is not None
            assert evaluated.last_evaluated_at == T0 + HOUR
            replaced = await tx.put_lifecycle_policy(rid, POLICY + " ", T0 + 2 * HOUR)
            # A new text has not been evaluated yet.
            assert (replaced.text, replaced.set_at, replaced.last_evaluated_at) == (
                POLICY + " ",
                T0 + 2 * HOUR,
                None,
            )
            assert await tx.delete_lifecycle_policy(rid) == replaced
            assert await tx.delete_lifecycle_policy(rid) is None
            assert await tx.get_lifecycle_policy(rid) is None

    async def test_policies_and_previews_go_with_their_repository(
        self, store: MetadataStore
    ) -> None:
        async with store.transaction() as tx:
            rid = await self.repository(tx, "web")
            await tx.put_lifecycle_policy(rid, POLICY, T0)
            preview = await tx.start_lifecycle_preview(rid, POLICY, T0, stale_before=T0)
            assert preview is not None
            result = PreviewResult(Digest.of(b"x"), ("v1",), T0, 1, ActionType.EXPIRE)
            assert await tx.finish_lifecycle_preview(rid, T0, PreviewStatus.COMPLETE, [result], T0)
            await tx.delete_repository(rid)
            again = await self.repository(tx, "web")
            assert await tx.get_lifecycle_policy(again) is None
            assert await tx.get_lifecycle_preview(again) is None
            assert await tx.list_lifecycle_policies() == []

    async def test_list_policies_by_registry_then_name(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            b = await self.repository(tx, "b")
            a = await self.repository(tx, "a")
            await self.repository(tx, "no-policy")
            other = await self.repository(tx, "a", OTHER_REGISTRY)
            for rid in (b, a, other):
                await tx.put_lifecycle_policy(rid, POLICY, T0)
        async with store.read() as tx:
            listed = [
                (r.registry_id, r.name, p.repository_id)
                for r, p in await tx.list_lifecycle_policies()
            ]
            assert listed == [(REGISTRY, "a", a), (REGISTRY, "b", b), (OTHER_REGISTRY, "a", other)]
            only = await tx.list_lifecycle_policies(registry_id=OTHER_REGISTRY)
            assert [r.id for r, _ in only] == [other]
            named = await tx.list_lifecycle_policies(name="a")
            assert [r.id for r, _ in named] == [a, other]
            assert await tx.list_lifecycle_policies(registry_id=REGISTRY, name="zzz") == []

    # -- candidates ---------------------------------------------------------------------

    async def test_candidates_carry_tags_times_and_index_children(
        self, store: MetadataStore
    ) -> None:
        async with store.transaction() as tx:
            rid = await self.repository(tx, "web")
            other = await self.repository(tx, "other")
            plain = manifest(rid, "plain", T0)
            child = manifest(rid, "child", T0 + HOUR)
            untagged = manifest(rid, "untagged", T0 + 2 * HOUR)
            index = manifest(rid, "index", T0 + 3 * HOUR, index=True)
            for record in (plain, child, untagged):
                assert await tx.put_manifest(record, [])
            assert await tx.put_manifest(
                index, [ManifestReference(child.digest, ReferenceKind.MANIFEST)]
            )
            # In another repository, an index listing ``plain`` protects nothing here.
            elsewhere = manifest(other, "plain", T0)
            other_index = manifest(other, "other index", T0, index=True)
            assert await tx.put_manifest(elsewhere, [])
            assert await tx.put_manifest(
                other_index, [ManifestReference(plain.digest, ReferenceKind.MANIFEST)]
            )
            for tag, target in (("v1", plain), ("latest", plain), ("multi", index)):
                await tx.put_tag(rid, tag, target.digest, T0)
            await tx.touch_manifest_pull(rid, plain.digest, T0 + 5 * HOUR)
        async with store.read() as tx:
            candidates = await tx.lifecycle_candidates(rid)
        expected = sorted(
            [
                Candidate(plain.digest, T0, frozenset({"v1", "latest"}), T0 + 5 * HOUR),
                Candidate(child.digest, T0 + HOUR, referenced_by_index=True),
                Candidate(untagged.digest, T0 + 2 * HOUR),
                Candidate(index.digest, T0 + 3 * HOUR, frozenset({"multi"})),
            ],
            key=lambda c: str(c.digest),
        )
        assert candidates == expected
        async with store.read() as tx:
            assert await tx.lifecycle_candidates(rid + 1000) == []
            # Pages of two, by digest: every image once, each with all of its tags.
            first = await tx.lifecycle_candidates(rid, limit=2)
            second = await tx.lifecycle_candidates(rid, after=first[-1].digest, limit=2)
            rest = await tx.lifecycle_candidates(rid, after=second[-1].digest, limit=2)
        assert [first, second, rest] == [expected[:2], expected[2:], []]

    # -- previews -----------------------------------------------------------------------

    async def test_a_preview_starts_in_progress_and_completes_once(
        self, store: MetadataStore
    ) -> None:
        digests = sorted((Digest.of(f"image {n}".encode()) for n in range(5)), key=str)
        results = [
            PreviewResult(d, ("t",) if n % 2 else (), T0 - n * HOUR, 1, ActionType.EXPIRE)
            for n, d in enumerate(digests)
        ]
        archive = PreviewResult(
            Digest.of(b"archived"), ("old",), T0, 2, ActionType.TRANSITION, StorageClass.ARCHIVE
        )
        async with store.transaction() as tx:
            rid = await self.repository(tx, "web")
            assert await tx.get_lifecycle_preview(rid) is None
            started = await tx.start_lifecycle_preview(rid, POLICY, T0, stale_before=T0 - HOUR)
            assert started is not None
            assert (started.status, started.text, started.started_at) == (
                PreviewStatus.IN_PROGRESS,
                POLICY,
                T0,
            )
            # One in progress: a second start is refused until it goes stale.
            assert await tx.start_lifecycle_preview(rid, POLICY, T0, stale_before=T0 - HOUR) is None
            assert not await tx.finish_lifecycle_preview(
                rid, T0 + HOUR, PreviewStatus.COMPLETE, results, T0
            )
            assert await tx.finish_lifecycle_preview(
                rid, T0, PreviewStatus.COMPLETE, [*results, archive], T0 + HOUR
            )
            # Completed: not again.
            assert not await tx.finish_lifecycle_preview(rid, T0, PreviewStatus.FAILED, [], T0)
        async with store.read() as tx:
            done = await tx.get_lifecycle_preview(rid)
            assert done is not None
            assert (done.status, done.finished_at) == (PreviewStatus.COMPLETE, T0 + HOUR)
            everything = await tx.list_lifecycle_preview_results(rid)
            assert everything == sorted([*results, archive], key=lambda r: str(r.digest))
            page = await tx.list_lifecycle_preview_results(rid, limit=2)
            rest = await tx.list_lifecycle_preview_results(rid, after=page[-1].digest)
            assert page + rest == everything
            tagged = await tx.list_lifecycle_preview_results(rid, tagged=True)
            assert all(r.tags for r in tagged)
            assert len(tagged) == 3
            untagged = await tx.list_lifecycle_preview_results(rid, tagged=False)
            assert not any(r.tags for r in untagged)
            assert len(untagged) == 3
            named = await tx.list_lifecycle_preview_results(
                rid, digests=[digests[3], digests[0], Digest.of(b"absent")]
            )
            assert [r.digest for r in named] == sorted([digests[0], digests[3]], key=str)
            assert await tx.count_lifecycle_preview_results(rid) == {
                (ActionType.EXPIRE, None): 5,
                (ActionType.TRANSITION, StorageClass.ARCHIVE): 1,
            }
        # A new preview replaces the old one and its results.
        async with store.transaction() as tx:
            again = await tx.start_lifecycle_preview(rid, POLICY, T0 + 2 * HOUR, stale_before=T0)
            assert again is not None
            assert await tx.list_lifecycle_preview_results(rid) == []
            assert await tx.count_lifecycle_preview_results(rid) == {}

    async def test_a_stale_preview_in_progress_may_be_replaced(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            rid = await self.repository(tx, "web")
            assert await tx.start_lifecycle_preview(rid, POLICY, T0, stale_before=T0)
            later = T0 + 2 * HOUR
            replaced = await tx.start_lifecycle_preview(rid, POLICY, later, stale_before=T0 + HOUR)
            assert replaced is not None
            assert replaced.started_at == later
            # The lost job's late answer changes nothing.
            assert not await tx.finish_lifecycle_preview(rid, T0, PreviewStatus.COMPLETE, [], later)

    async def test_concurrent_preview_starts_one_wins(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            rid = await self.repository(tx, "web")

        async def start(n: int) -> bool:
            async with store.transaction() as tx:
                now = T0 + timedelta(seconds=n)
                return (
                    await tx.start_lifecycle_preview(rid, POLICY, now, stale_before=T0) is not None
                )

        assert sum(await asyncio.gather(*(start(n) for n in range(6)))) == 1

    # -- runs ---------------------------------------------------------------------------

    async def test_runs_are_recorded_with_their_images_and_outlive_the_repository(
        self, store: MetadataStore
    ) -> None:
        images = (
            RunImage(Digest.of(b"b"), ("v2", "latest"), 2, ActionType.EXPIRE, False, True),
            RunImage(Digest.of(b"a"), (), 1, ActionType.EXPIRE, False, False),
        )
        first = LifecycleRun(REGISTRY, "web", POLICY, False, T0, T0 + HOUR, images)
        dry = LifecycleRun(REGISTRY, "web", POLICY, True, T0 + 2 * HOUR, T0 + 3 * HOUR)
        elsewhere = LifecycleRun(OTHER_REGISTRY, "web", POLICY, False, T0, T0 + HOUR)
        async with store.transaction() as tx:
            rid = await self.repository(tx, "web")
            recorded = [await tx.record_lifecycle_run(run) for run in (first, dry, elsewhere)]
            await tx.delete_repository(rid)
        assert all(run.id is not None for run in recorded)
        # Images by digest, each with its tags sorted.
        assert [(i.digest, i.tags) for i in recorded[0].images] == sorted(
            [(Digest.of(b"a"), ()), (Digest.of(b"b"), ("latest", "v2"))], key=lambda i: str(i[0])
        )
        async with store.read() as tx:
            mine = await tx.list_lifecycle_runs(registry_id=REGISTRY, repository_name="web")
            assert mine == [recorded[1], recorded[0]]  # newest first
            assert mine[1].images[0].tags == ("latest", "v2")  # sorted
            assert await tx.list_lifecycle_runs(limit=1) == [recorded[2]]
            assert await tx.list_lifecycle_runs(repository_name="other") == []
        async with store.transaction() as tx:
            assert await tx.delete_lifecycle_runs(T0 + 2 * HOUR) == 2
            assert await tx.list_lifecycle_runs() == [recorded[1]]
