"""A blob store may answer downloads with a URL (an object store's presigned URL): the
registry then redirects the client there instead of streaming the bytes itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from moorage.app import build_web_app, wire
from moorage.config import Settings
from moorage.domain.digests import Digest
from moorage.ports.blobs import BlobLocation
from moorage.services.access import AnonymousAuthenticator, OpenAccess
from moorage.storage.blobs.memory import MemoryBlobStore
from moorage.storage.metadata.sql.store import open_sql_metadata_store
from tests.api.oci import Client, push_blob


class RedirectingBlobStore(MemoryBlobStore):
    """The memory store, with every committed blob served from a (made-up) URL."""

    async def locate(self, digest: Digest) -> BlobLocation | None:
        location = await super().locate(digest)
        if location is None:
            return None
        return BlobLocation(size=location.size, url=f"https://objects.example/{digest.hex}?sig=1")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings(data_dir=tmp_path, create_on_push=("*",))
    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    registry = wire(settings, metadata, RedirectingBlobStore())
    app = build_web_app(
        registry, authenticator=AnonymousAuthenticator("123456789012"), authorizer=OpenAccess()
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await registry.close()


async def test_blob_get_redirects_to_the_store_url(client: Client) -> None:
    digest = await push_blob(client, "team/app", b"layer bytes")
    response = await client.get(f"/v2/team/app/blobs/{digest}", allow_redirects=False)
    assert response.status == 307
    assert response.headers["Location"] == f"https://objects.example/{digest[7:]}?sig=1"
    assert response.headers["Docker-Content-Digest"] == digest
    # HEAD still answers from the metadata, without a redirect.
    head = await client.head(f"/v2/team/app/blobs/{digest}", allow_redirects=False)
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(b"layer bytes"))
