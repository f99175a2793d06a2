"""Throwaway PostgreSQL databases for tests, on the server at 127.0.0.1:5432.

Needs trust auth, user ``postgres`` and database ``test`` (CI starts the server). Tests that
use these fail, never skip, when the server is down: a skipped database test hides a
missing feature.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import delete

from moorage.storage.metadata.sql.engine import create_sql_engine, write_transaction
from moorage.storage.metadata.sql.tables import metadata

SERVER = os.environ.get("MOORAGE_TEST_POSTGRES_SERVER", "postgres@127.0.0.1:5432")
ADMIN_DSN = f"postgresql://{SERVER}/test"


async def _admin(statement: str) -> None:
    try:
        connection = await asyncpg.connect(ADMIN_DSN, timeout=10)
    except (OSError, asyncpg.PostgresError) as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {ADMIN_DSN} ({error!r}). These tests need it "
            "running (trust auth, user postgres, database test); CI starts it.",
            pytrace=False,
        )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def create_database(name: str) -> None:
    # A linguistic default collation (ICU en-US orders "B" after "b"), so that ordering
    # tests prove the schema's COLLATE "C" rather than inherit a server default of C.
    try:
        await _admin(
            f'CREATE DATABASE "{name}" TEMPLATE template0 '
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    except asyncpg.PostgresError:  # a server without ICU (or before 15): its default
        await _admin(f'CREATE DATABASE "{name}"')


async def create_throwaway_database() -> str:
    """A new, empty, uniquely named database; returns its SQLAlchemy URL."""
    name = f"moorage_test_{uuid.uuid4().hex[:12]}"
    await create_database(name)
    return f"postgresql+asyncpg://{SERVER}/{name}"


async def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')


@asynccontextmanager
async def throwaway_database() -> AsyncIterator[str]:
    """A new, empty database for the block; yields its SQLAlchemy URL and drops it after."""
    url = await create_throwaway_database()
    try:
        yield url
    finally:
        await drop_database(url)


async def delete_everything(url: str) -> None:
    """Empty every table (a database shared by the tests of a session outlives each test)."""
    engine = create_sql_engine(url)
    try:
        async with write_transaction(engine) as connection:
            for table in reversed(metadata.sorted_tables):
                await connection.execute(delete(table))
    finally:
        await engine.dispose()
