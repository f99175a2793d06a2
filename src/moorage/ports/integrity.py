"""What the integrity check (``services/fsck.py``) reads from the metadata store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from moorage.domain.digests import Digest
from moorage.domain.models import BlobRecord


@dataclass(frozen=True, slots=True)
class DanglingReference:
    """Something in a repository that names what the repository does not hold (``moorage
    fsck``): a manifest's blob (``kind`` "blob") or child manifest ("manifest"), or a tag's
    manifest ("tag"). ``source`` is the referring manifest's digest, or the tag's name."""

    repository_id: int
    kind: str
    source: str
    target: str


class IntegrityRecords(Protocol):
    async def list_blobs(
        self, *, after: Digest | None = None, limit: int = 1000
    ) -> list[BlobRecord]:
        """Up to ``limit`` recorded blobs in binary order of digest, strictly after ``after``."""
        ...

    async def dangling_references(self, limit: int = 1000) -> list[DanglingReference]:
        """Up to ``limit`` references that resolve to nothing in their repository: a
        manifest's blob that is not linked there, a child manifest or a tag's manifest that is
        not there. Empty when the store is consistent (``moorage fsck``)."""
        ...
