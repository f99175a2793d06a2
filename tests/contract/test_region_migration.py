"""Migration 0012 on a database written before regions, on SQLite and PostgreSQL: every row
moves to the configured region, nothing owned by a repository is lost (on SQLite the table
is rebuilt, which with foreign keys on would cascade), and a deleted repository's id is
never given again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from moorage.domain.digests import Digest
from moorage.domain.models import AccountSetting
from moorage.storage.metadata.migrate import alembic_config
from moorage.storage.metadata.sql.engine import create_sql_engine, write_transaction
from moorage.storage.metadata.sql.store import open_sql_metadata_store
from tests.postgres import create_throwaway_database, drop_database

ACCOUNT = "123456789012"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'moorage.db'}"
        return
    database = asyncio.run(create_throwaway_database())
    yield database
    asyncio.run(drop_database(database))


def _upgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def _database_before_regions(url: str) -> None:
    """A database at revision 0011 with a repository, its image and policy, a deleted
    repository, and registry-level rows."""
    engine = create_sql_engine(url)
    try:
        async with write_transaction(engine) as c:
            await c.run_sync(_upgrade_to, "0011")
            now = {"now": NOW}
            for name in ("team/app", "team/gone"):
                await c.execute(
                    text(
                        "INSERT INTO repositories (registry_id, name, created_at) "
                        "VALUES (:account, :name, :now)"
                    ),
                    {"account": ACCOUNT, "name": name, **now},
                )
            app = (
                await c.execute(text("SELECT id FROM repositories WHERE name = 'team/app'"))
            ).scalar_one()
            await c.execute(text("DELETE FROM repositories WHERE name = 'team/gone'"))
            await c.execute(
                text(
                    "INSERT INTO manifests (repository_id, digest, media_type, size, payload, "
                    "annotations, pushed_at) "
                    "VALUES (:id, :digest, 'application/json', 2, :payload, '{}', :now)"
                ),
                {"id": app, "digest": DIGEST, "payload": b"{}", **now},
            )
            await c.execute(
                text(
                    "INSERT INTO tags (repository_id, name, manifest_digest, updated_at) "
                    "VALUES (:id, 'v1', :digest, :now)"
                ),
                {"id": app, "digest": DIGEST, **now},
            )
            await c.execute(
                text(
                    "INSERT INTO repository_policies (repository_id, policy_text, updated_at) "
                    "VALUES (:id, 'repository policy', :now)"
                ),
                {"id": app, **now},
            )
            await c.execute(
                text(
                    "INSERT INTO registry_policies (registry_id, policy_text, updated_at) "
                    "VALUES (:account, 'registry policy', :now)"
                ),
                {"account": ACCOUNT, **now},
            )
            await c.execute(
                text(
                    "INSERT INTO account_settings (registry_id, name, value) "
                    "VALUES (:account, 'BLOB_MOUNTING', 'ENABLED')"
                ),
                {"account": ACCOUNT},
            )
    finally:
        await engine.dispose()


async def test_rows_move_to_the_configured_region_and_nothing_is_lost(url: str) -> None:
    await _database_before_regions(url)
    store = await open_sql_metadata_store(url, region="eu-west-1")
    try:
        async with store.read() as tx:
            repository = await tx.get_repository(ACCOUNT, "team/app")
            assert repository is not None
            assert repository.region == "eu-west-1"
            manifest = await tx.resolve_tag(repository.id, "v1")
            assert manifest is not None
            assert manifest.digest == Digest.parse(DIGEST)
            assert await tx.get_repository_policy(repository.id) == "repository policy"
            assert await tx.get_registry_policy(ACCOUNT) == "registry policy"
            setting = await tx.get_account_setting(ACCOUNT, AccountSetting.BLOB_MOUNTING.value)
            assert setting == "ENABLED"
            assert await tx.regions_in_use() == ["eu-west-1"]
        async with store.in_region("us-east-1").read() as tx:
            assert await tx.get_repository(ACCOUNT, "team/app") is None
            assert await tx.get_registry_policy(ACCOUNT) is None
        # The rebuilt table has AUTOINCREMENT (which the SQLite rebuild of 0003 had lost): the
        # id of a repository deleted from now on is never given again.
        async with store.transaction() as tx:
            created = await tx.create_repository(ACCOUNT, "team/new", NOW)
            await tx.delete_repository(created.id, now=NOW)
        async with store.transaction() as tx:
            again = await tx.create_repository(ACCOUNT, "team/new", NOW)
        assert again.id == created.id + 1
    finally:
        await store.close()
