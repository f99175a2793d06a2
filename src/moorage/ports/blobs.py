"""The BlobStore port: content-addressed bytes plus a staging area for uploads.

Adapters hold only their backend's logic; hashing and digest verification happen in the
upload service, which calls :meth:`BlobStore.commit_upload` only with a verified digest.

Contract, shared by every adapter and checked by ``tests/contract/blob_store_suite.py``:

- Committed blobs are immutable. Committing a digest that already exists is harmless: the
  staged bytes are discarded and the existing blob is kept.
- A blob is visible (``stat``, ``open``, ``locate``) only once committed in full; readers never
  see partial content.
- ``write_upload`` is all-or-nothing per call as far as the *recorded* size is concerned:
  the caller records the size it returns, and the next call passes that size as ``offset``,
  which discards anything a crashed earlier call wrote past it.
- Every method is a coroutine and may be cancelled by its caller.
- The listings (``list_digests``, ``list_uploads``) are for garbage collection, which looks
  for bytes no metadata records (left by a crash). ``modified_before`` keeps only what was
  last written before that instant: a committed blob when its bytes were last written (at
  the latest, its commit), a staging area when a chunk was last written to it. A listing
  may miss or repeat names added or removed while it runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from moorage.domain.digests import Digest


class BlobStoreError(Exception):
    """The blob store failed (I/O error, backend unavailable, adapter bug).

    Not a :class:`RegistryError`: nothing the client did is wrong, and the protocols answer it
    like any unexpected error (a 500 with a request id; the cause goes to the log).
    """

    def __init__(self, operation: str, cause: BaseException) -> None:
        super().__init__(f"blob store {operation} failed: {type(cause).__name__}: {cause}")
        self.operation = operation


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """How a committed blob can be served.

    ``path``: a local file the server may send with sendfile. ``url``: a URL the client may be
    redirected to (an object store's presigned URL). Neither: stream it with ``open``.
    """

    size: int
    path: Path | None = None
    url: str | None = None


class BlobStore(Protocol):
    # -- committed blobs ----------------------------------------------------------------
    async def stat(self, digest: Digest) -> int | None:
        """Size of the committed blob, or None when absent."""
        ...

    async def locate(self, digest: Digest) -> BlobLocation | None:
        """Where the blob can be served from, or None when absent."""
        ...

    def open(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (all when None) from ``offset``. Raises BlobUnknown."""
        ...

    async def delete(self, digest: Digest) -> bool:
        """Remove a committed blob; False when it was absent."""
        ...

    async def stat_many(self, digests: Sequence[Digest]) -> dict[Digest, int]:
        """The sizes of those of ``digests`` that are committed, in one call (garbage
        collection asks about hundreds of blobs at a time)."""
        ...

    async def delete_many(self, digests: Sequence[Digest]) -> set[Digest]:
        """Remove the committed blobs among ``digests``, in one call; those removed (an
        object store deletes a batch in one request)."""
        ...

    def list_digests(self, modified_before: datetime | None = None) -> AsyncIterator[Digest]:
        """Every committed blob's digest (last written before ``modified_before`` when
        given), in no particular order."""
        ...

    # -- uploads ------------------------------------------------------------------------
    async def start_upload(self, upload_id: str) -> None:
        """Create an empty staging area for ``upload_id``."""
        ...

    async def write_upload(self, upload_id: str, offset: int, chunks: AsyncIterable[bytes]) -> int:
        """Write ``chunks`` at ``offset`` (discarding staged bytes past it); return the new size.

        The data survives a crash of this process once this returns (it is in the operating
        system's cache); only :meth:`commit_upload` makes bytes durable against power loss.
        Staged bytes lost that way surface at completion, where the digest is checked.
        Raises UploadUnknown.
        """
        ...

    async def upload_size(self, upload_id: str) -> int:
        """Bytes currently staged. Raises UploadUnknown."""
        ...

    def read_upload(self, upload_id: str, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream the first ``length`` staged bytes (all when None). Raises UploadUnknown."""
        ...

    async def commit_upload(self, upload_id: str, digest: Digest, size: int) -> None:
        """Publish the first ``size`` staged bytes as blob ``digest`` atomically; drop staging.

        ``digest`` must already be verified by the caller. Raises UploadUnknown.
        """
        ...

    async def cancel_upload(self, upload_id: str) -> None:
        """Drop the staging area; no error if it is already gone."""
        ...

    def list_uploads(self, modified_before: datetime | None = None) -> AsyncIterator[str]:
        """Ids of every staging area (last written before ``modified_before`` when given)."""
        ...

    async def close(self) -> None: ...
