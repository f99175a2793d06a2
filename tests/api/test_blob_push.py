"""Blob pushes: monolithic, single-request, chunked, resumable, cancelled, mounted."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from yarl import URL

from moorage.app import Registry
from tests.api.oci import Client, digest_of, error_code, push_blob

NAME = "team/app"


async def start(client: Client, name: str = NAME) -> str:
    response = await client.post(f"/v2/{name}/blobs/uploads/")
    assert response.status == 202, await response.text()
    assert response.headers["Range"] == "0-0"
    location = response.headers["Location"]
    assert location.startswith(f"/v2/{name}/blobs/uploads/")
    assert response.headers["Docker-Upload-UUID"] in location
    return location


async def assert_blob(client: Client, name: str, data: bytes) -> None:
    response = await client.get(f"/v2/{name}/blobs/{digest_of(data)}")
    assert response.status == 200
    assert await response.read() == data
    assert response.headers["Docker-Content-Digest"] == digest_of(data)


async def test_post_then_put(client: Client) -> None:
    data = b"monolithic blob"
    location = await start(client)
    response = await client.put(location, params={"digest": digest_of(data)}, data=data)
    assert response.status == 201
    assert response.headers["Location"] == f"/v2/{NAME}/blobs/{digest_of(data)}"
    assert response.headers["Docker-Content-Digest"] == digest_of(data)
    await assert_blob(client, NAME, data)


async def test_single_post_with_digest(client: Client) -> None:
    data = b"one request"
    await push_blob(client, NAME, data)
    await assert_blob(client, NAME, data)


async def test_empty_blob(client: Client) -> None:
    await push_blob(client, NAME, b"")
    await assert_blob(client, NAME, b"")


async def test_sha512_blob(client: Client) -> None:
    data = b"sha512 content"
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    location = await start(client)
    assert (await client.put(location, params={"digest": digest}, data=data)).status == 201
    response = await client.get(f"/v2/{NAME}/blobs/{digest}")
    assert response.status == 200
    assert await response.read() == data


async def test_chunked_upload_with_status_and_final_chunk(client: Client) -> None:
    data = bytes(range(256)) * 100
    location = await start(client)
    first = await client.patch(
        location,
        data=data[:10000],
        headers={"Content-Range": "0-9999", "Content-Type": "application/octet-stream"},
    )
    assert first.status == 202
    assert first.headers["Range"] == "0-9999"
    location = first.headers["Location"]
    status = await client.get(location)
    assert status.status == 204
    assert status.headers["Range"] == "0-9999"
    assert status.headers["Location"] == location
    second = await client.patch(
        location, data=data[10000:20000], headers={"Content-Range": "10000-19999"}
    )
    assert second.status == 202
    assert second.headers["Range"] == "0-19999"
    final = await client.put(
        location,
        params={"digest": digest_of(data)},
        data=data[20000:],
        headers={"Content-Range": f"20000-{len(data) - 1}"},
    )
    assert final.status == 201, await final.text()
    await assert_blob(client, NAME, data)


async def test_streamed_patch_without_content_range(client: Client) -> None:
    data = b"x" * 5000
    location = await start(client)
    response = await client.patch(location, data=data)
    assert response.status == 202
    assert response.headers["Range"] == "0-4999"
    assert (await client.put(location, params={"digest": digest_of(data)})).status == 201
    await assert_blob(client, NAME, data)


@pytest.mark.parametrize(
    "content_range",
    ["6-10", "0-4", "3-2"],
    ids=["gap", "repeated-chunk", "backwards"],
)
async def test_out_of_order_chunk_is_416_with_current_range(
    client: Client, content_range: str
) -> None:
    location = await start(client)
    assert (
        await client.patch(location, data=b"01234", headers={"Content-Range": "0-4"})
    ).status == 202
    response = await client.patch(location, data=b"56789", headers={"Content-Range": content_range})
    assert response.status == 416
    assert await error_code(response) == "BLOB_UPLOAD_INVALID"
    assert response.headers["Range"] == "0-4"
    assert "Location" in response.headers
    # The upload is intact and continues where it was.
    ok = await client.patch(location, data=b"56789", headers={"Content-Range": "5-9"})
    assert ok.status == 202
    assert ok.headers["Range"] == "0-9"


async def test_malformed_content_range(client: Client) -> None:
    location = await start(client)
    response = await client.patch(
        location, data=b"abc", headers={"Content-Range": "bytes=whatever"}
    )
    assert response.status == 400
    assert await error_code(response) == "BLOB_UPLOAD_INVALID"


async def test_content_length_disagreeing_with_range(client: Client) -> None:
    location = await start(client)
    response = await client.patch(location, data=b"abc", headers={"Content-Range": "0-9"})
    assert response.status == 400
    assert await error_code(response) == "SIZE_INVALID"
    status = await client.get(location)
    assert status.headers["Range"] == "0-0"


async def test_wrong_digest_is_digest_invalid_and_stores_nothing(client: Client) -> None:
    location = await start(client)
    wrong = digest_of(b"something else")
    response = await client.put(location, params={"digest": wrong}, data=b"content")
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"
    assert (await client.head(f"/v2/{NAME}/blobs/{wrong}")).status == 404
    assert (await client.head(f"/v2/{NAME}/blobs/{digest_of(b'content')}")).status == 404


async def test_single_post_with_wrong_digest(client: Client) -> None:
    response = await client.post(
        f"/v2/{NAME}/blobs/uploads/", params={"digest": digest_of(b"a")}, data=b"b"
    )
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"


@pytest.mark.parametrize("digest", [None, "sha256:nothex", "md5:abc", "sha256:" + "0" * 63])
async def test_missing_or_malformed_digest_on_put(client: Client, digest: str | None) -> None:
    location = await start(client)
    params = {"digest": digest} if digest is not None else {}
    response = await client.put(location, params=params, data=b"abc")
    assert response.status == 400
    assert await error_code(response) == "DIGEST_INVALID"


async def test_cancel_upload(client: Client) -> None:
    location = await start(client)
    await client.patch(location, data=b"partial")
    assert (await client.delete(location)).status == 204
    response = await client.get(location)
    assert response.status == 404
    assert await error_code(response) == "BLOB_UPLOAD_UNKNOWN"
    assert (await client.delete(location)).status == 404


@pytest.mark.parametrize(
    "upload_id",
    [
        "00000000-0000-4000-8000-000000000000",
        "not-a-uuid",
        "..%2F..%2Fetc",
        "x" * 300,
        "{uuid}",  # braces fell outside the route's placeholder: it was NOT_FOUND
        "%7Buuid%7D",
    ],
)
async def test_unknown_upload_ids(client: Client, upload_id: str) -> None:
    await start(client)
    response = await client.patch(f"/v2/{NAME}/blobs/uploads/{upload_id}", data=b"x")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UPLOAD_UNKNOWN"


async def test_upload_of_one_repository_is_unknown_in_another(client: Client) -> None:
    location = await start(client)
    await start(client, "other/repo")
    upload_id = location.rsplit("/", 1)[1]
    response = await client.get(f"/v2/other/repo/blobs/uploads/{upload_id}")
    assert response.status == 404
    assert await error_code(response) == "BLOB_UPLOAD_UNKNOWN"


async def test_mount_from_another_repository(client: Client) -> None:
    data = b"shared layer"
    digest = await push_blob(client, "source/repo", data)
    response = await client.post(
        f"/v2/{NAME}/blobs/uploads/", params={"mount": digest, "from": "source/repo"}
    )
    assert response.status == 201
    assert response.headers["Location"] == f"/v2/{NAME}/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    await assert_blob(client, NAME, data)


async def test_mount_without_from(client: Client) -> None:
    data = b"layer known to the registry"
    digest = await push_blob(client, "source/repo", data)
    response = await client.post(f"/v2/{NAME}/blobs/uploads/", params={"mount": digest})
    assert response.status == 201
    await assert_blob(client, NAME, data)


@pytest.mark.parametrize(
    "params",
    [
        {"mount": digest_of(b"never pushed"), "from": "source/repo"},
        {"mount": digest_of(b"never pushed")},
        {"mount": "not-a-digest", "from": "source/repo"},
        {"mount": digest_of(b"elsewhere"), "from": "no/such/repo"},
        {"mount": digest_of(b"elsewhere"), "from": "INVALID"},
    ],
)
async def test_mount_falls_back_to_an_upload(client: Client, params: dict[str, str]) -> None:
    await push_blob(client, "source/repo", b"elsewhere")
    response = await client.post(f"/v2/{NAME}/blobs/uploads/", params=params)
    assert response.status == 202
    assert "/blobs/uploads/" in response.headers["Location"]


@pytest.mark.parametrize("create_on_push", [(), ("team-*",)])
async def test_push_to_missing_repository_is_name_unknown(client: Client) -> None:
    response = await client.post("/v2/other/blobs/uploads/")
    assert response.status == 404
    assert await error_code(response) == "NAME_UNKNOWN"


@pytest.mark.parametrize("create_on_push", [("team-*",)])
async def test_create_on_push_pattern_creates_the_repository(client: Client) -> None:
    response = await client.post("/v2/team-a/web/blobs/uploads/")
    assert response.status == 202
    catalog = await (await client.get("/v2/_catalog")).json()
    assert catalog["repositories"] == ["team-a/web"]


async def test_concurrent_first_pushes_to_a_new_repository_all_succeed(
    client: Client, registry: Registry
) -> None:
    """Clients pushing at once to a repository that does not exist yet all create it (one
    wins the INSERT); none sees the losers' conflict. PostgreSQL runs these in parallel."""
    name = "team/fresh"
    layers = [f"layer {i}".encode() for i in range(4)]
    responses = await asyncio.gather(
        *(client.post(f"/v2/{name}/blobs/uploads/") for _ in range(4)),
        *(
            client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest_of(data)}, data=data)
            for data in layers
        ),
    )
    assert [response.status for response in responses] == [202] * 4 + [201] * 4, [
        await response.text() for response in responses
    ]
    repositories = await registry.repositories.list(registry.settings.registry_id)
    assert [repository.name for repository in repositories] == [name]
    for data in layers:
        await assert_blob(client, name, data)


@pytest.mark.parametrize(
    "name",
    ["UPPER/case", "x", "bad..name", "trailing-/x", "a" * 257, "a/%2e%2e/b", "a/.%2e/b"],
)
async def test_invalid_names_are_name_invalid(client: Client, name: str) -> None:
    # encoded=True sends the path exactly as written, with no client-side normalisation.
    url = client.make_url("/").join(URL(f"/v2/{name}/blobs/uploads/", encoded=True))
    response = await client.session.post(url)
    assert response.status == 400
    assert await error_code(response) == "NAME_INVALID"


@pytest.mark.parametrize(
    "path", ["/v2/a/../../etc/blobs/uploads/", "/v2/%2e%2e/%2e%2e/etc/blobs/uploads/"]
)
async def test_path_traversal_never_reaches_a_repository(client: Client, path: str) -> None:
    url = client.make_url("/").join(URL(path, encoded=True))
    response = await client.session.post(url)
    assert response.status in (400, 404)
    catalog = await (await client.get("/v2/_catalog")).json()
    assert catalog["repositories"] == []


@pytest.mark.parametrize("backends", ["filesystem-sqlite"], indirect=True)
async def test_staged_bytes_lost_to_power_loss_restart_the_upload(
    client: Client, tmp_path: Path
) -> None:
    """Staged bytes are durable against a process crash only. Should they be lost (power
    loss before they reached the disk), the session cannot continue: the client is told the
    upload is unknown, and starts again, rather than building a blob on a hole."""
    location = await start(client)
    assert (await client.patch(location, data=b"0123456789")).status == 202
    staged = tmp_path / "uploads" / location.rsplit("/", 1)[1] / "data"
    staged.write_bytes(b"0123")  # what survived
    response = await client.patch(location, data=b"abc", headers={"Content-Range": "10-12"})
    assert response.status == 404
    assert await error_code(response) == "BLOB_UPLOAD_UNKNOWN"


@pytest.mark.parametrize("backends", ["memory-sqlite"], indirect=True)
@pytest.mark.parametrize("max_concurrent_uploads", [1])
async def test_too_many_uploads_at_once_is_429(client: Client, registry: Registry) -> None:
    """Bodies being written hold memory, so their number is bounded: past the bound a
    client is told to retry (429 TOOMANYREQUESTS with Retry-After), and nothing is lost."""
    first, second = await start(client), await start(client)
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"part one "
        await release.wait()
        yield b"part two"

    slow = asyncio.ensure_future(client.patch(first, data=slow_body()))
    # The server exposes no event for "a body is being written"; poll its counter.
    while registry.uploads.writes_in_progress == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    refused = await client.patch(second, data=b"meanwhile")
    assert refused.status == 429
    assert await error_code(refused) == "TOOMANYREQUESTS"
    assert refused.headers["Retry-After"] == "1"
    assert (await client.get(second)).headers["Range"] == "0-0"
    release.set()
    assert (await slow).status == 202
    retried = await client.patch(second, data=b"meanwhile")
    assert retried.status == 202
    assert retried.headers["Range"] == "0-8"
