"""Blob downloads through the threaded sendfile path, which moorage uses on event loops
without their own sendfile (uvloop, the default). Forced on here for the test loop."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from moorage.protocols.oci import sendfile
from tests.api.oci import Client, push_blob

pytestmark = pytest.mark.parametrize("backends", ["filesystem-sqlite"], indirect=True)

DATA = bytes(range(256)) * 8192  # 2 MiB


@pytest.fixture(autouse=True)
def threaded_sendfile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sendfile, "loop_has_sendfile", lambda loop: False)


async def test_whole_blob(client: Client) -> None:
    digest = await push_blob(client, "team/app", DATA)
    response = await client.get(f"/v2/team/app/blobs/{digest}")
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.headers["Docker-Content-Digest"] == digest
    assert await response.read() == DATA


async def test_ranges_and_unsatisfiable_range(client: Client) -> None:
    digest = await push_blob(client, "team/app", DATA)
    partial = await client.get(f"/v2/team/app/blobs/{digest}", headers={"Range": "bytes=1000-"})
    assert partial.status == 206
    assert partial.headers["Content-Range"] == f"bytes 1000-{len(DATA) - 1}/{len(DATA)}"
    assert await partial.read() == DATA[1000:]
    beyond = await client.get(f"/v2/team/app/blobs/{digest}", headers={"Range": "bytes=9999999-"})
    assert beyond.status == 416


async def test_keep_alive_connection_serves_the_next_request(client: Client) -> None:
    digest = await push_blob(client, "team/app", DATA)
    for _ in range(3):  # one pooled connection, reused
        response = await client.get(f"/v2/team/app/blobs/{digest}")
        assert await response.read() == DATA
    assert (await client.get("/v2/")).status == 200


async def test_concurrent_downloads(client: Client) -> None:
    digest = await push_blob(client, "team/app", DATA)

    async def pull() -> str:
        response = await client.get(f"/v2/team/app/blobs/{digest}")
        return "sha256:" + hashlib.sha256(await response.read()).hexdigest()

    assert await asyncio.gather(*(pull() for _ in range(12))) == [digest] * 12
