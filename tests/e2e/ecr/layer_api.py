"""Pushing through the ECR API alone (the layer API and PutImage), as the ECR proxy does."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.client import OCI_MANIFEST, digest_of, image_manifest


def upload_blob(ecr: Any, repository: str, data: bytes, part_size: int | None = None) -> str:
    """InitiateLayerUpload, one UploadLayerPart per part, CompleteLayerUpload: the digest."""
    upload_id = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    size = part_size or max(len(data), 1)
    for first in range(0, len(data), size):
        part = data[first : first + size]
        answer = ecr.upload_layer_part(
            repositoryName=repository,
            uploadId=upload_id,
            partFirstByte=first,
            partLastByte=first + len(part) - 1,
            layerPartBlob=part,
        )
        assert answer["lastByteReceived"] == first + len(part) - 1
    digest = digest_of(data)
    done = ecr.complete_layer_upload(
        repositoryName=repository, uploadId=upload_id, layerDigests=[digest]
    )
    assert done["layerDigest"] == digest
    return digest


def put_image(
    ecr: Any, repository: str, config: bytes, layers: list[bytes], tag: str | None = None
) -> tuple[str, bytes]:
    """Upload the blobs (unless there) and PutImage an OCI manifest: (digest, manifest)."""
    for blob in (config, *layers):
        available = ecr.batch_check_layer_availability(
            repositoryName=repository, layerDigests=[digest_of(blob)]
        )["layers"][0]
        if available["layerAvailability"] != "AVAILABLE":
            upload_blob(ecr, repository, blob)
    manifest = image_manifest(config, layers)
    params: dict[str, Any] = {"repositoryName": repository, "imageManifest": manifest.decode()}
    if tag is not None:
        params["imageTag"] = tag
    image = ecr.put_image(**params)["image"]
    assert image["imageId"]["imageDigest"] == digest_of(manifest)
    assert image["imageManifestMediaType"] == OCI_MANIFEST
    return digest_of(manifest), manifest


def config_blob(seed: str) -> bytes:
    """A small, distinct image config."""
    return json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}, "seed": seed}
    ).encode()
