"""The images, blobs and artifacts the conformance workflows push, built like the upstream
suite builds them (distribution-spec v1.1.1, ``conformance/setup.go`` and ``image.go``).

Documents are serialised the way Go's ``json.MarshalIndent(v, "", "\\t")`` serialises the
upstream structs, field order included. Two details are deliberate and come from there:

- every descriptor carries ``newUnspecifiedField``, base64 text for image configs and ``null``
  everywhere else (Go marshals a nil ``[]byte`` as ``null``): a registry must store and serve
  fields it does not know;
- image config descriptors embed the config itself in ``data`` (base64).

Indices follow upstream's ``configs[i]`` / ``manifests[i]``: 0 and 1 serve the pull workflow,
1 the push workflow, 2 and 4 content discovery (3 is the subject that is never pushed there),
and 3 content management.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import secrets
import string
import tarfile
from dataclasses import dataclass, field
from typing import Any

IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_JSON_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

ARTIFACT_TYPE_A = "application/vnd.moorage.conformance.alpha"
ARTIFACT_TYPE_B = "application/vnd.moorage.conformance.beta"
ARTIFACT_TYPE_INDEX = "application/vnd.moorage.conformance.bundle"
ANNOTATION_KEY = "org.opencontainers.conformance.test"

TEST_TAG = "tagtest0"
EMPTY_LAYER_TAG = "emptylayer"
# Not a valid tag (a tag cannot start with '.'), so it can never name a manifest.
NONEXISTENT_MANIFEST = ".INVALID_MANIFEST_NAME"
WORKFLOW_IMAGES = 5

# Every code the spec registers; an error body must use one of them.
ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "MANIFEST_UNVERIFIED",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "TAG_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
    }
)


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass(frozen=True)
class Blob:
    """Some bytes and the facts a push needs about them."""

    content: bytes

    @property
    def digest(self) -> str:
        return sha256(self.content)

    @property
    def length(self) -> str:
        return str(len(self.content))

    @property
    def size(self) -> int:
        return len(self.content)


def go_json(document: dict[str, Any]) -> Blob:
    """``json.MarshalIndent(document, "", "\\t")``: tab indent, no trailing newline."""
    return Blob(json.dumps(document, indent="\t").encode())


def descriptor(
    media_type: str,
    blob: Blob,
    *,
    annotations: dict[str, str] | None = None,
    data: bytes | None = None,
    new_field: bytes | None = None,
) -> dict[str, Any]:
    """A descriptor in upstream's field order, with ``newUnspecifiedField`` always present."""
    document: dict[str, Any] = {"mediaType": media_type, "digest": blob.digest, "size": blob.size}
    if annotations:
        document["annotations"] = annotations
    if data is not None:
        document["data"] = base64.b64encode(data).decode()
    document["newUnspecifiedField"] = (
        base64.b64encode(new_field).decode() if new_field is not None else None
    )
    return document


def image_manifest(
    config: dict[str, Any],
    layers: list[dict[str, Any]],
    *,
    media_type: str | None = IMAGE_MANIFEST,
    artifact_type: str | None = None,
    subject: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> Blob:
    document: dict[str, Any] = {"schemaVersion": 2}
    if media_type:
        document["mediaType"] = media_type
    if artifact_type:
        document["artifactType"] = artifact_type
    document["config"] = config
    document["layers"] = layers
    if subject is not None:
        document["subject"] = subject
    if annotations:
        document["annotations"] = annotations
    return go_json(document)


def random_blob(size: int) -> Blob:
    return Blob(secrets.token_bytes(size))


def random_author(length: int = 16) -> str:
    alphabet = string.digits + string.ascii_letters + "-"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def tiny_layer() -> Blob:
    """A gzipped tarball holding one small text file (fixed mtimes, so always the same bytes)."""
    payload = b"moorage conformance layer: one file, one line.\n"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        member = tarfile.TarInfo("test.txt")
        member.size = len(payload)
        member.mtime = 0
        tar.addfile(member, io.BytesIO(payload))
    return Blob(gzip.compress(archive.getvalue(), mtime=0))


@dataclass(frozen=True)
class ChunkedBlob:
    """A blob split in two chunks for the chunked-upload workflow, with their Content-Ranges."""

    whole: Blob
    first: bytes
    second: bytes

    @classmethod
    def of_size(cls, size: int) -> ChunkedBlob:
        whole = random_blob(size)
        split = size // 2 + 1
        return cls(whole, whole.content[:split], whole.content[split:])

    @property
    def first_range(self) -> str:
        return f"0-{len(self.first) - 1}"

    @property
    def second_range(self) -> str:
        return f"{len(self.first)}-{self.whole.size - 1}"


@dataclass
class SuiteContent:
    """Everything one run of the workflows pushes; configs are unique per run (random author)."""

    layer: Blob = field(default_factory=tiny_layer)
    configs: list[Blob] = field(default_factory=list)
    manifests: list[Blob] = field(default_factory=list)
    empty_layer_manifest: Blob = field(init=False)
    blob_a: Blob = field(default_factory=lambda: random_blob(42))
    chunked: ChunkedBlob = field(default_factory=lambda: ChunkedBlob.of_size(42))
    empty_json: Blob = field(default_factory=lambda: Blob(b"{}"))
    ref_blob_a: Blob = field(default_factory=lambda: Blob(b"moorage conformance referrer blob A"))
    ref_blob_b: Blob = field(default_factory=lambda: Blob(b"moorage conformance referrer blob B"))
    refs_a_config: Blob = field(init=False)
    refs_b_config: Blob = field(init=False)
    refs_a_layer: Blob = field(init=False)
    refs_b_layer: Blob = field(init=False)
    refs_c_layer: Blob = field(init=False)
    refs_index: Blob = field(init=False)
    annotations: dict[str, str] = field(default_factory=dict)
    dummy_digest: str = sha256(b"hello world")

    def __post_init__(self) -> None:
        layers = [descriptor(LAYER_TAR_GZIP, self.layer)]
        for _ in range(WORKFLOW_IMAGES):
            config = go_json(
                {
                    "author": random_author(),
                    "architecture": "amd64",
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": []},
                }
            )
            self.configs.append(config)
            self.manifests.append(image_manifest(self._config_descriptor(config), layers))
        self.empty_layer_manifest = image_manifest(
            self._config_descriptor(self.configs[1]), [], media_type=None
        )
        self._build_referrers()

    @staticmethod
    def _config_descriptor(config: Blob) -> dict[str, Any]:
        return descriptor(IMAGE_CONFIG, config, data=config.content, new_field=b"hello world")

    def _build_referrers(self) -> None:
        empty = descriptor(EMPTY_JSON_TYPE, self.empty_json)
        subject = descriptor(IMAGE_MANIFEST, self.manifests[4])

        def annotated(value: str) -> dict[str, str]:
            return {ANNOTATION_KEY: value}

        # Artifacts typed by their config's media type...
        self.refs_a_config = image_manifest(
            descriptor(ARTIFACT_TYPE_A, self.ref_blob_a),
            [empty],
            subject=subject,
            annotations=annotated("test config a"),
        )
        self.refs_b_config = image_manifest(
            descriptor(ARTIFACT_TYPE_B, self.ref_blob_b),
            [empty],
            subject=subject,
            annotations=annotated("test config b"),
        )
        # ...and by artifactType, with the empty JSON config.
        self.refs_a_layer = image_manifest(
            empty,
            [descriptor(ARTIFACT_TYPE_A, self.ref_blob_a)],
            artifact_type=ARTIFACT_TYPE_A,
            subject=subject,
            annotations=annotated("test layer a"),
        )
        self.refs_b_layer = image_manifest(
            empty,
            [descriptor(ARTIFACT_TYPE_B, self.ref_blob_b)],
            artifact_type=ARTIFACT_TYPE_B,
            subject=subject,
            annotations=annotated("test layer b"),
        )
        # Same as B, about a subject that is never pushed.
        self.refs_c_layer = image_manifest(
            empty,
            [descriptor(ARTIFACT_TYPE_B, self.ref_blob_b)],
            artifact_type=ARTIFACT_TYPE_B,
            subject=descriptor(IMAGE_MANIFEST, self.manifests[3]),
        )
        self.refs_index = go_json(
            {
                "schemaVersion": 2,
                "mediaType": IMAGE_INDEX,
                "artifactType": ARTIFACT_TYPE_INDEX,
                "manifests": [
                    descriptor(IMAGE_MANIFEST, self.refs_a_config),
                    descriptor(IMAGE_MANIFEST, self.refs_a_layer),
                ],
                "subject": subject,
                "annotations": annotated("test index"),
            }
        )
        self.annotations = {
            self.refs_a_config.digest: "test config a",
            self.refs_b_config.digest: "test config b",
            self.refs_a_layer.digest: "test layer a",
            self.refs_b_layer.digest: "test layer b",
            self.refs_index.digest: "test index",
        }
