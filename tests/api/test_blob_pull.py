"""Blob reads: GET/HEAD with headers, ranges (206/416), visibility per repository, delete."""

from __future__ import annotations

import pytest

from tests.api.oci import Client, digest_of, error_code, push_blob, push_image

NAME = "team/app"
DATA = bytes(range(256)) * 40  # 10240 bytes


async def test_head_and_get(client: Client) -> None:
    digest = await push_blob(client, NAME, DATA)
    head = await client.head(f"/v2/{NAME}/blobs/{digest}")
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(DATA))
    assert head.headers["Docker-Content-Digest"] == digest
    get = await client.get(f"/v2/{NAME}/blobs/{digest}")
    assert get.status == 200
    assert get.headers["Content-Type"] == "application/octet-stream"
    assert get.headers["Content-Length"] == str(len(DATA))
    assert await get.read() == DATA


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=10000-", 10000, 10239), ("bytes=-40", 10200, 10239)],
)
async def test_range_requests(client: Client, header: str, start: int, end: int) -> None:
    digest = await push_blob(client, NAME, DATA)
    response = await client.get(f"/v2/{NAME}/blobs/{digest}", headers={"Range": header})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert await response.read() == DATA[start : end + 1]


async def test_unsatisfiable_range(client: Client) -> None:
    digest = await push_blob(client, NAME, DATA)
    response = await client.get(f"/v2/{NAME}/blobs/{digest}", headers={"Range": "bytes=20000-"})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"


async def test_unknown_blob(client: Client) -> None:
    await push_blob(client, NAME, b"something")
    for method in ("GET", "HEAD"):
        response = await client.request(method, f"/v2/{NAME}/blobs/{digest_of(b'nothing')}")
        assert response.status == 404
    response = await client.get(f"/v2/{NAME}/blobs/{digest_of(b'nothing')}")
    assert await error_code(response) == "BLOB_UNKNOWN"


async def test_blob_of_another_repository_is_not_visible(client: Client) -> None:
    digest = await push_blob(client, "other/repo", DATA)
    await push_blob(client, NAME, b"x")
    response = await client.get(f"/v2/{NAME}/blobs/{digest}")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UNKNOWN"


async def test_unknown_repository(client: Client) -> None:
    response = await client.get(f"/v2/no/such/blobs/{digest_of(b'x')}")
    assert response.status == 404
    assert await error_code(response) == "NAME_UNKNOWN"


async def test_malformed_digest(client: Client) -> None:
    await push_blob(client, NAME, b"x")
    response = await client.get(f"/v2/{NAME}/blobs/sha256:abc")
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"


async def test_delete_blob(client: Client) -> None:
    digest = await push_blob(client, NAME, DATA)
    assert (await client.delete(f"/v2/{NAME}/blobs/{digest}")).status == 202
    assert (await client.head(f"/v2/{NAME}/blobs/{digest}")).status == 404
    response = await client.delete(f"/v2/{NAME}/blobs/{digest}")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UNKNOWN"


async def test_deleting_a_blob_leaves_other_repositories_alone(client: Client) -> None:
    digest = await push_blob(client, NAME, DATA)
    await push_blob(client, "other/repo", DATA)
    assert (await client.delete(f"/v2/{NAME}/blobs/{digest}")).status == 202
    assert (await client.get(f"/v2/other/repo/blobs/{digest}")).status == 200


async def test_blob_used_by_a_manifest_cannot_be_deleted(client: Client) -> None:
    await push_image(client, NAME, "v1", layers=(DATA,))
    response = await client.delete(f"/v2/{NAME}/blobs/{digest_of(DATA)}")
    assert response.status == 405
    assert await error_code(response) == "UNSUPPORTED"
    assert (await client.get(f"/v2/{NAME}/blobs/{digest_of(DATA)}")).status == 200
