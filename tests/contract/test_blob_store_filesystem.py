"""The blob store contract on FilesystemBlobStore, plus its on-disk promises: the key
scheme, crash safety and no leaked file descriptors."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import textwrap
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest

from moorage.domain.digests import Digest
from moorage.domain.errors import BlobUnknown, RangeInvalid, UploadUnknown
from moorage.ports.blobs import BlobStore
from moorage.storage.blobs import filesystem
from moorage.storage.blobs.checked import CheckedBlobStore
from moorage.storage.blobs.filesystem import FilesystemBlobStore

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.blob_store_suite")

from .blob_store_suite import (  # noqa: E402
    BlobStoreSuite,
    chunks_of,
    digests_in,
    payload,
    put,
    read_all,
    stage,
    uploads_in,
)


class TestFilesystemBlobStore(BlobStoreSuite):
    # "small-buffers" makes every write and read cross many batch and chunk boundaries.
    @pytest.fixture(params=["checked", "bare", "small-buffers"])
    async def blob_store(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncIterator[BlobStore]:
        small = request.param == "small-buffers"
        sizes = {"buffer_size": 1_000, "chunk_size": 777} if small else {}
        store: BlobStore = FilesystemBlobStore(tmp_path / "store", **sizes)
        if request.param != "bare":
            store = CheckedBlobStore(store)
        yield store
        await store.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


async def empty(store: BlobStore) -> None:
    """Remove what a test (or a simulated crash) left, through the store's own listings."""
    for digest in await digests_in(store):
        await store.delete(digest)
    for upload_id in await uploads_in(store):
        await store.cancel_upload(upload_id)
    assert (await digests_in(store), await uploads_in(store)) == ([], [])


async def test_key_scheme(root: Path) -> None:
    store = CheckedBlobStore(FilesystemBlobStore(root))
    data = payload(1_000)
    upload_id = await stage(store, data)
    assert (root / "uploads" / upload_id / "data").read_bytes() == data

    digest = Digest.of(data)
    await store.commit_upload(upload_id, digest, len(data))
    path = root / "blobs" / "sha256" / digest.hex[:2] / digest.hex
    assert path.read_bytes() == data
    assert not (root / "uploads" / upload_id).exists()
    location = await store.locate(digest)
    assert location is not None
    assert location.path == path
    assert location.path.is_absolute()
    await empty(store)


async def test_commit_of_existing_digest_keeps_the_file(root: Path) -> None:
    store = CheckedBlobStore(FilesystemBlobStore(root))
    data = payload(1_000)
    digest = await put(store, data)
    location = await store.locate(digest)
    assert location is not None
    assert location.path is not None
    inode = location.path.stat().st_ino
    await put(store, data)
    assert location.path.stat().st_ino == inode
    await empty(store)


async def test_commit_whose_staging_area_goes_meanwhile_is_an_unknown_upload(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Garbage collection may remove a staging area while its upload commits (a monolithic
    upload has no session, so its area looks orphaned). Removed after the staged bytes were
    checked, just before the rename that publishes them, the upload is unknown (the client
    uploads again), never an internal error, and nothing is published."""
    store = CheckedBlobStore(FilesystemBlobStore(root))
    data = payload(1_000)
    digest = Digest.of(data)
    upload_id = await stage(store, data)
    make_dirs = filesystem._make_dirs

    def removed_first(path: Path) -> None:
        # Between the checks of the staged bytes and the rename that publishes them.
        filesystem._remove_staging(root / "uploads" / upload_id)
        make_dirs(path)

    monkeypatch.setattr(filesystem, "_make_dirs", removed_first)
    with pytest.raises(UploadUnknown):
        await store.commit_upload(upload_id, digest, len(data))
    assert await store.stat(digest) is None
    assert await uploads_in(store) == []
    await empty(store)


async def test_leftovers_of_a_crash_are_neither_listed_nor_served(root: Path) -> None:
    data = payload(10_000)
    digest = Digest.of(data)
    fanout = root / "blobs" / "sha256" / digest.hex[:2]
    upload_id = "0b3f1c52-6a0e-4d0c-9a57-0d3c1e2f4a5b"
    # As a crash would leave them: a staged upload (its last request wrote a tail past the
    # recorded 6,000 bytes), partial temporary files next to where the blob would go, a
    # partial copy under a name of the wrong length, and one in the wrong fan-out directory.
    (root / "uploads" / upload_id).mkdir(parents=True)
    (root / "uploads" / upload_id / "data").write_bytes(data[:6_000] + b"torn tail")
    fanout.mkdir(parents=True)
    (fanout / f".{digest.hex}.tmp").write_bytes(data[:3_000])
    (fanout / f"{digest.hex}.tmp-1234").write_bytes(data[:3_000])
    (fanout / digest.hex[:-1]).write_bytes(data[:3_000])
    (root / "blobs" / "sha256" / "zz").mkdir()
    (root / "blobs" / "sha256" / "zz" / digest.hex).write_bytes(data[:3_000])

    store = CheckedBlobStore(FilesystemBlobStore(root))  # a fresh process
    assert await digests_in(store) == []
    assert await store.stat(digest) is None
    assert await store.locate(digest) is None
    with pytest.raises(BlobUnknown):
        await read_all(store.open(digest))
    assert await uploads_in(store) == [upload_id]

    # The client resumes at the recorded size; the torn tail goes.
    size = await store.write_upload(upload_id, 6_000, chunks_of(data[6_000:]))
    assert size == len(data)
    await store.commit_upload(upload_id, digest, size)
    assert await read_all(store.open(digest)) == data
    assert await digests_in(store) == [digest]
    await empty(store)


_CHILD = textwrap.dedent(
    """
    import asyncio, random, sys, uuid
    from moorage.domain.digests import Digest
    from moorage.storage.blobs import build_blob_store

    async def chunks(data):
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    async def main(root, seed):
        store = build_blob_store("filesystem", root=root)
        rng = random.Random(seed)
        while True:
            data = rng.randbytes(rng.randrange(0, 3 << 20))
            upload_id = str(uuid.uuid4())
            await store.start_upload(upload_id)
            size = await store.write_upload(upload_id, 0, chunks(data))
            await store.commit_upload(upload_id, Digest.of(data), size)
            print("committed", flush=True)

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
async def test_killed_process_leaves_only_whole_blobs(root: Path) -> None:
    """kill -9 a process that uploads and commits in a loop, at random moments; every blob
    a fresh store then lists or serves must hash to its digest.

    (This covers process crashes; machine crashes rely on the fsync ordering that the module
    docstring of ``filesystem.py`` sets out.)"""
    rng = random.Random(1)
    committed = 0
    for round_ in range(4):
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CHILD, str(root), str(round_), stdout=asyncio.subprocess.PIPE
        )
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 60) == b"committed\n"
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        committed += 1 + (await child.stdout.read()).count(b"committed\n")
        assert await child.wait() == -signal.SIGKILL

    store = CheckedBlobStore(FilesystemBlobStore(root))
    digests = await digests_in(store)
    assert len(digests) <= committed + 4  # at most one unacknowledged commit per kill
    assert len(digests) >= committed - 1  # the empty blob may repeat
    for digest in digests:
        data = await read_all(store.open(digest))
        assert Digest.of(data, digest.algorithm) == digest
        assert await store.stat(digest) == len(data)
    await empty(store)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
async def test_no_descriptor_outlives_a_call(root: Path) -> None:
    store = CheckedBlobStore(FilesystemBlobStore(root, buffer_size=4_096, chunk_size=4_096))
    data = payload(100_000)
    digest = await put(store, data)
    rng = random.Random(2)
    before = set(os.listdir("/proc/self/fd"))

    for _ in range(3):
        # A stream dropped after one chunk, with a read-ahead in flight.
        stream = store.open(digest)
        await anext(stream)
        assert isinstance(stream, AsyncGenerator)
        await stream.aclose()

        # A stream whose consumer is cancelled, at various moments.
        async def slow_reader() -> None:
            async for _ in store.open(digest):
                await asyncio.sleep(0.001)

        for _ in range(10):
            reading = asyncio.create_task(slow_reader())
            await asyncio.sleep(rng.uniform(0, 0.01))
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading

        # A write refused, one whose source fails, one cancelled mid-stream.
        upload_id = await stage(store, b"abc")
        with pytest.raises(RangeInvalid):
            await store.write_upload(upload_id, 4, chunks_of(b"x"))

        async def failing() -> AsyncIterator[bytes]:
            yield data
            raise ConnectionResetError

        with pytest.raises(ConnectionResetError):
            await store.write_upload(upload_id, 3, failing())

        started = asyncio.Event()

        async def stalled(started: asyncio.Event = started) -> AsyncIterator[bytes]:
            for start in range(0, len(data), 1_000):
                yield data[start : start + 1_000]
            started.set()
            await asyncio.Event().wait()
            yield b""

        task = asyncio.create_task(store.write_upload(upload_id, 3, stalled()))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.cancel_upload(upload_id)

    assert set(os.listdir("/proc/self/fd")) == before
    await empty(store)
