"""``moorage fsck``'s checks (``services/fsck.py``) on the three stacks: a registry written
through the protocol is clean, and each kind of damage, made through the ports, is found."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from moorage.app import Registry
from moorage.domain.digests import Digest
from moorage.ports.clock import system_clock
from moorage.services.fsck import RegistryChecker
from moorage.services.gc import GarbageCollector

from .oci import Client, digest_of, push_blob, push_image, push_index

NAME = "team/app"


async def _one(chunk: bytes) -> AsyncIterator[bytes]:
    yield chunk


def checker(registry: Registry) -> RegistryChecker:
    return RegistryChecker(registry.metadata, registry.blob_store)


async def test_a_registry_written_through_the_protocol_is_clean(
    client: Client, registry: Registry
) -> None:
    first = await push_image(client, NAME, "v1", layers=(b"one", b"two"))
    second = await push_image(client, NAME, "v2", layers=(b"two", b"three"))
    await push_index(client, NAME, "multi", [first, second])
    await push_blob(client, NAME, b"unreferenced, but recorded")
    report = await checker(registry).run(verify_digests=True, after_gc=True)
    assert report.problems == []
    assert report.blobs_checked == report.files_checked >= 5
    assert report.bytes_hashed > 0
    assert report.summary().startswith("clean: ")


async def test_each_kind_of_damage_is_found(client: Client, registry: Registry) -> None:
    await push_image(client, NAME, "v1", layers=(b"layer gone", b"layer kept"))
    gone = Digest.parse(digest_of(b"layer gone"))
    # A blob whose row (and link) disappeared while a manifest still lists it.
    async with registry.metadata.transaction() as tx:
        await tx.delete_blob(gone)
    # A torn file at a final key: bytes that do not hash to their name.
    torn = str(uuid.uuid4())
    await registry.blob_store.start_upload(torn)
    await registry.blob_store.write_upload(torn, 0, _one(b"wrong"))
    await registry.blob_store.commit_upload(torn, Digest.of(b"right"), 5)
    # A recorded blob whose bytes are gone.
    lost = Digest.parse(await push_blob(client, NAME, b"bytes lost"))
    await registry.blob_store.delete(lost)
    # A staging area with no session.
    await registry.blob_store.start_upload(str(uuid.uuid4()))

    report = await checker(registry).run(after_gc=True)
    kinds = sorted(problem.kind for problem in report.problems)
    assert kinds == [
        "corrupt-file",
        "dangling",
        "leftover-staging",
        "missing-file",
        "orphan-file",  # the blob file whose row went, and the torn one
        "orphan-file",
    ], report.problems
    dangling = next(p for p in report.problems if p.kind == "dangling")
    assert str(gone) in dangling.detail
    # Without after_gc, leftovers are normal between collections; damage is still damage.
    quiet = sorted(p.kind for p in (await checker(registry).run()).problems)
    assert quiet == ["corrupt-file", "dangling", "missing-file"]


async def test_one_collection_leaves_nothing_over(client: Client, registry: Registry) -> None:
    await push_image(client, NAME, "v1", layers=(b"kept",))
    await registry.blob_store.start_upload(str(uuid.uuid4()))  # an abandoned staging area
    stray = Digest.parse(await push_blob(client, NAME, b"stray"))
    async with registry.metadata.transaction() as tx:
        await tx.delete_blob(stray)  # its file is now an orphan
    assert not (await checker(registry).run(after_gc=True)).clean
    await GarbageCollector(
        registry.metadata,
        registry.blob_store,
        system_clock,
        grace_period=timedelta(0),
        upload_grace_period=timedelta(0),
    ).run()
    report = await checker(registry).run(verify_digests=True, after_gc=True)
    assert report.problems == []
