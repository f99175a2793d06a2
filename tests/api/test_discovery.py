"""Content discovery: tag lists, the catalog and the referrers API, with pagination."""

from __future__ import annotations

import json
from typing import Any

import pytest

from moorage.domain.manifests import OCI_INDEX, OCI_MANIFEST
from tests.api.oci import (
    Client,
    descriptor,
    digest_of,
    error_code,
    push_blob,
    push_image,
    put_manifest,
)

NAME = "team/app"


async def tag_many(client: Client, name: str, tags: list[str]) -> None:
    _, payload = await push_image(client, name)
    for tag in tags:
        response = await put_manifest(client, name, tag, payload)
        assert response.status == 201


async def test_tags_are_listed_in_lexical_order(client: Client) -> None:
    await tag_many(client, NAME, ["b", "a", "C", "10", "9", "a-1"])
    body = await (await client.get(f"/v2/{NAME}/tags/list")).json()
    assert body == {"name": NAME, "tags": ["10", "9", "C", "a", "a-1", "b"]}


async def test_tags_pagination_with_n_last_and_link(client: Client) -> None:
    tags = [f"t{i:02d}" for i in range(7)]
    await tag_many(client, NAME, tags)
    seen: list[str] = []
    url = f"/v2/{NAME}/tags/list?n=3"
    pages = 0
    while url:
        response = await client.get(url)
        assert response.status == 200
        page = (await response.json())["tags"]
        assert len(page) <= 3
        seen += page
        pages += 1
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
        if link:
            assert link.endswith('; rel="next"')
    assert seen == tags
    assert pages == 3


async def test_tags_last_without_n_and_n_zero(client: Client) -> None:
    await tag_many(client, NAME, ["a", "b", "c"])
    body = await (await client.get(f"/v2/{NAME}/tags/list", params={"last": "a"})).json()
    assert body["tags"] == ["b", "c"]
    response = await client.get(f"/v2/{NAME}/tags/list", params={"n": "0"})
    assert (await response.json())["tags"] == []
    assert "Link" not in response.headers
    exact = await client.get(f"/v2/{NAME}/tags/list", params={"n": "3"})
    assert (await exact.json())["tags"] == ["a", "b", "c"]
    assert "Link" not in exact.headers


@pytest.mark.parametrize("n", ["-1", "abc", "1e3"])
async def test_bad_n(client: Client, n: str) -> None:
    await tag_many(client, NAME, ["a"])
    response = await client.get(f"/v2/{NAME}/tags/list", params={"n": n})
    assert response.status == 400
    assert await error_code(response) == "PAGINATION_NUMBER_INVALID"


async def test_tags_of_unknown_repository(client: Client) -> None:
    for params in ({}, {"n": "0"}):
        response = await client.get("/v2/no/such/tags/list", params=params)
        assert response.status == 404
        assert await error_code(response) == "NAME_UNKNOWN"


async def test_catalog_pagination(client: Client) -> None:
    names = ["b/one", "a/two", "cc", "a/one"]
    for name in names:
        await push_blob(client, name, b"x")
    assert (await (await client.get("/v2/_catalog")).json())["repositories"] == sorted(names)
    first = await client.get("/v2/_catalog", params={"n": "2"})
    assert (await first.json())["repositories"] == ["a/one", "a/two"]
    assert first.headers["Link"] == '</v2/_catalog?n=2&last=a%2Ftwo>; rel="next"'
    second = await client.get("/v2/_catalog", params={"n": "2", "last": "a/two"})
    assert (await second.json())["repositories"] == ["b/one", "cc"]
    assert "Link" not in second.headers


async def push_referrer(
    client: Client,
    subject: tuple[str, bytes],
    artifact_type: str | None,
    annotations: dict[str, str] | None = None,
    config_type: str | None = None,
) -> str:
    await push_blob(client, NAME, b"{}")
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(b"{}", config_type or "application/vnd.oci.empty.v1+json"),
        "layers": [descriptor(b"{}", "application/vnd.oci.empty.v1+json")],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject[0], "size": len(subject[1])},
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    if annotations:
        document["annotations"] = annotations
    payload = json.dumps(document).encode()
    response = await put_manifest(client, NAME, digest_of(payload), payload)
    assert response.status == 201, await response.text()
    return digest_of(payload)


async def test_referrers_listing_and_filter(client: Client) -> None:
    subject = await push_image(client, NAME, "v1")
    sbom = await push_referrer(
        client, subject, "application/vnd.example.sbom", {"org.example": "1"}
    )
    signature = await push_referrer(client, subject, "application/vnd.example.signature")
    legacy = await push_referrer(
        client, subject, None, config_type="application/vnd.example.config"
    )

    response = await client.get(f"/v2/{NAME}/referrers/{subject[0]}")
    assert response.status == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    assert "OCI-Filters-Applied" not in response.headers
    index = await response.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in index["manifests"]}
    assert set(by_digest) == {sbom, signature, legacy}
    assert by_digest[sbom]["artifactType"] == "application/vnd.example.sbom"
    assert by_digest[sbom]["annotations"] == {"org.example": "1"}
    assert by_digest[sbom]["mediaType"] == OCI_MANIFEST
    assert by_digest[legacy]["artifactType"] == "application/vnd.example.config"

    filtered = await client.get(
        f"/v2/{NAME}/referrers/{subject[0]}",
        params={"artifactType": "application/vnd.example.signature"},
    )
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in (await filtered.json())["manifests"]] == [signature]


async def test_referrers_may_precede_their_subject(client: Client) -> None:
    absent = digest_of(b"a subject pushed later")
    referrer = await push_referrer(
        client, (absent, b"a subject pushed later"), "application/vnd.example"
    )
    index = await (await client.get(f"/v2/{NAME}/referrers/{absent}")).json()
    assert [d["digest"] for d in index["manifests"]] == [referrer]


async def test_referrers_of_unknown_subject_is_an_empty_index(client: Client) -> None:
    await push_image(client, NAME, "v1")
    response = await client.get(f"/v2/{NAME}/referrers/{digest_of(b'nothing')}")
    assert response.status == 200
    assert (await response.json())["manifests"] == []


async def test_referrers_with_bad_digest(client: Client) -> None:
    await push_image(client, NAME, "v1")
    response = await client.get(f"/v2/{NAME}/referrers/latest")
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"
