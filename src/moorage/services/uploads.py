"""Blob uploads: sessions, chunks, completion with digest verification, cross-repo mounts.

Order of a completion, chosen so that a crash at any step leaves nothing visible that is
wrong: (1) verify the digest of the staged bytes, (2) publish them in the blob store under
that digest (atomic there), (3) in one metadata transaction record the blob, link it to the
repository and end the session. A crash after (2) leaves an unrecorded blob file that
garbage collection removes; it never leaves a recorded blob without bytes.

Step (3) runs under :meth:`MetadataTransaction.lock_blob_files` and checks that the bytes are
still there before it commits. Publishing in (2) keeps a blob that already exists, and
garbage collection may have been deleting exactly that blob: it deletes bytes only under
the same lock and only when no row records them, so either it finished first (the check
fails, the upload answers UploadUnknown and the client uploads again) or it runs after this
commit and finds the blob recorded. docs/gc.md has the whole protocol.

The staged size recorded in the metadata store is the truth about an upload: a chunk counts
once its bytes are durable *and* the new size is recorded, so a request killed half-way
leaves the session at its previous size and the next chunk overwrites the partial tail.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import replace
from datetime import datetime

from moorage.domain.digests import Digest, StreamingHasher
from moorage.domain.errors import (
    EmptyUpload,
    InvalidName,
    LayerAlreadyExists,
    RangeInvalid,
    SizeMismatch,
    UploadUnknown,
)
from moorage.domain.models import BlobRecord, UploadSession
from moorage.domain.names import RepositoryName
from moorage.ports.blobs import BlobStore
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore, MetadataTransaction
from moorage.services.repositories import RepositoryService, require
from moorage.services.write_slots import WriteLimits, WriteSlots

# Hash states kept for uploads in progress (a few hundred bytes each).
MAX_CACHED_HASHERS = 10_000


class UploadService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        repositories: RepositoryService,
        clock: Clock,
        limits: WriteLimits | None = None,
        *,
        slots: WriteSlots | None = None,
    ) -> None:
        """``slots`` (else new ones of ``limits``) bound the bodies written at once; the
        services of every region share one set."""
        self._metadata = metadata
        self._blobs = blobs
        self._repositories = repositories
        self._clock = clock
        # Hash state of uploads in progress in this process, valid while ``size`` matches the
        # session. Without it (another process, a restart) completion re-reads the staged bytes.
        self._hashers: dict[str, StreamingHasher] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # Each body being written holds buffers (the filesystem store: up to 8 MiB); past the
        # limits, clients are asked to come back rather than exhaust memory (write_slots.py).
        self._slots = slots or WriteSlots(limits or WriteLimits())

    async def start(self, registry_id: str, name: str) -> UploadSession:
        """Open an upload session. Raises InvalidName, RepositoryNotFound."""
        upload_id = str(uuid.uuid4())
        now = self._clock()
        # Staging first: a crash before the session is recorded leaves only an orphan staging
        # area (collected later), never a session without one.
        await self._blobs.start_upload(upload_id)
        try:
            async with self._metadata.transaction() as tx:
                repository = await self._repositories.for_push(tx, registry_id, name)
                session = UploadSession(upload_id, repository.id, 0, now, now)
                await tx.create_upload(session)
        except BaseException:
            await self._blobs.cancel_upload(upload_id)
            raise
        self._keep_hasher(upload_id, StreamingHasher())
        return session

    async def status(self, registry_id: str, name: str, upload_id: str) -> UploadSession:
        """Raises UploadUnknown (also for a session of another repository)."""
        async with self._metadata.read() as tx:
            return await self._session(tx, registry_id, name, upload_id)

    async def append(
        self,
        registry_id: str,
        name: str,
        upload_id: str,
        body: AsyncIterable[bytes],
        *,
        chunk_range: tuple[int, int] | None = None,
        length: int | None = None,
        client: str | None = None,
    ) -> UploadSession:
        """Append a chunk of ``length`` bytes (None: whatever the body holds).

        ``chunk_range`` (from Content-Range, inclusive) must start at the current size.
        ``client`` is the sender's address, for the per-client share of write slots.
        Raises UploadUnknown, RangeInvalid (with the current size), SizeMismatch,
        TooManyRequests.
        """
        async with self._lock(upload_id):
            session = await self.status(registry_id, name, upload_id)
            return await self._append(
                session, body, chunk_range, length, slot=(registry_id, client)
            )

    async def complete(
        self,
        registry_id: str,
        name: str,
        upload_id: str,
        digest: Digest,
        body: AsyncIterable[bytes] | None = None,
        *,
        chunk_range: tuple[int, int] | None = None,
        length: int | None = None,
        client: str | None = None,
    ) -> BlobRecord:
        """Append an optional last chunk, verify ``digest`` and publish the blob.

        Raises UploadUnknown, RangeInvalid, SizeMismatch, DigestMismatch. On a digest
        mismatch the session stays open (the client may cancel it or retry).
        """
        async with self._lock(upload_id):
            session = await self.status(registry_id, name, upload_id)
            if body is not None:
                # Not recorded on its own: the completion's transaction ends the session.
                session = await self._append(
                    session, body, chunk_range, length, slot=(registry_id, client), record=False
                )
            hasher = self._hashers.pop(upload_id, None)
            if (
                hasher is None
                or hasher.algorithm != digest.algorithm
                or hasher.size != session.size
            ):
                hasher = await self._rehash(upload_id, digest.algorithm, session.size)
            try:
                hasher.verify(digest)
            except BaseException:
                self._keep_hasher(upload_id, hasher)
                raise
            await self._blobs.commit_upload(upload_id, digest, session.size)
            now = self._clock()
            async with self._metadata.transaction() as tx:
                blob = await self._record(tx, session.repository_id, digest, session.size, now)
                await tx.delete_upload(upload_id)
            self._forget(upload_id)
            return blob

    async def complete_layer(
        self, registry_id: str, name: str, upload_id: str, digest: Digest
    ) -> BlobRecord:
        """ECR's CompleteLayerUpload: :meth:`complete` with ECR's checks first, in this order:
        UploadUnknown; EmptyUpload when no part was received; LayerAlreadyExists when the
        repository already holds ``digest`` (judged by the digest claimed, before any hashing:
        the upload is then dropped, and the blob stays as it was); then DigestMismatch (the
        session stays open, as with :meth:`complete`).
        """
        async with self._lock(upload_id):
            session = await self.status(registry_id, name, upload_id)
            if session.size == 0:
                raise EmptyUpload(
                    f"The upload with id '{upload_id}' does not contain any layer parts"
                )
            async with self._metadata.read() as tx:
                existing = await tx.get_linked_blob(session.repository_id, digest)
        if existing is not None:
            await self.cancel(registry_id, name, upload_id)
            raise LayerAlreadyExists(
                f"The layer '{digest}' already exists in the repository with name '{name}' in "
                f"the registry with id '{registry_id}'"
            )
        return await self.complete(registry_id, name, upload_id, digest)

    async def upload(
        self,
        registry_id: str,
        name: str,
        digest: Digest,
        body: AsyncIterable[bytes],
        *,
        length: int | None = None,
        client: str | None = None,
    ) -> BlobRecord:
        """A whole blob in one request (``POST ...?digest=``).

        No session is recorded: nothing can resume a request, so the staged bytes either
        become the blob or are dropped. Raises InvalidName, RepositoryNotFound (before the
        body is read), SizeMismatch, DigestMismatch.
        """
        await self._repositories.check_push(registry_id, name)
        upload_id = str(uuid.uuid4())
        await self._blobs.start_upload(upload_id)
        try:
            hasher = StreamingHasher(digest.algorithm)
            with self._slots.hold(registry_id, client):
                size = await self._blobs.write_upload(upload_id, 0, _measured(body, hasher, length))
            hasher.verify(digest)
            await self._blobs.commit_upload(upload_id, digest, size)
        except BaseException:
            await self._blobs.cancel_upload(upload_id)
            raise
        now = self._clock()
        async with self._metadata.transaction() as tx:
            repository = await self._repositories.for_push(tx, registry_id, name)
            return await self._record(tx, repository.id, digest, size, now)

    async def cancel(self, registry_id: str, name: str, upload_id: str) -> None:
        """End a session and drop its bytes. Raises UploadUnknown."""
        async with self._lock(upload_id):
            async with self._metadata.transaction() as tx:
                await self._session(tx, registry_id, name, upload_id)
                await tx.delete_upload(upload_id)
            await self._blobs.cancel_upload(upload_id)
            self._forget(upload_id)

    async def mount(
        self, registry_id: str, name: str, digest: Digest, source: str
    ) -> BlobRecord | None:
        """Link a blob of repository ``source`` into repository ``name`` without moving bytes.

        Returns None when ``source`` does not hold the blob (the caller then starts an upload).
        The caller decides whether it may read ``source``.
        """
        async with self._metadata.transaction() as tx:
            target = await self._repositories.for_push(tx, registry_id, name)
            blob = await self._linked_in(tx, registry_id, source, digest)
            if blob is None:
                return None
            await tx.link_blob(target.id, digest, self._clock())
            return blob

    async def mount_sources(self, registry_id: str, digest: Digest, limit: int) -> list[str]:
        """Repositories of the registry that hold the blob: where a mount without ``from``
        may take it from, once the caller is known to be allowed to read one of them."""
        async with self._metadata.read() as tx:
            return (await tx.repositories_with_blob(registry_id, digest))[:limit]

    # -- helpers ------------------------------------------------------------------------

    async def _record(
        self, tx: MetadataTransaction, repository_id: int, digest: Digest, size: int, now: datetime
    ) -> BlobRecord:
        """Record a blob just committed to the blob store and link it (step 3 above).

        Raises UploadUnknown when garbage collection deleted the bytes in the meantime.
        """
        await tx.lock_blob_files([digest])
        await tx.put_blob(digest, size, now)
        await tx.link_blob(repository_id, digest, now)
        if await self._blobs.stat(digest) is None:
            raise UploadUnknown(
                f"blob {digest} was garbage-collected while its upload completed; upload it again"
            )
        blob = await tx.get_blob(digest)
        assert blob is not None  # recorded in this very transaction
        return blob

    async def _append(
        self,
        session: UploadSession,
        body: AsyncIterable[bytes],
        chunk_range: tuple[int, int] | None,
        length: int | None,
        *,
        slot: tuple[str, str | None],
        record: bool = True,
    ) -> UploadSession:
        """Write a chunk; with ``record``, record the new size (the chunk then counts)."""
        if chunk_range is not None:
            start, end = chunk_range
            if start != session.size or end < start:
                raise RangeInvalid(
                    f"chunk {start}-{end} does not continue the upload, which holds "
                    f"{session.size} bytes",
                    size=session.size,
                )
            if length is not None and length != end - start + 1:
                raise SizeMismatch(f"Content-Length {length} does not match range {start}-{end}")
            length = end - start + 1
        hasher = self._hashers.pop(session.id, None)
        if hasher is not None and hasher.size != session.size:
            hasher = None
        if hasher is None and session.size == 0:
            hasher = StreamingHasher()
        try:
            with self._slots.hold(*slot):
                new_size = await self._blobs.write_upload(
                    session.id, session.size, _measured(body, hasher, length)
                )
        except RangeInvalid:
            # The store holds fewer bytes than the session recorded: staged bytes were lost
            # (power loss before they reached the disk). The client must start again.
            raise UploadUnknown(
                f"upload {session.id} lost its staged bytes; start the upload again"
            ) from None
        now = self._clock()
        if record:
            async with self._metadata.transaction() as tx:
                await tx.update_upload(session.id, new_size, now)
        if hasher is not None:
            self._keep_hasher(session.id, hasher)
        return replace(session, size=new_size, updated_at=now)

    async def _rehash(self, upload_id: str, algorithm: str, size: int) -> StreamingHasher:
        hasher = StreamingHasher(algorithm)
        async for chunk in self._blobs.read_upload(upload_id, size):
            hasher.update(chunk)
        return hasher

    async def _session(
        self, tx: MetadataTransaction, registry_id: str, name: str, upload_id: str
    ) -> UploadSession:
        repository = await require(tx, registry_id, RepositoryName(name))
        session = await tx.get_upload(upload_id)
        if session is None or session.repository_id != repository.id:
            raise UploadUnknown(f"upload {upload_id} is unknown to repository '{name}'")
        return session

    async def _linked_in(
        self, tx: MetadataTransaction, registry_id: str, source: str, digest: Digest
    ) -> BlobRecord | None:
        try:
            name = RepositoryName(source)
        except InvalidName:
            return None
        repository = await tx.get_repository(registry_id, name)
        if repository is None:
            return None
        return await tx.get_linked_blob(repository.id, digest)

    @property
    def writes_in_progress(self) -> int:
        """Upload bodies being written now (for monitoring)."""
        return self._slots.in_use

    def _keep_hasher(self, upload_id: str, hasher: StreamingHasher) -> None:
        """Remember an upload's hash state; abandoned uploads must not grow this forever,
        so past :data:`MAX_CACHED_HASHERS` the oldest is forgotten (its upload, should it
        ever complete, re-reads its staged bytes instead)."""
        self._hashers.pop(upload_id, None)
        self._hashers[upload_id] = hasher
        while len(self._hashers) > MAX_CACHED_HASHERS:
            del self._hashers[next(iter(self._hashers))]

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = self._locks[upload_id] = asyncio.Lock()
        return lock

    def _forget(self, upload_id: str) -> None:
        self._hashers.pop(upload_id, None)


async def _measured(
    body: AsyncIterable[bytes], hasher: StreamingHasher | None, length: int | None
) -> AsyncIterator[bytes]:
    """Pass ``body`` through, hashing it, and fail unless it is exactly ``length`` bytes."""
    received = 0
    async for chunk in body:
        received += len(chunk)
        if length is not None and received > length:
            raise SizeMismatch(f"body is longer than the declared {length} bytes")
        if hasher is not None:
            hasher.update(chunk)
        yield chunk
    if length is not None and received != length:
        raise SizeMismatch(f"body has {received} bytes; {length} were declared")
