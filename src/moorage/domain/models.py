"""Records the services read and write. Plain frozen dataclasses, no behaviour of note."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from moorage.domain.digests import Digest


@dataclass(frozen=True, slots=True)
class Repository:
    id: int
    registry_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """A blob known to the registry (its bytes live in the BlobStore under its digest)."""

    digest: Digest
    size: int
    created_at: datetime


class ReferenceKind(StrEnum):
    BLOB = "blob"  # config or layer of an image manifest
    MANIFEST = "manifest"  # child of an index


@dataclass(frozen=True, slots=True)
class ManifestReference:
    digest: Digest
    kind: ReferenceKind


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    """A manifest stored in a repository. ``payload`` holds the exact bytes received."""

    repository_id: int
    digest: Digest
    media_type: str
    size: int
    payload: bytes
    pushed_at: datetime
    artifact_type: str | None = None  # for referrers: artifactType, else config mediaType
    config_media_type: str | None = None
    subject: Digest | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    last_pulled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TagRecord:
    repository_id: int
    name: str
    digest: Digest
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UploadSession:
    """A resumable blob upload. ``size`` counts the bytes durably received so far."""

    id: str
    repository_id: int
    size: int
    started_at: datetime
    updated_at: datetime
