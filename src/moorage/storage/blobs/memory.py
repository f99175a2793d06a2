"""A BlobStore held in dictionaries, for unit and in-process API tests.

Same semantics as the filesystem adapter (the contract suite runs on both); nothing is
durable and nothing outlives the instance.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

from moorage.domain.digests import Digest
from moorage.domain.errors import (
    BlobUnknown,
    RangeInvalid,
    SizeMismatch,
    UploadInvalid,
    UploadUnknown,
)
from moorage.ports.blobs import BlobLocation

CHUNK_SIZE = 1 << 20


class MemoryBlobStore:
    """Blobs in a dict keyed by digest; each staging area is a ``bytearray``.

    Every method completes without awaiting anything but the caller's chunks, so each
    publication is atomic with respect to other tasks.
    """

    def __init__(
        self, *, chunk_size: int = CHUNK_SIZE, clock: Callable[[], datetime] | None = None
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._chunk_size = chunk_size
        self._clock = clock or (lambda: datetime.now(UTC))
        self._blobs: dict[Digest, bytes] = {}
        self._uploads: dict[str, bytearray] = {}
        # When each blob and staging area was last written (the filesystem's mtime).
        self._modified: dict[Digest | str, datetime] = {}

    # -- committed blobs ----------------------------------------------------------------

    async def stat(self, digest: Digest) -> int | None:
        blob = self._blobs.get(digest)
        return None if blob is None else len(blob)

    async def locate(self, digest: Digest) -> BlobLocation | None:
        blob = self._blobs.get(digest)
        return None if blob is None else BlobLocation(len(blob))

    async def open(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream a range of the blob. Raises BlobUnknown on the first iteration."""
        blob = self._blobs.get(digest)
        if blob is None:
            raise BlobUnknown(f"blob {digest} is unknown")
        async for chunk in self._slices(blob, offset, length):
            yield chunk

    async def delete(self, digest: Digest) -> bool:
        self._modified.pop(digest, None)
        return self._blobs.pop(digest, None) is not None

    async def stat_many(self, digests: Sequence[Digest]) -> dict[Digest, int]:
        return {d: len(self._blobs[d]) for d in digests if d in self._blobs}

    async def delete_many(self, digests: Sequence[Digest]) -> set[Digest]:
        return {d for d in digests if await self.delete(d)}

    async def list_digests(self, modified_before: datetime | None = None) -> AsyncIterator[Digest]:
        # A snapshot: the caller may delete while iterating (garbage collection does).
        for digest in list(self._blobs):
            if self._written_before(digest, modified_before):
                yield digest

    # -- uploads ------------------------------------------------------------------------

    async def start_upload(self, upload_id: str) -> None:
        """Raises UploadInvalid when ``upload_id`` already has a staging area."""
        if upload_id in self._uploads:
            raise UploadInvalid(f"upload {upload_id} already exists")
        self._uploads[upload_id] = bytearray()
        self._modified[upload_id] = self._clock()

    async def write_upload(self, upload_id: str, offset: int, chunks: AsyncIterable[bytes]) -> int:
        """Truncate to ``offset`` and append ``chunks``; return the new size.

        Raises UploadUnknown, and RangeInvalid (with the staged size) when ``offset`` is past
        the end. Should ``chunks`` raise, the bytes appended so far stay staged past the
        recorded size, where the next call's truncation discards them.
        """
        staged = self._staged(upload_id)
        if offset > len(staged):
            raise RangeInvalid(
                f"offset {offset} is past the {len(staged)} bytes staged for upload {upload_id}",
                size=len(staged),
            )
        del staged[offset:]
        self._touch(upload_id)
        async for chunk in chunks:
            staged += chunk
            self._touch(upload_id)
        return len(staged)

    async def upload_size(self, upload_id: str) -> int:
        return len(self._staged(upload_id))

    async def read_upload(self, upload_id: str, length: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self._slices(self._staged(upload_id), 0, length):
            yield chunk

    async def commit_upload(self, upload_id: str, digest: Digest, size: int) -> None:
        """Publish the first ``size`` staged bytes; keep an existing blob instead.

        Raises UploadUnknown, and SizeMismatch (staging kept) when fewer bytes are staged.
        """
        staged = self._staged(upload_id)
        if size > len(staged):
            raise SizeMismatch(
                f"upload {upload_id} holds {len(staged)} bytes; cannot commit {size}"
            )
        if digest not in self._blobs:
            # Like a rename on a filesystem: the blob keeps the staging area's write time.
            self._blobs[digest] = bytes(staged[:size])
            self._modified[digest] = self._modified[upload_id]
        del self._uploads[upload_id]
        del self._modified[upload_id]

    async def cancel_upload(self, upload_id: str) -> None:
        if self._uploads.pop(upload_id, None) is not None:
            del self._modified[upload_id]

    async def list_uploads(self, modified_before: datetime | None = None) -> AsyncIterator[str]:
        for upload_id in list(self._uploads):
            if self._written_before(upload_id, modified_before):
                yield upload_id

    async def close(self) -> None:
        """Nothing to release; the contents stay readable (tests inspect them)."""

    # -- helpers ------------------------------------------------------------------------

    def _touch(self, upload_id: str) -> None:
        if upload_id in self._uploads:  # not cancelled while the caller's chunks were awaited
            self._modified[upload_id] = self._clock()

    def _written_before(self, key: Digest | str, instant: datetime | None) -> bool:
        written = self._modified.get(key)
        return instant is None or (written is not None and written < instant)

    def _staged(self, upload_id: str) -> bytearray:
        staged = self._uploads.get(upload_id)
        if staged is None:
            raise UploadUnknown(f"upload {upload_id} is unknown")
        return staged

    async def _slices(
        self, data: bytes | bytearray, offset: int, length: int | None
    ) -> AsyncIterator[bytes]:
        # Slices, not a memoryview: a view would stop a staged bytearray from being resized
        # by a write_upload that runs while the caller reads.
        end = len(data) if length is None else min(len(data), offset + length)
        for start in range(offset, end, self._chunk_size):
            chunk = bytes(data[start : min(end, start + self._chunk_size)])
            if not chunk:
                return  # the staged bytes were cut meanwhile
            yield chunk
