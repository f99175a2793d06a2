"""Images: manifests, tags and referrers of a repository.

A manifest PUT validates the document, checks in the same transaction that everything it
references is present in the repository, then records the manifest, its references and
its tag together, so that a reader never sees a tag without its manifest or a manifest
without its blobs. A tag that the repository keeps immutable (``domain/mutability.py``) is
never moved: such a push fails and writes nothing.

The ECR API's image operations are here too, on the same records (shared reference §4.3-4.7):
PutImage (:meth:`ImageService.put_image`: ECR's error precedence on top of the manifest PUT),
BatchGetImage and BatchDeleteImage (per-item failures, never an exception per item),
ListImages, DescribeImages and ListImageReferrers (pages with a cursor the protocol makes
opaque). Sizes follow the resolution of the reference's OPEN question 1: an image manifest's
size is the sum of its distinct config and layer blobs (the manifest's own bytes are not
counted), and an index's is the largest of its children's, as ECR documents for manifest lists.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Generic, TypeVar

from moorage.domain.digests import Digest, is_digest
from moorage.domain.errors import (
    DigestMismatch,
    ImageAlreadyExists,
    ImageDigestDoesNotMatch,
    InvalidDigest,
    InvalidParameter,
    InvalidTag,
    LayersNotFound,
    ManifestInvalid,
    ManifestUnknown,
    ReferencedImagesNotFound,
    TagImmutable,
    Unsupported,
)
from moorage.domain.manifests import ParsedManifest, parse_manifest
from moorage.domain.models import ManifestRecord, ManifestReference, ReferenceKind, Repository
from moorage.domain.mutability import tag_is_immutable
from moorage.domain.names import RepositoryName, Tag
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore, MetadataTransaction
from moorage.ports.scans import ImageScan
from moorage.services.repositories import RepositoryService, require

log = logging.getLogger("moorage.images")

# How stale ``last_pulled_at`` may get before a pull refreshes it. ECR refreshes it at least
# once every 24 hours; refreshing on every pull would turn each read into a write.
PULL_RECORD_INTERVAL = timedelta(hours=1)
# How long pulls are counted in memory before they are written (ImageService._count_pull).
PULL_COUNT_FLUSH_SECONDS = 2.0


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

    def __str__(self) -> str:
        """The reference as a URL carries it: the digest, else the tag."""
        return str(self.digest) if self.digest is not None else str(self.tag)


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """The result of a manifest PUT."""

    manifest: ParsedManifest
    created: bool
    # The tag given now names this manifest and did not before (PutImage's retag).
    tag_changed: bool = False


# ECR's grammars for the identifiers a request may send (shared reference §1.2). A digest that
# fits the first but is not one we support (sha256:abc) can name no image: "not found".
_ECR_DIGEST = re.compile(r"[a-zA-Z0-9_+.-]+:[a-fA-F0-9]+")
ECR_TAG_PATTERN = "[a-zA-Z0-9-_.]+"
_ECR_TAG = re.compile(r"[a-zA-Z0-9._-]+")
MAX_BATCH_IDS = 100

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Replica:
    """A manifest PUT made by replication: the source's push time orders the copies that set
    one tag (a late copy of an older push never moves it back), and the image stored does
    not replicate again (ECR's loop guard: one hop, never chained)."""

    pushed_at: datetime


@dataclass(frozen=True, slots=True)
class Push:
    """What a push hook learns of one manifest PUT that changed something: a new manifest
    (``created``) or a tag now naming it (``tag``, when ``tag_changed``)."""

    repository: Repository
    manifest: ParsedManifest
    tag: str | None
    created: bool
    tag_changed: bool
    at: datetime
    replica: Replica | None = None


# Called in the push's transaction, after the manifest and its tag are written.
PushHook = Callable[[MetadataTransaction, Push], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Removal:
    """One thing a deletion removed: the image ``digest`` with all its tags (``tag`` None), or
    only ``tag``, which named ``digest`` (the image then went too if that was its last tag
    and no index lists it)."""

    digest: Digest
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class Deletion:
    """What a delete hook learns: what one deletion in ``repository`` removed. ``replica``:
    the deletion was itself replicated (it goes no further)."""

    repository: Repository
    removed: tuple[Removal, ...]
    at: datetime
    replica: bool = False


# Called in the deletion's transaction, after the rows are gone.
DeleteHook = Callable[[MetadataTransaction, Deletion], Awaitable[None]]


class TagStatus(StrEnum):
    """ECR's ``tagStatus`` filter."""

    TAGGED = "TAGGED"
    UNTAGGED = "UNTAGGED"
    ANY = "ANY"

    @property
    def tagged(self) -> bool | None:
        return {TagStatus.TAGGED: True, TagStatus.UNTAGGED: False}.get(self)


class ImageFailureCode(StrEnum):
    """The per-item failures of BatchGetImage and BatchDeleteImage (ECR's names)."""

    INVALID_IMAGE_DIGEST = "InvalidImageDigest"
    INVALID_IMAGE_TAG = "InvalidImageTag"
    IMAGE_TAG_DOES_NOT_MATCH_DIGEST = "ImageTagDoesNotMatchDigest"
    IMAGE_NOT_FOUND = "ImageNotFound"
    MISSING_DIGEST_AND_TAG = "MissingDigestAndTag"
    IMAGE_REFERENCED_BY_MANIFEST_LIST = "ImageReferencedByManifestList"


@dataclass(frozen=True, slots=True)
class ImageId:
    """An image as a request names it (digest, tag or both, unvalidated) or as an answer
    names it."""

    digest: str | None = None
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class ImageFailure:
    image_id: ImageId
    code: ImageFailureCode
    reason: str


@dataclass(frozen=True, slots=True)
class FoundImage:
    """A manifest BatchGetImage returns; ``image_id`` has its digest and the tag asked for."""

    image_id: ImageId
    manifest: ManifestRecord


@dataclass(frozen=True, slots=True)
class BatchGetResult:
    images: list[FoundImage]
    failures: list[ImageFailure]


@dataclass(frozen=True, slots=True)
class BatchDeleteResult:
    """``deleted``: one id per tag removed (with the image's digest), or the bare digest of an
    untagged image that was deleted."""

    deleted: list[ImageId]
    failures: list[ImageFailure]


@dataclass(frozen=True, slots=True)
class ExpectedImage:
    """An image as someone last saw it: its digest and all its tags then."""

    digest: Digest
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnchangedDeleteResult:
    """``deleted``: the digests of the images deleted; ``kept``: each image left alone, with
    why (its tags changed, or BatchDeleteImage's reason: gone, listed by an index)."""

    deleted: list[Digest]
    kept: list[tuple[Digest, str]]


@dataclass(frozen=True, slots=True)
class ImageDetail:
    """DescribeImages' view of one image. ``manifest`` carries no payload."""

    manifest: ManifestRecord
    tags: tuple[str, ...]
    size: int
    scan: ImageScan | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``after`` is the cursor of the next page (None: the last)."""

    items: list[T]
    after: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class _Wanted:
    """An ImageId that passed validation."""

    digest: Digest | None = None
    tag: str | None = None
    found: bool = field(default=True)  # False: well-formed, yet it can name no image


class ImageService:
    def __init__(
        self,
        metadata: MetadataStore,
        repositories: RepositoryService,
        clock: Clock,
        *,
        fixture_images: bool = False,
    ) -> None:
        """``fixture_images`` (emulator mode unless strict): a manifest may reference blobs
        and child manifests that were never pushed, as test suites' in-memory images do;
        the image is recorded with the sizes the manifest declares, and a pull of a blob
        that is absent answers as for any missing blob."""
        self._metadata = metadata
        self._repositories = repositories
        self._clock = clock
        self._fixture_images = fixture_images
        self._background: set[asyncio.Task[None]] = set()
        self._push_hooks: list[PushHook] = []
        self._delete_hooks: list[DeleteHook] = []
        # Pulls counted since the last flush (see _count_pull).
        self._pull_counts: Counter[tuple[int, Digest]] = Counter()
        self._flush: asyncio.TimerHandle | None = None

    def add_push_hook(self, hook: PushHook) -> None:
        """Call ``hook`` in the transaction of each manifest PUT that stores a new manifest or
        moves a tag onto one, after the tag: what it writes (scan on push enqueues a scan,
        replication its copies) commits with the push, or not at all."""
        self._push_hooks.append(hook)

    def add_delete_hook(self, hook: DeleteHook) -> None:
        """Call ``hook`` in the transaction of each deletion that removed something (a tag,
        an image), after the rows are gone: BatchDeleteImage, a ``/v2/`` DELETE, lifecycle
        expiry. Replication propagates deletions from here."""
        self._delete_hooks.append(hook)

    async def _deleted(
        self,
        tx: MetadataTransaction,
        repository: Repository,
        removed: Sequence[Removal],
        now: datetime,
        replica: bool,
    ) -> None:
        if removed:
            deletion = Deletion(repository, tuple(removed), now, replica)
            for hook in self._delete_hooks:
                await hook(tx, deletion)

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
        if record_pull:
            self._count_pull(manifest)
            if _pull_is_stale(manifest, self._clock()):
                self._in_background(self._record_pull(manifest))
        return manifest

    async def put_manifest(
        self,
        registry_id: str,
        name: str,
        reference: Reference,
        payload: bytes,
        content_type: str | None,
        *,
        replica: Replica | None = None,
        cached: bool = False,
    ) -> StoredManifest:
        """Store a manifest, and point the tag at it when ``reference`` is a tag.

        Raises InvalidName, RepositoryNotFound, ManifestInvalid, DigestMismatch,
        LayersNotFound and ReferencedImagesNotFound (both ManifestBlobUnknown), TagImmutable
        (the tag names another manifest and may not move; pushing the manifest it names
        again is fine).

        A ``replica`` never raises TagImmutable: as in ECR, a copy whose tag is immutable
        here and names another image arrives untagged; nor does it move a tag that a copy of
        a later push has set. ``cached``: a pull-through cache's import, whose blobs (and an
        index's children) arrive later, as they are pulled.
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
            repository = await self._repositories.for_push(
                tx, registry_id, name, internal=cached or replica is not None
            )
            lenient = self._fixture_images or cached
            declared: dict[Digest, int] = {}
            for descriptor in manifest.blob_references():
                declared.setdefault(descriptor.digest, descriptor.size)
            blobs = set(declared)
            sizes = await tx.linked_blob_sizes(repository.id, blobs)
            missing = blobs - sizes.keys()
            if missing and not lenient:
                listed = ", ".join(sorted(str(d) for d in missing))
                # ECR's wording; /v2/ answers MANIFEST_BLOB_UNKNOWN with it.
                raise LayersNotFound(
                    f"Layers with digests '[{listed}]' required for pushing image into "
                    f"repository with name '{repository.name}' in the registry with id "
                    f"'{registry_id}' do not exist",
                    detail={"digest": min(str(d) for d in missing)},
                )
            _check_sizes(manifest, sizes)
            children = {d.digest for d in manifest.manifests}
            missing = await tx.missing_manifests(repository.id, children)
            if missing and not lenient:
                listed = ", ".join(sorted(str(d) for d in missing))
                raise ReferencedImagesNotFound(
                    f"Manifests with digests '[{listed}]' referenced by the manifest list do "
                    f"not exist in the repository with name '{repository.name}' in the "
                    f"registry with id '{registry_id}'",
                    detail={"digest": min(str(d) for d in missing)},
                )
            references = [
                ManifestReference(d, ReferenceKind.BLOB, declared[d])
                for d in sorted(blobs, key=str)
            ]
            references += [
                ManifestReference(d, ReferenceKind.MANIFEST) for d in sorted(children, key=str)
            ]
            created = await tx.put_manifest(_record(repository.id, manifest, now), references)
            tag_changed = False
            if reference.tag is not None and (
                replica is None
                or await tx.claim_replicated_tag(repository.id, reference.tag, replica.pushed_at)
            ):
                immutable = tag_is_immutable(repository, reference.tag)
                old = await tx.put_tag(
                    repository.id, reference.tag, manifest.digest, now, move=not immutable
                )
                if immutable and old is not None and old != manifest.digest and replica is None:
                    # Raising rolls back the manifest written above: nothing is stored.
                    raise TagImmutable(
                        f"The image tag '{reference.tag}' already exists in the "
                        f"'{repository.name}' repository and cannot be overwritten because "
                        "the tag is immutable.",
                        detail={"tag": reference.tag, "digest": str(old)},
                    )
                # A replica's immutable tag that names another image stays where it was.
                tag_changed = old != manifest.digest and (old is None or not immutable)
            if created or tag_changed:
                push = Push(repository, manifest, reference.tag, created, tag_changed, now, replica)
                for hook in self._push_hooks:
                    await hook(tx, push)
        return StoredManifest(manifest, created, tag_changed)

    async def delete(
        self, registry_id: str, name: str, reference: Reference, *, replica: bool = False
    ) -> None:
        """By digest: delete the manifest and its tags. By tag: delete only the tag.
        ``replica``: a deletion replication makes (it goes no further).

        Raises RepositoryNotFound, ManifestUnknown, Unsupported (a manifest that an index
        in the repository still lists cannot be deleted, as in ECR).
        """
        now = self._clock()
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            if reference.tag is not None:
                tag = await tx.get_tag(repository.id, reference.tag)
                if tag is None or not await tx.delete_tag(repository.id, reference.tag):
                    raise ManifestUnknown("Requested image not found")
                removal = Removal(tag.digest, reference.tag)
            else:
                assert reference.digest is not None
                parents = await tx.manifest_parents(repository.id, reference.digest)
                if parents:
                    listed = ", ".join(str(p) for p in parents)
                    raise Unsupported(f"Requested image referenced by manifest list: [{listed}]")
                if not await tx.delete_manifest(repository.id, reference.digest, now=now):
                    raise ManifestUnknown("Requested image not found")
                removal = Removal(reference.digest)
            await self._deleted(tx, repository, [removal], now, replica)

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

    # -- ECR API ---------------------------------------------------------------------------

    async def put_image(
        self,
        registry_id: str,
        name: str,
        manifest_text: str,
        *,
        media_type: str | None = None,
        tag: str | None = None,
        digest: str | None = None,
    ) -> StoredManifest:
        """ECR's PutImage: store the manifest (UTF-8 of ``manifest_text``), tagged with ``tag``.

        Checks in ECR's order: the tag's grammar, then InvalidParameter when the document
        has no ``mediaType`` and ``media_type`` is None, ImageDigestDoesNotMatch when
        ``digest`` is not the manifest's sha256, then the manifest PUT (ManifestInvalid,
        RepositoryNotFound, LayersNotFound, ReferencedImagesNotFound, TagImmutable), and last
        ImageAlreadyExists when the digest was stored already and no tag was added or moved.
        A new tag on a stored digest is a retag: only the tag is written.
        """
        valid_tag = _put_image_tag(tag) if tag is not None else None
        payload = manifest_text.encode("utf-8")
        if media_type is None and _declared_media_type(payload) is None:
            # ECR's own words for this case (an InvalidParameterException), which scripts
            # retagging Helm and OCI manifests without imageManifestMediaType see.
            raise InvalidParameter("image manifest mediatype not provided in manifest or parameter")
        computed = Digest.of(payload)
        if digest is not None and digest != str(computed):
            raise ImageDigestDoesNotMatch(
                f"Provided digest '{digest}' does not match the digest of the image "
                f"manifest '{computed}'",
                detail={"expected": digest, "actual": str(computed)},
            )
        reference = Reference(tag=valid_tag) if valid_tag else Reference(digest=computed)
        stored = await self.put_manifest(registry_id, name, reference, payload, media_type)
        if not stored.created and not stored.tag_changed:
            tagged = f" and tag '{tag}'" if tag else ""
            raise ImageAlreadyExists(
                f"Image with digest '{computed}'{tagged} already exists in the "
                f"repository with name '{name}' in registry with id '{registry_id}'"
            )
        return stored

    async def batch_get(
        self,
        registry_id: str,
        name: str,
        image_ids: Sequence[ImageId],
        accepted_media_types: Sequence[str] | None = None,
    ) -> BatchGetResult:
        """ECR's BatchGetImage: each id's manifest, or a failure for it.

        There is no conversion between manifest formats: an image whose media type is not
        among ``accepted_media_types`` (when given) is an ``ImageNotFound`` failure, so a
        client never receives a type it said it cannot read. Each image returned counts as a
        pull (recorded in the background, as for ``/v2/``). Raises InvalidName,
        RepositoryNotFound.
        """
        accepted = None if accepted_media_types is None else set(accepted_media_types)
        images: list[FoundImage] = []
        failures: list[ImageFailure] = []
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            for image_id in dict.fromkeys(image_ids):
                found = await _find(tx, repository.id, image_id)
                if isinstance(found, ImageFailure):
                    failures.append(found)
                elif accepted is not None and found.media_type not in accepted:
                    failures.append(
                        ImageFailure(
                            image_id,
                            ImageFailureCode.IMAGE_NOT_FOUND,
                            f"Requested image not found: its manifest media type "
                            f"'{found.media_type}' is not among the accepted media types",
                        )
                    )
                else:
                    images.append(FoundImage(ImageId(str(found.digest), image_id.tag), found))
        now = self._clock()
        for image in images:
            if _pull_is_stale(image.manifest, now):
                self._in_background(self._record_pull(image.manifest))
        return BatchGetResult(images, failures)

    async def batch_delete(
        self,
        registry_id: str,
        name: str,
        image_ids: Sequence[ImageId],
        *,
        replica: bool = False,
    ) -> BatchDeleteResult:
        """ECR's BatchDeleteImage, in one transaction; every problem with an id is a failure.

        By tag: the tag goes, and the image with it when that was its last tag (an image an
        index still lists stays, untagged: the index needs it). By digest (with a tag, the
        tag must name that digest): the image and all its tags go, unless an index in the
        repository lists it (``ImageReferencedByManifestList``). Raises InvalidName,
        RepositoryNotFound. ``replica``: a deletion replication makes (it goes no further).
        """
        deleted: list[ImageId] = []
        failures: list[ImageFailure] = []
        removed: list[Removal] = []
        now = self._clock()
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            for image_id in image_ids:
                outcome = await _delete_one(tx, repository.id, image_id, now)
                if isinstance(outcome, ImageFailure):
                    failures.append(outcome)
                    continue
                deleted.extend(outcome)
                by_tag = image_id.digest is None and image_id.tag is not None
                digest = Digest.parse(str(outcome[0].digest))
                removed.append(Removal(digest, image_id.tag if by_tag else None))
            await self._deleted(tx, repository, removed, now, replica)
        return BatchDeleteResult(deleted, failures)

    async def delete_unchanged(
        self, registry_id: str, name: str, images: Sequence[ExpectedImage]
    ) -> UnchangedDeleteResult:
        """Delete each image by digest, as BatchDeleteImage does, only when its tags are still
        exactly ``tags`` (in any order): an image tagged or untagged since it was seen is kept.
        One transaction; the images are locked before their tags are read, so a concurrent tag
        push either lands first (and the image is kept) or waits for the deletion. The images
        are decided in the order given, as if deleted one after another: an index deleted
        earlier in ``images`` no longer keeps the images it lists. A handful of statements
        whatever the number of images. Raises InvalidName, RepositoryNotFound.
        """
        deleted: list[Digest] = []
        kept: list[tuple[Digest, str]] = []
        now = self._clock()
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            present = await tx.lock_manifests(repository.id, [i.digest for i in images])
            tags = {
                digest: sorted(names)
                for digest, names in (await tx.tags_by_manifest(repository.id, present)).items()
            }

            def unchanged(image: ExpectedImage) -> bool:
                return tags.get(image.digest, []) == sorted(image.tags)

            candidates = {i.digest for i in images if i.digest in present and unchanged(i)}
            parents = await tx.manifest_parents_many(repository.id, candidates)
            # Decided in the order given, as one deletion after another would be: an index
            # deleted earlier in the batch no longer keeps the images it lists.
            gone: set[Digest] = set()
            for image in images:
                image_id = ImageId(str(image.digest))
                if image.digest not in present or image.digest in gone:
                    kept.append((image.digest, _not_found(image_id).reason))
                elif not unchanged(image):
                    kept.append((image.digest, f"its tags changed to {tags.get(image.digest, [])}"))
                elif listed := [p for p in parents.get(image.digest, []) if p not in gone]:
                    kept.append((image.digest, _listed_by(image_id, listed).reason))
                else:
                    gone.add(image.digest)
                    deleted.append(image.digest)
            await tx.delete_manifests(repository.id, deleted, now=now)
            await self._deleted(tx, repository, [Removal(d) for d in deleted], now, replica=False)
        return UnchangedDeleteResult(deleted, kept)

    async def list_image_ids(
        self,
        registry_id: str,
        name: str,
        *,
        tag_status: TagStatus = TagStatus.ANY,
        after: Sequence[str] | None = None,
        limit: int,
    ) -> Page[ImageId]:
        """ECR's ListImages: one id per tag, one per untagged image, by digest then tag.

        ``after`` is a cursor from a previous page. Raises InvalidName, RepositoryNotFound,
        InvalidParameter for a cursor that is not one.
        """
        cursor = _cursor(after, 2)
        start = (Digest.parse(cursor[0]), cursor[1]) if cursor else None
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            rows = await tx.list_image_ids(
                repository.id, tagged=tag_status.tagged, after=start, limit=limit + 1
            )
        items = [ImageId(str(digest), tag) for digest, tag in rows[:limit]]
        last = items[-1] if len(rows) > limit else None
        return Page(items, None if last is None else (str(last.digest), last.tag or ""))

    async def describe(
        self,
        registry_id: str,
        name: str,
        *,
        image_ids: Sequence[ImageId] | None = None,
        tag_status: TagStatus = TagStatus.ANY,
        after: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Page[ImageDetail]:
        """ECR's DescribeImages: the named images (each once, in the order named), or a page
        of all of them in binary order of digest filtered by ``tag_status``.

        Raises InvalidName, RepositoryNotFound, InvalidParameter (a malformed id or cursor;
        ``after`` or ``limit`` together with ``image_ids``), ManifestUnknown for the first
        named image that does not exist, with ECR's message.
        """
        if image_ids is not None and (after is not None or limit is not None):
            raise InvalidParameter(
                "Invalid parameter: nextToken and maxResults cannot be used with imageIds"
            )
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            if image_ids is None:
                cursor = _cursor(after, 1)
                records = await tx.list_manifests(
                    repository.id,
                    tagged=tag_status.tagged,
                    after=Digest.parse(cursor[0]) if cursor else None,
                    limit=None if limit is None else limit + 1,
                )
                more = limit is not None and len(records) > limit
                records = records[:limit]
                next_after = (str(records[-1].digest),) if more else None
            else:
                named: dict[Digest, ManifestRecord] = {}
                for image_id in image_ids:
                    record = await _find_or_raise(tx, repository.id, image_id, registry_id, name)
                    named.setdefault(record.digest, record)
                records, next_after = list(named.values()), None
            details = await _details(tx, repository.id, records)
        return Page(details, next_after)

    async def list_image_referrers(
        self,
        registry_id: str,
        name: str,
        subject: str,
        *,
        artifact_types: Sequence[str] = (),
        after: Sequence[str] | None = None,
        limit: int,
    ) -> Page[ManifestRecord]:
        """ECR's ListImageReferrers: manifests whose subject is ``subject``, in push order,
        of one of ``artifact_types`` when any are given. The subject need not exist.

        Raises InvalidName, RepositoryNotFound, InvalidDigest, InvalidParameter (cursor).
        """
        subject_digest = Digest.parse(subject)
        cursor = _cursor(after, 2)
        wanted = set(artifact_types)
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, RepositoryName(name))
            records = await tx.list_referrers(repository.id, subject_digest)
        if wanted:
            records = [r for r in records if r.artifact_type in wanted]
        if cursor:
            records = [r for r in records if (r.pushed_at.isoformat(), str(r.digest)) > cursor]
        page = records[:limit]
        last = page[-1] if len(records) > limit else None
        return Page(page, None if last is None else (last.pushed_at.isoformat(), str(last.digest)))

    async def close(self) -> None:
        """Wait for background work (pull records) to finish, and write the pulls counted."""
        if self._flush is not None:
            self._flush.cancel()  # written below, without waiting for the timer
            self._flush = None
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        try:
            await self._flush_pull_counts()
        except Exception as exc:  # the database may be gone already: shutdown goes on
            log.warning("pull counts not written at shutdown: %s", exc)

    def _count_pull(self, manifest: ManifestRecord) -> None:
        # Counted in memory and written in one transaction a moment later: a pull stays a
        # read, and a burst of pulls costs one write. Counts of a process killed in between
        # are lost; they are a popularity figure, not a bill.
        self._pull_counts[(manifest.repository_id, manifest.digest)] += 1
        if self._flush is None:
            # A timer, not a sleeping task: close() cancels it without ever interrupting a
            # write that has begun (which would leave its database connection broken).
            self._flush = asyncio.get_running_loop().call_later(
                PULL_COUNT_FLUSH_SECONDS, self._start_flush
            )

    def _start_flush(self) -> None:
        self._flush = None
        self._in_background(self._flush_pull_counts())

    async def _flush_pull_counts(self) -> None:
        counts, self._pull_counts = self._pull_counts, Counter()
        if counts:
            async with self._metadata.transaction() as tx:
                await tx.add_pull_counts(counts)

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


# -- ECR API helpers ---------------------------------------------------------------------------


def _put_image_tag(tag: str) -> Tag:
    """PutImage's tag: ECR's charset first (its message), then the OCI grammar, since a tag
    ``/v2/`` clients cannot name (``-x``, over 128 characters) would be unreachable there."""
    if not _ECR_TAG.fullmatch(tag):
        raise InvalidParameter(
            "Invalid parameter at 'imageTag' failed to satisfy constraint: "
            f"'must satisfy regular expression '{ECR_TAG_PATTERN}''"
        )
    try:
        return Tag(tag)
    except InvalidTag as exc:
        raise InvalidParameter(
            f"Invalid parameter at 'imageTag' failed to satisfy constraint: '{exc.message}'"
        ) from None


def _check_sizes(manifest: ParsedManifest, sizes: dict[Digest, int]) -> None:
    """Refuse a manifest whose config or layer ``size`` is not the stored blob's: docker and
    containerd check it on pull, so such an image could be pushed but never pulled
    (distribution refuses it too). Raises ManifestInvalid naming the first such blob."""
    for descriptor in manifest.blob_references():
        stored = sizes.get(descriptor.digest)
        if stored is not None and stored != descriptor.size:
            raise ManifestInvalid(
                f"blob {descriptor.digest} is {stored} bytes, but the manifest gives its size "
                f"as {descriptor.size}",
                detail={"digest": str(descriptor.digest), "size": stored},
            )


def _declared_media_type(payload: bytes) -> str | None:
    """The document's own ``mediaType``; None when it has none (or is not a JSON object,
    which the manifest parser reports with its own message)."""
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        return ""  # not JSON: let parse_manifest say so
    if not isinstance(document, dict):
        return ""
    declared = document.get("mediaType")
    return declared if isinstance(declared, str) else None


def _check_id(image_id: ImageId) -> _Wanted | ImageFailure:
    """Validate an id as ECR does for batch operations (moto's texts, which match ECR's)."""
    if image_id.digest is None and image_id.tag is None:
        return ImageFailure(
            image_id,
            ImageFailureCode.MISSING_DIGEST_AND_TAG,
            "Invalid request parameters: both tag and digest cannot be null",
        )
    digest: Digest | None = None
    found = True
    if image_id.digest is not None:
        if not _ECR_DIGEST.fullmatch(image_id.digest):
            return ImageFailure(
                image_id,
                ImageFailureCode.INVALID_IMAGE_DIGEST,
                "Invalid request parameters: image digest should satisfy the regex "
                "'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
            )
        try:
            digest = Digest.parse(image_id.digest)
        except InvalidDigest:
            found = False
    if image_id.tag is not None:
        if not _ECR_TAG.fullmatch(image_id.tag):
            return ImageFailure(
                image_id,
                ImageFailureCode.INVALID_IMAGE_TAG,
                f"Invalid request parameters: image tag should satisfy the regex "
                f"'{ECR_TAG_PATTERN}'",
            )
        try:
            Tag(image_id.tag)
        except InvalidTag:
            found = False
    return _Wanted(digest, image_id.tag, found)


def _not_found(image_id: ImageId) -> ImageFailure:
    return ImageFailure(image_id, ImageFailureCode.IMAGE_NOT_FOUND, "Requested image not found")


async def _find(
    tx: MetadataTransaction, repository_id: int, image_id: ImageId
) -> ManifestRecord | ImageFailure:
    """The manifest ``image_id`` names (a tag, with a digest, must name that digest)."""
    wanted = _check_id(image_id)
    if isinstance(wanted, ImageFailure):
        return wanted
    if not wanted.found:
        return _not_found(image_id)
    if wanted.tag is not None:
        record = await tx.resolve_tag(repository_id, wanted.tag)
        if record is None:
            return _not_found(image_id)
        if wanted.digest is not None and record.digest != wanted.digest:
            return _tag_does_not_match(image_id)
        return record
    assert wanted.digest is not None
    record = await tx.get_manifest(repository_id, wanted.digest)
    return _not_found(image_id) if record is None else record


def _tag_does_not_match(image_id: ImageId) -> ImageFailure:
    return ImageFailure(
        image_id,
        ImageFailureCode.IMAGE_TAG_DOES_NOT_MATCH_DIGEST,
        f"Invalid request parameters: the tag '{image_id.tag}' does not name the image with "
        f"digest '{image_id.digest}'",
    )


async def find_image(
    tx: MetadataTransaction, repository_id: int, image_id: ImageId, registry_id: str, name: str
) -> ManifestRecord:
    """The manifest ``image_id`` names in the repository, as the single-image operations
    (StartImageScan, DescribeImageScanFindings) look it up. Raises InvalidParameter (a
    malformed id), ManifestUnknown with ECR's ImageNotFoundException text."""
    return await _find_or_raise(tx, repository_id, image_id, registry_id, name)


async def _find_or_raise(
    tx: MetadataTransaction, repository_id: int, image_id: ImageId, registry_id: str, name: str
) -> ManifestRecord:
    """DescribeImages' lookup: a malformed id is InvalidParameter, a missing image
    ManifestUnknown with ECR's ImageNotFoundException text."""
    found = await _find(tx, repository_id, image_id)
    if not isinstance(found, ImageFailure):
        return found
    if found.code is not ImageFailureCode.IMAGE_NOT_FOUND:
        raise InvalidParameter(f"Invalid parameter at 'imageIds': {found.reason}")
    raise ManifestUnknown(
        f"The image with imageId {{imageDigest:'{image_id.digest or 'null'}', "
        f"imageTag:'{image_id.tag or 'null'}'}} does not exist within the repository with "
        f"name '{name}' in the registry with id '{registry_id}'"
    )


async def _delete_one(
    tx: MetadataTransaction, repository_id: int, image_id: ImageId, now: datetime
) -> list[ImageId] | ImageFailure:
    wanted = _check_id(image_id)
    if isinstance(wanted, ImageFailure):
        return wanted
    if not wanted.found:
        return _not_found(image_id)
    digest = wanted.digest
    if wanted.tag is not None:
        tag = await tx.get_tag(repository_id, wanted.tag)
        if tag is None:
            return _not_found(image_id)
        if digest is not None and tag.digest != digest:
            return _tag_does_not_match(image_id)
        if digest is None:
            # By tag alone: the tag goes; the image goes with its last tag.
            await tx.delete_tag(repository_id, wanted.tag)
            if not await tx.tags_of(repository_id, tag.digest) and not await tx.manifest_parents(
                repository_id, tag.digest
            ):
                await tx.delete_manifest(repository_id, tag.digest, now=now)
            return [ImageId(str(tag.digest), wanted.tag)]
    assert digest is not None
    return await _delete_by_digest(tx, repository_id, digest, image_id, now)


async def _delete_by_digest(
    tx: MetadataTransaction, repository_id: int, digest: Digest, image_id: ImageId, now: datetime
) -> list[ImageId] | ImageFailure:
    """Delete the image and all its tags unless an index lists it; ``image_id`` names it in
    a failure."""
    if await tx.get_manifest(repository_id, digest) is None:
        return _not_found(image_id)
    parents = await tx.manifest_parents(repository_id, digest)
    if parents:
        return _listed_by(image_id, parents)
    tags = await tx.tags_of(repository_id, digest)
    await tx.delete_manifest(repository_id, digest, now=now)
    return [ImageId(str(digest), tag) for tag in tags] or [ImageId(str(digest))]


def _listed_by(image_id: ImageId, parents: Sequence[Digest]) -> ImageFailure:
    listed = ", ".join(str(p) for p in parents)
    return ImageFailure(
        image_id,
        ImageFailureCode.IMAGE_REFERENCED_BY_MANIFEST_LIST,
        f"Requested image referenced by manifest list: [{listed}]",
    )


async def _details(
    tx: MetadataTransaction, repository_id: int, records: list[ManifestRecord]
) -> list[ImageDetail]:
    """Tags and sizes for ``records``, in a handful of queries whatever their number."""
    digests = [r.digest for r in records]
    tags = await tx.tags_by_manifest(repository_id, digests)
    totals = await tx.blob_totals(repository_id, digests)
    children = await tx.manifest_children(repository_id, digests)
    grandchildren = {c for listed in children.values() for c in listed}
    child_totals = await tx.blob_totals(repository_id, grandchildren) if grandchildren else {}
    scans = await tx.image_scans(repository_id, digests)
    details = []
    for record in records:
        if record.digest in children:
            size = max((child_totals.get(c, 0) for c in children[record.digest]), default=0)
        else:
            size = totals.get(record.digest, 0)
        details.append(
            ImageDetail(record, tuple(tags.get(record.digest, ())), size, scans.get(record.digest))
        )
    return details


def _cursor(after: Sequence[str] | None, length: int) -> tuple[str, ...] | None:
    """A cursor as a page returned it, or InvalidParameter; digests in it are parsed by the
    caller (InvalidDigest is an InvalidParameterException too)."""
    if after is None:
        return None
    if len(after) != length or not all(isinstance(part, str) for part in after):
        raise InvalidParameter("Invalid parameter at 'nextToken': the token is not valid")
    return tuple(after)
