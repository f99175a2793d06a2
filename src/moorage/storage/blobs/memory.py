"""A BlobStore held in dictionaries, for unit and in-process API tests.

Same semantics as the filesystem adapter (the contract suite runs on both); nothing is
durable and nothing outlives the instance.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

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

    def __init__(self, *, chunk_size: int = CHUNK_SIZE) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._chunk_size = chunk_size
        self._blobs: dict[Digest, bytes] = {}
        self._uploads: dict[str, bytearray] = {}

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
        return self._blobs.pop(digest, None) is not None

    async def list_digests(self) -> AsyncIterator[Digest]:
        # A snapshot: the caller may delete while iterating (garbage collection does).
        for digest in list(self._blobs):
            yield digest

    # -- uploads ------------------------------------------------------------------------

    async def start_upload(self, upload_id: str) -> None:
        """Raises UploadInvalid when ``upload_id`` already has a staging area."""
        if upload_id in self._uploads:
            raise UploadInvalid(f"upload {upload_id} already exists")
        self._uploads[upload_id] = bytearray()

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
        async for chunk in chunks:
            staged += chunk
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
        self._blobs.setdefault(digest, bytes(staged[:size]))
        del self._uploads[upload_id]

    async def cancel_upload(self, upload_id: str) -> None:
        self._uploads.pop(upload_id, None)

    async def list_uploads(self) -> AsyncIterator[str]:
        for upload_id in list(self._uploads):
            yield upload_id

    async def close(self) -> None:
        """Nothing to release; the contents stay readable (tests inspect them)."""

    # -- helpers ------------------------------------------------------------------------

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
