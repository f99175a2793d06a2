"""The gallery's read model: public repositories as the gallery lists and shows them, each
view in one or two queries. Part of every metadata transaction (``MetadataTransaction``
includes :class:`GalleryRecords`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from moorage.domain.digests import Digest


@dataclass(frozen=True, slots=True)
class GalleryEntry:
    """A public repository with its registry and catalog data (no texts, no logo bytes)."""

    repository_id: int
    registry_id: str
    alias: str
    name: str
    created_at: datetime
    description: str
    architectures: tuple[str, ...]
    operating_systems: tuple[str, ...]
    has_logo: bool
    display_name: str
    verified: bool


@dataclass(frozen=True, slots=True)
class GalleryTag:
    """One tag of a public repository and the image it names (the manifest's bytes too: the
    platforms of an index are read from them)."""

    tag: str
    tagged_at: datetime
    digest: Digest
    media_type: str
    payload: bytes
    pushed_at: datetime
    pull_count: int


class GalleryRecords(Protocol):
    async def search_public_repositories(
        self,
        *,
        text: str = "",
        architectures: Sequence[str] = (),
        operating_systems: Sequence[str] = (),
        after: tuple[str, str] | None = None,
        limit: int = 24,
    ) -> list[GalleryEntry]:
        """Public repositories whose alias, name or description holds ``text`` (any case),
        with every architecture and operating system given among their badges; in order of
        (alias, name), after ``after``. One query."""
        ...

    async def public_repository_entry(self, alias: str, name: str) -> GalleryEntry | None:
        """The repository ``name`` of the public registry ``alias``. One query."""
        ...

    async def public_repository_tags(
        self, repository_id: int, *, limit: int = 100
    ) -> list[GalleryTag]:
        """The repository's tags, the most recently pointed first, with their images. One
        query."""
        ...

    async def manifest_payloads(
        self, repository_id: int, digests: Sequence[Digest]
    ) -> dict[Digest, bytes]:
        """The bytes of those of ``digests`` the repository holds (an index's children, for
        their sizes). One query per thousand digests."""
        ...
