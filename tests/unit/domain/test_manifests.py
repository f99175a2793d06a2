import json
from typing import Any

import pytest

from moorage.domain.digests import Digest
from moorage.domain.errors import ManifestInvalid, ManifestTooLarge
from moorage.domain.manifests import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MAX_MANIFEST_BYTES,
    OCI_EMPTY_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    parse_manifest,
)

CONFIG = {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": str(Digest.of(b"{}")),
    "size": 2,
}
LAYER = {
    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
    "digest": str(Digest.of(b"layer")),
    "size": 5,
}


def image(**extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": CONFIG,
        "layers": [LAYER],
        **extra,
    }


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_digest_is_over_the_exact_bytes() -> None:
    payload = b'{"schemaVersion":2,  "config": %s, "layers": []}' % json.dumps(CONFIG).encode()
    parsed = parse_manifest(payload, OCI_MANIFEST)
    assert parsed.digest == Digest.of(payload)
    assert parsed.payload is payload
    assert parsed.size == len(payload)


def test_sha512_reference_digests_with_sha512() -> None:
    payload = encode(image())
    assert parse_manifest(payload, OCI_MANIFEST, "sha512").digest == Digest.of(payload, "sha512")


def test_image_manifest_lists_its_blobs() -> None:
    parsed = parse_manifest(encode(image()), OCI_MANIFEST)
    assert [str(d.digest) for d in parsed.blob_references()] == [CONFIG["digest"], LAYER["digest"]]
    assert not parsed.is_index
    assert parsed.referrer_artifact_type == CONFIG["mediaType"]


def test_media_type_comes_from_the_document_when_content_type_is_generic() -> None:
    document = image()
    del document["mediaType"]
    assert parse_manifest(encode(document), "application/json").media_type == OCI_MANIFEST
    docker = {**image(), "mediaType": DOCKER_MANIFEST}
    assert parse_manifest(encode(docker), None).media_type == DOCKER_MANIFEST


def test_index_without_media_type_is_recognised_by_shape() -> None:
    index = {"schemaVersion": 2, "manifests": [{**LAYER, "mediaType": OCI_MANIFEST}]}
    parsed = parse_manifest(encode(index), "")
    assert parsed.media_type == OCI_INDEX
    assert parsed.is_index
    assert parsed.blob_references() == ()
    assert [str(d.digest) for d in parsed.manifests] == [LAYER["digest"]]


def test_docker_manifest_list() -> None:
    child = {
        "mediaType": DOCKER_MANIFEST,
        "digest": LAYER["digest"],
        "size": 5,
        "platform": {"architecture": "arm64", "os": "linux"},
    }
    document = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST, "manifests": [child]}
    parsed = parse_manifest(encode(document), DOCKER_MANIFEST_LIST)
    assert parsed.manifests[0].platform == {"architecture": "arm64", "os": "linux"}


def test_artifact_with_empty_config_and_subject() -> None:
    empty = {"mediaType": OCI_EMPTY_CONFIG, "digest": str(Digest.of(b"{}")), "size": 2}
    subject = {"mediaType": OCI_MANIFEST, "digest": LAYER["digest"], "size": 5}
    document = image(
        config=empty,
        artifactType="application/vnd.example+json",
        subject=subject,
        annotations={"org.example": "yes"},
    )
    parsed = parse_manifest(encode(document), OCI_MANIFEST)
    assert parsed.subject is not None
    assert str(parsed.subject.digest) == LAYER["digest"]
    assert parsed.referrer_artifact_type == "application/vnd.example+json"
    assert parsed.annotations == {"org.example": "yes"}


def test_foreign_layers_need_not_be_pushed() -> None:
    foreign = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": str(Digest.of(b"windows")),
        "size": 7,
        "urls": ["https://example.invalid/layer"],
    }
    parsed = parse_manifest(
        encode(image(mediaType=DOCKER_MANIFEST, layers=[foreign, LAYER])), DOCKER_MANIFEST
    )
    assert [str(d.digest) for d in parsed.blob_references()] == [CONFIG["digest"], LAYER["digest"]]


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (b"not json", OCI_MANIFEST),
        (b"[]", OCI_MANIFEST),
        (b"\xff\xfe", OCI_MANIFEST),
        (encode(image(schemaVersion=1)), OCI_MANIFEST),
        (encode({**image(), "mediaType": OCI_INDEX}), OCI_MANIFEST),  # disagrees with header
        (encode(image()), "application/vnd.unknown+json"),
        (encode(image()), "application/vnd.docker.distribution.manifest.v1+prettyjws"),
        (encode({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}), OCI_MANIFEST),
        (encode(image(config={**CONFIG, "digest": "sha256:short"})), OCI_MANIFEST),
        (encode(image(config={**CONFIG, "size": -1})), OCI_MANIFEST),
        (encode(image(config={**CONFIG, "size": True})), OCI_MANIFEST),
        (encode(image(layers={"not": "a list"})), OCI_MANIFEST),
        (encode(image(layers=[{**LAYER, "mediaType": ""}])), OCI_MANIFEST),
        (encode(image(annotations={"a": 1})), OCI_MANIFEST),
        (encode(image(manifests=[])), OCI_MANIFEST),
        (
            encode({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "layers": []}),
            OCI_INDEX,
        ),
        (encode({"schemaVersion": 2, "mediaType": OCI_INDEX}), OCI_INDEX),
        (encode({"schemaVersion": 2}), "application/json"),
        (encode(image(subject="sha256:abc")), OCI_MANIFEST),
        (encode(image(config={**CONFIG, "mediaType": OCI_EMPTY_CONFIG})), OCI_MANIFEST),
        (encode(image(mediaType=DOCKER_MANIFEST, artifactType="x/y")), DOCKER_MANIFEST),
    ],
)
def test_rejects_invalid_manifests(payload: bytes, content_type: str) -> None:
    with pytest.raises(ManifestInvalid):
        parse_manifest(payload, content_type)


def test_rejects_oversized_manifests() -> None:
    padding = "x" * MAX_MANIFEST_BYTES
    with pytest.raises(ManifestTooLarge):
        parse_manifest(encode(image(annotations={"pad": padding})), OCI_MANIFEST)


@pytest.mark.parametrize(
    "payload", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000]
)
def test_deeply_nested_json_is_invalid_not_a_crash(payload: bytes) -> None:
    with pytest.raises(ManifestInvalid):
        parse_manifest(payload, OCI_MANIFEST)
