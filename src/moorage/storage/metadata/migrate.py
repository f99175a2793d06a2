"""Bring a metadata database to the current schema, with Alembic configured in code.

:func:`upgrade_database` runs on every start (and from ``moorage migrate``): it upgrades
to the newest revision in ``migrations/versions`` and does nothing when the database is
already there. The whole upgrade is one transaction, which SQLite and PostgreSQL both allow
for DDL, so a failed migration leaves the previous schema in place. Two processes that
start at once take turns: on SQLite through ``BEGIN IMMEDIATE`` (the write lock), on
PostgreSQL through a transaction-scoped advisory lock; the second then finds nothing to do.

Writing a new migration (development)::

    from alembic import command
    from moorage.storage.metadata.migrate import alembic_config

    command.revision(
        alembic_config("sqlite+aiosqlite:///dev.db"),
        message="add ...",
        autogenerate=True,
        rev_id="0002",
    )

Then review the file, change ``sql/tables.py`` to match, and let the test that compares
the migrated schema with ``tables.py`` confirm that they agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import BigInteger, event, func, literal, select
from sqlalchemy.engine import Connection

from moorage.domain.regions import DEFAULT_REGION
from moorage.storage.metadata.sql.engine import (
    check_connection,
    create_sql_engine,
    write_transaction,
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# A fixed key that names "moorage schema upgrade" among PostgreSQL advisory locks.
_UPGRADE_LOCK_KEY = 0x6D6F6F72616765  # b"moorage"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for the metadata migrations; no alembic.ini involved.

    With ``url``, the ``alembic`` commands connect to that database themselves (as
    ``command.revision(..., autogenerate=True)`` needs); without it, the caller passes an open
    connection in ``config.attributes["connection"]``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolates "%": URL-escaped passwords contain it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade_database(url: str, *, region: str = DEFAULT_REGION) -> None:
    """Upgrade the database at ``url`` to the newest schema, creating it if needed.

    ``region`` is the deployment's configured one: rows written before the schema had
    regions belong to it (migration 0012). Safe to call on every start and from several
    processes at once. Raises ValueError for an unsupported URL, DatabaseUnavailable when no
    connection opens; other database errors propagate, and leave the schema as it was.
    """
    engine = create_sql_engine(url)
    if engine.dialect.name == "sqlite":
        # Batch migrations rebuild a table by copying it and dropping the old one, and with
        # foreign keys on the drop would cascade to every row that references it. SQLite's
        # procedure for such changes turns them off (a pragma that acts only outside a
        # transaction: on each new connection of this engine, which is disposed after) and
        # checks them before the commit.
        event.listen(engine.sync_engine, "connect", _foreign_keys_off)
    config = alembic_config()
    config.attributes["region"] = region
    try:
        await check_connection(engine)
        async with write_transaction(engine) as connection:
            if connection.dialect.name == "postgresql":
                lock = func.pg_advisory_xact_lock(literal(_UPGRADE_LOCK_KEY, BigInteger()))
                await connection.execute(select(lock))
            await connection.run_sync(_upgrade_to_head, config)
            if connection.dialect.name == "sqlite":
                broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"the upgrade broke foreign keys: {broken[:5]}")
    finally:
        await engine.dispose()


def _foreign_keys_off(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=OFF")
    finally:
        cursor.close()


def _upgrade_to_head(connection: Connection, config: Config) -> None:
    # env.py finds the connection here and runs inside its transaction.
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
