"""Images: manifests, tags and referrers of a repository.

A manifest PUT validates the document, checks in the same transaction that everything it
references is present in the repository, then records the manifest, its references and
its tag together, so that a reader never sees a tag without its manifest or a manifest
without its blobs. A tag that the repository keeps immutable (``domain/mutability.py``) is
never moved: such a push fails and writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta

from moorage.domain.digests import Digest, is_digest
from moorage.domain.errors import (
    DigestMismatch,
    ManifestBlobUnknown,
    ManifestUnknown,
    TagImmutable,
    Unsupported,
)
from moorage.domain.manifests import ParsedManifest, parse_manifest
from moorage.domain.models import ManifestRecord, ManifestReference, ReferenceKind
from moorage.domain.mutability import tag_is_immutable
from moorage.domain.names import RepositoryName, Tag
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore
from moorage.services.repositories import RepositoryService, require

# How stale ``last_pulled_at`` may get before a pull refreshes it. ECR refreshes it at least
# once every 24 hours; refreshing on every pull would turn each read into a write.
PULL_RECORD_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Reference:
    """A manifest reference from a URL: a tag or a digest."""

    tag: Tag | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Raises InvalidDigest or InvalidTag."""
        if is_digest(text):
            return cls(digest=Digest.parse(text))
        return cls(tag=Tag(text))


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """The result of a manifest PUT."""

    manifest: ParsedManifest
    created: bool


class ImageService:
    def __init__(
        self, metadata: MetadataStore, repositories: RepositoryService, clock: Clock
    ) -> None:
        self._metadata = metadata
        self._repositories = repositories
        self._clock = clock
        self._background: set[asyncio.Task[None]] = set()

    async def get_manifest(
        self, registry_id: str, name: str, reference: Reference, *, record_pull: bool = False
    ) -> ManifestRecord:
        """The manifest a tag or digest names. Raises RepositoryNotFound, ManifestUnknown.

        ``record_pull`` refreshes the manifest's last pull time in the background.
        """
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            if reference.digest is not None:
                manifest = await tx.get_manifest(repository.id, reference.digest)
            else:
                assert reference.tag is not None
                manifest = await tx.resolve_tag(repository.id, reference.tag)
        if manifest is None:
            raise ManifestUnknown("Requested image not found", detail={"reference": str(reference)})
        if record_pull and _pull_is_stale(manifest, self._clock()):
            self._in_background(self._record_pull(manifest))
        return manifest

    async def put_manifest(
        self,
        registry_id: str,
        name: str,
        reference: Reference,
        payload: bytes,
        content_type: str | None,
    ) -> StoredManifest:
        """Store a manifest, and point the tag at it when ``reference`` is a tag.

        Raises InvalidName, RepositoryNotFound, ManifestInvalid, DigestMismatch,
        ManifestBlobUnknown, TagImmutable (the tag names another manifest and may not move;
        pushing the manifest it names again is fine).
        """
        algorithm = reference.digest.algorithm if reference.digest else "sha256"
        manifest = parse_manifest(payload, content_type, algorithm)
        if reference.digest is not None and manifest.digest != reference.digest:
            raise DigestMismatch(
                f"manifest digest {manifest.digest} does not match {reference.digest}",
                detail={"expected": str(reference.digest), "actual": str(manifest.digest)},
            )
        now = self._clock()
        async with self._metadata.transaction() as tx:
            repository = await self._repositories.for_push(tx, registry_id, name)
            blobs = {d.digest for d in manifest.blob_references()}
            missing = await tx.missing_blobs(repository.id, blobs)
            children = {d.digest for d in manifest.manifests}
            missing |= await tx.missing_manifests(repository.id, children)
            if missing:
                first = min(str(d) for d in missing)
                raise ManifestBlobUnknown(
                    f"manifest references unknown content {first}", detail={"digest": first}
                )
            references = [ManifestReference(d, ReferenceKind.BLOB) for d in sorted(blobs, key=str)]
            references += [
                ManifestReference(d, ReferenceKind.MANIFEST) for d in sorted(children, key=str)
            ]
            created = await tx.put_manifest(_record(repository.id, manifest, now), references)
            if reference.tag is not None:
                immutable = tag_is_immutable(repository, reference.tag)
                old = await tx.put_tag(
                    repository.id, reference.tag, manifest.digest, now, move=not immutable
                )
                if immutable and old is not None and old != manifest.digest:
                    # Raising rolls back the manifest written above: nothing is stored.
                    raise TagImmutable(
                        f"The image tag '{reference.tag}' already exists in the "
                        f"'{repository.name}' repository and cannot be overwritten because "
                        "the tag is immutable.",
                        detail={"tag": reference.tag, "digest": str(old)},
                    )
        return StoredManifest(manifest, created)

    async def delete(self, registry_id: str, name: str, reference: Reference) -> None:
        """By digest: delete the manifest and its tags. By tag: delete only the tag.

        Raises RepositoryNotFound, ManifestUnknown, Unsupported (a manifest that an index
        in the repository still lists cannot be deleted, as in ECR).
        """
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            if reference.tag is not None:
                if not await tx.delete_tag(repository.id, reference.tag):
                    raise ManifestUnknown("Requested image not found")
                return
            assert reference.digest is not None
            parents = await tx.manifest_parents(repository.id, reference.digest)
            if parents:
                listed = ", ".join(str(p) for p in parents)
                raise Unsupported(f"Requested image referenced by manifest list: [{listed}]")
            if not await tx.delete_manifest(repository.id, reference.digest):
                raise ManifestUnknown("Requested image not found")

    async def list_tags(
        self, registry_id: str, name: str, *, after: str | None, limit: int | None
    ) -> list[str]:
        """Tags in binary order. Raises RepositoryNotFound."""
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            return await tx.list_tags(repository.id, after=after, limit=limit)

    async def referrers(
        self, registry_id: str, name: str, subject: Digest, artifact_type: str | None
    ) -> list[ManifestRecord]:
        """Manifests whose subject is ``subject`` (which need not exist)."""
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            return await tx.list_referrers(repository.id, subject, artifact_type)

    async def close(self) -> None:
        """Wait for background work (pull records) to finish."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _record_pull(self, manifest: ManifestRecord) -> None:
        async with self._metadata.transaction() as tx:
            await tx.touch_manifest_pull(manifest.repository_id, manifest.digest, self._clock())

    def _in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _pull_is_stale(manifest: ManifestRecord, now: datetime) -> bool:
    return manifest.last_pulled_at is None or now - manifest.last_pulled_at > PULL_RECORD_INTERVAL


def _record(repository_id: int, manifest: ParsedManifest, now: datetime) -> ManifestRecord:
    return ManifestRecord(
        repository_id=repository_id,
        digest=manifest.digest,
        media_type=manifest.media_type,
        size=manifest.size,
        payload=manifest.payload,
        pushed_at=now,
        artifact_type=manifest.referrer_artifact_type,
        config_media_type=manifest.config.media_type if manifest.config else None,
        subject=manifest.subject.digest if manifest.subject else None,
        annotations=dict(manifest.annotations),
    )
