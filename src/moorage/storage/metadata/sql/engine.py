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

On SQLite the store does its work through synchronous connections on the event loop thread
(``SqliteOnTheLoop``): a point query takes tens of microseconds and a commit one fsync,
less than the hops to aiosqlite's worker thread that each statement costs otherwise. In WAL
mode a reader never waits for the writer; the writer's wait for another process's lock is an
``asyncio.sleep`` loop, never a block. The asynchronous engine remains for migrations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

# Longer than any write transaction should hold the lock; waiting longer means a stuck
# process, and failing then is better than queueing forever.
SQLITE_BUSY_TIMEOUT_MS = 30_000

_WAL = "PRAGMA journal_mode=WAL"
_SQLITE_PRAGMAS = (
    # First: switching a new database to WAL needs its lock, which a concurrent first start
    # (running the migrations) may hold for seconds; wait as long as for any write.
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    _WAL,
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
)

# Execution option read by the SQLite ``begin`` hook: "IMMEDIATE" or "DEFERRED".
_SQLITE_BEGIN = "moorage_sqlite_begin"
_SQLITE_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE"})

_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


class DatabaseUnavailable(Exception):
    """The metadata database cannot be reached or opened (refused, unknown host or database,
    authentication, an unreadable SQLite file). The message is one line, without password."""


def check_database_url(url: str) -> URL:
    """``url`` parsed, when this store supports it; raises ValueError (one line) otherwise."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Not echoed: a URL that does not parse may still hold a password.
        raise ValueError(
            "the metadata database URL does not parse: use sqlite+aiosqlite:///path/to/moorage.db"
            " or postgresql+asyncpg://user@host:port/database"
        ) from None
    backend = parsed.get_backend_name()
    expected = _DRIVERS.get(backend)
    if expected is None or parsed.get_driver_name() != expected:
        raise ValueError(
            f"unsupported metadata database URL {parsed.render_as_string()!r}: "
            "use sqlite+aiosqlite:///path/to/moorage.db or postgresql+asyncpg://..."
        )
    if backend == "sqlite":
        database = parsed.database or ""
        if not database or ":memory:" in database or parsed.query.get("mode") == "memory":
            raise ValueError(
                "an in-memory SQLite database cannot be shared by the pool; use a file"
            )
    return parsed


def create_sql_engine(url: str) -> AsyncEngine:
    """An engine for ``url``, configured as the module docstring says.

    Raises ValueError for a URL this store does not support (``check_database_url``),
    DatabaseUnavailable when the folder of a SQLite file cannot be created. The caller
    disposes of it.
    """
    parsed = check_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_async_engine(
        parsed, connect_args={"server_settings": {"application_name": "moorage"}}
    )


async def check_connection(engine: AsyncEngine) -> None:
    """Open and close one connection; raises DatabaseUnavailable when none opens."""
    try:
        async with engine.connect():
            pass
    except (OSError, DBAPIError) as error:
        # DBAPIError's own text adds the statement and a link; the driver's says why.
        reason = error.orig if isinstance(error, DBAPIError) else error
        first_line = (str(reason).strip() or type(reason).__name__).splitlines()[0]
        raise DatabaseUnavailable(
            f"cannot open the metadata database {engine.url.render_as_string()!r}: {first_line}"
        ) from error


def _sqlite_engine(url: URL) -> AsyncEngine:
    database = url.database or ""
    if not database.startswith("file:"):
        # A fresh install points at a data directory that may not exist yet.
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseUnavailable(
                f"cannot create the folder of the metadata database {database!r}: "
                f"{error.strerror or error}"
            ) from error
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    return engine


class SqliteOnTheLoop:
    """Synchronous SQLite connections used from the event loop thread (see the module
    docstring): a pool of readers, and one writer that never sleeps in SQLite's busy handler.

    SQLite statements take microseconds, far less than a hop to a worker thread. The one
    wait that can be long, for another process's write lock, happens at ``BEGIN
    IMMEDIATE``; the writer fails fast there and :meth:`begin_write` retries with
    ``asyncio.sleep``, so the loop never blocks on it.
    """

    # A reader waits for the lock only in rare WAL recovery; bound what the loop may stall.
    READER_BUSY_TIMEOUT_MS = 200
    WRITE_RETRY_SECONDS = SQLITE_BUSY_TIMEOUT_MS / 1000
    # Read blocks rarely overlap (their statements never suspend); keep a few spare.
    MAX_IDLE_READERS = 8

    def __init__(self, url: str) -> None:
        parsed = make_url(url).set(drivername="sqlite+pysqlite")
        # The read pool never blocks: a checkout that found it empty would otherwise wait
        # on the loop thread for a connection only the loop itself could return.
        self._readers = create_engine(parsed, poolclass=QueuePool, pool_size=8, max_overflow=-1)
        self._writer_engine = create_engine(parsed, poolclass=QueuePool, pool_size=1)
        for engine, busy_ms in (
            (self._readers, self.READER_BUSY_TIMEOUT_MS),
            (self._writer_engine, 0),
        ):
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "connect", _busy_timeout(busy_ms))
            event.listen(engine, "begin", _sqlite_on_begin)
        self._writer: Connection | None = None
        self._idle_readers: list[Connection] = []

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A reader connection inside a (deferred) read transaction.

        Idle readers are kept open between uses: a pool checkout and return costs more than
        the queries of a pull.
        """
        connection = self._idle_readers.pop() if self._idle_readers else self._readers.connect()
        try:
            with connection.begin():
                yield connection
        finally:
            if (
                connection.invalidated
                or connection.closed
                or len(self._idle_readers) >= self.MAX_IDLE_READERS
            ):
                connection.close()
            else:
                self._idle_readers.append(connection)

    async def begin_write(self) -> Connection:
        """The writer connection inside ``BEGIN IMMEDIATE``. The caller commits or rolls back,
        and serialises its own writers (one write transaction at a time)."""
        if self._writer is None:
            self._writer = self._writer_engine.connect().execution_options(
                **{_SQLITE_BEGIN: "IMMEDIATE"}
            )
        deadline = asyncio.get_running_loop().time() + self.WRITE_RETRY_SECONDS
        delay = 0.001
        while True:
            try:
                self._writer.begin()
                return self._writer
            except OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                self._writer.rollback()
                if asyncio.get_running_loop().time() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        while self._idle_readers:
            self._idle_readers.pop().close()
        self._readers.dispose()
        self._writer_engine.dispose()


def _busy_timeout(milliseconds: int) -> Callable[[Any, object], None]:
    def set_timeout(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={milliseconds}")

    return set_timeout


def _sqlite_on_connect(dbapi_connection: Any, _record: object) -> None:
    # Hand BEGIN over to _sqlite_on_begin; pragmas must also run outside a transaction
    # (foreign_keys is a no-op inside one).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            if pragma == _WAL:
                _switch_to_wal(cursor)
            else:
                cursor.execute(pragma)
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried while the database is locked. Switching a new
    database needs its exclusive lock, and when two connections switch it at once SQLite
    answers "database is locked" at once rather than call the busy handler (waiting could
    deadlock); retry for as long as the busy timeout would have waited."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute(_WAL)
            return
        except Exception as error:  # the driver's OperationalError (sqlite3 or aiosqlite's)
            if "database is locked" not in str(error) or time.monotonic() >= deadline:
                raise
        time.sleep(0.05)


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
