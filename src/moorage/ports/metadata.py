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
- an **upload session** belongs to one repository and records the bytes durably received;
- a repository carries its **settings** (tag mutability, scan on push, encryption), its
  **resource tags** (key -> value) and at most one **repository policy** (text);
- a registry has at most one **registry policy**, a value per **account setting** put, and at
  most one **registry scanning configuration**.

Deleting a repository deletes everything it owns (not the registry-wide blobs).
Lists are ordered by name in binary (``C``) collation and paginated with ``after``/``limit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from moorage.domain.digests import Digest
from moorage.domain.models import (
    BlobRecord,
    ManifestRecord,
    ManifestReference,
    PolicyTexts,
    Repository,
    TagMutability,
    TagRecord,
    UploadSession,
)
from moorage.domain.scanning_configuration import RegistryScanningConfiguration
from moorage.ports.advisories import AdvisoryRecords
from moorage.ports.caches import CacheRecords
from moorage.ports.gallery import GalleryRecords
from moorage.ports.identities import IdentityRecords
from moorage.ports.integrity import IntegrityRecords
from moorage.ports.jobs import JobRecords
from moorage.ports.lifecycle import LifecycleRecords
from moorage.ports.public import PublicRecords
from moorage.ports.replication import BackfillRecords, ReplicationRecords
from moorage.ports.scans import ScanRecords
from moorage.ports.secrets import SecretRecords
from moorage.ports.templates import TemplateRecords


@dataclass(frozen=True, slots=True)
class SparedBlobs:
    """Unreferenced blobs still inside their grace period: how many, their bytes, and the
    earliest last use among them (None when there are none)."""

    count: int
    size: int
    earliest_use: datetime | None


class MetadataTransaction(
    AdvisoryRecords,
    BackfillRecords,
    CacheRecords,
    IdentityRecords,
    IntegrityRecords,
    JobRecords,
    LifecycleRecords,
    ReplicationRecords,
    GalleryRecords,
    PublicRecords,
    ScanRecords,
    SecretRecords,
    TemplateRecords,
    Protocol,
):
    region: str  # the region registry-level records are read and written in

    # -- repositories -------------------------------------------------------------------
    async def create_repository(
        self,
        registry_id: str,
        name: str,
        now: datetime,
        *,
        image_tag_mutability: TagMutability = TagMutability.MUTABLE,
        mutability_exclusion_filters: Sequence[str] = (),
        scan_on_push: bool = False,
        encryption_type: str = "AES256",
        kms_key: str | None = None,
    ) -> Repository:
        """Create a repository with the given settings, stored as given (services validate
        them). Raises RepositoryAlreadyExists, also when a concurrent transaction created it
        first; the transaction stays usable, and ``get_repository`` then returns that one."""
        ...

    async def get_repository(self, registry_id: str, name: str) -> Repository | None: ...

    async def regions_in_use(self) -> list[str]:
        """Every region that has a repository, in order (whatever the transaction's)."""
        ...

    async def list_repositories(
        self, registry_id: str, *, after: str | None = None, limit: int | None = None
    ) -> list[Repository]: ...

    async def delete_repository(self, repository_id: int, *, now: datetime | None = None) -> None:
        """Delete the repository with its manifests, tags, blob links and upload sessions,
        its resource tags and its policy. The blobs its manifests referenced count as used
        at ``now`` (default: the system time): their garbage-collection grace period starts
        again."""
        ...

    # -- repository settings, resource tags and policies ------------------------------------
    async def update_repository_settings(
        self,
        repository_id: int,
        *,
        image_tag_mutability: TagMutability | None = None,
        mutability_exclusion_filters: Sequence[str] | None = None,
        scan_on_push: bool | None = None,
    ) -> Repository | None:
        """Change the settings given (None leaves one as it is); return the repository as it
        is afterwards, or None when there is no such repository. Encryption never changes."""
        ...

    async def get_repository_tag(self, repository_id: int, key: str) -> str | None:
        """The value of one resource tag, or None when the repository has no such key."""
        ...

    async def list_repository_tags(self, repository_id: int) -> dict[str, str]:
        """The repository's resource tags, in binary order of key."""
        ...

    async def put_repository_tags(self, repository_id: int, tags: Mapping[str, str]) -> int:
        """Add resource tags, overwriting the values of existing keys; return how many tags
        the repository has afterwards. Writers of one repository's tags take turns, so the
        count includes every write committed before it (a caller may check a limit on it
        and raise, which rolls the write back)."""
        ...

    async def delete_repository_tags(self, repository_id: int, keys: Iterable[str]) -> int:
        """Remove the resource tags with these keys (absent keys are ignored); how many went."""
        ...

    async def get_repository_policy(self, repository_id: int) -> str | None:
        """The repository policy's text, exactly as put; None when there is none."""
        ...

    async def put_repository_policy(self, repository_id: int, text: str, now: datetime) -> None:
        """Set or replace the repository policy. The repository must exist."""
        ...

    async def delete_repository_policy(self, repository_id: int) -> str | None:
        """Remove the repository policy; return its text, or None when there was none."""
        ...

    # -- registry policy and account settings ---------------------------------------------
    async def get_registry_policy(self, registry_id: str) -> str | None:
        """The registry policy's text, exactly as put; None when there is none."""
        ...

    async def put_registry_policy(self, registry_id: str, text: str, now: datetime) -> None:
        """Set or replace the registry's policy."""
        ...

    async def delete_registry_policy(self, registry_id: str) -> str | None:
        """Remove the registry policy; return its text, or None when there was none."""
        ...

    async def get_account_setting(self, registry_id: str, name: str) -> str | None:
        """The value put for the setting; None when it was never put (services know defaults)."""
        ...

    async def put_account_setting(self, registry_id: str, name: str, value: str) -> None:
        """Set or replace a setting's value (names and values are checked by services)."""
        ...

    async def list_account_settings(self, registry_id: str) -> dict[str, str]:
        """Every setting put in the registry, by name, in binary order."""
        ...

    async def delete_account_setting(self, registry_id: str, name: str) -> bool:
        """Forget a setting (it reads as its default again); False when it was not put."""
        ...

    async def get_registry_scanning_configuration(
        self, registry_id: str
    ) -> RegistryScanningConfiguration | None:
        """The registry scanning configuration as put; None when none was (services know the
        default)."""
        ...

    async def put_registry_scanning_configuration(
        self, registry_id: str, config: RegistryScanningConfiguration, now: datetime
    ) -> None:
        """Set or replace the registry scanning configuration (checked by services)."""
        ...

    async def read_policies_many(
        self, registry_id: str, repository_names: Sequence[str]
    ) -> dict[str, PolicyTexts]:
        """:meth:`read_policies` for many repositories of one registry at once, keyed by name
        (every name given has an entry, absent repositories included)."""
        ...

    async def read_policies(self, registry_id: str, repository_name: str | None) -> PolicyTexts:
        """In one round trip: the policy of the named repository (None when the repository or
        its policy is absent, or the name is None), the registry policy, and the stored
        ``REGISTRY_POLICY_SCOPE`` setting. Authorization reads this on every request."""
        ...

    # -- blobs --------------------------------------------------------------------------
    async def put_blob(self, digest: Digest, size: int, now: datetime) -> None:
        """Record a committed blob, last used ``now``; when already recorded, only move its
        last use to ``now``."""
        ...

    async def get_blob(self, digest: Digest) -> BlobRecord | None: ...

    async def unrecorded_blobs(self, digests: Iterable[Digest]) -> set[Digest]:
        """Those of ``digests`` that no blob row records (garbage collection's orphan files)."""
        ...

    async def delete_blob(self, digest: Digest) -> None:
        """Forget a blob registry-wide, with every repository link to it."""
        ...

    async def link_blob(self, repository_id: int, digest: Digest, now: datetime) -> None:
        """Make a recorded blob usable in a repository (no-op when already linked), and move
        its last use to ``now``. Raises BlobUnknown when the blob is not recorded."""
        ...

    async def get_linked_blob(self, repository_id: int, digest: Digest) -> BlobRecord | None:
        """The blob, if it is linked to the repository."""
        ...

    async def unlink_blob(self, repository_id: int, digest: Digest) -> bool:
        """Remove a blob's link to a repository; False when it was not linked."""
        ...

    async def missing_blobs(self, repository_id: int, digests: Iterable[Digest]) -> set[Digest]:
        """Those of ``digests`` that are not linked to the repository.

        Write transactions only: the blobs found stay recorded until the transaction ends
        (garbage collection cannot delete them before the manifest that needs them is).
        """
        ...

    async def linked_blob_sizes(
        self, repository_id: int, digests: Iterable[Digest]
    ) -> dict[Digest, int]:
        """The size of each of ``digests`` that is linked to the repository (the others are
        left out), with the guarantee of :meth:`missing_blobs`. Write transactions only."""
        ...

    async def blob_users(self, repository_id: int, digest: Digest) -> list[Digest]:
        """Digests of the manifests in the repository that use the blob (config or layer)."""
        ...

    async def repositories_with_blob(self, registry_id: str, digest: Digest) -> list[str]:
        """Names of the registry's repositories the blob is linked to, sorted."""
        ...

    # -- garbage collection (docs/gc.md) ------------------------------------------------
    async def gc_blob_candidates(
        self, cutoff: datetime, *, after: Digest | None = None, limit: int = 1000
    ) -> list[BlobRecord]:
        """Up to ``limit`` blobs, in binary order of digest strictly after ``after``, last
        used before ``cutoff`` and referenced by no manifest of any repository. A hint: the
        answer may be stale by the time the caller acts on it."""
        ...

    async def gc_spared_blobs(self, cutoff: datetime) -> SparedBlobs:
        """The blobs that no manifest references but that were used at or after ``cutoff``:
        those a collection with that cutoff spares (what ``moorage gc`` reports)."""
        ...

    async def delete_unreferenced_blobs(
        self, digests: Iterable[Digest], cutoff: datetime
    ) -> list[BlobRecord]:
        """Delete those of ``digests`` that are, at the moment of deletion, still last used
        before ``cutoff`` and referenced by no manifest, with their links; return them.

        Safe against a concurrent manifest PUT: one that checked the blob with
        :meth:`missing_blobs` either commits first (the blob is kept) or finds it gone.
        The blobs' bytes are the caller's to delete, under :meth:`lock_blob_files`.
        """
        ...

    async def gc_referrer_candidates(
        self, cutoff: datetime, *, after: tuple[int, Digest] | None = None, limit: int = 1000
    ) -> list[ManifestRecord]:
        """Up to ``limit`` orphaned referrers, in order of repository id then binary order of
        digest, strictly after ``after`` (a ``(repository_id, digest)``): manifests with a
        subject that is no manifest of *their own* repository, with no tag, pushed before
        ``cutoff``. The records' ``payload`` is empty. A hint, as for blobs."""
        ...

    async def delete_orphaned_referrers(
        self,
        repository_id: int,
        digests: Iterable[Digest],
        cutoff: datetime,
        *,
        now: datetime | None = None,
    ) -> list[Digest]:
        """Delete those of ``digests`` that are, at the moment of deletion, still orphaned
        referrers of the repository pushed before ``cutoff`` (as in
        :meth:`gc_referrer_candidates`), as :meth:`delete_manifest` does (tags, references,
        and the grace period of their blobs restarting at ``now``); return them, sorted.

        Write transactions only. A tag, or the subject, committed before the re-check saves
        the referrer; a tag pushed later waits for this transaction and finds it gone.
        """
        ...

    async def lock_blob_files(self, digests: Iterable[Digest]) -> set[Digest]:
        """Until this write transaction ends, keep every other transaction that calls this
        for one of ``digests`` waiting; return those of ``digests`` that no blob row records.

        Deleting a blob's bytes and recording a blob whose bytes were just committed both
        happen under this lock, so that garbage collection never deletes the bytes of a
        blob an upload is recording (see ``services/uploads.py`` and docs/gc.md).
        """
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

    async def manifest_parents_many(
        self, repository_id: int, digests: Iterable[Digest]
    ) -> dict[Digest, list[Digest]]:
        """:meth:`manifest_parents` of each of ``digests`` (sorted); a digest no index in the
        repository lists is absent."""
        ...

    async def delete_manifest(
        self, repository_id: int, digest: Digest, *, now: datetime | None = None
    ) -> bool:
        """Delete a manifest with its tags and references; False when absent. The blobs it
        referenced count as used at ``now`` (default: the system time): their
        garbage-collection grace period starts again."""
        ...

    async def delete_manifests(
        self, repository_id: int, digests: Iterable[Digest], *, now: datetime | None = None
    ) -> int:
        """:meth:`delete_manifest` for each of ``digests`` at once; how many were deleted
        (absent ones are ignored)."""
        ...

    async def lock_manifest(self, repository_id: int, digest: Digest) -> bool:
        """Whether the manifest exists; until the transaction ends, no other transaction can
        tag it or delete it (a write transaction: PostgreSQL locks its row, SQLite has one
        writer)."""
        ...

    async def lock_manifests(self, repository_id: int, digests: Iterable[Digest]) -> set[Digest]:
        """:meth:`lock_manifest` for each of ``digests``: those that exist, locked until the
        transaction ends. Two transactions locking overlapping sets do not deadlock."""
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

    async def add_pull_counts(self, counts: Mapping[tuple[int, Digest], int]) -> None:
        """Add to the pull count of each (repository id, manifest digest); a manifest
        deleted meanwhile is skipped."""
        ...

    # -- image listings (ECR's ListImages and DescribeImages) --------------------------------
    async def list_manifests(
        self,
        repository_id: int,
        *,
        tagged: bool | None = None,
        after: Digest | None = None,
        limit: int | None = None,
    ) -> list[ManifestRecord]:
        """The repository's manifests in binary order of digest, strictly after ``after``.

        ``tagged`` True keeps those with at least one tag, False those with none, None all.
        The records' ``payload`` is empty.
        """
        ...

    async def list_image_ids(
        self,
        repository_id: int,
        *,
        tagged: bool | None = None,
        after: tuple[Digest, str] | None = None,
        limit: int | None = None,
    ) -> list[tuple[Digest, str | None]]:
        """One ``(digest, tag)`` per tag, and one ``(digest, None)`` per untagged manifest.

        Ordered by digest, then tag in binary order with None first; ``after`` is the
        ``(digest, tag or "")`` of the last entry already seen. ``tagged`` as in
        :meth:`list_manifests`.
        """
        ...

    async def tags_by_manifest(
        self, repository_id: int, digests: Iterable[Digest]
    ) -> dict[Digest, list[str]]:
        """The sorted tags of each of ``digests``; a manifest without tags is absent."""
        ...

    async def blob_totals(self, repository_id: int, digests: Iterable[Digest]) -> dict[Digest, int]:
        """For each of ``digests``, the total size of the distinct blobs (config, layers) the
        manifest references; a manifest that references no recorded blob is absent."""
        ...

    async def manifest_children(
        self, repository_id: int, digests: Iterable[Digest]
    ) -> dict[Digest, list[Digest]]:
        """For each of ``digests`` that is an index, the manifests it lists (sorted)."""
        ...

    # -- tags ---------------------------------------------------------------------------
    async def resolve_tag(self, repository_id: int, tag: str) -> ManifestRecord | None:
        """The manifest a tag names, in one round trip."""
        ...

    async def get_tag(self, repository_id: int, tag: str) -> TagRecord | None: ...

    async def put_tag(
        self, repository_id: int, tag: str, digest: Digest, now: datetime, *, move: bool = True
    ) -> Digest | None:
        """Point ``tag`` at ``digest`` (which must be a manifest here); return the old target.

        With ``move=False`` a tag that already names another manifest is left as it is (and
        that manifest's digest returned), even when a concurrent transaction created the tag
        first: immutable tags rely on this.
        """
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

    async def list_uploads_updated_before(
        self, cutoff: datetime, *, after: UploadSession | None = None, limit: int | None = None
    ) -> list[UploadSession]:
        """Sessions not updated since ``cutoff``, oldest first (then by id); with ``after``,
        those that come after that session in this order; at most ``limit``."""
        ...

    async def delete_stale_uploads(self, cutoff: datetime, limit: int) -> list[UploadSession]:
        """End up to ``limit`` sessions not updated since ``cutoff`` (oldest first) and return
        them; a session updated concurrently is kept. Their staged bytes are the caller's
        to drop."""
        ...


class MetadataStore(Protocol):
    """Acts in one region: what belongs to a registry (repositories, the registry policy,
    account settings, the registry scanning configuration, the lifecycle audit trail) is
    ``region``'s; everything else (repository ids, blobs, identities, jobs) is global."""

    region: str

    def in_region(self, region: str) -> MetadataStore:
        """The same store acting in ``region``; closing it is a no-op."""
        ...

    def on_job_enqueued(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (no arguments, quick, never raising) after each commit that
        enqueued a job, in any of the store's regions: a job runner's ``wake``, so that a
        job enqueued here starts without waiting for the runner's next poll."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[MetadataTransaction]:
        """A read-write unit of work: commits on normal exit, rolls back on error."""
        ...

    def read(self) -> AbstractAsyncContextManager[MetadataTransaction]:
        """A read-only unit of work (writes through it are undefined)."""
        ...

    async def wipe(self) -> None:
        """Delete everything the store holds but the job schedules, which are the server's
        configuration (the emulator's reset); it stays usable. Jobs go too: a runner running
        one finds its lease gone at the next heartbeat and stops it."""
        ...

    async def close(self) -> None: ...
