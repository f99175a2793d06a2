"""Parse and validate OCI and Docker manifests and indexes.

Accepted media types (schema version 2 only; Docker schema 1 is refused, as distribution
2.8 does by default):

- ``application/vnd.docker.distribution.manifest.v2+json``       image manifest
- ``application/vnd.docker.distribution.manifest.list.v2+json``  manifest list
- ``application/vnd.oci.image.manifest.v1+json``                 image manifest / artifact
- ``application/vnd.oci.image.index.v1+json``                    image index

The manifest's digest is computed over the exact bytes received; nothing here rewrites them.
Validation is structural: whether referenced blobs and child manifests exist is the
service's question, answered from :meth:`ParsedManifest.blob_references` and
:attr:`ParsedManifest.manifests`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moorage.domain.digests import Digest
from moorage.domain.errors import InvalidDigest, ManifestInvalid, ManifestTooLarge

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"

IMAGE_MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
MANIFEST_MEDIA_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES

# Layers that clients fetch from their ``urls`` instead of the registry, so they need not be
# pushed (Windows base layers). distribution skips the existence check for them too.
NON_DISTRIBUTABLE_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)

# Content types a client may send when it does not name the manifest type.
GENERIC_CONTENT_TYPES = frozenset({"", "application/json", "application/octet-stream"})

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor: what a manifest says about content it points at."""

    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    platform: Mapping[str, Any] | None = None

    @property
    def is_foreign(self) -> bool:
        return bool(self.urls) and self.media_type in NON_DISTRIBUTABLE_LAYER_TYPES


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    """A validated manifest or index, with the exact bytes it was parsed from."""

    media_type: str
    payload: bytes
    digest: Digest
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: Mapping[str, str]

    @property
    def size(self) -> int:
        return len(self.payload)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def referrer_artifact_type(self) -> str | None:
        """The ``artifactType`` a referrers listing reports (image-spec: fall back to config)."""
        if self.artifact_type:
            return self.artifact_type
        return self.config.media_type if self.config else None

    def blob_references(self) -> tuple[Descriptor, ...]:
        """Blobs that must exist in the repository: config and layers, minus foreign layers."""
        blobs = [self.config] if self.config else []
        blobs.extend(layer for layer in self.layers if not layer.is_foreign)
        return tuple(blobs)


def parse_manifest(
    payload: bytes, content_type: str | None, digest_algorithm: str = "sha256"
) -> ParsedManifest:
    """Validate ``payload`` as a manifest of ``content_type`` and return its parsed form.

    ``content_type`` may be generic or absent; the type is then taken from the document.
    Raises :class:`ManifestTooLarge` over 4 MiB and :class:`ManifestInvalid` otherwise.
    """
    if len(payload) > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge(
            f"manifest is {len(payload)} bytes; the limit is {MAX_MANIFEST_BYTES}"
        )
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    except RecursionError:
        raise ManifestInvalid("manifest JSON is nested too deeply") from None
    if not isinstance(document, dict):
        raise ManifestInvalid("manifest must be a JSON object")

    media_type = _resolve_media_type(document, (content_type or "").split(";")[0].strip())
    if document.get("schemaVersion") != 2:
        raise ManifestInvalid("manifest schemaVersion must be 2")

    artifact_type = _optional_str(document, "artifactType")
    subject = _descriptor(document["subject"], "subject") if "subject" in document else None
    annotations = _annotations(document.get("annotations"), "annotations")
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()

    if media_type in INDEX_TYPES:
        if "config" in document or "layers" in document:
            raise ManifestInvalid("an index must not have config or layers")
        manifests = _descriptor_list(document.get("manifests"), "manifests")
    else:
        if "manifests" in document:
            raise ManifestInvalid("an image manifest must not have manifests")
        if "config" not in document:
            raise ManifestInvalid("manifest has no config")
        config = _descriptor(document["config"], "config")
        layers = _descriptor_list(document.get("layers", []), "layers")
        if media_type == DOCKER_MANIFEST and artifact_type is not None:
            raise ManifestInvalid("artifactType is not part of the Docker manifest format")
        if (
            artifact_type is None
            and config.media_type == OCI_EMPTY_CONFIG
            and media_type == OCI_MANIFEST
        ):
            # image-spec: an artifact with the empty config MUST say what it is.
            raise ManifestInvalid("artifactType is required when config is the empty descriptor")

    return ParsedManifest(
        media_type=media_type,
        payload=payload,
        digest=Digest.of(payload, digest_algorithm),
        config=config,
        layers=layers,
        manifests=manifests,
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )


def _resolve_media_type(document: dict[str, Any], content_type: str) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    if content_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED) or declared in (
        DOCKER_SCHEMA1,
        DOCKER_SCHEMA1_SIGNED,
    ):
        raise ManifestInvalid("Docker schema 1 manifests are not supported; push schema 2 or OCI")
    if content_type not in GENERIC_CONTENT_TYPES:
        if content_type not in MANIFEST_MEDIA_TYPES:
            raise ManifestInvalid(f"unsupported manifest media type {content_type!r}")
        if declared is not None and declared != content_type:
            raise ManifestInvalid(
                f"manifest mediaType {declared!r} does not match Content-Type {content_type!r}"
            )
        return content_type
    if declared is not None:
        if declared not in MANIFEST_MEDIA_TYPES:
            raise ManifestInvalid(f"unsupported manifest media type {declared!r}")
        return declared
    # OCI documents may omit mediaType; tell an index from a manifest by its shape.
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document:
        return OCI_MANIFEST
    raise ManifestInvalid("cannot tell the manifest's media type: set Content-Type or mediaType")


def _optional_str(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise ManifestInvalid(f"{key} must be a string")
    return value


def _annotations(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ManifestInvalid(f"{where} must be a map of strings")
    return dict(value)


def _descriptor_list(value: object, where: str) -> tuple[Descriptor, ...]:
    if not isinstance(value, list):
        raise ManifestInvalid(f"{where} must be a list of descriptors")
    return tuple(_descriptor(item, f"{where}[{index}]") for index, item in enumerate(value))


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object")
    media_type = value.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType must be a non-empty string")
    size = value.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
    raw_digest = value.get("digest")
    if not isinstance(raw_digest, str):
        raise ManifestInvalid(f"{where}.digest must be a string")
    try:
        digest = Digest.parse(raw_digest)
    except InvalidDigest as exc:
        raise ManifestInvalid(f"{where}.digest: {exc.message}") from None
    urls = value.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ManifestInvalid(f"{where}.urls must be a list of strings")
    platform = value.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise ManifestInvalid(f"{where}.platform must be an object")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        artifact_type=_optional_str(value, "artifactType"),
        annotations=_annotations(value.get("annotations"), f"{where}.annotations"),
        urls=tuple(urls),
        platform=platform,
    )
