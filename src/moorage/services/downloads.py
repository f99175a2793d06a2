"""Presigned layer downloads: ECR's GetDownloadUrlForLayer, and redeeming its URLs.

A URL is granted only for a blob that an image in the repository references, as ECR does
(``LayerInaccessible`` otherwise: unreferenced blobs may be collected at any time). It is
served while the blob is still in that repository, until the token expires
(``iam/download_tokens.py``); the holder needs no other credentials.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from moorage.domain.digests import Digest
from moorage.domain.errors import BlobUnknown, LayerInaccessible
from moorage.domain.models import BlobRecord
from moorage.domain.names import RepositoryName
from moorage.iam.download_tokens import DownloadTokens
from moorage.ports.blobs import BlobLocation
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore
from moorage.services.blobs import BlobService
from moorage.services.repositories import require


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    token: str
    expires_at: datetime


class LayerDownloadService:
    def __init__(
        self, metadata: MetadataStore, blobs: BlobService, tokens: DownloadTokens, clock: Clock
    ) -> None:
        self._metadata = metadata
        self._blobs = blobs
        self._tokens = tokens
        self._clock = clock

    async def grant(self, registry_id: str, name: str, digest: Digest) -> DownloadGrant:
        """A token for downloading one blob of the repository.

        Raises InvalidName, RepositoryNotFound, BlobUnknown (not in the repository),
        LayerInaccessible (in the repository, but no image there references it).
        """
        valid = RepositoryName(name)
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, valid)
            if await tx.get_linked_blob(repository.id, digest) is None:
                raise BlobUnknown(
                    f"The layer with digest '{digest}' does not exist in the repository with "
                    f"name '{valid}' in the registry with id '{registry_id}'",
                    detail={"digest": str(digest)},
                )
            if not await tx.blob_users(repository.id, digest):
                raise LayerInaccessible(
                    f"The layer with digest '{digest}' is not associated with an image in the "
                    f"repository with name '{valid}' in the registry with id '{registry_id}'"
                )
        token, expires_at = self._tokens.issue(
            registry_id, valid, str(digest), self._clock(), region=self._metadata.region
        )
        return DownloadGrant(token, expires_at)

    async def redeem(self, token: str) -> tuple[BlobRecord, BlobLocation]:
        """The blob a token grants, and where to serve it from.

        Raises DownloadTokenInvalid (DownloadTokenExpired), RepositoryNotFound, BlobUnknown
        (the blob left the repository since).
        """
        claims = self._tokens.verify(token, self._clock())
        # The repository is the region's that issued the token (any node's URL serves it).
        blobs = self._blobs.in_region(claims.region or self._metadata.region)
        return await blobs.locate(
            claims.registry_id, claims.repository, Digest.parse(claims.digest)
        )

    def open(self, digest: Digest, offset: int, length: int | None) -> AsyncIterator[bytes]:
        """Stream a blob that :meth:`redeem` found."""
        return self._blobs.open(digest, offset, length)
