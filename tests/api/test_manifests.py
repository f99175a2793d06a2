"""Manifests: push by tag and digest, pull with the right headers, validation, deletes."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from moorage.domain.manifests import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST
from tests.api.oci import (
    OCI_CONFIG,
    Client,
    descriptor,
    digest_of,
    error_code,
    image_manifest,
    push_blob,
    push_image,
    push_index,
    put_manifest,
)

NAME = "team/app"


async def test_push_by_tag_and_pull_by_tag_and_digest(client: Client) -> None:
    digest, payload = await push_image(client, NAME, "v1")
    for reference in ("v1", digest):
        response = await client.get(f"/v2/{NAME}/manifests/{reference}")
        assert response.status == 200
        assert await response.read() == payload
        assert response.headers["Content-Type"] == OCI_MANIFEST
        assert response.headers["Docker-Content-Digest"] == digest
        assert response.headers["Content-Length"] == str(len(payload))
        head = await client.head(f"/v2/{NAME}/manifests/{reference}")
        assert head.status == 200
        assert head.headers["Content-Length"] == str(len(payload))
        assert head.headers["Docker-Content-Digest"] == digest
        assert head.headers["Content-Type"] == OCI_MANIFEST
        assert await head.read() == b""


async def test_put_answers_location_and_digest(client: Client) -> None:
    await push_blob(client, NAME, b"{}")
    payload = image_manifest(b"{}")
    response = await put_manifest(client, NAME, "latest", payload)
    assert response.status == 201
    assert response.headers["Docker-Content-Digest"] == digest_of(payload)
    assert response.headers["Location"] == f"/v2/{NAME}/manifests/{digest_of(payload)}"


async def test_bytes_are_stored_exactly(client: Client) -> None:
    await push_blob(client, NAME, b"{}")
    # Odd whitespace, key order and a trailing newline must survive byte for byte.
    payload = (
        b'{\n   "layers" : [],  "schemaVersion":2,\n"config":'
        + json.dumps(descriptor(b"{}", OCI_CONFIG), indent=3).encode()
        + b',"mediaType":"application/vnd.oci.image.manifest.v1+json"}\n'
    )
    response = await client.put(
        f"/v2/{NAME}/manifests/{digest_of(payload)}",
        data=payload,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 201
    pulled = await client.get(f"/v2/{NAME}/manifests/{digest_of(payload)}")
    assert await pulled.read() == payload


async def test_docker_manifest_and_manifest_list(client: Client) -> None:
    config, layer = b'{"os":"linux"}', b"docker layer"
    await push_blob(client, NAME, config)
    await push_blob(client, NAME, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(config, "application/vnd.docker.container.image.v1+json"),
            "layers": [descriptor(layer, "application/vnd.docker.image.rootfs.diff.tar.gzip")],
        }
    ).encode()
    response = await client.put(
        f"/v2/{NAME}/manifests/amd64", data=manifest, headers={"Content-Type": DOCKER_MANIFEST}
    )
    assert response.status == 201
    manifest_list = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    **descriptor(manifest, DOCKER_MANIFEST),
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    ).encode()
    response = await client.put(
        f"/v2/{NAME}/manifests/latest",
        data=manifest_list,
        headers={"Content-Type": DOCKER_MANIFEST_LIST},
    )
    assert response.status == 201
    pulled = await client.get(f"/v2/{NAME}/manifests/latest")
    assert pulled.headers["Content-Type"] == DOCKER_MANIFEST_LIST
    assert await pulled.read() == manifest_list


async def test_digest_reference_must_match_the_content(client: Client) -> None:
    _, payload = await push_image(client, NAME, "v1")
    response = await put_manifest(client, NAME, digest_of(b"other"), payload)
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"


async def test_sha512_manifest_reference(client: Client) -> None:
    import hashlib

    _, payload = await push_image(client, NAME, "v1")
    digest = "sha512:" + hashlib.sha512(payload).hexdigest()
    response = await put_manifest(client, NAME, digest, payload)
    assert response.status == 201
    assert response.headers["Docker-Content-Digest"] == digest
    assert await (await client.get(f"/v2/{NAME}/manifests/{digest}")).read() == payload


async def test_missing_layer_is_manifest_blob_unknown(client: Client) -> None:
    await push_blob(client, NAME, b"{}")
    payload = image_manifest(b"{}", [b"never pushed"], layer_type="application/octet-stream")
    response = await put_manifest(client, NAME, "v1", payload)
    assert response.status == 400
    assert await error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert (await client.get(f"/v2/{NAME}/manifests/v1")).status == 404


@pytest.mark.parametrize("size", [5, 4097, 10**30])
@pytest.mark.parametrize("which", ["config", "layer"])
async def test_a_size_that_is_not_the_blobs_is_manifest_invalid(
    client: Client, which: str, size: int
) -> None:
    # docker and containerd verify sizes on pull: such an image would be unpullable.
    config, layer = b"{}", b"x" * 4096
    await push_blob(client, NAME, config)
    await push_blob(client, NAME, layer)
    manifest = json.loads(image_manifest(config, [layer]))
    target = manifest["config"] if which == "config" else manifest["layers"][0]
    target["size"] = size
    response = await put_manifest(client, NAME, "v1", json.dumps(manifest).encode())
    assert response.status == 400
    assert await error_code(response) == "MANIFEST_INVALID"
    assert (await client.get(f"/v2/{NAME}/manifests/v1")).status == 404


async def test_blob_of_another_repository_does_not_count(client: Client) -> None:
    await push_image(client, "other/repo", "v1", layers=(b"elsewhere",))
    await push_blob(client, NAME, b'{"architecture":"amd64","os":"linux"}')
    payload = image_manifest(
        b'{"architecture":"amd64","os":"linux"}',
        [b"elsewhere"],
        layer_type="application/octet-stream",
    )
    response = await put_manifest(client, NAME, "v1", payload)
    assert await error_code(response) == "MANIFEST_BLOB_UNKNOWN"


async def test_index_children_must_exist(client: Client) -> None:
    digest, payload = await push_image(client, "other/repo", "v1")
    await push_blob(client, NAME, b"x")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": len(payload)}],
        }
    )
    response = await client.put(
        f"/v2/{NAME}/manifests/multi",
        data=index,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert response.status == 400
    assert await error_code(response) == "MANIFEST_BLOB_UNKNOWN"


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (b"{not json", OCI_MANIFEST),
        (b'{"schemaVersion": 1}', OCI_MANIFEST),
        (
            b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
            OCI_MANIFEST,
        ),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "a", "digest": "sha256:zz", "size": 1}}',
            OCI_MANIFEST,
        ),
        (b"{}", "text/plain"),
    ],
)
async def test_malformed_manifests(client: Client, payload: bytes, content_type: str) -> None:
    await push_blob(client, NAME, b"x")
    response = await put_manifest(client, NAME, "bad", payload, content_type)
    assert response.status == 400
    assert await error_code(response) == "MANIFEST_INVALID"


async def test_oversized_manifest(client: Client) -> None:
    await push_blob(client, NAME, b"x")
    payload = b'{"schemaVersion":2,"annotations":{"pad":"' + b"x" * (4 * 1024 * 1024) + b'"}}'
    response = await client.put(
        f"/v2/{NAME}/manifests/big",
        data=io.BytesIO(payload),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 413
    assert await error_code(response) == "MANIFEST_INVALID"


@pytest.mark.parametrize("tag", [".bad", "a" * 129, "bad:tag"])
async def test_invalid_tags(client: Client, tag: str) -> None:
    _, payload = await push_image(client, NAME)
    response = await put_manifest(client, NAME, tag, payload)
    assert response.status == 400
    assert await error_code(response) in {"MANIFEST_INVALID", "DIGEST_INVALID"}


async def test_unknown_manifest_and_repository(client: Client) -> None:
    await push_image(client, NAME, "v1")
    response = await client.get(f"/v2/{NAME}/manifests/v2")
    assert response.status == 404
    assert await error_code(response) == "MANIFEST_UNKNOWN"
    assert (await client.head(f"/v2/{NAME}/manifests/{digest_of(b'no')}")).status == 404
    response = await client.get("/v2/no/such/manifests/v1")
    assert await error_code(response) == "NAME_UNKNOWN"


async def test_retag_moves_the_tag(client: Client) -> None:
    first, _ = await push_image(client, NAME, "latest", layers=(b"one",))
    second, _ = await push_image(client, NAME, "latest", layers=(b"two",))
    response = await client.get(f"/v2/{NAME}/manifests/latest")
    assert response.headers["Docker-Content-Digest"] == second
    # The previous image stays, untagged.
    assert (await client.get(f"/v2/{NAME}/manifests/{first}")).status == 200


async def test_delete_by_tag_removes_only_the_tag(client: Client) -> None:
    digest, _ = await push_image(client, NAME, "v1")
    await push_image(client, NAME, "v2")
    assert (await client.delete(f"/v2/{NAME}/manifests/v1")).status == 202
    assert (await client.get(f"/v2/{NAME}/manifests/v1")).status == 404
    assert (await client.get(f"/v2/{NAME}/manifests/{digest}")).status == 200
    assert (await client.get(f"/v2/{NAME}/manifests/v2")).status == 200
    response = await client.delete(f"/v2/{NAME}/manifests/v1")
    assert response.status == 404
    assert await error_code(response) == "MANIFEST_UNKNOWN"


async def test_delete_by_digest_removes_manifest_and_its_tags(client: Client) -> None:
    digest, _ = await push_image(client, NAME, "v1")
    await client.put(
        f"/v2/{NAME}/manifests/also",
        data=(await (await client.get(f"/v2/{NAME}/manifests/v1")).read()),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert (await client.delete(f"/v2/{NAME}/manifests/{digest}")).status == 202
    for reference in (digest, "v1", "also"):
        assert (await client.get(f"/v2/{NAME}/manifests/{reference}")).status == 404
    tags = await (await client.get(f"/v2/{NAME}/tags/list")).json()
    assert tags["tags"] == []


async def test_child_of_an_index_cannot_be_deleted(client: Client) -> None:
    child = await push_image(client, NAME)
    index_digest, _ = await push_index(client, NAME, "multi", [child])
    response = await client.delete(f"/v2/{NAME}/manifests/{child[0]}")
    assert response.status == 405
    assert await error_code(response) == "UNSUPPORTED"
    assert index_digest in (await response.json())["errors"][0]["message"]
    assert (await client.delete(f"/v2/{NAME}/manifests/{index_digest}")).status == 202
    assert (await client.delete(f"/v2/{NAME}/manifests/{child[0]}")).status == 202


async def test_subject_answers_oci_subject_header(client: Client) -> None:
    subject_digest, subject_payload = await push_image(client, NAME, "v1")
    subject: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "digest": subject_digest,
        "size": len(subject_payload),
    }
    await push_blob(client, NAME, b"{}")
    artifact = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": descriptor(b"{}", "application/vnd.oci.empty.v1+json"),
            "layers": [descriptor(b"{}", "application/vnd.oci.empty.v1+json")],
            "subject": subject,
        }
    ).encode()
    response = await client.put(
        f"/v2/{NAME}/manifests/{digest_of(artifact)}",
        data=artifact,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status == 201
    assert response.headers["OCI-Subject"] == subject_digest


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
async def test_reading_a_malformed_tag_is_unknown(client: Client, method: str) -> None:
    await push_image(client, NAME, "v1")
    response = await client.request(method, f"/v2/{NAME}/manifests/.INVALID_MANIFEST_NAME")
    assert response.status == 404
    if method != "HEAD":
        assert await error_code(response) == "MANIFEST_UNKNOWN"
