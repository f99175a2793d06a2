from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.postgres import throwaway_database


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def postgres_url() -> AsyncIterator[str]:
    """A throwaway PostgreSQL database for the module (modules may define their own)."""
    async with throwaway_database() as url:
        yield url
