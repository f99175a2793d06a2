"""Engines for the SQL metadata store, configured per dialect, and its two kinds of transaction.

Supported URLs:

- ``sqlite+aiosqlite:///path/to/moorage.db`` (the default): a file; in-memory databases are
  refused, because every pooled connection would see a different (or a shared, unisolated)
  database.
- ``postgresql+asyncpg://user@host:port/db``.

SQLite, on every new connection:

- ``journal_mode=WAL``: readers never block the writer, nor the writer readers;
- ``synchronous=FULL``: a commit is on disk when it returns. ``NORMAL`` (the usual WAL
  pairing) may lose the last commits on power loss, and a registry must not forget a push it
  acknowledged;
- ``foreign_keys=ON``: SQLite enforces foreign keys (and so our ``ON DELETE CASCADE``) only
  when asked, per connection;
- ``busy_timeout``: how long to wait for another process's write lock before failing.

The driver's own transaction handling is disabled (``isolation_level = None``) and a
``begin`` hook emits ``BEGIN IMMEDIATE`` for write transactions and ``BEGIN`` (deferred) for
reads. A deferred transaction that reads and then writes cannot upgrade its lock while
another connection writes, and fails at once with "database is locked" whatever the
timeout; taking the write lock up front makes writers queue instead.
See https://www.sqlite.org/lang_transaction.html and SQLAlchemy's "Transactions with SQLite
and the sqlite3 driver".

PostgreSQL: default isolation (READ COMMITTED); read transactions are ``READ ONLY``.

SQLite reads also get a *synchronous* engine (``create_sqlite_read_engine``): a point query
on SQLite takes tens of microseconds, less than one hop to aiosqlite's worker thread, and a
pull makes several. In WAL mode a reader never waits for the writer, so running reads on the
event loop thread does not stall it; writes stay on the asynchronous engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

# Longer than any write transaction should hold the lock; waiting longer means a stuck
# process, and failing then is better than queueing forever.
SQLITE_BUSY_TIMEOUT_MS = 30_000

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
)

# Execution option read by the SQLite ``begin`` hook: "IMMEDIATE" or "DEFERRED".
_SQLITE_BEGIN = "moorage_sqlite_begin"
_SQLITE_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE"})

_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


def create_sql_engine(url: str) -> AsyncEngine:
    """An engine for ``url``, configured as the module docstring says.

    Raises ValueError for a URL this store does not support. The caller disposes of it.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    expected = _DRIVERS.get(backend)
    if expected is None or parsed.get_driver_name() != expected:
        raise ValueError(
            f"unsupported metadata database URL {parsed.render_as_string()!r}: "
            "use sqlite+aiosqlite:///path/to/moorage.db or postgresql+asyncpg://..."
        )
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    return create_async_engine(
        parsed, connect_args={"server_settings": {"application_name": "moorage"}}
    )


def _sqlite_engine(url: URL) -> AsyncEngine:
    database = url.database or ""
    if not database or ":memory:" in database or url.query.get("mode") == "memory":
        raise ValueError("an in-memory SQLite database cannot be shared by the pool; use a file")
    if not database.startswith("file:"):
        # A fresh install points at a data directory that may not exist yet.
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    return engine


def create_sqlite_read_engine(url: str) -> Engine:
    """A synchronous engine on the same SQLite file, for read transactions only.

    Its pool never blocks: a checkout that found it empty would otherwise wait on the event
    loop thread for a connection that only the loop itself could return.
    """
    parsed = make_url(url).set(drivername="sqlite+pysqlite")
    engine = create_engine(parsed, poolclass=QueuePool, pool_size=8, max_overflow=-1)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: object) -> None:
    # Hand BEGIN over to _sqlite_on_begin; pragmas must also run outside a transaction
    # (foreign_keys is a no-op inside one).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
    if mode not in _SQLITE_BEGIN_MODES:
        raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
    connection.exec_driver_sql(f"BEGIN {mode}")


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a read-write transaction: committed on normal exit, else rolled back.

    On SQLite the transaction holds the database's write lock from its first statement.
    """
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            await connection.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
        async with connection.begin():
            yield connection


@asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a read-only transaction (one snapshot on SQLite; no write locks)."""
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execution_options(postgresql_readonly=True)
        async with connection.begin():
            yield connection
