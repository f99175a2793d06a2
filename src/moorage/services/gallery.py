"""What the gallery shows (``protocols/gallery``): public repositories found by a search,
and one repository's page: its catalog data, its tags with the platforms and sizes of their
images (an index as one row with its platforms), the pull counts, and the default tag.

Platforms come from the manifests: an index lists its children's; a single image's are in
its config blob, read here (at most ``MAX_CONFIG_BYTES`` of it). Sizes are those
DescribeImages reports: config and layers, as each manifest gives them (an index: the sum of
its platforms'). The default tag is ``latest`` when the repository has it, else the tag moved
most recently: what ``docker pull`` without a tag would want, and ECR Public has no setting
for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from moorage.domain.digests import Digest
from moorage.domain.errors import BlobUnknown, InvalidDigest
from moorage.domain.public import CatalogData
from moorage.ports.blobs import BlobStore
from moorage.ports.gallery import GalleryEntry, GalleryTag
from moorage.ports.metadata import MetadataStore

PAGE_SIZE = 24
MAX_TAGS_SHOWN = 100
MAX_CONFIG_BYTES = 256 * 1024
_INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
DEFAULT_TAG = "latest"


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@dataclass(frozen=True, slots=True)
class TagRow:
    tag: GalleryTag
    platforms: tuple[Platform, ...]
    size: int

    @property
    def is_index(self) -> bool:
        return self.tag.media_type in _INDEX_TYPES


@dataclass(frozen=True, slots=True)
class RepositoryPage:
    entry: GalleryEntry
    catalog: CatalogData
    tags: tuple[TagRow, ...]
    default_tag: str | None


class GalleryService:
    def __init__(self, metadata: MetadataStore, blob_store: BlobStore) -> None:
        """``metadata`` acts in the public namespace."""
        self._metadata = metadata
        self._blobs = blob_store

    async def search(
        self,
        text: str = "",
        *,
        architectures: Sequence[str] = (),
        operating_systems: Sequence[str] = (),
        after: tuple[str, str] | None = None,
        limit: int = PAGE_SIZE,
    ) -> list[GalleryEntry]:
        async with self._metadata.read() as tx:
            return await tx.search_public_repositories(
                text=text,
                architectures=architectures,
                operating_systems=operating_systems,
                after=after,
                limit=limit,
            )

    async def repository(self, alias: str, name: str) -> RepositoryPage | None:
        """The page of ``alias/name``, None when there is no such public repository."""
        async with self._metadata.read() as tx:
            entry = await tx.public_repository_entry(alias, name)
            if entry is None:
                return None
            catalog = await tx.get_catalog_data(entry.repository_id) or CatalogData()
            tags = await tx.public_repository_tags(entry.repository_id, limit=MAX_TAGS_SHOWN)
            children = _children(tags)
            payloads = await tx.manifest_payloads(entry.repository_id, children) if children else {}
        rows = tuple([await self._row(tag, payloads) for tag in tags])
        return RepositoryPage(entry, catalog, rows, _default_tag(tags))

    async def logo(self, alias: str, name: str | None) -> bytes | None:
        """The PNG logo of a public repository, or of the registry when ``name`` is None."""
        async with self._metadata.read() as tx:
            if name is None:
                registry = await tx.public_registry_by_alias(alias)
                return None if registry is None else registry.logo
            entry = await tx.public_repository_entry(alias, name)
            if entry is None or not entry.has_logo:
                return None
            catalog = await tx.get_catalog_data(entry.repository_id)
            return None if catalog is None else catalog.logo

    async def _row(self, tag: GalleryTag, payloads: dict[Digest, bytes]) -> TagRow:
        document = _json(tag.payload)
        if tag.media_type in _INDEX_TYPES:
            platforms: list[Platform] = []
            size = 0
            for child in _platform_children(document):
                platforms.append(_platform(child.get("platform", {})))
                try:
                    child_payload = payloads.get(Digest.parse(child["digest"]), b"{}")
                except InvalidDigest:
                    continue
                size += _image_size(_json(child_payload))
            return TagRow(tag, tuple(platforms), size)
        platform = await self._config_platform(document)
        return TagRow(tag, (platform,) if platform else (), _image_size(document))

    async def _config_platform(self, manifest: dict[str, Any]) -> Platform | None:
        config = manifest.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
            return None
        if not isinstance(config.get("size"), int) or config["size"] > MAX_CONFIG_BYTES:
            return None
        try:
            digest = Digest.parse(config["digest"])
            chunks = [chunk async for chunk in self._blobs.open(digest, 0, MAX_CONFIG_BYTES)]
        except (BlobUnknown, InvalidDigest):
            return None  # a fixture image of emulator mode, or a config never pushed
        document = _json(b"".join(chunks))
        if not document.get("architecture") and not document.get("os"):
            return None  # an artifact's config (a Helm chart, a signature)
        return _platform(document)


def _json(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _platform(raw: Any) -> Platform:
    raw = raw if isinstance(raw, dict) else {}
    return Platform(
        str(raw.get("os", "")), str(raw.get("architecture", "")), str(raw.get("variant", ""))
    )


def _platform_children(index: dict[str, Any]) -> list[dict[str, Any]]:
    """An index's image manifests, without buildx's attestation manifests."""
    children = []
    for child in index.get("manifests") or ():
        if not isinstance(child, dict) or not isinstance(child.get("digest"), str):
            continue
        annotations = child.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        children.append(child)
    return children


def _children(tags: Sequence[GalleryTag]) -> list[Digest]:
    wanted: list[Digest] = []
    for tag in tags:
        if tag.media_type in _INDEX_TYPES:
            for child in _platform_children(_json(tag.payload)):
                try:
                    wanted.append(Digest.parse(child["digest"]))
                except InvalidDigest:
                    continue
    return list(dict.fromkeys(wanted))


def _image_size(manifest: dict[str, Any]) -> int:
    parts = [manifest.get("config"), *(manifest.get("layers") or ())]
    return sum(
        part["size"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("size"), int)
    )


def _default_tag(tags: Sequence[GalleryTag]) -> str | None:
    names = [tag.tag for tag in tags]
    if DEFAULT_TAG in names:
        return DEFAULT_TAG
    return names[0] if names else None
