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

from alembic import command
from alembic.config import Config
from sqlalchemy import BigInteger, func, literal, select
from sqlalchemy.engine import Connection

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


async def upgrade_database(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema, creating it if needed.

    Safe to call on every start and from several processes at once. Raises ValueError for
    an unsupported URL, DatabaseUnavailable when no connection opens; other database errors
    propagate, and leave the schema as it was.
    """
    engine = create_sql_engine(url)
    try:
        await check_connection(engine)
        async with write_transaction(engine) as connection:
            if connection.dialect.name == "postgresql":
                lock = func.pg_advisory_xact_lock(literal(_UPGRADE_LOCK_KEY, BigInteger()))
                await connection.execute(select(lock))
            await connection.run_sync(_upgrade_to_head, alembic_config())
    finally:
        await engine.dispose()


def _upgrade_to_head(connection: Connection, config: Config) -> None:
    # env.py finds the connection here and runs inside its transaction.
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
