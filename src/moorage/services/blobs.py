"""Reading and deleting the blobs of a repository."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from moorage.domain.digests import Digest
from moorage.domain.errors import BlobUnknown, Unsupported
from moorage.domain.models import BlobRecord
from moorage.domain.names import RepositoryName
from moorage.ports.blobs import BlobLocation, BlobStore
from moorage.ports.metadata import MetadataStore
from moorage.services.repositories import require


def _unknown(digest: Digest) -> BlobUnknown:
    return BlobUnknown(
        f"blob {digest} is unknown to the repository", detail={"digest": str(digest)}
    )


class BlobService:
    def __init__(self, metadata: MetadataStore, blobs: BlobStore) -> None:
        self._metadata = metadata
        self._blobs = blobs

    def in_region(self, region: str) -> BlobService:
        """The same service for the repositories of ``region``."""
        if region == self._metadata.region:
            return self
        return BlobService(self._metadata.in_region(region), self._blobs)

    async def stat(self, registry_id: str, name: str, digest: Digest) -> BlobRecord:
        """The blob if it is linked to the repository. Raises RepositoryNotFound, BlobUnknown."""
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            blob = await tx.get_linked_blob(repository.id, digest)
        if blob is None:
            raise _unknown(digest)
        return blob

    async def availability(
        self, registry_id: str, name: str, digests: Sequence[Digest]
    ) -> dict[Digest, BlobRecord | None]:
        """ECR's BatchCheckLayerAvailability: each blob if linked to the repository, else None.

        Raises InvalidName, RepositoryNotFound.
        """
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            return {d: await tx.get_linked_blob(repository.id, d) for d in dict.fromkeys(digests)}

    async def locate(
        self, registry_id: str, name: str, digest: Digest
    ) -> tuple[BlobRecord, BlobLocation]:
        """Where to serve the blob from. Raises RepositoryNotFound, BlobUnknown."""
        blob = await self.stat(registry_id, name, digest)
        location = await self._blobs.locate(digest)
        if location is None:
            # Recorded but without bytes: only possible after outside interference with the
            # blob store. Say so as an unknown blob rather than fail later mid-stream.
            raise _unknown(digest)
        return blob, location

    def open(self, digest: Digest, offset: int, length: int | None) -> AsyncIterator[bytes]:
        """Stream a blob that :meth:`locate` found."""
        return self._blobs.open(digest, offset, length)

    async def delete(self, registry_id: str, name: str, digest: Digest) -> None:
        """Remove the blob from the repository. Its bytes go when no repository uses them
        (garbage collection).

        Raises RepositoryNotFound, BlobUnknown, and Unsupported while a manifest in the
        repository still uses the blob: deleting it would break that image for every puller.
        """
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            users = await tx.blob_users(repository.id, digest)
            if users:
                raise Unsupported(
                    f"blob {digest} is used by manifest {users[0]}; delete the manifest first",
                    detail={"manifests": [str(user) for user in users[:10]]},
                )
            if not await tx.unlink_blob(repository.id, digest):
                raise _unknown(digest)
