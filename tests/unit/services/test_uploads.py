"""The upload service's cache of hash states is bounded, and an evicted upload still
completes correctly (its staged bytes are hashed again)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from moorage.domain.digests import Digest
from moorage.ports.clock import system_clock
from moorage.services import uploads as uploads_module
from moorage.services.repositories import RepositoryService
from moorage.services.uploads import UploadService
from moorage.storage.blobs.memory import MemoryBlobStore
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store

REGISTRY = "000000000000"


@pytest.fixture
async def metadata(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    store = await open_sql_metadata_store(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    yield store
    await store.close()


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_hash_cache_is_bounded_and_eviction_is_harmless(
    metadata: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads_module, "MAX_CACHED_HASHERS", 3)
    blobs = MemoryBlobStore()
    service = UploadService(
        metadata, blobs, RepositoryService(metadata, system_clock, ("*",)), system_clock
    )
    sessions = [await service.start(REGISTRY, "team/app") for _ in range(5)]
    for index, session in enumerate(sessions):
        await service.append(REGISTRY, "team/app", session.id, body(b"data %d" % index))
    assert len(service._hashers) == 3
    # The first session's hash state was evicted; completing it re-reads the staged bytes.
    blob = await service.complete(REGISTRY, "team/app", sessions[0].id, Digest.of(b"data 0"))
    assert blob.digest == Digest.of(b"data 0")
    last = await service.complete(REGISTRY, "team/app", sessions[4].id, Digest.of(b"data 4"))
    assert last.size == len(b"data 4")
