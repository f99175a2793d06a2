"""Alembic environment for the metadata schema.

``upgrade_database`` (``storage/metadata/migrate.py``) runs this with an open connection,
already inside the upgrade's transaction and holding its lock, in
``config.attributes["connection"]``. Run by an ``alembic`` command with ``sqlalchemy.url``
set (see ``migrate.alembic_config``), it opens its own connection, without that lock.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from moorage.storage.metadata.sql.engine import create_sql_engine, write_transaction
from moorage.storage.metadata.sql.tables import metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite changes most columns by copying the table; batch operations do that.
        render_as_batch=True,
    )
    # A no-op when the caller's transaction is already open (the upgrade_database case).
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_connection(url: str) -> None:
    engine = create_sql_engine(url)
    try:
        async with write_transaction(engine) as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported; run upgrade_database")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url: use migrate.alembic_config(url)")
    asyncio.run(_run_with_own_connection(url))


main()
