"""In-process API tests: the real aiohttp application on real storage, driven over a real
loopback socket by aiohttp's test client.

Every test runs on three stacks: blobs in memory with SQLite, blobs on the filesystem with
SQLite (the default product), and blobs on the filesystem with PostgreSQL (scale-out).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from moorage.app import Registry, build_web_app, wire
from moorage.config import Settings
from moorage.services.access import AnonymousAuthenticator, OpenAccess
from moorage.storage.blobs import build_blob_store
from moorage.storage.metadata.sql.store import open_sql_metadata_store
from tests.postgres import create_throwaway_database, delete_everything, drop_database

REGISTRY_ID = "000000000000"


@pytest.fixture(params=["memory-sqlite", "filesystem-sqlite", "filesystem-postgres"])
def backends(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def blob_backend(backends: str) -> str:
    return backends.split("-")[0]


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """One PostgreSQL database for the session's API tests, emptied after each test."""
    url = asyncio.run(create_throwaway_database())
    yield url
    asyncio.run(drop_database(url))


@pytest.fixture
async def database_url(backends: str, tmp_path: Path, postgres_database: str) -> AsyncIterator[str]:
    if not backends.endswith("postgres"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'moorage.db'}"
        return
    yield postgres_database
    await delete_everything(postgres_database)


@pytest.fixture
def create_on_push() -> tuple[str, ...]:
    return ("*",)


@pytest.fixture
def max_concurrent_uploads() -> int:
    return 64


@pytest.fixture
async def registry(
    tmp_path: Path,
    blob_backend: str,
    database_url: str,
    create_on_push: tuple[str, ...],
    max_concurrent_uploads: int,
) -> AsyncIterator[Registry]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        create_on_push=create_on_push,
        registry_id=REGISTRY_ID,
        max_concurrent_uploads=max_concurrent_uploads,
    )
    metadata = await open_sql_metadata_store(settings.resolved_database_url)
    options = {"root": tmp_path} if blob_backend == "filesystem" else {}
    registry = wire(settings, metadata, build_blob_store(blob_backend, **options))
    yield registry
    await registry.close()


@pytest.fixture
async def client(registry: Registry) -> AsyncIterator[TestClient[object, object]]:
    # The registry protocol's own tests run with access open; access control has its own
    # tests (test_access.py, the authorization matrix).
    app = build_web_app(
        registry, authenticator=AnonymousAuthenticator(REGISTRY_ID), authorizer=OpenAccess()
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
