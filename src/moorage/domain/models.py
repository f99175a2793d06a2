"""Records the services read and write. Plain frozen dataclasses, no behaviour of note."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from moorage.domain.digests import Digest
from moorage.domain.regions import DEFAULT_REGION


class TagMutability(StrEnum):
    """ECR's ``imageTagMutability``; ``tag_is_immutable`` (domain/mutability.py) applies it."""

    MUTABLE = "MUTABLE"
    IMMUTABLE = "IMMUTABLE"
    IMMUTABLE_WITH_EXCLUSION = "IMMUTABLE_WITH_EXCLUSION"  # immutable, except matching tags
    MUTABLE_WITH_EXCLUSION = "MUTABLE_WITH_EXCLUSION"  # mutable, except matching tags


@dataclass(frozen=True, slots=True)
class Repository:
    """A repository and its settings (ECR's ``Repository`` object, without derived fields).

    ``mutability_exclusion_filters`` are ECR ``WILDCARD`` filters (see domain/mutability.py);
    ``kms_key`` is None for AES256, and for KMS/KMS_DSSE with the AWS-managed key.
    """

    id: int
    registry_id: str
    name: str
    created_at: datetime
    image_tag_mutability: TagMutability = TagMutability.MUTABLE
    mutability_exclusion_filters: tuple[str, ...] = ()
    scan_on_push: bool = False
    encryption_type: str = "AES256"
    kms_key: str | None = None
    region: str = DEFAULT_REGION  # on AWS every (account, region) is a registry of its own


class AccountSetting(StrEnum):
    """The names of ECR's account settings (services/registry.py has their values)."""

    BASIC_SCAN_TYPE_VERSION = "BASIC_SCAN_TYPE_VERSION"
    REGISTRY_POLICY_SCOPE = "REGISTRY_POLICY_SCOPE"
    BLOB_MOUNTING = "BLOB_MOUNTING"


@dataclass(frozen=True, slots=True)
class PolicyTexts:
    """The stored inputs of an authorization decision beyond identity policies.

    ``registry_policy_scope`` is the ``REGISTRY_POLICY_SCOPE`` account setting as stored:
    None when it was never put (services/registry.py knows the default).
    """

    repository_policy: str | None
    registry_policy: str | None
    registry_policy_scope: str | None
    # The repository's resource tags, for aws:ResourceTag conditions (empty without one).
    repository_tags: Mapping[str, str] = field(default_factory=dict)


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
    # For a blob: the size the manifest gives it. The stored blob's size once one exists
    # (a manifest is refused when they differ); kept for emulator mode's fixture images,
    # whose blobs never exist, so that their images still have the size they declare.
    declared_size: int | None = None


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
