"""The BlobStore contract (``moorage.ports.blobs``), run against every adapter.

An adapter's test module defines a ``blob_store`` fixture that yields a fresh, empty store
(and closes it), then subclasses :class:`BlobStoreSuite`::

    class TestMemoryBlobStore(BlobStoreSuite):
        pass

Every test leaves the store empty, and the suite fails when one does not: an adapter that
loses track of what it holds would otherwise pass.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from moorage.domain.digests import Digest
from moorage.domain.errors import (
    BlobUnknown,
    RangeInvalid,
    SizeMismatch,
    UploadInvalid,
    UploadUnknown,
)
from moorage.ports.blobs import BlobStore

MiB = 1 << 20


def new_upload_id() -> str:
    return str(uuid.uuid4())


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def split(data: bytes, *sizes: int) -> list[bytes]:
    """``data`` cut into pieces of ``sizes`` (cycled), to cross every buffer boundary."""
    pieces, start, index = [], 0, 0
    while start < len(data):
        size = sizes[index % len(sizes)]
        pieces.append(data[start : start + size])
        start += size
        index += 1
    return pieces


async def read_all(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def digests_in(store: BlobStore, modified_before: datetime | None = None) -> list[Digest]:
    return [digest async for digest in store.list_digests(modified_before)]


async def uploads_in(store: BlobStore, modified_before: datetime | None = None) -> list[str]:
    return [upload_id async for upload_id in store.list_uploads(modified_before)]


async def instant_between_writes() -> datetime:
    """An instant strictly after the writes so far and before the next ones, even on a
    filesystem whose timestamps move in clock ticks of a few milliseconds."""
    await asyncio.sleep(0.05)
    instant = datetime.now(UTC)
    await asyncio.sleep(0.05)
    return instant


async def stage(store: BlobStore, data: bytes, *sizes: int) -> str:
    """Start an upload holding ``data`` (written in pieces of ``sizes``)."""
    upload_id = new_upload_id()
    await store.start_upload(upload_id)
    size = await store.write_upload(upload_id, 0, chunks_of(*split(data, *(sizes or (64 << 10,)))))
    assert size == len(data)
    return upload_id


async def put(store: BlobStore, data: bytes, algorithm: str = "sha256") -> Digest:
    """Upload and commit ``data``; return its digest."""
    digest = Digest.of(data, algorithm)
    upload_id = await stage(store, data)
    await store.commit_upload(upload_id, digest, len(data))
    return digest


class BlobStoreSuite:
    """The contract tests; subclass it next to a ``blob_store`` fixture."""

    @pytest.fixture(autouse=True)
    async def _leaves_store_empty(self, blob_store: BlobStore) -> AsyncIterator[None]:
        assert await digests_in(blob_store) == []
        assert await uploads_in(blob_store) == []
        yield
        leftovers = (await digests_in(blob_store), await uploads_in(blob_store))
        assert leftovers == ([], []), "the test left blobs or uploads in the store"

    # -- committed blobs ----------------------------------------------------------------

    async def test_absent_blob(self, blob_store: BlobStore) -> None:
        digest = Digest.of(b"never stored")
        assert await blob_store.stat(digest) is None
        assert await blob_store.locate(digest) is None
        with pytest.raises(BlobUnknown):
            await read_all(blob_store.open(digest))
        assert await blob_store.delete(digest) is False

    async def test_commit_then_read(self, blob_store: BlobStore) -> None:
        data = payload(100_000)
        digest = await put(blob_store, data)

        assert await blob_store.stat(digest) == len(data)
        location = await blob_store.locate(digest)
        assert location is not None
        assert location.size == len(data)
        if location.path is not None:
            assert await asyncio.to_thread(location.path.read_bytes) == data
        assert await read_all(blob_store.open(digest)) == data
        assert await digests_in(blob_store) == [digest]
        assert await uploads_in(blob_store) == []

        assert await blob_store.delete(digest) is True

    @pytest.mark.parametrize(
        ("offset", "length", "expected"),
        [
            (0, None, slice(0, None)),
            (100, None, slice(100, None)),
            (100, 50, slice(100, 150)),
            (10_000, 1_000, slice(10_000, None)),  # length past the end: what there is
            (10_240, None, slice(0, 0)),  # at the end
            (10_300, 10, slice(0, 0)),  # past the end
            (5, 0, slice(0, 0)),
        ],
    )
    async def test_open_range(
        self, blob_store: BlobStore, offset: int, length: int | None, expected: slice
    ) -> None:
        data = payload(10_240)
        digest = await put(blob_store, data)
        assert await read_all(blob_store.open(digest, offset, length)) == data[expected]
        await blob_store.delete(digest)

    async def test_large_blob_in_pieces(self, blob_store: BlobStore) -> None:
        data = payload(5 * MiB + 3)
        upload_id = new_upload_id()
        await blob_store.start_upload(upload_id)
        # Three requests, each in odd chunk sizes, to cross buffer and chunk boundaries.
        first, second = 2 * MiB + 1, 4 * MiB + 2
        size = await blob_store.write_upload(
            upload_id, 0, chunks_of(*split(data[:first], 65_536, 1, 1_000_003))
        )
        assert size == first
        size = await blob_store.write_upload(
            upload_id, size, chunks_of(*split(data[first:second], 7, 300_000))
        )
        assert size == second
        size = await blob_store.write_upload(upload_id, size, chunks_of(data[second:]))
        assert size == len(data)
        assert await read_all(blob_store.read_upload(upload_id)) == data

        digest = Digest.of(data)
        await blob_store.commit_upload(upload_id, digest, len(data))
        chunks = [chunk async for chunk in blob_store.open(digest)]
        assert all(chunks)
        assert b"".join(chunks) == data
        across = await read_all(blob_store.open(digest, MiB - 10, 2 * MiB + 20))
        assert across == data[MiB - 10 : 3 * MiB + 10]
        await blob_store.delete(digest)

    async def test_many_tiny_chunks(self, blob_store: BlobStore) -> None:
        data = payload(30_000)
        digest = Digest.of(data)
        upload_id = new_upload_id()
        await blob_store.start_upload(upload_id)
        size = await blob_store.write_upload(upload_id, 0, chunks_of(*split(data, 10, 0, 5)))
        assert size == len(data)
        await blob_store.commit_upload(upload_id, digest, size)
        assert await read_all(blob_store.open(digest)) == data
        await blob_store.delete(digest)

    async def test_stopping_a_stream_early(self, blob_store: BlobStore) -> None:
        data = payload(3 * MiB)
        digest = await put(blob_store, data)
        stream = blob_store.open(digest)
        first = await anext(stream)
        assert first == data[: len(first)]
        # Abandoning a stream must release what it holds (a file, a connection).
        if isinstance(stream, AsyncGenerator):
            await stream.aclose()
        assert await blob_store.delete(digest) is True

    async def test_commit_of_existing_digest_keeps_the_blob(self, blob_store: BlobStore) -> None:
        data = payload(5_000)
        digest = await put(blob_store, data)
        # The staged bytes of a second commit are dropped, even if (which the caller's digest
        # check prevents) they differ.
        other = payload(6_000, seed=1)
        upload_id = await stage(blob_store, other)
        await blob_store.commit_upload(upload_id, digest, len(other))

        assert await blob_store.stat(digest) == len(data)
        assert await read_all(blob_store.open(digest)) == data
        assert await uploads_in(blob_store) == []
        with pytest.raises(UploadUnknown):
            await blob_store.upload_size(upload_id)
        assert await digests_in(blob_store) == [digest]
        await blob_store.delete(digest)

    async def test_commit_publishes_a_prefix(self, blob_store: BlobStore) -> None:
        data = payload(1_000)
        upload_id = await stage(blob_store, data)
        digest = Digest.of(data[:600])
        await blob_store.commit_upload(upload_id, digest, 600)
        assert await read_all(blob_store.open(digest)) == data[:600]
        await blob_store.delete(digest)

    async def test_commit_of_more_than_staged(self, blob_store: BlobStore) -> None:
        data = payload(1_000)
        upload_id = await stage(blob_store, data)
        digest = Digest.of(data + b"x")
        with pytest.raises(SizeMismatch):
            await blob_store.commit_upload(upload_id, digest, 1_001)
        assert await blob_store.stat(digest) is None
        assert await read_all(blob_store.read_upload(upload_id)) == data
        await blob_store.cancel_upload(upload_id)

    async def test_staged_bytes_are_invisible_until_commit(self, blob_store: BlobStore) -> None:
        data = payload(2_000)
        digest = Digest.of(data)
        upload_id = await stage(blob_store, data)

        assert await blob_store.stat(digest) is None
        assert await blob_store.locate(digest) is None
        with pytest.raises(BlobUnknown):
            await read_all(blob_store.open(digest))
        assert await digests_in(blob_store) == []

        await blob_store.commit_upload(upload_id, digest, len(data))
        assert await blob_store.stat(digest) == len(data)
        await blob_store.delete(digest)

    async def test_delete(self, blob_store: BlobStore) -> None:
        digest = await put(blob_store, b"short-lived")
        assert await blob_store.delete(digest) is True
        assert await blob_store.delete(digest) is False
        assert await blob_store.stat(digest) is None
        with pytest.raises(BlobUnknown):
            await read_all(blob_store.open(digest))
        # The digest can be committed again afterwards.
        assert await put(blob_store, b"short-lived") == digest
        assert await blob_store.delete(digest) is True

    async def test_stat_and_delete_many(self, blob_store: BlobStore) -> None:
        stored = [await put(blob_store, payload(10 + n, n)) for n in range(3)]
        stored.append(await put(blob_store, payload(40, 9), "sha512"))
        absent = Digest.of(b"never stored")
        asked = [*stored, absent]
        assert await blob_store.stat_many(asked) == {
            d: 10 + n for n, d in enumerate(stored[:3])
        } | {stored[3]: 40}
        assert await blob_store.stat_many([]) == {}
        assert await blob_store.delete_many(asked[1:]) == set(stored[1:])
        assert await blob_store.delete_many(asked[1:]) == set()
        assert await blob_store.stat_many(asked) == {stored[0]: 10}
        assert await blob_store.delete_many([]) == set()
        assert await blob_store.delete(stored[0]) is True

    async def test_list_digests(self, blob_store: BlobStore) -> None:
        blobs = [payload(100, seed) for seed in range(5)]
        digests = {await put(blob_store, data) for data in blobs}
        digests.add(await put(blob_store, blobs[0], "sha512"))
        listed = await digests_in(blob_store)
        assert len(listed) == len(digests)
        assert set(listed) == digests
        for digest in digests:
            await blob_store.delete(digest)

    async def test_list_digests_modified_before(self, blob_store: BlobStore) -> None:
        """Garbage collection lists only blobs written before its cutoff."""
        old = await put(blob_store, payload(100, 1))
        cutoff = await instant_between_writes()
        new = await put(blob_store, payload(100, 2))
        assert await digests_in(blob_store, cutoff) == [old]
        assert await digests_in(blob_store, cutoff - timedelta(days=1)) == []
        assert set(await digests_in(blob_store, datetime.now(UTC) + timedelta(days=1))) == {
            old,
            new,
        }
        # Committing an existing digest again keeps the blob, and its write time.
        assert await put(blob_store, payload(100, 1)) == old
        assert await digests_in(blob_store, cutoff) == [old]
        for digest in (old, new):
            await blob_store.delete(digest)

    async def test_sha512_digests(self, blob_store: BlobStore) -> None:
        data = payload(3_000)
        long_digest = await put(blob_store, data, "sha512")
        assert len(long_digest.hex) == 128
        assert await blob_store.stat(long_digest) == len(data)
        assert await read_all(blob_store.open(long_digest, 10, 20)) == data[10:30]
        assert await digests_in(blob_store) == [long_digest]

        # The same bytes under another algorithm are another blob.
        short_digest = await put(blob_store, data)
        assert set(await digests_in(blob_store)) == {long_digest, short_digest}
        assert await blob_store.delete(long_digest) is True
        assert await read_all(blob_store.open(short_digest)) == data
        assert await blob_store.delete(short_digest) is True

    async def test_empty_blob(self, blob_store: BlobStore) -> None:
        digest = Digest.of(b"")
        upload_id = new_upload_id()
        await blob_store.start_upload(upload_id)
        assert await blob_store.write_upload(upload_id, 0, chunks_of()) == 0
        await blob_store.commit_upload(upload_id, digest, 0)

        assert await blob_store.stat(digest) == 0
        location = await blob_store.locate(digest)
        assert location is not None
        assert location.size == 0
        assert await read_all(blob_store.open(digest)) == b""
        assert await digests_in(blob_store) == [digest]

        # Committing without any write at all is the same.
        upload_id = new_upload_id()
        await blob_store.start_upload(upload_id)
        await blob_store.commit_upload(upload_id, digest, 0)
        assert await blob_store.stat(digest) == 0
        await blob_store.delete(digest)

    async def test_concurrent_commits_of_one_digest(self, blob_store: BlobStore) -> None:
        data = payload(300_000)
        digest = Digest.of(data)
        upload_ids = [await stage(blob_store, data) for _ in range(10)]

        await asyncio.gather(
            *(blob_store.commit_upload(upload_id, digest, len(data)) for upload_id in upload_ids)
        )

        assert await digests_in(blob_store) == [digest]
        assert await uploads_in(blob_store) == []
        assert await blob_store.stat(digest) == len(data)
        assert await read_all(blob_store.open(digest)) == data
        await blob_store.delete(digest)

    async def test_concurrent_uploads(self, blob_store: BlobStore) -> None:
        blobs = [payload(50_000 + seed, seed) for seed in range(20)]
        digests = await asyncio.gather(*(put(blob_store, data) for data in blobs))
        for digest, data in zip(digests, blobs, strict=True):
            assert await read_all(blob_store.open(digest)) == data
        assert set(await digests_in(blob_store)) == set(digests)
        for digest in digests:
            await blob_store.delete(digest)

    # -- uploads ------------------------------------------------------------------------

    async def test_new_upload_is_empty(self, blob_store: BlobStore) -> None:
        upload_id = new_upload_id()
        await blob_store.start_upload(upload_id)
        assert await blob_store.upload_size(upload_id) == 0
        assert await read_all(blob_store.read_upload(upload_id)) == b""
        assert await uploads_in(blob_store) == [upload_id]
        await blob_store.cancel_upload(upload_id)

    async def test_starting_an_existing_upload(self, blob_store: BlobStore) -> None:
        upload_id = await stage(blob_store, b"kept")
        with pytest.raises(UploadInvalid):
            await blob_store.start_upload(upload_id)
        assert await read_all(blob_store.read_upload(upload_id)) == b"kept"
        await blob_store.cancel_upload(upload_id)

    async def test_write_resumes_at_offset(self, blob_store: BlobStore) -> None:
        upload_id = new_upload_id()
        await blob_store.start_upload(upload_id)
        size = 0
        for part in (b"abc", b"", b"defg", b"h"):
            size = await blob_store.write_upload(upload_id, size, chunks_of(part))
            assert await blob_store.upload_size(upload_id) == size
        assert size == 8
        assert await read_all(blob_store.read_upload(upload_id)) == b"abcdefgh"
        await blob_store.cancel_upload(upload_id)

    async def test_write_discards_the_tail_past_offset(self, blob_store: BlobStore) -> None:
        upload_id = await stage(blob_store, b"0123456789")
        # The tail a crashed request wrote past the recorded size (here, 4) is overwritten.
        assert await blob_store.write_upload(upload_id, 4, chunks_of(b"x", b"y")) == 6
        assert await blob_store.upload_size(upload_id) == 6
        assert await read_all(blob_store.read_upload(upload_id)) == b"0123xy"
        # Writing nothing at an offset cuts there too.
        assert await blob_store.write_upload(upload_id, 2, chunks_of()) == 2
        assert await read_all(blob_store.read_upload(upload_id)) == b"01"
        await blob_store.cancel_upload(upload_id)

    async def test_write_past_the_end(self, blob_store: BlobStore) -> None:
        upload_id = await stage(blob_store, b"012345")
        with pytest.raises(RangeInvalid) as raised:
            await blob_store.write_upload(upload_id, 7, chunks_of(b"z"))
        assert raised.value.size == 6
        assert await read_all(blob_store.read_upload(upload_id)) == b"012345"
        await blob_store.cancel_upload(upload_id)

    async def test_failing_chunks_leave_the_recorded_prefix(self, blob_store: BlobStore) -> None:
        upload_id = await stage(blob_store, b"recorded")

        async def dropped_connection() -> AsyncIterator[bytes]:
            yield b"partial " * 1_000
            raise ConnectionResetError("client went away")

        # The caller's own exception comes back unchanged, whatever its type.
        with pytest.raises(ConnectionResetError):
            await blob_store.write_upload(upload_id, 8, dropped_connection())
        size = await blob_store.write_upload(upload_id, 8, chunks_of(b"+rest"))
        assert size == 13
        assert await read_all(blob_store.read_upload(upload_id)) == b"recorded+rest"
        await blob_store.cancel_upload(upload_id)

    async def test_cancelled_write(self, blob_store: BlobStore) -> None:
        upload_id = await stage(blob_store, b"recorded")
        waiting = asyncio.Event()

        async def stalled_client() -> AsyncIterator[bytes]:
            yield payload(100_000)
            waiting.set()
            await asyncio.Event().wait()  # never set
            yield b"unreachable"

        task = asyncio.create_task(blob_store.write_upload(upload_id, 8, stalled_client()))
        await waiting.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await blob_store.write_upload(upload_id, 8, chunks_of(b"!")) == 9
        assert await read_all(blob_store.read_upload(upload_id)) == b"recorded!"
        await blob_store.cancel_upload(upload_id)

    async def test_read_upload_length(self, blob_store: BlobStore) -> None:
        data = payload(3 * MiB + 5)
        upload_id = await stage(blob_store, data)
        assert await read_all(blob_store.read_upload(upload_id, 1_000)) == data[:1_000]
        assert await read_all(blob_store.read_upload(upload_id, 2 * MiB + 1)) == data[: 2 * MiB + 1]
        assert await read_all(blob_store.read_upload(upload_id, 10 * MiB)) == data
        assert await read_all(blob_store.read_upload(upload_id, 0)) == b""
        await blob_store.cancel_upload(upload_id)

    async def test_cancel_is_idempotent(self, blob_store: BlobStore) -> None:
        upload_id = await stage(blob_store, b"to be dropped")
        await blob_store.cancel_upload(upload_id)
        await blob_store.cancel_upload(upload_id)
        assert await uploads_in(blob_store) == []
        await self._assert_unknown(blob_store, upload_id)

    async def test_unknown_upload(self, blob_store: BlobStore) -> None:
        upload_id = new_upload_id()
        await self._assert_unknown(blob_store, upload_id)
        await blob_store.cancel_upload(upload_id)  # no error
        # A write to an unknown upload does not create it.
        assert await uploads_in(blob_store) == []

    async def test_list_uploads(self, blob_store: BlobStore) -> None:
        upload_ids = {await stage(blob_store, payload(10, n)) for n in range(3)}
        listed = await uploads_in(blob_store)
        assert len(listed) == 3
        assert set(listed) == upload_ids
        for upload_id in upload_ids:
            await blob_store.cancel_upload(upload_id)

    async def test_list_uploads_modified_before(self, blob_store: BlobStore) -> None:
        idle = await stage(blob_store, payload(10, 1))
        active = await stage(blob_store, payload(10, 2))
        cutoff = await instant_between_writes()
        assert set(await uploads_in(blob_store, cutoff)) == {idle, active}
        # A chunk written after the cutoff makes the upload recent again.
        await blob_store.write_upload(active, 10, chunks_of(b"more"))
        assert await uploads_in(blob_store, cutoff) == [idle]
        fresh = await stage(blob_store, b"")
        assert await uploads_in(blob_store, cutoff) == [idle]
        assert await uploads_in(blob_store, cutoff - timedelta(days=1)) == []
        for upload_id in (idle, active, fresh):
            await blob_store.cancel_upload(upload_id)

    @staticmethod
    async def _assert_unknown(blob_store: BlobStore, upload_id: str) -> None:
        with pytest.raises(UploadUnknown):
            await blob_store.upload_size(upload_id)
        with pytest.raises(UploadUnknown):
            await blob_store.write_upload(upload_id, 0, chunks_of(b"data"))
        with pytest.raises(UploadUnknown):
            await read_all(blob_store.read_upload(upload_id))
        with pytest.raises(UploadUnknown):
            await blob_store.commit_upload(upload_id, Digest.of(b""), 0)
