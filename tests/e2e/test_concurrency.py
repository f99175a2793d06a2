"""Many clients at once against one server process: the same blob from ten clients, twenty
different blobs in parallel, and concurrent manifest and tag writes to one repository."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.client import OCI_MANIFEST, digest_of, image_manifest
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

MiB = 1 << 20


@pytest.fixture(scope="module")
def server(module_server: ServerProcess) -> ServerProcess:
    return module_server


@pytest.fixture
async def session(server: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        base_url=server.url, timeout=aiohttp.ClientTimeout(total=120)
    ) as client:
        yield client


async def chunked_upload(
    session: aiohttp.ClientSession,
    name: str,
    data: bytes,
    chunks: int = 2,
    barrier: asyncio.Barrier | None = None,
) -> int:
    """POST, ``chunks`` PATCHes, PUT with the digest; returns the PUT's status. With a
    barrier, every client waits for the others before each step."""

    async def together() -> None:
        if barrier is not None:
            await barrier.wait()

    async with session.post(f"/v2/{name}/blobs/uploads/") as response:
        assert response.status == 202, await response.text()
        location = response.headers["Location"]
    size = -(-len(data) // chunks)
    for offset in range(0, len(data), size):
        await together()
        chunk = data[offset : offset + size]
        headers = {"Content-Range": f"{offset}-{offset + len(chunk) - 1}"}
        # A file-like body: aiohttp warns about large bytes bodies blocking the loop.
        body = io.BytesIO(chunk)
        async with session.patch(location, data=body, headers=headers) as response:
            assert response.status == 202, await response.text()
            location = response.headers["Location"]
    await together()
    async with session.put(location, params={"digest": digest_of(data)}) as response:
        if response.status == 201:
            assert response.headers["Docker-Content-Digest"] == digest_of(data)
        return response.status


async def read_blob(session: aiohttp.ClientSession, name: str, digest: str) -> bytes:
    async with session.get(f"/v2/{name}/blobs/{digest}") as response:
        assert response.status == 200, await response.text()
        return await response.read()


def hex_of(data: bytes) -> str:
    return digest_of(data).split(":")[1]


def blob_files(data_dir: Path) -> list[Path]:
    return sorted(path for path in (data_dir / "blobs").rglob("*") if path.is_file())


async def test_same_blob_from_ten_clients(server: ServerProcess) -> None:
    """Ten clients push one blob in lockstep: all get 201, and one intact blob is stored."""
    data = random.Random(1).randbytes(MiB + 123)
    barrier = asyncio.Barrier(10)
    sessions = [aiohttp.ClientSession(base_url=server.url) for _ in range(10)]
    try:
        statuses = await asyncio.gather(
            *(chunked_upload(s, "team/same", data, barrier=barrier) for s in sessions)
        )
        assert statuses == [201] * 10
        assert await read_blob(sessions[0], "team/same", digest_of(data)) == data
    finally:
        await asyncio.gather(*(s.close() for s in sessions))

    [stored] = [path for path in blob_files(server.data_dir) if path.name == hex_of(data)]
    assert stored.read_bytes() == data
    # Every session ended: no staged bytes are left behind.
    assert list((server.data_dir / "uploads").iterdir()) == []


async def test_twenty_parallel_uploads(
    server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    """Twenty different 1-4 MiB blobs, chunked, to three repositories at once: all
    complete and read back byte for byte."""
    rng = random.Random(2)
    pushes = [
        (f"team/repo{i % 3}", rng.randbytes(rng.randint(MiB, 4 * MiB)), 1 + i % 3)
        for i in range(20)
    ]
    statuses = await asyncio.gather(
        *(chunked_upload(session, name, data, chunks) for name, data, chunks in pushes)
    )
    assert statuses == [201] * 20

    contents = await asyncio.gather(
        *(read_blob(session, name, digest_of(data)) for name, data, _ in pushes)
    )
    for (_, data, _), content in zip(pushes, contents, strict=True):
        assert content == data
    stored = {path.name for path in blob_files(server.data_dir)}
    assert {hex_of(data) for _, data, _ in pushes} <= stored


async def test_concurrent_manifest_puts(session: aiohttp.ClientSession) -> None:
    """Twenty tags written at once all exist afterwards, each on its own manifest; ten
    writers racing for one tag leave it on one of their manifests."""
    name = "team/tags"
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"shared layer"
    for blob in (config, layer):
        assert await chunked_upload(session, name, blob, chunks=1) == 201
    manifests = {
        f"t{i:02d}": image_manifest(config, [layer], annotations={"n": str(i)}) for i in range(20)
    }
    racers = [image_manifest(config, [layer], annotations={"racer": str(i)}) for i in range(10)]

    async def put(reference: str, payload: bytes) -> int:
        headers = {"Content-Type": OCI_MANIFEST}
        async with session.put(
            f"/v2/{name}/manifests/{reference}", data=payload, headers=headers
        ) as response:
            return response.status

    statuses = await asyncio.gather(
        *(put(tag, payload) for tag, payload in manifests.items()),
        *(put("race", payload) for payload in racers),
    )
    assert statuses == [201] * 30

    async with session.get(f"/v2/{name}/tags/list") as response:
        tags = (await response.json())["tags"]
    assert sorted(tags) == sorted([*manifests, "race"])
    for tag, payload in manifests.items():
        async with session.get(f"/v2/{name}/manifests/{tag}") as response:
            assert response.headers["Docker-Content-Digest"] == digest_of(payload)
            assert await response.read() == payload
    async with session.get(f"/v2/{name}/manifests/race") as response:
        winner = await response.read()
    assert winner in racers
    assert json.loads(winner)["annotations"]["racer"]


async def test_first_pushes_race_to_create_repositories(session: aiohttp.ClientSession) -> None:
    """Ten clients push the same image at once to three repositories that do not exist
    yet: every request succeeds, each repository is created once, every tag exists."""
    names = [f"race/r{i % 3}" for i in range(10)]
    config, layer = b'{"os":"linux","race":true}', random.Random(9).randbytes(64 * 1024)
    payload = image_manifest(config, [layer])

    async def push(name: str, tag: str) -> list[int]:
        statuses = []
        for blob in (config, layer):
            async with session.post(
                f"/v2/{name}/blobs/uploads/", params={"digest": digest_of(blob)}, data=blob
            ) as response:
                statuses.append(response.status)
        headers = {"Content-Type": OCI_MANIFEST}
        async with session.put(
            f"/v2/{name}/manifests/{tag}", data=payload, headers=headers
        ) as response:
            statuses.append(response.status)
        return statuses

    results = await asyncio.gather(*(push(name, f"t{i}") for i, name in enumerate(names)))
    assert results == [[201, 201, 201]] * 10

    async with session.get("/v2/_catalog") as response:
        repositories = (await response.json())["repositories"]
    assert sorted(r for r in repositories if r.startswith("race/")) == sorted(set(names))
    for i, name in enumerate(names):
        async with session.get(f"/v2/{name}/manifests/t{i}") as response:
            assert response.status == 200
            assert await response.read() == payload
