"""A BlobStore in a local directory (POSIX).

Key scheme (everything lives under ``root``, which must be one filesystem: publication is a
rename, and a rename is atomic only within a filesystem)::

    <root>/blobs/<algorithm>/<hex[0:2]>/<hex>    a committed blob; immutable, never written
                                                 in place
    <root>/uploads/<upload_id>/data              the bytes staged for one upload

Anything else under ``blobs/`` (another name, a temporary file someone left) is neither listed
nor served: ``list_digests`` reports only names that fit the scheme. Modification times are
the files' ``st_mtime`` (a rename keeps it: a blob's is its last staged write); a staging
area's is the later of its directory's and its ``data`` file's.

The staging file doubles as the temporary file of an atomic publication, so a commit never
copies bytes. ``commit_upload`` runs, in one executor job:

1. if the blob exists already, keep it as it is (committed blobs are immutable) and go to 3;
2. truncate ``data`` to ``size`` and fsync it; create the fan-out directories (fsyncing each
   new directory's parent); ``os.replace`` ``data`` onto the blob's path; fsync that directory;
3. remove ``uploads/<upload_id>``.

A process or machine crash at any point therefore leaves each blob path either absent or
holding the complete, durable bytes. A crash after step 2 leaves an upload directory without
``data``: the upload reads as unknown, and ``list_uploads`` still reports it for collection.

I/O strategy (chosen by measuring 256 MiB uploads in 64 KiB and 1 MiB chunks): every
system call runs in the loop's default executor, never on the event loop thread. One executor
round trip costs more than writing a 64 KiB chunk, so ``write_upload`` gathers chunks into
batches of ``buffer_size`` bytes (4 MiB) and writes each batch with one ``writev`` while the
next batch is being received; at most one write is in flight, so an upload holds at most two
batches in memory. Reads prefetch the next ``chunk_size`` (1 MiB) block while the caller
consumes the current one. Small operations (start, commit, stat) are one executor job each.

A thread cannot be interrupted, so when a caller is cancelled while a job runs, the method
waits for that job before it re-raises the cancellation: a write must never land after the
call has returned (the next request would already have truncated past it), and a file
descriptor must never be closed under a thread still using it.

Calls on *one* upload must not overlap (the upload service holds a lock per upload); calls on
different uploads and blobs may run concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar, TypeVarTuple

from moorage.domain.digests import SUPPORTED_ALGORITHMS, Digest
from moorage.domain.errors import (
    BlobUnknown,
    InvalidDigest,
    RangeInvalid,
    RegistryError,
    SizeMismatch,
    UploadInvalid,
    UploadUnknown,
)
from moorage.ports.blobs import BlobLocation

BUFFER_SIZE = 4 << 20
CHUNK_SIZE = 1 << 20
# Linux's IOV_MAX is 1024; a batch of many tiny chunks is written before it gets that long.
_MAX_BATCH_CHUNKS = 512
_STAGED_DATA = "data"

# fdatasync flushes the data and the metadata needed to read it back (the size), which is all
# a blob needs; platforms without it fall back to fsync.
_sync_data: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class FilesystemBlobStore:
    """Blobs as files under ``root``; see the module docstring for the layout and guarantees.

    ``root`` need not exist yet; directories are created on first use. Use it through
    :class:`~moorage.storage.blobs.checked.CheckedBlobStore` (``build_blob_store`` does), which
    guarantees that upload ids and digests cannot name a path outside the layout.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        buffer_size: int = BUFFER_SIZE,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        if buffer_size <= 0 or chunk_size <= 0:
            raise ValueError("buffer_size and chunk_size must be positive")
        # Absolute, so that locate() hands out paths that do not depend on the working directory.
        self._root = Path(os.path.abspath(root))
        self._blobs = self._root / "blobs"
        self._uploads = self._root / "uploads"
        self._buffer_size = buffer_size
        self._chunk_size = chunk_size

    @property
    def root(self) -> Path:
        return self._root

    # -- committed blobs ----------------------------------------------------------------

    async def stat(self, digest: Digest) -> int | None:
        return await _run(_file_size, self._blob_path(digest))

    async def locate(self, digest: Digest) -> BlobLocation | None:
        """The blob's file (for sendfile); it stays valid until the blob is deleted."""
        path = self._blob_path(digest)
        size = await _run(_file_size, path)
        return None if size is None else BlobLocation(size, path=path)

    async def open(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream a range of the blob in ``chunk_size`` pieces; bytes past its end are not
        returned. Raises BlobUnknown on the first iteration."""
        reader = _RangeReader(
            self._blob_path(digest),
            offset,
            length,
            self._chunk_size,
            lambda: BlobUnknown(f"blob {digest} is unknown"),
        )
        async for chunk in _stream(reader):
            yield chunk

    async def delete(self, digest: Digest) -> bool:
        """Unlink the blob. Fan-out directories stay: removing one could race a commit that
        is about to rename into it. A commit of the same digest racing this call is the
        caller's to prevent (garbage collection must not delete what is being pushed)."""
        return await _run(_unlink, self._blob_path(digest))

    async def stat_many(self, digests: Sequence[Digest]) -> dict[Digest, int]:
        # One executor job for the lot: a hop to a thread per file costs more than its stat.
        paths = [(digest, self._blob_path(digest)) for digest in digests]
        return await _run(_file_sizes, paths)

    async def delete_many(self, digests: Sequence[Digest]) -> set[Digest]:
        """:meth:`delete` for each, in one executor job."""
        paths = [(digest, self._blob_path(digest)) for digest in digests]
        return await _run(_unlink_many, paths)

    async def list_digests(self, modified_before: datetime | None = None) -> AsyncIterator[Digest]:
        # One executor job per fan-out directory keeps memory flat on large stores.
        before = None if modified_before is None else modified_before.timestamp()
        for algorithm in SUPPORTED_ALGORITHMS:
            base = self._blobs / algorithm
            for prefix in await _run(_fanout_dirs, base):
                for digest in await _run(_blobs_in, base / prefix, algorithm, prefix, before):
                    yield digest

    # -- uploads ------------------------------------------------------------------------

    async def start_upload(self, upload_id: str) -> None:
        """Create ``uploads/<upload_id>/data``, empty.

        Raises UploadInvalid when the upload already exists.
        """
        await _run(_start_upload, self._uploads, upload_id)

    async def write_upload(self, upload_id: str, offset: int, chunks: AsyncIterable[bytes]) -> int:
        """Truncate the staged bytes to ``offset``, write ``chunks`` there; return the new size.

        Raises UploadUnknown, and RangeInvalid (with the staged size) when ``offset`` is past
        the end; both before any chunk is consumed. ``chunks`` must yield immutable ``bytes``:
        they are held until their batch is written. Should ``chunks`` raise, the exception
        propagates unchanged once the write in flight has finished; staged bytes past
        ``offset`` are then undefined until the next call truncates them.
        """
        staged = _StagedWriter(self._upload_dir(upload_id) / _STAGED_DATA, upload_id, offset)
        in_flight: asyncio.Future[None] | None = None
        try:
            await _run(staged.open)
            batch: list[bytes] = []
            batched = written = 0
            async for chunk in chunks:
                if not chunk:
                    continue
                batch.append(chunk)
                batched += len(chunk)
                if batched >= self._buffer_size or len(batch) >= _MAX_BATCH_CHUNKS:
                    if in_flight is not None:
                        await _finish(in_flight)
                    # Not awaited: the next batch is received while this one is written.
                    in_flight = _start(staged.write, batch)
                    written += batched
                    batch = []
                    batched = 0
            if in_flight is not None:
                job, in_flight = in_flight, None
                await _finish(job)
            await _run(staged.finish, batch)
            return offset + written + batched
        finally:
            if in_flight is not None:
                await _wait_out(in_flight)
            staged.close()

    async def upload_size(self, upload_id: str) -> int:
        size = await _run(_file_size, self._upload_dir(upload_id) / _STAGED_DATA)
        if size is None:
            raise _upload_unknown(upload_id)
        return size

    async def read_upload(self, upload_id: str, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream the first ``length`` staged bytes. Raises UploadUnknown on first iteration."""
        reader = _RangeReader(
            self._upload_dir(upload_id) / _STAGED_DATA,
            0,
            length,
            self._chunk_size,
            lambda: _upload_unknown(upload_id),
        )
        async for chunk in _stream(reader):
            yield chunk

    async def commit_upload(self, upload_id: str, digest: Digest, size: int) -> None:
        """Publish the first ``size`` staged bytes atomically (see the module docstring).

        Raises UploadUnknown, and SizeMismatch (staging kept) when fewer bytes are staged.
        """
        await _run(
            _commit,
            self._upload_dir(upload_id),
            upload_id,
            self._blob_path(digest),
            size,
        )

    async def cancel_upload(self, upload_id: str) -> None:
        await _run(_remove_staging, self._upload_dir(upload_id))

    async def list_uploads(self, modified_before: datetime | None = None) -> AsyncIterator[str]:
        before = None if modified_before is None else modified_before.timestamp()
        for upload_id in await _run(_subdirectories, self._uploads):
            if before is None or await _run(_staged_before, self._uploads / upload_id, before):
                yield upload_id

    async def close(self) -> None:
        """Nothing to release: no descriptor outlives the call that opened it."""

    # -- keys ---------------------------------------------------------------------------

    def _blob_path(self, digest: Digest) -> Path:
        return self._blobs / digest.algorithm / digest.hex[:2] / digest.hex

    def _upload_dir(self, upload_id: str) -> Path:
        return self._uploads / upload_id


# -- running blocking calls ---------------------------------------------------------------


def _start(fn: Callable[[*Ts], T], *args: *Ts) -> asyncio.Future[T]:
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def _run(fn: Callable[[*Ts], T], *args: *Ts) -> T:
    return await _finish(_start(fn, *args))


async def _finish(job: asyncio.Future[T]) -> T:
    """Await an executor job; if cancelled meanwhile, wait for the thread to finish first."""
    try:
        # Shielded: cancelling the awaiting task must not mark the job done while the thread
        # still runs it.
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        await _wait_out(job)
        raise


async def _wait_out(job: asyncio.Future[T]) -> None:
    """Wait until ``job``'s thread is done, ignoring its outcome (the caller is already
    leaving with an exception). A cancellation received meanwhile is raised afterwards."""
    cancelled = False
    while not job.done():
        try:
            await asyncio.wait((job,))
        except asyncio.CancelledError:
            cancelled = True
    if not job.cancelled():
        job.exception()  # mark it retrieved: the caller's own exception is the one to report
    if cancelled:
        raise asyncio.CancelledError


# -- the blocking side (runs in executor threads) -----------------------------------------


class _StagedWriter:
    """The descriptor of one ``write_upload`` call, used by one executor job at a time."""

    def __init__(self, path: Path, upload_id: str, offset: int) -> None:
        self._path = path
        self._upload_id = upload_id
        self._offset = offset
        self._fd = -1

    def open(self) -> None:
        """Open the staging file and cut it at ``offset`` (dropping a crashed call's tail)."""
        try:
            fd = os.open(self._path, os.O_WRONLY)  # no O_CREAT: a cancelled upload stays gone
        except FileNotFoundError:
            raise _upload_unknown(self._upload_id) from None
        self._fd = fd
        size = os.fstat(fd).st_size
        if self._offset > size:
            raise RangeInvalid(
                f"offset {self._offset} is past the {size} bytes staged for upload "
                f"{self._upload_id}",
                size=size,
            )
        if size > self._offset:
            os.ftruncate(fd, self._offset)
        os.lseek(fd, self._offset, os.SEEK_SET)

    def write(self, buffers: list[bytes]) -> None:
        _write_all(self._fd, buffers)

    def finish(self, buffers: list[bytes]) -> None:
        # No fsync: staged bytes need only survive a process crash (see the port); the
        # commit syncs the data before publishing it.
        _write_all(self._fd, buffers)
        self.close()

    def close(self) -> None:
        # On the loop thread only on error paths, once no job uses the descriptor; closing a
        # local file that was just synced (or abandoned) does not block.
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class _RangeReader:
    """Reads ``[offset, offset + length)`` of a file, clipped to its size, in chunks."""

    def __init__(
        self,
        path: Path,
        offset: int,
        length: int | None,
        chunk_size: int,
        unknown: Callable[[], RegistryError],
    ) -> None:
        self._path = path
        self._position = offset
        self._length = length
        self._chunk_size = chunk_size
        self._unknown = unknown
        self._remaining = 0
        self._fd = -1

    @property
    def exhausted(self) -> bool:
        return self._remaining == 0

    def first(self) -> bytes:
        """Open the file and read the first chunk (closing at once if that is all)."""
        try:
            self._fd = os.open(self._path, os.O_RDONLY)
        except FileNotFoundError:
            raise self._unknown() from None
        size = os.fstat(self._fd).st_size
        end = size if self._length is None else min(size, self._position + self._length)
        self._remaining = max(0, end - self._position)
        return self.next()

    def next(self) -> bytes:
        data = os.pread(self._fd, min(self._chunk_size, self._remaining), self._position)
        self._position += len(data)
        # A short read means the file shrank (a staging file cut by a new write): stop there.
        self._remaining = self._remaining - len(data) if data else 0
        if self._remaining == 0:
            self.close()
        return data

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


async def _stream(reader: _RangeReader) -> AsyncIterator[bytes]:
    """Yield the reader's chunks, reading the next one while the caller handles this one."""
    prefetch: asyncio.Future[bytes] | None = None
    try:
        chunk = await _run(reader.first)
        while chunk:
            prefetch = None if reader.exhausted else _start(reader.next)
            yield chunk
            if prefetch is None:
                break
            job, prefetch = prefetch, None
            chunk = await _finish(job)
    finally:
        if prefetch is not None:
            await _wait_out(prefetch)
        reader.close()


def _write_all(fd: int, buffers: list[bytes]) -> None:
    """writev until every buffer is written (a regular file may accept less per call)."""
    pending: list[bytes | memoryview] = list(buffers)
    first = 0
    while first < len(pending):
        written = os.writev(fd, pending[first:] if first else pending)
        while first < len(pending) and written >= len(pending[first]):
            written -= len(pending[first])
            first += 1
        if written:
            pending[first] = memoryview(pending[first])[written:]


def _file_size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def _unlink_many(paths: list[tuple[Digest, Path]]) -> set[Digest]:
    return {digest for digest, path in paths if _unlink(path)}


def _file_sizes(paths: list[tuple[Digest, Path]]) -> dict[Digest, int]:
    sizes = {}
    for digest, path in paths:
        size = _file_size(path)
        if size is not None:
            sizes[digest] = size
    return sizes


def _start_upload(uploads: Path, upload_id: str) -> None:
    _make_dirs(uploads)
    staging = uploads / upload_id
    try:
        os.mkdir(staging)
    except FileExistsError:
        raise UploadInvalid(f"upload {upload_id} already exists") from None
    # Not synced: a staging area lost to power loss reads as an unknown upload, which the
    # client starts again; only committed blobs are made durable.
    os.close(os.open(staging / _STAGED_DATA, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def _commit(staging: Path, upload_id: str, final: Path, size: int) -> None:
    data = staging / _STAGED_DATA
    try:
        fd = os.open(data, os.O_WRONLY)
    except FileNotFoundError:
        raise _upload_unknown(upload_id) from None
    try:
        staged = os.fstat(fd).st_size
        if size > staged:
            raise SizeMismatch(f"upload {upload_id} holds {staged} bytes; cannot commit {size}")
        # Committed blobs are immutable: an existing one is kept as it is. Two commits of one
        # digest may both find it absent and both rename; the loser replaces the file with
        # identical bytes (the digest was verified), which readers holding it open never see.
        exists = os.path.lexists(final)
        if not exists:
            if staged > size:
                os.ftruncate(fd, size)
            _sync_data(fd)
    finally:
        os.close(fd)
    if not exists:
        _make_dirs(final.parent)
        try:
            os.replace(data, final)
        except FileNotFoundError:
            # The staged bytes went since they were checked (garbage collection removed the
            # staging area: a monolithic upload has no session, so its area looks orphaned).
            # The fan-out directory exists (made just above, never removed): only the
            # source can be missing.
            raise _upload_unknown(upload_id) from None
        _sync_dir(final.parent)
    _remove_staging(staging)


def _remove_staging(staging: Path) -> None:
    """Remove an upload directory (flat by construction); absent already is fine."""
    try:
        names = os.listdir(staging)
    except FileNotFoundError:
        return
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging / name)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(staging)


def _make_dirs(path: Path) -> None:
    """``mkdir -p`` that makes each directory it creates durable (fsync of the parent).

    A directory found existing is trusted to be durable: should a concurrent caller have just
    created it and not yet synced its parent, our later fsync of a directory inside it commits
    the journal that holds its creation too (ext4, XFS).
    """
    try:
        os.mkdir(path)
    except FileExistsError:
        return
    except FileNotFoundError:
        _make_dirs(path.parent)
        try:
            os.mkdir(path)
        except FileExistsError:
            return
    _sync_dir(path.parent)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _subdirectories(path: Path) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _fanout_dirs(base: Path) -> list[str]:
    return [name for name in _subdirectories(base) if len(name) == 2]


def _blobs_in(
    directory: Path, algorithm: str, prefix: str, before: float | None = None
) -> list[Digest]:
    """Digests of the regular files in one fan-out directory whose names fit the scheme
    (and, with ``before``, whose mtime is earlier than that POSIX time)."""
    digests: list[Digest] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if not entry.name.startswith(prefix) or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    digest = Digest.parse(f"{algorithm}:{entry.name}")
                except InvalidDigest:
                    continue  # a stray or temporary file: not a blob
                if before is not None:
                    try:
                        if entry.stat(follow_symlinks=False).st_mtime >= before:
                            continue
                    except FileNotFoundError:
                        continue  # deleted meanwhile
                digests.append(digest)
    except FileNotFoundError:
        pass
    return digests


def _staged_before(staging: Path, before: float) -> bool:
    """True when neither the staging directory nor its data changed since ``before``."""
    latest = 0.0
    for path in (staging, staging / _STAGED_DATA):
        try:
            latest = max(latest, os.stat(path).st_mtime)
        except FileNotFoundError:
            continue
    return latest < before


def _upload_unknown(upload_id: str) -> UploadUnknown:
    return UploadUnknown(f"upload {upload_id} is unknown")
