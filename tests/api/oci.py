"""Small helpers that push content the way OCI clients do, for the API tests."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from aiohttp.test_utils import TestClient

from moorage.domain.digests import Digest
from moorage.domain.manifests import OCI_INDEX, OCI_MANIFEST

Client = TestClient[Any, Any]

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return str(Digest.of(data))


async def push_blob(client: Client, name: str, data: bytes) -> str:
    digest = digest_of(data)
    response = await client.post(
        f"/v2/{name}/blobs/uploads/", params={"digest": digest}, data=io.BytesIO(data)
    )
    assert response.status == 201, await response.text()
    return digest


def descriptor(data: bytes, media_type: str) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}


def image_manifest(
    config: bytes,
    layers: Sequence[bytes] = (),
    *,
    config_type: str = OCI_CONFIG,
    layer_type: str = OCI_LAYER,
    **extra: Any,
) -> bytes:
    """The bytes of an OCI image manifest over ``config`` and ``layers`` (not pushed)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config, config_type),
        "layers": [descriptor(layer, layer_type) for layer in layers],
        **extra,
    }
    return json.dumps(manifest).encode()


async def put_manifest(
    client: Client, name: str, reference: str, payload: bytes, media_type: str = OCI_MANIFEST
) -> Any:
    """PUT a manifest as clients do; returns the response, whatever its status."""
    return await client.put(
        f"/v2/{name}/manifests/{reference}", data=payload, headers={"Content-Type": media_type}
    )


async def push_image(
    client: Client,
    name: str,
    reference: str | None = None,
    *,
    layers: tuple[bytes, ...] = (b"layer-one",),
    config: bytes = b'{"architecture":"amd64","os":"linux"}',
    extra: dict[str, Any] | None = None,
) -> tuple[str, bytes]:
    """Push blobs and an OCI image manifest; return (digest, manifest bytes)."""
    for blob in (config, *layers):
        await push_blob(client, name, blob)
    payload = image_manifest(config, layers, **(extra or {}))
    digest = digest_of(payload)
    response = await put_manifest(client, name, reference or digest, payload)
    assert response.status == 201, await response.text()
    return digest, payload


async def push_index(
    client: Client, name: str, reference: str, children: list[tuple[str, bytes]]
) -> tuple[str, bytes]:
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(payload),
                "platform": {"architecture": f"arch{i}", "os": "linux"},
            }
            for i, (digest, payload) in enumerate(children)
        ],
    }
    payload = json.dumps(index).encode()
    response = await client.put(
        f"/v2/{name}/manifests/{reference}", data=payload, headers={"Content-Type": OCI_INDEX}
    )
    assert response.status == 201, await response.text()
    return digest_of(payload), payload


async def error_code(response: Any) -> str:
    body = await response.json()
    return str(body["errors"][0]["code"])
