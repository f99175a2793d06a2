"""The MetadataStore port: repositories, manifests, tags, blob links and upload sessions.

All changes happen inside one transaction (:meth:`MetadataStore.transaction`), which commits
when its block exits normally and rolls back when it raises. :meth:`MetadataStore.read`
gives the same interface for read-only work without taking write locks.

Model (the SQL schema lives in ``storage/metadata/sql/tables.py``):

- a **repository** belongs to a registry (12-digit account id) and has a unique name there;
- a **blob** is known once, registry-wide, by digest; a repository may use it once it is
  **linked** to that repository (pushed or mounted there);
- a **manifest** belongs to one repository, keyed by digest, and stores its exact bytes;
  it records the blobs (config, layers) and child manifests it references, and its subject;
- a **tag** names one manifest in its repository;
- an **upload session** belongs to one repository and records the bytes durably received.

Deleting a repository deletes everything it owns (not the registry-wide blobs).
Lists are ordered by name in binary (``C``) collation and paginated with ``after``/``limit``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from moorage.domain.digests import Digest
from moorage.domain.models import (
    BlobRecord,
    ManifestRecord,
    ManifestReference,
    Repository,
    TagRecord,
    UploadSession,
)
from moorage.ports.identities import IdentityRecords


class MetadataTransaction(IdentityRecords, Protocol):
    # -- repositories -------------------------------------------------------------------
    async def create_repository(self, registry_id: str, name: str, now: datetime) -> Repository:
        """Create a repository. Raises RepositoryAlreadyExists."""
        ...

    async def get_repository(self, registry_id: str, name: str) -> Repository | None: ...

    async def list_repositories(
        self, registry_id: str, *, after: str | None = None, limit: int | None = None
    ) -> list[Repository]: ...

    async def delete_repository(self, repository_id: int) -> None:
        """Delete the repository with its manifests, tags, blob links and upload sessions."""
        ...

    # -- blobs --------------------------------------------------------------------------
    async def put_blob(self, digest: Digest, size: int, now: datetime) -> None:
        """Record a committed blob; no-op when already recorded."""
        ...

    async def get_blob(self, digest: Digest) -> BlobRecord | None: ...

    async def delete_blob(self, digest: Digest) -> None:
        """Forget a blob registry-wide, with every repository link to it."""
        ...

    async def link_blob(self, repository_id: int, digest: Digest, now: datetime) -> None:
        """Make a recorded blob usable in a repository; no-op when already linked."""
        ...

    async def get_linked_blob(self, repository_id: int, digest: Digest) -> BlobRecord | None:
        """The blob, if it is linked to the repository."""
        ...

    async def unlink_blob(self, repository_id: int, digest: Digest) -> bool:
        """Remove a blob's link to a repository; False when it was not linked."""
        ...

    async def missing_blobs(self, repository_id: int, digests: Iterable[Digest]) -> set[Digest]:
        """Those of ``digests`` that are not linked to the repository."""
        ...

    async def blob_users(self, repository_id: int, digest: Digest) -> list[Digest]:
        """Digests of the manifests in the repository that use the blob (config or layer)."""
        ...

    async def repositories_with_blob(self, registry_id: str, digest: Digest) -> list[str]:
        """Names of the registry's repositories the blob is linked to, sorted."""
        ...

    # -- manifests ----------------------------------------------------------------------
    async def put_manifest(
        self, manifest: ManifestRecord, references: Sequence[ManifestReference]
    ) -> bool:
        """Store a manifest and its references; False (and no change) when it already exists."""
        ...

    async def get_manifest(self, repository_id: int, digest: Digest) -> ManifestRecord | None: ...

    async def count_manifests(self, repository_id: int) -> int:
        """How many manifests (tagged or not) the repository holds."""
        ...

    async def missing_manifests(self, repository_id: int, digests: Iterable[Digest]) -> set[Digest]:
        """Those of ``digests`` that are not manifests in the repository."""
        ...

    async def manifest_parents(self, repository_id: int, digest: Digest) -> list[Digest]:
        """Digests of the indexes in the repository that list ``digest`` as a child."""
        ...

    async def delete_manifest(self, repository_id: int, digest: Digest) -> bool:
        """Delete a manifest with its tags and references; False when absent."""
        ...

    async def list_referrers(
        self, repository_id: int, subject: Digest, artifact_type: str | None = None
    ) -> list[ManifestRecord]:
        """Manifests whose subject is ``subject``, optionally of one artifact type.

        The records' ``payload`` may be empty: callers need only the descriptor fields.
        """
        ...

    async def touch_manifest_pull(self, repository_id: int, digest: Digest, now: datetime) -> None:
        """Record a pull of the manifest (``last_pulled_at``)."""
        ...

    # -- tags ---------------------------------------------------------------------------
    async def resolve_tag(self, repository_id: int, tag: str) -> ManifestRecord | None:
        """The manifest a tag names, in one round trip."""
        ...

    async def get_tag(self, repository_id: int, tag: str) -> TagRecord | None: ...

    async def put_tag(
        self, repository_id: int, tag: str, digest: Digest, now: datetime
    ) -> Digest | None:
        """Point ``tag`` at ``digest`` (which must be a manifest here); return the old target."""
        ...

    async def delete_tag(self, repository_id: int, tag: str) -> bool: ...

    async def list_tags(
        self, repository_id: int, *, after: str | None = None, limit: int | None = None
    ) -> list[str]: ...

    async def tags_of(self, repository_id: int, digest: Digest) -> list[str]:
        """Tags naming the manifest, sorted."""
        ...

    # -- upload sessions ----------------------------------------------------------------
    async def create_upload(self, session: UploadSession) -> None: ...

    async def get_upload(self, upload_id: str) -> UploadSession | None: ...

    async def update_upload(self, upload_id: str, size: int, now: datetime) -> None: ...

    async def delete_upload(self, upload_id: str) -> None: ...

    async def list_uploads_updated_before(self, cutoff: datetime) -> list[UploadSession]: ...


class MetadataStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[MetadataTransaction]:
        """A read-write unit of work: commits on normal exit, rolls back on error."""
        ...

    def read(self) -> AbstractAsyncContextManager[MetadataTransaction]:
        """A read-only unit of work (writes through it are undefined)."""
        ...

    async def close(self) -> None: ...
