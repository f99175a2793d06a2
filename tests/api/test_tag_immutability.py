"""Immutable tags on /v2/: moving one is 400 TAG_INVALID with ECR's text; the same
manifest pushed again under its tag is accepted."""

from __future__ import annotations

from moorage.app import Registry
from moorage.domain.models import TagMutability
from tests.api.conftest import REGISTRY_ID
from tests.api.oci import Client, digest_of, image_manifest, push_blob, push_image, put_manifest

NAME = "team/app"
MESSAGE = (
    f"The image tag 'v1' already exists in the '{NAME}' repository and cannot be overwritten "
    "because the tag is immutable."
)


async def test_an_immutable_tag_cannot_move(client: Client, registry: Registry) -> None:
    await registry.repositories.create(
        REGISTRY_ID, NAME, image_tag_mutability=TagMutability.IMMUTABLE
    )
    first_digest, first = await push_image(client, NAME, "v1")

    # The identical manifest under the same tag: no overwrite, so accepted.
    again = await put_manifest(client, NAME, "v1", first)
    assert again.status == 201, await again.text()
    assert again.headers["Docker-Content-Digest"] == first_digest

    config = b'{"architecture":"arm64","os":"linux"}'
    await push_blob(client, NAME, config)
    second = image_manifest(config, ())
    refused = await put_manifest(client, NAME, "v1", second)
    assert refused.status == 400
    body = await refused.json()
    assert body["errors"][0]["code"] == "TAG_INVALID"
    assert body["errors"][0]["message"] == MESSAGE

    # Nothing of the refused push was stored; the tag still names the first image.
    pulled = await client.get(f"/v2/{NAME}/manifests/v1")
    assert await pulled.read() == first
    absent = await client.get(f"/v2/{NAME}/manifests/{digest_of(second)}")
    assert absent.status == 404
    # A new tag is no overwrite.
    other = await put_manifest(client, NAME, "v2", second)
    assert other.status == 201, await other.text()


async def test_an_excluded_tag_moves(client: Client, registry: Registry) -> None:
    await registry.repositories.create(
        REGISTRY_ID,
        NAME,
        image_tag_mutability=TagMutability.IMMUTABLE_WITH_EXCLUSION,
        exclusion_filters=["latest"],
    )
    await push_image(client, NAME, "latest")
    _, second = await push_image(client, NAME, "latest", layers=(b"layer-two",))
    pulled = await client.get(f"/v2/{NAME}/manifests/latest")
    assert await pulled.read() == second
