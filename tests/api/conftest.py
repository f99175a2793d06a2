"""In-process API tests: the real aiohttp application, SQLite metadata, blobs in memory
or on the filesystem, driven over a real loopback socket by aiohttp's test client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from moorage.app import Registry, build_web_app, wire
from moorage.config import Settings
from moorage.storage.blobs import build_blob_store
from moorage.storage.metadata.sql.store import open_sql_metadata_store

REGISTRY_ID = "000000000000"


@pytest.fixture(params=["memory", "filesystem"])
def blob_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def create_on_push() -> tuple[str, ...]:
    return ("*",)


@pytest.fixture
async def registry(
    tmp_path: Path, blob_backend: str, create_on_push: tuple[str, ...]
) -> AsyncIterator[Registry]:
    settings = Settings(data_dir=tmp_path, create_on_push=create_on_push, registry_id=REGISTRY_ID)
    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    options = {"root": tmp_path} if blob_backend == "filesystem" else {}
    blob_store = build_blob_store(blob_backend, **options)
    registry = wire(settings, metadata, blob_store)
    yield registry
    await registry.close()


@pytest.fixture
async def client(registry: Registry) -> AsyncIterator[TestClient[object, object]]:
    async with TestClient(TestServer(build_web_app(registry))) as test_client:
        yield test_client
