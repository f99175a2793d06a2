"""The blob store contract on MemoryBlobStore, bare and behind CheckedBlobStore."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from moorage.ports.blobs import BlobStore
from moorage.storage.blobs.checked import CheckedBlobStore
from moorage.storage.blobs.memory import MemoryBlobStore

# Before the import below, so that the suite's asserts explain themselves on failure.
pytest.register_assert_rewrite(f"{__package__}.blob_store_suite")

from .blob_store_suite import BlobStoreSuite  # noqa: E402


class TestMemoryBlobStore(BlobStoreSuite):
    @pytest.fixture(params=["checked", "bare"])
    async def blob_store(self, request: pytest.FixtureRequest) -> AsyncIterator[BlobStore]:
        store: BlobStore = MemoryBlobStore()
        if request.param == "checked":
            store = CheckedBlobStore(store)
        yield store
        await store.close()
