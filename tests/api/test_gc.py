"""Online garbage collection (``services/gc.py``) on the three stacks, through the real
protocol layer: what it frees, what it keeps, and the race with concurrent pushes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from moorage.app import Registry
from moorage.domain.digests import Digest
from moorage.domain.manifests import OCI_MANIFEST
from moorage.ports.clock import system_clock
from moorage.services.gc import (
    FILE_BATCH_SIZE,
    PHASES,
    GarbageCollector,
    GcProgress,
    GcReport,
)

from .conftest import REGISTRY_ID
from .oci import (
    OCI_LAYER,
    Client,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
    put_manifest,
)

NAME = "team/app"


def collector(registry: Registry, **options: object) -> GarbageCollector:
    defaults: dict[str, object] = {
        "grace_period": timedelta(0),
        "upload_grace_period": timedelta(0),
        "batch_size": 3,  # several batches even in small tests
    }
    return GarbageCollector(
        registry.metadata,
        registry.blob_store,
        system_clock,
        **{**defaults, **options},  # type: ignore[arg-type]
    )


async def stored(registry: Registry) -> set[str]:
    return {str(digest) async for digest in registry.blob_store.list_digests()}


async def test_gc_frees_unreferenced_blobs_and_keeps_referenced_ones(
    client: Client, registry: Registry
) -> None:
    kept, _ = await push_image(client, NAME, "kept", layers=(b"shared", b"kept only"))
    gone, _ = await push_image(client, NAME, "gone", layers=(b"shared", b"gone only"))
    stray = await push_blob(client, NAME, b"never referenced")
    response = await client.delete(f"/v2/{NAME}/manifests/{gone}")
    assert response.status == 202

    before = await stored(registry)
    dry = await collector(registry).run(dry_run=True)
    assert (dry.blobs_deleted, dry.bytes_freed) == (2, len(b"gone only") + len(b"never referenced"))
    assert await stored(registry) == before, "a dry run deleted something"

    seen: list[GcProgress] = []
    report = await collector(registry).run(progress=seen.append)
    assert report == GcReport(
        dry_run=False, blobs_deleted=2, bytes_freed=dry.bytes_freed, uploads_removed=0
    )
    assert await stored(registry) == before - {digest_of(b"gone only"), stray}
    assert {p.phase for p in seen} >= {"blobs"}
    assert report.summary().startswith("freed 25 B: 2 blobs, 0 referrers, 0 upload sessions")
    # The kept image still pulls whole; the deleted blobs are unknown now.
    assert (await client.get(f"/v2/{NAME}/manifests/{kept}")).status == 200
    for blob in (b"shared", b"kept only"):
        response = await client.get(f"/v2/{NAME}/blobs/{digest_of(blob)}")
        assert response.status == 200
        assert await response.read() == blob
    assert (await client.head(f"/v2/{NAME}/blobs/{stray}")).status == 404
    # Nothing left to do.
    again = await collector(registry).run()
    assert (again.blobs_deleted, again.bytes_freed) == (0, 0)


async def test_grace_period_spares_recent_blobs(client: Client, registry: Registry) -> None:
    before = system_clock()
    stray = await push_blob(client, NAME, b"just uploaded")
    for dry_run in (True, False):
        report = await collector(registry, grace_period=timedelta(hours=1)).run(dry_run=dry_run)
        assert report.blobs_deleted == 0
        # The report says why nothing was freed, and when it will be.
        assert (report.blobs_spared, report.bytes_spared) == (1, len(b"just uploaded"))
        assert report.next_collectable_at is not None
        assert before + timedelta(hours=1) <= report.next_collectable_at
        assert report.next_collectable_at <= system_clock() + timedelta(hours=1)
        assert "1 unreferenced blob (13 B) spared by the grace period" in report.summary()
    assert (await client.head(f"/v2/{NAME}/blobs/{stray}")).status == 200
    await collector(registry).run()  # leave nothing behind
    assert await stored(registry) == set()


async def age_blobs(registry: Registry, blobs: tuple[bytes, ...], age: timedelta) -> None:
    """Make ``blobs`` look uploaded ``age`` ago (and never used since)."""
    async with registry.metadata.transaction() as tx:
        for blob in blobs:
            await tx.put_blob(Digest.parse(digest_of(blob)), len(blob), system_clock() - age)


async def test_grace_period_starts_when_the_last_manifest_goes(
    client: Client, registry: Registry
) -> None:
    """A layer uploaded long ago whose image is deleted is not collectable at once: a client
    re-pushing that image may just have been told by a HEAD that the layer exists."""
    config = b'{"architecture":"amd64","os":"linux","old":true}'
    layers = (b"layer pushed months ago",)
    digest, payload = await push_image(client, NAME, "old", layers=layers, config=config)
    await age_blobs(registry, (config, *layers), timedelta(days=90))
    response = await client.delete(f"/v2/{NAME}/manifests/{digest}")
    assert response.status == 202

    day = timedelta(days=1)
    spared = await collector(registry, grace_period=day).run()
    assert spared.blobs_deleted == 0
    # The re-push: the layers are there, no upload is needed, and the manifest is accepted.
    for blob in (config, *layers):
        assert (await client.head(f"/v2/{NAME}/blobs/{digest_of(blob)}")).status == 200
    assert (await put_manifest(client, NAME, "old", payload)).status == 201

    response = await client.delete(f"/v2/{NAME}/manifests/{digest}")
    assert response.status == 202
    later = GarbageCollector(
        registry.metadata,
        registry.blob_store,
        lambda: system_clock() + 2 * day,
        grace_period=day,
    )
    assert (await later.run()).blobs_deleted == 2  # once the grace period is over
    assert await stored(registry) == set()


async def test_grace_period_starts_when_the_repository_goes(
    client: Client, registry: Registry
) -> None:
    config = b'{"architecture":"amd64","os":"linux","repository":"gone"}'
    layers = (b"layer of a deleted repository",)
    await push_image(client, NAME, "v1", layers=layers, config=config)
    await age_blobs(registry, (config, *layers), timedelta(days=90))
    await registry.repositories.delete(REGISTRY_ID, NAME, force=True)

    day = timedelta(days=1)
    assert (await collector(registry, grace_period=day).run()).blobs_deleted == 0
    assert await stored(registry) == {digest_of(blob) for blob in (config, *layers)}
    await collector(registry).run()  # leave nothing behind
    assert await stored(registry) == set()


EMPTY = "application/vnd.oci.empty.v1+json"
SIGNATURE = "application/vnd.example.signature"


async def push_referrer(
    client: Client, subject: tuple[str, bytes], layer: bytes, reference: str | None = None
) -> tuple[str, bytes]:
    """Push a signature of ``subject`` (digest, bytes) holding ``layer``; return its digest
    and bytes."""
    for blob in (b"{}", layer):
        await push_blob(client, NAME, blob)
    payload = image_manifest(
        b"{}",
        (layer,),
        config_type=EMPTY,
        artifactType=SIGNATURE,
        subject={"mediaType": OCI_MANIFEST, "digest": subject[0], "size": len(subject[1])},
    )
    digest = digest_of(payload)
    response = await put_manifest(client, NAME, reference or digest, payload)
    assert response.status == 201, await response.text()
    return digest, payload


async def referrers(client: Client, digest: str) -> list[str]:
    response = await client.get(f"/v2/{NAME}/referrers/{digest}")
    assert response.status == 200
    return [entry["digest"] for entry in (await response.json())["manifests"]]


async def test_gc_removes_the_untagged_referrers_of_a_deleted_image(
    client: Client, registry: Registry
) -> None:
    """As ECR does: the signatures (and the signatures of those) of a deleted image go,
    unless a user tagged them. Their blobs go in a later run: deleting a manifest restarts
    its blobs' grace period."""
    image = await push_image(client, NAME, "v1", layers=(b"image layer",))
    signature = await push_referrer(client, image, b"signature")
    countersignature, _ = await push_referrer(client, signature, b"countersignature")
    signature_digest = signature[0]
    other = await push_image(
        client, NAME, "v2", layers=(b"other layer",), config=b'{"os":"linux","other":1}'
    )
    tagged, _ = await push_referrer(client, other, b"tagged signature", reference="signed-v2")
    assert await referrers(client, image[0]) == [signature_digest]
    assert await referrers(client, signature_digest) == [countersignature]
    for digest in (image[0], other[0]):
        response = await client.delete(f"/v2/{NAME}/manifests/{digest}")
        assert response.status == 202

    dry = await collector(registry).run(dry_run=True)
    assert dry.referrers_deleted == 2
    assert "2 referrers" in dry.summary()
    for digest in (signature_digest, countersignature, tagged):
        assert (await client.get(f"/v2/{NAME}/manifests/{digest}")).status == 200

    seen: list[GcProgress] = []
    report = await collector(registry).run(progress=seen.append)
    assert report.referrers_deleted == 2
    assert " blobs, 2 referrers, " in report.summary()
    # Two passes found one each (the countersignature once the signature was gone).
    assert [p for p in seen if p.phase == "referrers"][-1] == GcProgress("referrers", 2, 2)
    for digest in (signature_digest, countersignature):
        assert (await client.get(f"/v2/{NAME}/manifests/{digest}")).status == 404
    assert await referrers(client, image[0]) == []
    assert await referrers(client, signature_digest) == []
    # The tagged referrer stays, by its tag and as a referrer of its (deleted) subject.
    assert (await client.get(f"/v2/{NAME}/manifests/signed-v2")).status == 200
    assert await referrers(client, other[0]) == [tagged]
    # The signatures' layers became unreferenced during this run: the next one frees them.
    assert {digest_of(b"signature"), digest_of(b"countersignature")} <= await stored(registry)
    again = await collector(registry).run()
    assert again.referrers_deleted == 0
    assert {digest_of(b"signature"), digest_of(b"countersignature")}.isdisjoint(
        await stored(registry)
    )
    assert digest_of(b"tagged signature") in await stored(registry)


async def test_gc_removes_abandoned_uploads_and_orphans(client: Client, registry: Registry) -> None:
    response = await client.post(f"/v2/{NAME}/blobs/uploads/")
    assert response.status == 202
    location = response.headers["Location"]
    response = await client.patch(
        location, data=b"half a layer", headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status == 202
    # What crashes leave: bytes published but never recorded, and a staging area without
    # a session.
    store = registry.blob_store
    orphan_upload = str(uuid.uuid4())
    await store.start_upload(orphan_upload)

    async def chunks() -> object:
        yield b"orphan bytes"

    await store.write_upload(orphan_upload, 0, chunks())  # type: ignore[arg-type]
    crashed = str(uuid.uuid4())
    await store.start_upload(crashed)
    await store.write_upload(crashed, 0, chunks())  # type: ignore[arg-type]
    await store.commit_upload(crashed, Digest.of(b"orphan bytes"), len(b"orphan bytes"))

    spared = await collector(
        registry, grace_period=timedelta(hours=1), upload_grace_period=timedelta(hours=1)
    ).run()
    assert (spared.uploads_removed, spared.orphan_files_removed) == (0, 0)

    report = await collector(registry).run()
    assert report.uploads_removed == 1
    assert report.orphan_files_removed == 2  # the unrecorded blob and the staging area
    assert report.bytes_freed == len(b"half a layer") + 2 * len(b"orphan bytes")
    assert [u async for u in store.list_uploads()] == []
    assert await stored(registry) == set()
    assert (await client.get(location)).status == 404


async def test_gc_under_concurrent_pushes_loses_no_referenced_blob(
    client: Client, registry: Registry
) -> None:
    """Pushers reuse a small pool of layers, skip uploads the registry says it has (HEAD),
    and delete some of their images, so that the blobs they are about to reference are
    often unreferenced; collection runs with no grace period, over and over, meanwhile. A
    push may be refused (the client then retries, as real ones do); an accepted manifest
    must never lose a blob."""
    pool = [b"pool layer %d" % i for i in range(6)]
    accepted: list[tuple[str, bytes]] = []
    refusals = 0
    stop = asyncio.Event()
    runs = 0

    async def push_once(rng: random.Random, number: int) -> str | None:
        nonlocal refusals
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": number}).encode()
        layers = tuple(rng.sample(pool, 2))
        for blob in (config, *layers):
            head = await client.head(f"/v2/{NAME}/blobs/{digest_of(blob)}")
            if head.status == 200:
                continue  # the registry has it: skip the upload, as clients do
            response = await client.post(
                f"/v2/{NAME}/blobs/uploads/",
                params={"digest": digest_of(blob)},
                data=io.BytesIO(blob),
            )
            if response.status != 201:
                assert response.status == 404, await response.text()  # collected meanwhile
                refusals += 1
                return None
        payload = image_manifest(config, layers, layer_type=OCI_LAYER)
        response = await put_manifest(client, NAME, digest_of(payload), payload)
        if response.status != 201:
            body = await response.json()
            assert body["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN", body
            refusals += 1
            return None
        accepted.append((digest_of(payload), payload))
        return digest_of(payload)

    async def pusher(seed: int) -> None:
        rng = random.Random(seed)
        for number in range(seed * 1000, seed * 1000 + 25):
            for _ in range(200):
                digest = await push_once(rng, number)
                if digest is not None:
                    break
            else:
                raise AssertionError("a push was refused 200 times in a row")
            if rng.random() < 0.4:  # make its blobs garbage again
                response = await client.delete(f"/v2/{NAME}/manifests/{digest}")
                assert response.status == 202
                accepted.remove((digest, next(p for d, p in accepted if d == digest)))

    async def collect_forever() -> None:
        nonlocal runs
        gc = collector(registry)
        while not stop.is_set():
            await gc.run()
            runs += 1
            # With no grace period a collection can undo any push that has not yet put its
            # manifest; a pause lets some through (liveness; safety is what is tested).
            await asyncio.sleep(random.uniform(0, 0.05))

    # Created up front: the race under test is with collection, not between first pushes.
    await registry.repositories.create(REGISTRY_ID, NAME)
    collecting = asyncio.create_task(collect_forever())
    try:
        await asyncio.gather(*(pusher(seed) for seed in range(1, 5)))
    finally:
        stop.set()
        await collecting
    await collector(registry).run()  # and once more, with nothing going on
    assert runs > 3

    for digest, payload in accepted:
        response = await client.get(f"/v2/{NAME}/manifests/{digest}")
        assert response.status == 200, f"manifest {digest} is gone"
        manifest = json.loads(payload)
        for blob in (manifest["config"], *manifest["layers"]):
            response = await client.get(f"/v2/{NAME}/blobs/{blob['digest']}")
            assert response.status == 200, f"blob {blob['digest']} of {digest} was collected"
            assert digest_of(await response.read()) == blob["digest"]
    # Every blob still stored is one of theirs: the rest was collected.
    wanted = {
        blob["digest"]
        for _, payload in accepted
        for blob in (json.loads(payload)["config"], *json.loads(payload)["layers"])
    }
    assert await stored(registry) == wanted


class _Spies:
    """Wraps a registry's stores to see what a run does, and when: how far listings got,
    and which blob store calls happen inside a write transaction."""

    def __init__(self, registry: Registry) -> None:
        self.metadata = registry.metadata
        self.blobs = registry.blob_store
        self.listed = 0
        self.transaction = 0  # the number of the write transaction open, 0 when none
        self.opened = 0
        self.deletes: dict[int, int] = {}  # per write transaction: files deleted
        self.stats_in_transactions = 0

    def collector(self, **options: object) -> GarbageCollector:
        spies = self

        class Metadata:
            def __getattr__(self, name: str) -> object:
                return getattr(spies.metadata, name)

            @contextlib.asynccontextmanager
            async def transaction(self) -> AsyncIterator[object]:
                async with spies.metadata.transaction() as tx:
                    spies.opened += 1
                    spies.transaction = spies.opened
                    try:
                        yield tx
                    finally:
                        spies.transaction = 0

        class Blobs:
            def __getattr__(self, name: str) -> object:
                return getattr(spies.blobs, name)

            async def list_digests(self, modified_before: object = None) -> AsyncIterator[Digest]:
                async for digest in spies.blobs.list_digests(modified_before):  # type: ignore[arg-type]
                    spies.listed += 1
                    yield digest

            async def stat(self, digest: Digest) -> int | None:
                spies.stats_in_transactions += spies.transaction != 0
                return await spies.blobs.stat(digest)

            async def stat_many(self, digests: Sequence[Digest]) -> dict[Digest, int]:
                spies.stats_in_transactions += spies.transaction != 0
                return await spies.blobs.stat_many(digests)

            async def delete_many(self, digests: Sequence[Digest]) -> set[Digest]:
                deleted = await spies.blobs.delete_many(digests)
                if spies.transaction:
                    spies.deletes[spies.transaction] = spies.deletes.get(
                        spies.transaction, 0
                    ) + len(deleted)
                return deleted

            async def delete(self, digest: Digest) -> bool:
                if spies.transaction:
                    spies.deletes[spies.transaction] = spies.deletes.get(spies.transaction, 0) + 1
                return await spies.blobs.delete(digest)

        options = {"grace_period": timedelta(0), "upload_grace_period": timedelta(0), **options}
        return GarbageCollector(Metadata(), Blobs(), system_clock, **options)  # type: ignore[arg-type]


async def orphan_files(registry: Registry, count: int) -> None:
    """Blob files that no row records, as a crash between publishing and recording leaves."""
    store = registry.blob_store
    for number in range(count):
        data = b"orphan %d" % number

        async def chunks(data: bytes = data) -> AsyncIterator[bytes]:
            yield data

        upload_id = str(uuid.uuid4())
        await store.start_upload(upload_id)
        await store.write_upload(upload_id, 0, chunks())
        await store.commit_upload(upload_id, Digest.of(data), len(data))


async def test_files_are_deleted_a_few_per_write_transaction(registry: Registry) -> None:
    """On SQLite the file lock is the single write lock: a run holds it for a few file
    deletions at a time, and reads no file while it holds it."""
    await orphan_files(registry, 45)
    spies = _Spies(registry)
    report = await spies.collector(batch_size=200).run()
    assert report.orphan_files_removed == 45
    assert sum(spies.deletes.values()) == 45
    assert max(spies.deletes.values()) <= FILE_BATCH_SIZE < 45
    assert spies.stats_in_transactions == 0
    assert await stored(registry) == set()


async def test_a_run_streams_its_work(client: Client, registry: Registry) -> None:
    """Memory does not grow with the store: files are handled while they are listed, not
    after the listing, and no phase counts its work before doing it."""
    await orphan_files(registry, 10)
    for number in range(7):
        await push_blob(client, NAME, b"unreferenced %d" % number)
    spies = _Spies(registry)
    listed_at_first_report: list[int] = []
    seen: list[GcProgress] = []

    def progress(update: GcProgress) -> None:
        seen.append(update)
        if update.phase == "orphan blob files" and update.done and not listed_at_first_report:
            listed_at_first_report.append(spies.listed)

    report = await spies.collector(batch_size=3).run(progress=progress)
    assert (report.blobs_deleted, report.orphan_files_removed) == (7, 10)
    assert listed_at_first_report == [3]
    for phase in PHASES:
        updates = [update for update in seen if update.phase == phase]
        assert all(update.total is None for update in updates[:-1]), updates
        assert updates[-1].total == updates[-1].done
        assert [update.done for update in updates] == sorted(update.done for update in updates)
    blob_updates = [update.done for update in seen if update.phase == "blobs"]
    assert blob_updates == [3, 6, 7]
    assert await stored(registry) == set()


async def test_dry_run_counts_upload_sessions_a_page_at_a_time(
    client: Client, registry: Registry
) -> None:
    for _ in range(7):
        response = await client.post(f"/v2/{NAME}/blobs/uploads/")
        assert response.status == 202
        response = await client.patch(
            response.headers["Location"],
            data=b"some bytes",
            headers={"Content-Type": "application/octet-stream"},
        )
        assert response.status == 202
    dry = await collector(registry).run(dry_run=True)  # batch_size 3: three pages
    assert (dry.uploads_removed, dry.bytes_freed) == (7, 7 * len(b"some bytes"))
    report = await collector(registry).run()
    assert (report.uploads_removed, report.bytes_freed) == (7, 7 * len(b"some bytes"))
    assert (await collector(registry).run(dry_run=True)).uploads_removed == 0
