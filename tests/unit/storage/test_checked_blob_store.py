"""CheckedBlobStore: key checks, error normalisation and metrics around any adapter; and the
factory that wraps every adapter in it."""

from __future__ import annotations

import asyncio
import errno
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from moorage.domain.digests import Digest
from moorage.domain.errors import InvalidDigest, UploadUnknown
from moorage.ports.blobs import BlobLocation, BlobStore, BlobStoreError
from moorage.storage import blobs
from moorage.storage.blobs import blob_store_names, build_blob_store, register_blob_store
from moorage.storage.blobs.checked import CheckedBlobStore, is_upload_id
from moorage.storage.blobs.filesystem import FilesystemBlobStore
from moorage.storage.blobs.memory import MemoryBlobStore

UPLOAD_ID = "0b3f1c52-6a0e-4d0c-9a57-0d3c1e2f4a5b"
DIGEST = Digest.of(b"content")


class SpyStore:
    """Records each call; raises ``failure`` from every method (streams: after one chunk)."""

    def __init__(self, failure: BaseException | None = None) -> None:
        self.failure = failure
        self.calls: list[str] = []
        self.streams_closed = 0

    def _called(self, name: str) -> None:
        self.calls.append(name)
        if self.failure is not None:
            raise self.failure

    async def _chunks(self, name: str) -> AsyncIterator[bytes]:
        self.calls.append(name)
        try:
            yield b"first"
            if self.failure is not None:
                raise self.failure
            yield b"second"
        finally:
            self.streams_closed += 1

    async def stat(self, digest: Digest) -> int | None:
        self._called("stat")
        return 7

    async def locate(self, digest: Digest) -> BlobLocation | None:
        self._called("locate")
        return BlobLocation(7)

    def open(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        return self._chunks("open")

    async def delete(self, digest: Digest) -> bool:
        self._called("delete")
        return True

    async def list_digests(self, modified_before: datetime | None = None) -> AsyncIterator[Digest]:
        self._called("list_digests")
        yield DIGEST

    async def start_upload(self, upload_id: str) -> None:
        self._called("start_upload")

    async def write_upload(self, upload_id: str, offset: int, chunks: AsyncIterable[bytes]) -> int:
        size = offset
        async for chunk in chunks:
            size += len(chunk)
        self._called("write_upload")
        return size

    async def upload_size(self, upload_id: str) -> int:
        self._called("upload_size")
        return 0

    def read_upload(self, upload_id: str, length: int | None = None) -> AsyncIterator[bytes]:
        return self._chunks("read_upload")

    async def commit_upload(self, upload_id: str, digest: Digest, size: int) -> None:
        self._called("commit_upload")

    async def cancel_upload(self, upload_id: str) -> None:
        self._called("cancel_upload")

    async def list_uploads(self, modified_before: datetime | None = None) -> AsyncIterator[str]:
        self._called("list_uploads")
        yield "not-an-upload-id"
        yield UPLOAD_ID

    async def close(self) -> None:
        self._called("close")


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


OPERATIONS = (
    "stat",
    "locate",
    "open",
    "delete",
    "list_digests",
    "start_upload",
    "write_upload",
    "upload_size",
    "read_upload",
    "commit_upload",
    "cancel_upload",
    "list_uploads",
    "close",
)


async def call(store: BlobStore, operation: str) -> object:
    """Run ``operation`` with valid arguments, streams to their end."""
    match operation:
        case "stat":
            return await store.stat(DIGEST)
        case "locate":
            return await store.locate(DIGEST)
        case "open":
            return await read_all(store.open(DIGEST))
        case "delete":
            return await store.delete(DIGEST)
        case "list_digests":
            return [digest async for digest in store.list_digests()]
        case "start_upload":
            await store.start_upload(UPLOAD_ID)
        case "write_upload":
            return await store.write_upload(UPLOAD_ID, 0, chunks_of(b"x"))
        case "upload_size":
            return await store.upload_size(UPLOAD_ID)
        case "read_upload":
            return await read_all(store.read_upload(UPLOAD_ID))
        case "commit_upload":
            await store.commit_upload(UPLOAD_ID, DIGEST, 7)
        case "cancel_upload":
            await store.cancel_upload(UPLOAD_ID)
        case "list_uploads":
            return [upload_id async for upload_id in store.list_uploads()]
        case "close":
            await store.close()
        case _:
            raise AssertionError(operation)
    return None


# -- keys ---------------------------------------------------------------------------------

BAD_UPLOAD_IDS = [
    "",
    ".",
    "..",
    "../blobs",
    "a/b",
    f"{UPLOAD_ID}/../../etc",
    f"{UPLOAD_ID}\n",
    f"{UPLOAD_ID}\x00",
    UPLOAD_ID.upper(),
    UPLOAD_ID.replace("-", ""),
    "{" + UPLOAD_ID + "}",
    UPLOAD_ID[:-1] + "g",
]


def test_upload_ids_are_canonical_uuids() -> None:
    assert all(is_upload_id(str(uuid.uuid4())) for _ in range(100))
    assert not any(is_upload_id(text) for text in BAD_UPLOAD_IDS)


@pytest.mark.parametrize("upload_id", BAD_UPLOAD_IDS)
async def test_bad_upload_ids_never_reach_the_adapter(upload_id: str) -> None:
    spy = SpyStore()
    store = CheckedBlobStore(spy)
    with pytest.raises(ValueError, match="UUID"):
        await store.start_upload(upload_id)
    with pytest.raises(UploadUnknown):
        await store.write_upload(upload_id, 0, chunks_of(b"x"))
    with pytest.raises(UploadUnknown):
        await store.upload_size(upload_id)
    with pytest.raises(UploadUnknown):
        store.read_upload(upload_id)  # refused when called, before any iteration
    with pytest.raises(UploadUnknown):
        await store.commit_upload(upload_id, DIGEST, 0)
    await store.cancel_upload(upload_id)  # it cannot exist: already gone
    assert spy.calls == []


BAD_DIGESTS = [
    Digest("sha256", "../../../etc/passwd"),
    Digest("sha256", "AB" * 32),
    Digest("sha256", "0" * 63),
    Digest("sha256", "0" * 64 + "/x"),
    Digest("md5", "0" * 32),
    Digest("../sha256", "0" * 64),
    Digest("sha512", "0" * 64),
]


@pytest.mark.parametrize("digest", BAD_DIGESTS, ids=str)
async def test_bad_digests_never_reach_the_adapter(digest: Digest) -> None:
    spy = SpyStore()
    store = CheckedBlobStore(spy)
    with pytest.raises(InvalidDigest):
        await store.stat(digest)
    with pytest.raises(InvalidDigest):
        await store.locate(digest)
    with pytest.raises(InvalidDigest):
        store.open(digest)
    with pytest.raises(InvalidDigest):
        await store.delete(digest)
    with pytest.raises(InvalidDigest):
        await store.commit_upload(UPLOAD_ID, digest, 0)
    assert spy.calls == []


async def test_negative_numbers_are_refused() -> None:
    spy = SpyStore()
    store = CheckedBlobStore(spy)
    with pytest.raises(ValueError, match="offset"):
        store.open(DIGEST, -1)
    with pytest.raises(ValueError, match="length"):
        store.open(DIGEST, 0, -1)
    with pytest.raises(ValueError, match="length"):
        store.read_upload(UPLOAD_ID, -1)
    with pytest.raises(ValueError, match="offset"):
        await store.write_upload(UPLOAD_ID, -1, chunks_of())
    with pytest.raises(ValueError, match="size"):
        await store.commit_upload(UPLOAD_ID, DIGEST, -1)
    assert spy.calls == []


async def test_valid_calls_reach_the_adapter() -> None:
    spy = SpyStore()
    store = CheckedBlobStore(spy)
    for operation in OPERATIONS:
        await call(store, operation)
    assert spy.calls == list(OPERATIONS)


async def test_list_uploads_skips_names_that_are_not_upload_ids() -> None:
    store = CheckedBlobStore(SpyStore())
    assert [upload_id async for upload_id in store.list_uploads()] == [UPLOAD_ID]


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_adapter_failures_become_blob_store_error(operation: str) -> None:
    failure = OSError(errno.EIO, "input/output error")
    store = CheckedBlobStore(SpyStore(failure))
    with pytest.raises(BlobStoreError) as raised:
        await call(store, operation)
    assert raised.value.operation == operation
    assert raised.value.__cause__ is failure
    assert store.metrics.operations[operation].failures == 1
    assert store.metrics.operations[operation].errors == 0


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_domain_errors_pass_through(operation: str) -> None:
    error = UploadUnknown("no such upload")
    store = CheckedBlobStore(SpyStore(error))
    with pytest.raises(UploadUnknown) as raised:
        await call(store, operation)
    assert raised.value is error
    assert store.metrics.operations[operation].errors == 1
    assert store.metrics.operations[operation].failures == 0


@pytest.mark.parametrize("operation", ["stat", "open", "write_upload", "list_uploads"])
async def test_cancellation_passes_through(operation: str) -> None:
    store = CheckedBlobStore(SpyStore(asyncio.CancelledError()))
    with pytest.raises(asyncio.CancelledError):
        await call(store, operation)
    assert store.metrics.operations[operation].failures == 0


async def test_errors_of_the_callers_chunks_pass_through() -> None:
    # A client that disconnects mid-upload raises an OSError from the body it streams: that
    # is the caller's failure, and must not be reported as the store's.
    async def dropped() -> AsyncIterator[bytes]:
        yield b"some"
        raise ConnectionResetError("peer went away")

    store = CheckedBlobStore(MemoryBlobStore())
    await store.start_upload(UPLOAD_ID)
    with pytest.raises(ConnectionResetError):
        await store.write_upload(UPLOAD_ID, 0, dropped())
    assert store.metrics.operations["write_upload"].failures == 0
    await store.cancel_upload(UPLOAD_ID)


async def test_a_failing_stream_keeps_what_it_delivered() -> None:
    store = CheckedBlobStore(SpyStore(OSError(errno.EIO, "input/output error")))
    stream = store.open(DIGEST)
    assert await anext(stream) == b"first"
    with pytest.raises(BlobStoreError):
        await anext(stream)


async def test_closing_a_stream_closes_the_adapters() -> None:
    spy = SpyStore()
    store = CheckedBlobStore(spy)
    stream = store.open(DIGEST)
    assert await anext(stream) == b"first"
    assert isinstance(stream, AsyncGenerator)
    await stream.aclose()
    assert spy.streams_closed == 1
    assert store.metrics.operations["open"].failures == 0


# -- metrics ------------------------------------------------------------------------------


async def test_metrics_count_calls_bytes_and_time() -> None:
    store = CheckedBlobStore(MemoryBlobStore())
    data = b"x" * 1_000
    await store.start_upload(UPLOAD_ID)
    await store.write_upload(UPLOAD_ID, 0, chunks_of(data[:400], data[400:]))
    await store.commit_upload(UPLOAD_ID, Digest.of(data), len(data))
    assert await read_all(store.open(Digest.of(data), 100)) == data[100:]
    with pytest.raises(UploadUnknown):
        await store.upload_size(UPLOAD_ID)

    metrics = store.metrics
    assert metrics.bytes_written == 1_000
    assert metrics.bytes_read == 900
    assert {name: stats.calls for name, stats in metrics.operations.items()} == {
        "start_upload": 1,
        "write_upload": 1,
        "commit_upload": 1,
        "open": 1,
        "upload_size": 1,
    }
    assert metrics.operations["upload_size"].errors == 1
    for stats in metrics.operations.values():
        assert 0 <= stats.max_seconds <= stats.seconds
    await store.delete(Digest.of(data))


# -- the factory --------------------------------------------------------------------------


def test_factory_knows_the_built_in_adapters() -> None:
    assert blob_store_names() == ("filesystem", "memory")


def test_factory_wraps_every_adapter(tmp_path: Path) -> None:
    memory = build_blob_store("memory")
    assert isinstance(memory, CheckedBlobStore)
    assert isinstance(memory.inner, MemoryBlobStore)

    filesystem = build_blob_store("filesystem", root=str(tmp_path), buffer_size=1 << 20)
    assert isinstance(filesystem.inner, FilesystemBlobStore)
    assert filesystem.inner.root == tmp_path


def test_memory_ignores_the_data_directory(tmp_path: Path) -> None:
    # The composition root passes ``root`` to whichever backend is configured.
    assert isinstance(build_blob_store("memory", root=tmp_path).inner, MemoryBlobStore)


def test_factory_refuses_unknown_names_and_options() -> None:
    with pytest.raises(ValueError, match="unknown blob store 's4'; known: filesystem, memory"):
        build_blob_store("s4")
    with pytest.raises(TypeError):
        build_blob_store("filesystem")  # no root
    with pytest.raises(TypeError):
        build_blob_store("memory", bucket="b")


def test_adapters_register_under_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs, "_FACTORIES", dict(blobs._FACTORIES))
    register_blob_store("spy", SpyStore)
    assert "spy" in blob_store_names()
    assert isinstance(build_blob_store("spy").inner, SpyStore)
    with pytest.raises(ValueError, match="already registered"):
        register_blob_store("memory", MemoryBlobStore)


@pytest.mark.parametrize("listing", ["list_digests", "list_uploads"])
async def test_listings_refuse_a_naive_instant(listing: str) -> None:
    store = CheckedBlobStore(SpyStore())
    with pytest.raises(ValueError, match="naive"):
        async for _ in getattr(store, listing)(datetime(2026, 1, 1)):
            pass
