"""``SqlMetadataStore``: the MetadataStore port on SQLite or PostgreSQL (SQLAlchemy Core, async).

One port transaction is one database transaction on one pooled connection (see
``engine.py`` for how each dialect begins it). Writes that may race with another
transaction (the same blob, link, manifest or repository inserted twice) are
``INSERT ... ON CONFLICT DO NOTHING``: the loser sees "already there" instead of an
integrity error, which on PostgreSQL would also abort its whole transaction.

The pull path (``resolve_tag``, ``get_manifest``) is one statement each.

Beyond the port's docstrings, this adapter promises (and the contract suite checks):

- ``link_blob`` raises BlobUnknown when the blob is not recorded;
- ``put_tag`` raises ManifestUnknown when the digest is not a manifest in the repository,
  and leaves ``updated_at`` alone when the tag already names that digest;
- ``put_repository_tags`` locks the repository's row (PostgreSQL; SQLite has one writer),
  which is how writers of one repository's resource tags take turns;
- ``update_upload`` raises UploadUnknown for an unknown session; ``delete_upload`` and
  ``touch_manifest_pull`` ignore unknown ones, and ``last_pulled_at`` never moves back;
- datetimes must be timezone-aware, and come back in UTC. A naive one is a programming
  error: SQLAlchemy raises StatementError (wrapping ValueError) and nothing is written.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    Row,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import CursorResult, Dialect, ScalarResult
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.expression import Executable, Exists

from moorage.domain.digests import Digest
from moorage.domain.errors import (
    BlobUnknown,
    ManifestUnknown,
    RepositoryAlreadyExists,
    UploadUnknown,
)
from moorage.domain.models import (
    AccountSetting,
    BlobRecord,
    ManifestRecord,
    ManifestReference,
    PolicyTexts,
    ReferenceKind,
    Repository,
    TagMutability,
    TagRecord,
    UploadSession,
)
from moorage.domain.public import PUBLIC_NAMESPACE
from moorage.domain.regions import DEFAULT_REGION
from moorage.domain.scanning_configuration import (
    RegistryScanningConfiguration,
    ScanType,
    rules_from_document,
    rules_to_document,
)
from moorage.ports.metadata import MetadataTransaction, SparedBlobs
from moorage.storage.metadata.migrate import upgrade_database
from moorage.storage.metadata.sql.advisories import ADVISORY_TABLES, SqlAdvisoryRecords
from moorage.storage.metadata.sql.caches import SqlCacheRecords
from moorage.storage.metadata.sql.engine import (
    SqliteOnTheLoop,
    create_sql_engine,
    read_transaction,
    write_transaction,
)
from moorage.storage.metadata.sql.gallery import SqlGalleryRecords
from moorage.storage.metadata.sql.identities import SqlIdentityRecords
from moorage.storage.metadata.sql.integrity import SqlIntegrityRecords
from moorage.storage.metadata.sql.jobs import SqlJobRecords
from moorage.storage.metadata.sql.lifecycle import SqlLifecycleRecords
from moorage.storage.metadata.sql.public import SqlPublicRecords
from moorage.storage.metadata.sql.replication import SqlBackfillRecords, SqlReplicationRecords
from moorage.storage.metadata.sql.rows import after_key, chunks, repository_of, stored_digest
from moorage.storage.metadata.sql.scans import SqlScanRecords
from moorage.storage.metadata.sql.secrets import SqlSecretRecords
from moorage.storage.metadata.sql.tables import (
    UtcDateTime,
    account_settings,
    blob_links,
    blobs,
    job_schedules,
    manifest_references,
    manifests,
    metadata,
    registry_policies,
    registry_scanning_configurations,
    repositories,
    repository_policies,
    repository_tags,
    tags,
    upload_sessions,
)
from moorage.storage.metadata.sql.templates import SqlTemplateRecords

# The job runner's schedules are the server's configuration, not data: without them
# the periodic jobs (lifecycle, gc) would stop until a runner next restores them. The
# advisory database is imported reference data, shared by every account (sql/advisories.py).
_KEPT_BY_WIPE = frozenset({job_schedules}) | ADVISORY_TABLES

_InsertFactory = Callable[[Table], postgresql.Insert | sqlite.Insert]

# The statements of the pull and push paths, built once: building and cache-keying a
# statement costs several times what SQLite takes to run it.
_GET_REPOSITORY = select(repositories).where(
    repositories.c.registry_id == bindparam("registry_id"),
    repositories.c.region == bindparam("region"),
    repositories.c.name == bindparam("name"),
)
_GET_BLOB = select(blobs).where(blobs.c.digest == bindparam("digest"))
_GET_LINKED_BLOB = (
    select(blobs)
    .join(blob_links, blob_links.c.digest == blobs.c.digest)
    .where(
        blob_links.c.repository_id == bindparam("repository_id"),
        blobs.c.digest == bindparam("digest"),
    )
)
_GET_MANIFEST = select(manifests).where(
    manifests.c.repository_id == bindparam("repository_id"),
    manifests.c.digest == bindparam("digest"),
)
_RESOLVE_TAG = (
    select(manifests)
    .join(
        tags,
        and_(
            tags.c.repository_id == manifests.c.repository_id,
            tags.c.manifest_digest == manifests.c.digest,
        ),
    )
    .where(tags.c.repository_id == bindparam("repository_id"), tags.c.name == bindparam("tag"))
)
_GET_UPLOAD = select(upload_sessions).where(upload_sessions.c.id == bindparam("id"))
_UPDATE_UPLOAD = (
    update(upload_sessions)
    .where(upload_sessions.c.id == bindparam("upload_id"))
    .values(size=bindparam("new_size"), updated_at=bindparam("now"))
)

_CREATE_UPLOAD = upload_sessions.insert().values(
    id=bindparam("upload_id"),
    repository_id=bindparam("repository_id"),
    size=bindparam("staged_size"),
    started_at=bindparam("started"),
    updated_at=bindparam("updated"),
)
_DELETE_UPLOAD = delete(upload_sessions).where(upload_sessions.c.id == bindparam("upload_id"))

# Authorization reads this on every request: three scalar subqueries, one round trip. A
# NULL name matches no repository, so registry-level requests use the same statement.
_READ_POLICIES = select(
    select(repository_policies.c.policy_text)
    .join(repositories, repositories.c.id == repository_policies.c.repository_id)
    .where(
        repositories.c.registry_id == bindparam("registry_id"),
        repositories.c.region == bindparam("region"),
        repositories.c.name == bindparam("name"),
    )
    .scalar_subquery()
    .label("repository_policy"),
    select(registry_policies.c.policy_text)
    .where(
        registry_policies.c.registry_id == bindparam("registry_id"),
        registry_policies.c.region == bindparam("region"),
    )
    .scalar_subquery()
    .label("registry_policy"),
    select(account_settings.c.value)
    .where(
        account_settings.c.registry_id == bindparam("registry_id"),
        account_settings.c.region == bindparam("region"),
        account_settings.c.name == AccountSetting.REGISTRY_POLICY_SCOPE.value,
    )
    .scalar_subquery()
    .label("registry_policy_scope"),
)


# The other half of that read, in the same transaction: the repository's resource tags.
_READ_REPOSITORY_TAGS = (
    select(repository_tags.c.key, repository_tags.c.value)
    .join(repositories, repositories.c.id == repository_tags.c.repository_id)
    .where(
        repositories.c.registry_id == bindparam("registry_id"),
        repositories.c.region == bindparam("region"),
        repositories.c.name == bindparam("name"),
    )
)


def _per_dialect(build: Callable[[_InsertFactory], Executable]) -> dict[str, Executable]:
    """One prebuilt statement per dialect, for the upserts (their syntax differs)."""
    return {"sqlite": build(sqlite.insert), "postgresql": build(postgresql.insert)}


# An upsert, not DO NOTHING: updating the existing row refreshes its grace period and, on
# PostgreSQL, locks it until commit, which garbage collection waits for (docs/gc.md).
_PUT_BLOB = _per_dialect(
    lambda insert: (
        statement := insert(blobs).values(
            digest=bindparam("digest"),
            size=bindparam("blob_size"),
            created_at=bindparam("now"),
            last_used_at=bindparam("now"),
        )
    ).on_conflict_do_update(
        index_elements=["digest"],
        set_={"last_used_at": statement.excluded.last_used_at},
    )
)
# A use of the blob (a mount, an upload's link): locks its row like _PUT_BLOB does.
_TOUCH_BLOB = (
    update(blobs)
    .where(blobs.c.digest == bindparam("touched"))
    .values(last_used_at=bindparam("now"))
)
# Insert from the blobs row, so that an unknown digest inserts nothing instead of violating
# the foreign key (which would abort a PostgreSQL transaction).
_LINK_BLOB = _per_dialect(
    lambda insert: (
        insert(blob_links)
        .from_select(
            ["repository_id", "digest", "created_at"],
            select(
                bindparam("repository_id", type_=Integer),
                blobs.c.digest,
                bindparam("now", type_=UtcDateTime()),
            ).where(blobs.c.digest == bindparam("digest")),
        )
        .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
    )
)

# Everything a referrer descriptor needs: the payload (up to 4 MiB) stays in the database.
_MANIFEST_WITHOUT_PAYLOAD = [c for c in manifests.c if c.name != "payload"]


async def open_sql_metadata_store(url: str, *, region: str = DEFAULT_REGION) -> SqlMetadataStore:
    """Bring the database at ``url`` to the current schema and open a store on it, acting in
    ``region`` (the deployment's configured one; rows from before regions belong to it).

    Raises ValueError for an unsupported URL, DatabaseUnavailable when it cannot be reached
    (see ``engine.py``). Close the store when done.
    """
    await upgrade_database(url, region=region)
    return SqlMetadataStore(create_sql_engine(url), region=region)


class SqlMetadataStore:
    """The MetadataStore port on an engine from ``create_sql_engine``, which it owns.

    It acts in one region: what belongs to a registry (repositories, the registry policy,
    account settings, the registry scanning configuration, the lifecycle audit trail) is
    that region's (see tables.py). :meth:`in_region` gives a view of another region on the
    same engine; everything keyed otherwise (repository ids, blobs, identities, jobs) is
    the same through every view.
    """

    def __init__(self, engine: AsyncEngine, *, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self._owner = True
        self._engine = engine
        # Called after a commit that enqueued a job (shared with the regional views).
        self._job_listeners: list[Callable[[], None]] = []
        self._sqlite: SqliteOnTheLoop | None = None
        if engine.dialect.name == "sqlite":
            self._sqlite = SqliteOnTheLoop(engine.url.render_as_string(hide_password=False))
        # SQLite has one writer at a time. Queue this process's writers on a FIFO lock
        # rather than in SQLite's busy handler, which polls with growing sleeps and ties up
        # a pooled connection per waiter; BEGIN IMMEDIATE still orders them against other
        # processes. PostgreSQL locks rows, so writers there run concurrently.
        self._write_lock: AbstractAsyncContextManager[None] = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    def in_region(self, region: str) -> SqlMetadataStore:
        """This store acting in ``region``: same engine, same locks. Closing it is a no-op
        (the store it came from owns the engine)."""
        if region == self.region:
            return self
        view = copy.copy(self)
        view.region, view._owner = region, False
        return view

    def on_job_enqueued(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each commit that enqueued a job (a runner's ``wake``)."""
        self._job_listeners.append(listener)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MetadataTransaction]:
        """A read-write unit of work: commits on normal exit, rolls back on error.

        Do not open one while holding another in the same task: on SQLite the second waits
        for the first forever. Keep slow work (blob I/O) outside: on SQLite every other
        writer waits for this one.
        """
        async with self._write_lock:
            if self._sqlite is not None:
                writer = await self._sqlite.begin_write()
                tx = _SqlTransaction(_SyncStatements(writer), self.region)
                try:
                    yield tx
                except BaseException:
                    writer.rollback()
                    raise
                writer.commit()
            else:
                async with write_transaction(self._engine) as connection:
                    tx = _SqlTransaction(connection, self.region)
                    yield tx
        if tx.enqueued:
            for listener in self._job_listeners:
                listener()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[MetadataTransaction]:
        """A read-only unit of work; writes through it fail on PostgreSQL.

        On SQLite it runs on synchronous connections (see ``engine.py``).
        """
        if self._sqlite is not None:
            with self._sqlite.read() as sync_connection:
                yield _SqlTransaction(_SyncStatements(sync_connection), self.region)
            return
        async with read_transaction(self._engine) as connection:
            yield _SqlTransaction(connection, self.region)

    async def close(self) -> None:
        """Close every pooled connection. The store is unusable afterwards."""
        if not self._owner:
            return
        if self._sqlite is not None:
            self._sqlite.close()
        await self._engine.dispose()

    async def wipe(self) -> None:
        """Delete every row of every table but the job schedules and the advisory database,
        in one transaction (the emulator's reset)."""
        async with self.transaction() as tx:
            assert isinstance(tx, _SqlTransaction)
            for table in reversed(metadata.sorted_tables):
                if table not in _KEPT_BY_WIPE:
                    await tx._c.execute(delete(table))

    async def row_counts(self) -> dict[str, int]:
        """Rows per table. Not part of the port: tests use it to check they left no rows."""
        counts: dict[str, int] = {}
        async with read_transaction(self._engine) as connection:
            for table in metadata.sorted_tables:
                count = await connection.scalar(select(func.count()).select_from(table))
                counts[table.name] = int(count or 0)
        return counts


class _Statements(Protocol):
    """What a transaction needs of its connection: AsyncConnection, or _SyncStatements."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(
        self,
        statement: Executable,
        parameters: list[dict[str, Any]] | dict[str, Any] | None = None,
    ) -> CursorResult[Any]: ...

    async def scalar(self, statement: Executable) -> Any: ...

    async def scalars(self, statement: Executable) -> ScalarResult[Any]: ...


class _SyncStatements:
    """A synchronous connection behind the asynchronous interface; each call completes
    without suspending (used for SQLite reads)."""

    def __init__(self, connection: SyncConnection) -> None:
        self._connection = connection

    @property
    def dialect(self) -> Dialect:
        return self._connection.dialect

    async def execute(
        self,
        statement: Executable,
        parameters: list[dict[str, Any]] | dict[str, Any] | None = None,
    ) -> CursorResult[Any]:
        return self._connection.execute(statement, parameters)

    async def scalar(self, statement: Executable) -> Any:
        return self._connection.scalar(statement)

    async def scalars(self, statement: Executable) -> ScalarResult[Any]:
        return self._connection.scalars(statement)


class _SqlTransaction(
    SqlAdvisoryRecords,
    SqlBackfillRecords,
    SqlCacheRecords,
    SqlGalleryRecords,
    SqlIdentityRecords,
    SqlIntegrityRecords,
    SqlJobRecords,
    SqlLifecycleRecords,
    SqlPublicRecords,
    SqlReplicationRecords,
    SqlScanRecords,
    SqlSecretRecords,
    SqlTemplateRecords,
):
    """One port transaction on one connection that is already inside a database transaction,
    acting in ``region``."""

    def __init__(self, connection: _Statements, region: str) -> None:
        self._c = connection
        self.region = region
        self.enqueued = False  # a job was enqueued (SqlJobRecords sets it)
        self._insert: _InsertFactory = (
            postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        )

    # -- repositories -------------------------------------------------------------------

    async def create_repository(
        self,
        registry_id: str,
        name: str,
        now: datetime,
        *,
        image_tag_mutability: TagMutability = TagMutability.MUTABLE,
        mutability_exclusion_filters: Sequence[str] = (),
        scan_on_push: bool = False,
        encryption_type: str = "AES256",
        kms_key: str | None = None,
    ) -> Repository:
        statement = (
            self._insert(repositories)
            .values(
                registry_id=registry_id,
                region=self.region,
                name=name,
                created_at=now,
                image_tag_mutability=image_tag_mutability.value,
                mutability_exclusion_filters=list(mutability_exclusion_filters),
                scan_on_push=scan_on_push,
                encryption_type=encryption_type,
                kms_key=kms_key,
            )
            .on_conflict_do_nothing(index_elements=["registry_id", "region", "name"])
            .returning(*repositories.c)
        )
        row = (await self._c.execute(statement)).first()
        if row is None:
            raise RepositoryAlreadyExists(
                f"The repository with name '{name}' already exists in the registry with id "
                f"'{registry_id}'",
                detail={"name": name},
            )
        return repository_of(row)

    async def get_repository(self, registry_id: str, name: str) -> Repository | None:
        row = (
            await self._c.execute(
                _GET_REPOSITORY, {"registry_id": registry_id, "region": self.region, "name": name}
            )
        ).first()
        return None if row is None else repository_of(row)

    async def regions_in_use(self) -> list[str]:
        # The public registries' namespace is not a region (domain/public.py).
        query = (
            select(repositories.c.region)
            .where(repositories.c.region != PUBLIC_NAMESPACE)
            .distinct()
            .order_by(repositories.c.region)
        )
        return list(await self._c.scalars(query))

    async def list_repositories(
        self, registry_id: str, *, after: str | None = None, limit: int | None = None
    ) -> list[Repository]:
        query = (
            select(repositories)
            .where(repositories.c.registry_id == registry_id, repositories.c.region == self.region)
            .order_by(repositories.c.name)
            .limit(limit)
        )
        if after is not None:
            query = query.where(repositories.c.name > after)
        return [repository_of(row) for row in await self._c.execute(query)]

    async def delete_repository(self, repository_id: int, *, now: datetime | None = None) -> None:
        # As in delete_manifest: the grace period of its images' blobs starts now.
        await self._touch_referenced_blobs(
            manifest_references.c.repository_id == repository_id, now
        )
        # Foreign keys cascade to manifests, their references and tags, links and uploads,
        # resource tags and the repository policy.
        await self._c.execute(delete(repositories).where(repositories.c.id == repository_id))

    # -- repository settings, resource tags and policies ------------------------------------

    async def update_repository_settings(
        self,
        repository_id: int,
        *,
        image_tag_mutability: TagMutability | None = None,
        mutability_exclusion_filters: Sequence[str] | None = None,
        scan_on_push: bool | None = None,
    ) -> Repository | None:
        changes: dict[str, object] = {}
        if image_tag_mutability is not None:
            changes["image_tag_mutability"] = image_tag_mutability.value
        if mutability_exclusion_filters is not None:
            changes["mutability_exclusion_filters"] = list(mutability_exclusion_filters)
        if scan_on_push is not None:
            changes["scan_on_push"] = scan_on_push
        if not changes:
            query = select(repositories).where(repositories.c.id == repository_id)
            row = (await self._c.execute(query)).first()
        else:
            statement = (
                update(repositories)
                .where(repositories.c.id == repository_id)
                .values(changes)
                .returning(*repositories.c)
            )
            row = (await self._c.execute(statement)).first()
        return None if row is None else repository_of(row)

    async def get_repository_tag(self, repository_id: int, key: str) -> str | None:
        query = select(repository_tags.c.value).where(
            repository_tags.c.repository_id == repository_id, repository_tags.c.key == key
        )
        value: str | None = await self._c.scalar(query)
        return value

    async def list_repository_tags(self, repository_id: int) -> dict[str, str]:
        query = (
            select(repository_tags.c.key, repository_tags.c.value)
            .where(repository_tags.c.repository_id == repository_id)
            .order_by(repository_tags.c.key)
        )
        return {row.key: row.value for row in await self._c.execute(query)}

    async def put_repository_tags(self, repository_id: int, tags: Mapping[str, str]) -> int:
        # The row lock makes a concurrent writer wait for this transaction; its count (a new
        # snapshot per statement under READ COMMITTED) then includes these tags.
        lock = select(repositories.c.id).where(repositories.c.id == repository_id)
        await self._c.execute(lock.with_for_update())
        if tags:
            # Sorted, so that concurrent writers lock index entries in the same order.
            rows = [
                {"repository_id": repository_id, "key": key, "value": tags[key]}
                for key in sorted(tags)
            ]
            insert = self._insert(repository_tags).values(rows)
            statement = insert.on_conflict_do_update(
                index_elements=["repository_id", "key"], set_={"value": insert.excluded.value}
            )
            await self._c.execute(statement)
        count = select(func.count()).where(repository_tags.c.repository_id == repository_id)
        return int(await self._c.scalar(count) or 0)

    async def delete_repository_tags(self, repository_id: int, keys: Iterable[str]) -> int:
        removed = 0
        for chunk in chunks(set(keys)):
            statement = delete(repository_tags).where(
                repository_tags.c.repository_id == repository_id, repository_tags.c.key.in_(chunk)
            )
            removed += (await self._c.execute(statement)).rowcount
        return removed

    async def get_repository_policy(self, repository_id: int) -> str | None:
        query = select(repository_policies.c.policy_text).where(
            repository_policies.c.repository_id == repository_id
        )
        text: str | None = await self._c.scalar(query)
        return text

    async def put_repository_policy(self, repository_id: int, text: str, now: datetime) -> None:
        insert = self._insert(repository_policies).values(
            repository_id=repository_id, policy_text=text, updated_at=now
        )
        statement = insert.on_conflict_do_update(
            index_elements=["repository_id"],
            set_={"policy_text": insert.excluded.policy_text, "updated_at": now},
        )
        await self._c.execute(statement)

    async def delete_repository_policy(self, repository_id: int) -> str | None:
        statement = (
            delete(repository_policies)
            .where(repository_policies.c.repository_id == repository_id)
            .returning(repository_policies.c.policy_text)
        )
        text: str | None = (await self._c.execute(statement)).scalar()
        return text

    # -- registry policy and account settings ---------------------------------------------

    async def get_registry_policy(self, registry_id: str) -> str | None:
        query = select(registry_policies.c.policy_text).where(
            registry_policies.c.registry_id == registry_id,
            registry_policies.c.region == self.region,
        )
        text: str | None = await self._c.scalar(query)
        return text

    async def put_registry_policy(self, registry_id: str, text: str, now: datetime) -> None:
        insert = self._insert(registry_policies).values(
            registry_id=registry_id, region=self.region, policy_text=text, updated_at=now
        )
        statement = insert.on_conflict_do_update(
            index_elements=["registry_id", "region"],
            set_={"policy_text": insert.excluded.policy_text, "updated_at": now},
        )
        await self._c.execute(statement)

    async def delete_registry_policy(self, registry_id: str) -> str | None:
        statement = (
            delete(registry_policies)
            .where(
                registry_policies.c.registry_id == registry_id,
                registry_policies.c.region == self.region,
            )
            .returning(registry_policies.c.policy_text)
        )
        text: str | None = (await self._c.execute(statement)).scalar()
        return text

    async def get_account_setting(self, registry_id: str, name: str) -> str | None:
        query = select(account_settings.c.value).where(
            account_settings.c.registry_id == registry_id,
            account_settings.c.region == self.region,
            account_settings.c.name == name,
        )
        value: str | None = await self._c.scalar(query)
        return value

    async def put_account_setting(self, registry_id: str, name: str, value: str) -> None:
        insert = self._insert(account_settings).values(
            registry_id=registry_id, region=self.region, name=name, value=value
        )
        statement = insert.on_conflict_do_update(
            index_elements=["registry_id", "region", "name"],
            set_={"value": insert.excluded.value},
        )
        await self._c.execute(statement)

    async def list_account_settings(self, registry_id: str) -> dict[str, str]:
        query = (
            select(account_settings.c.name, account_settings.c.value)
            .where(
                account_settings.c.registry_id == registry_id,
                account_settings.c.region == self.region,
            )
            .order_by(account_settings.c.name)
        )
        return {row.name: row.value for row in await self._c.execute(query)}

    async def delete_account_setting(self, registry_id: str, name: str) -> bool:
        statement = delete(account_settings).where(
            account_settings.c.registry_id == registry_id,
            account_settings.c.region == self.region,
            account_settings.c.name == name,
        )
        return bool((await self._c.execute(statement)).rowcount)

    async def get_registry_scanning_configuration(
        self, registry_id: str
    ) -> RegistryScanningConfiguration | None:
        query = select(
            registry_scanning_configurations.c.scan_type, registry_scanning_configurations.c.rules
        ).where(
            registry_scanning_configurations.c.registry_id == registry_id,
            registry_scanning_configurations.c.region == self.region,
        )
        row = (await self._c.execute(query)).first()
        if row is None:
            return None
        return RegistryScanningConfiguration(
            ScanType(row.scan_type), rules_from_document(row.rules)
        )

    async def put_registry_scanning_configuration(
        self, registry_id: str, config: RegistryScanningConfiguration, now: datetime
    ) -> None:
        insert = self._insert(registry_scanning_configurations).values(
            registry_id=registry_id,
            region=self.region,
            scan_type=config.scan_type.value,
            rules=rules_to_document(config.rules),
            updated_at=now,
        )
        statement = insert.on_conflict_do_update(
            index_elements=["registry_id", "region"],
            set_={
                "scan_type": insert.excluded.scan_type,
                "rules": insert.excluded.rules,
                "updated_at": now,
            },
        )
        await self._c.execute(statement)

    async def read_policies_many(
        self, registry_id: str, repository_names: Sequence[str]
    ) -> dict[str, PolicyTexts]:
        registry = await self.read_policies(registry_id, None)
        policies: dict[str, str] = {}
        tags: dict[str, dict[str, str]] = {}
        for chunk in chunks(dict.fromkeys(repository_names)):
            in_registry = (
                repositories.c.registry_id == registry_id,
                repositories.c.region == self.region,
                repositories.c.name.in_(chunk),
            )
            for row in await self._c.execute(
                select(repositories.c.name, repository_policies.c.policy_text)
                .join(repositories, repositories.c.id == repository_policies.c.repository_id)
                .where(*in_registry)
            ):
                policies[row.name] = row.policy_text
            for row in await self._c.execute(
                select(repositories.c.name, repository_tags.c.key, repository_tags.c.value)
                .join(repositories, repositories.c.id == repository_tags.c.repository_id)
                .where(*in_registry)
            ):
                tags.setdefault(row.name, {})[row.key] = row.value
        return {
            name: PolicyTexts(
                repository_policy=policies.get(name),
                registry_policy=registry.registry_policy,
                registry_policy_scope=registry.registry_policy_scope,
                repository_tags=tags.get(name, {}),
            )
            for name in repository_names
        }

    async def read_policies(self, registry_id: str, repository_name: str | None) -> PolicyTexts:
        parameters = {"registry_id": registry_id, "region": self.region, "name": repository_name}
        row = (await self._c.execute(_READ_POLICIES, parameters)).one()
        tags: dict[str, str] = {}
        if repository_name is not None:
            tags = {
                tag.key: tag.value
                for tag in await self._c.execute(_READ_REPOSITORY_TAGS, parameters)
            }
        return PolicyTexts(
            repository_policy=row.repository_policy,
            registry_policy=row.registry_policy,
            registry_policy_scope=row.registry_policy_scope,
            repository_tags=tags,
        )

    # -- blobs --------------------------------------------------------------------------

    async def put_blob(self, digest: Digest, size: int, now: datetime) -> None:
        parameters = {"digest": str(digest), "blob_size": size, "now": now}
        await self._c.execute(_PUT_BLOB[self._c.dialect.name], parameters)

    async def get_blob(self, digest: Digest) -> BlobRecord | None:
        row = (await self._c.execute(_GET_BLOB, {"digest": str(digest)})).first()
        return None if row is None else _blob(row)

    async def unrecorded_blobs(self, digests: Iterable[Digest]) -> set[Digest]:
        wanted = {str(d): d for d in digests}
        for chunk in chunks(list(wanted)):
            query = select(blobs.c.digest).where(blobs.c.digest.in_(chunk))
            for recorded in await self._c.scalars(query):
                del wanted[recorded]
        return set(wanted.values())

    async def delete_blob(self, digest: Digest) -> None:
        # The foreign key cascades to every repository's link.
        await self._c.execute(delete(blobs).where(blobs.c.digest == str(digest)))

    async def link_blob(self, repository_id: int, digest: Digest, now: datetime) -> None:
        """Raises BlobUnknown when the blob is not recorded.

        Touches the blob first: that refreshes its grace period and locks its row, so that on
        PostgreSQL a garbage collection deleting it either finishes first (and the blob is
        unknown here) or waits for this transaction (and sees the use).
        """
        parameters = {"repository_id": repository_id, "digest": str(digest), "now": now}
        touch = {"touched": str(digest), "now": now}
        if not (await self._c.execute(_TOUCH_BLOB, touch)).rowcount:
            raise BlobUnknown(f"blob {digest} is not known", detail={"digest": str(digest)})
        await self._c.execute(_LINK_BLOB[self._c.dialect.name], parameters)

    async def get_linked_blob(self, repository_id: int, digest: Digest) -> BlobRecord | None:
        parameters = {"repository_id": repository_id, "digest": str(digest)}
        row = (await self._c.execute(_GET_LINKED_BLOB, parameters)).first()
        return None if row is None else _blob(row)

    async def unlink_blob(self, repository_id: int, digest: Digest) -> bool:
        statement = delete(blob_links).where(
            blob_links.c.repository_id == repository_id, blob_links.c.digest == str(digest)
        )
        return bool((await self._c.execute(statement)).rowcount)

    async def missing_blobs(self, repository_id: int, digests: Iterable[Digest]) -> set[Digest]:
        wanted = set(digests)
        return wanted - set(await self.linked_blob_sizes(repository_id, wanted))

    async def linked_blob_sizes(
        self, repository_id: int, digests: Iterable[Digest]
    ) -> dict[Digest, int]:
        """On PostgreSQL, also takes ``FOR KEY SHARE`` on the rows of the blobs found, in
        digest order: garbage collection's ``FOR UPDATE`` then waits for this transaction
        and sees the references it records (docs/gc.md). SQLite has one writer."""
        wanted = {str(d): d for d in digests}
        found: dict[Digest, int] = {}
        for chunk in chunks(sorted(wanted)):
            query = (
                select(blobs.c.digest, blobs.c.size)
                .join(blob_links, blob_links.c.digest == blobs.c.digest)
                .where(blob_links.c.repository_id == repository_id, blobs.c.digest.in_(chunk))
                .order_by(blobs.c.digest)
                .with_for_update(read=True, key_share=True, of=blobs)
            )
            for row in await self._c.execute(query):
                found[wanted[row.digest]] = int(row.size)
        return found

    # -- garbage collection (docs/gc.md) ------------------------------------------------

    async def _touch_referenced_blobs(
        self, references: ColumnElement[bool], now: datetime | None
    ) -> None:
        """Set ``last_used_at`` to ``now`` (default: the system time; never backwards) on the
        blobs that the ``references`` rows (of kind blob) name, so that a blob's grace period
        starts when a manifest stops referencing it rather than when it was uploaded."""
        named = select(manifest_references.c.child_digest).where(
            references, manifest_references.c.kind == ReferenceKind.BLOB.value
        )
        await self._touch_blobs(blobs.c.digest.in_(named), now)

    async def _touch_blobs(self, which: ColumnElement[bool], now: datetime | None) -> None:
        """Set ``last_used_at`` to ``now`` (as above) on the blobs ``which`` selects.

        Rows are locked in digest order first (``FOR NO KEY UPDATE``, which a manifest PUT's
        ``FOR KEY SHARE`` does not wait for), as collection's ``FOR UPDATE`` locks them:
        the two wait for each other without deadlocking, and collection re-checks
        ``last_used_at`` after the wait. A caller touching blobs in several statements must
        give them in ascending ranges of digest, for the same reason."""
        moment = now if now is not None else datetime.now(UTC)
        stale = which, blobs.c.last_used_at < moment
        if self._c.dialect.name == "postgresql":
            lock = (
                select(blobs.c.digest)
                .where(*stale)
                .order_by(blobs.c.digest)
                .with_for_update(key_share=True)
            )
            await self._c.execute(lock)
        await self._c.execute(update(blobs).where(*stale).values(last_used_at=moment))

    async def gc_blob_candidates(
        self, cutoff: datetime, *, after: Digest | None = None, limit: int = 1000
    ) -> list[BlobRecord]:
        """Blobs last used before ``cutoff`` that no manifest references, by digest."""
        query = (
            select(blobs)
            .where(blobs.c.last_used_at < cutoff, ~_referenced())
            .order_by(blobs.c.digest)
            .limit(limit)
        )
        if after is not None:
            query = query.where(blobs.c.digest > str(after))
        return [_blob(row) for row in await self._c.execute(query)]

    async def gc_spared_blobs(self, cutoff: datetime) -> SparedBlobs:
        # type_coerce: the column's own type reads the minimum back (as UTC, on SQLite too).
        earliest = type_coerce(func.min(blobs.c.last_used_at), blobs.c.last_used_at.type)
        query = select(
            func.count().label("spared"),
            func.coalesce(func.sum(blobs.c.size), 0).label("size"),
            earliest.label("earliest"),
        ).where(blobs.c.last_used_at >= cutoff, ~_referenced())
        row = (await self._c.execute(query)).one()
        return SparedBlobs(count=int(row.spared), size=int(row.size), earliest_use=row.earliest)

    async def delete_unreferenced_blobs(
        self, digests: Iterable[Digest], cutoff: datetime
    ) -> list[BlobRecord]:
        """Two statements, in this order on purpose. The first locks the rows still last
        used before ``cutoff`` (``FOR UPDATE`` waits for any manifest PUT holding ``FOR KEY
        SHARE`` on them and re-checks ``last_used_at`` on rows a concurrent use updated).
        The second starts after those locks were granted, so under READ COMMITTED its
        snapshot sees every reference committed by a transaction that held one; any later
        manifest PUT waits for this transaction and then finds the blob gone."""
        deleted: list[BlobRecord] = []
        for chunk in chunks(sorted({str(d) for d in digests})):
            lock = (
                select(blobs.c.digest)
                .where(blobs.c.digest.in_(chunk), blobs.c.last_used_at < cutoff)
                .order_by(blobs.c.digest)
                .with_for_update()
            )
            locked = list(await self._c.scalars(lock))
            if not locked:
                continue
            statement = (
                delete(blobs).where(blobs.c.digest.in_(locked), ~_referenced()).returning(*blobs.c)
            )
            deleted.extend(_blob(row) for row in await self._c.execute(statement))
        return sorted(deleted, key=lambda blob: str(blob.digest))

    async def gc_referrer_candidates(
        self, cutoff: datetime, *, after: tuple[int, Digest] | None = None, limit: int = 1000
    ) -> list[ManifestRecord]:
        """Orphaned referrers pushed before ``cutoff``, by repository id then digest.

        On SQLite the plan walks the manifests by primary key from the cursor once per page,
        and looks up each one's subject by primary key and its tags by the ``(repository_id,
        manifest_digest)`` index, never by a scan (``tests/contract/test_metadata_sqlite.py``
        checks it with EXPLAIN QUERY PLAN)."""
        query = (
            select(*_MANIFEST_WITHOUT_PAYLOAD)
            .where(_orphaned_referrer(cutoff))
            .order_by(manifests.c.repository_id, manifests.c.digest)
            .limit(limit)
        )
        if after is not None:
            key = (manifests.c.repository_id, manifests.c.digest)
            query = query.where(after_key(key, (after[0], str(after[1]))))
        return [_manifest(row) for row in await self._c.execute(query)]

    async def delete_orphaned_referrers(
        self,
        repository_id: int,
        digests: Iterable[Digest],
        cutoff: datetime,
        *,
        now: datetime | None = None,
    ) -> list[Digest]:
        """Lock the manifests first (as ``ImageService.delete_unchanged`` does), then re-read
        them: ``lock_manifests``' ``FOR UPDATE`` conflicts with the ``FOR KEY SHARE`` that a
        new tag's foreign key takes, so a tag is either committed before the re-read (which,
        a new statement under READ COMMITTED, sees it) or waits and then finds the manifest
        gone. A subject committed before the re-read is seen the same way. SQLite has one
        writer."""
        locked = await self.lock_manifests(repository_id, digests)
        still: set[str] = set()
        for chunk in chunks(sorted(str(d) for d in locked)):
            query = select(manifests.c.digest).where(
                manifests.c.repository_id == repository_id,
                manifests.c.digest.in_(chunk),
                _orphaned_referrer(cutoff),
            )
            still.update(await self._c.scalars(query))
        await self.delete_manifests(repository_id, [stored_digest(d) for d in still], now=now)
        return [stored_digest(text) for text in sorted(still)]

    async def lock_blob_files(self, digests: Iterable[Digest]) -> set[Digest]:
        """PostgreSQL: a transaction-scoped advisory lock per digest, taken in a fixed order
        (no deadlock between two callers). SQLite: a write transaction excludes every other
        writer already. Returns the digests no blob row records."""
        wanted = {str(d): d for d in digests}
        if self._c.dialect.name == "postgresql":
            for key in sorted({_file_lock_key(d) for d in wanted.values()}):
                await self._c.execute(select(func.pg_advisory_xact_lock(_FILE_LOCK_SPACE, key)))
        recorded: set[str] = set()
        for chunk in chunks(wanted):
            recorded.update(
                await self._c.scalars(select(blobs.c.digest).where(blobs.c.digest.in_(chunk)))
            )
        return {digest for text, digest in wanted.items() if text not in recorded}

    # -- manifests ----------------------------------------------------------------------

    async def put_manifest(
        self, manifest: ManifestRecord, references: Sequence[ManifestReference]
    ) -> bool:
        statement = (
            self._insert(manifests)
            .values(_manifest_row(manifest))
            .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
        )
        if not (await self._c.execute(statement)).rowcount:
            return False
        # A manifest may list the same blob twice (identical layers); the key is a set (the
        # first declared size kept). Sorted, so that concurrent pushes lock index entries in
        # the same order.
        distinct: dict[tuple[str, str], int | None] = {}
        for reference in references:
            distinct.setdefault(
                (str(reference.digest), reference.kind.value), reference.declared_size
            )
        if distinct:
            rows = [
                {
                    "repository_id": manifest.repository_id,
                    "manifest_digest": str(manifest.digest),
                    "kind": kind,
                    "child_digest": child,
                    "declared_size": distinct[child, kind],
                }
                for child, kind in sorted(distinct)
            ]
            await self._c.execute(manifest_references.insert(), rows)
        return True

    async def get_manifest(self, repository_id: int, digest: Digest) -> ManifestRecord | None:
        parameters = {"repository_id": repository_id, "digest": str(digest)}
        row = (await self._c.execute(_GET_MANIFEST, parameters)).first()
        return None if row is None else _manifest(row)

    async def count_manifests(self, repository_id: int) -> int:
        query = select(func.count()).where(manifests.c.repository_id == repository_id)
        return int(await self._c.scalar(query) or 0)

    async def blob_users(self, repository_id: int, digest: Digest) -> list[Digest]:
        return await self._referencing(repository_id, digest, ReferenceKind.BLOB)

    async def repositories_with_blob(self, registry_id: str, digest: Digest) -> list[str]:
        query = (
            select(repositories.c.name)
            .join(blob_links, blob_links.c.repository_id == repositories.c.id)
            .where(
                repositories.c.registry_id == registry_id,
                repositories.c.region == self.region,
                blob_links.c.digest == str(digest),
            )
            .order_by(repositories.c.name)
        )
        return list(await self._c.scalars(query))

    async def missing_manifests(self, repository_id: int, digests: Iterable[Digest]) -> set[Digest]:
        return await self._missing(
            manifests.c.repository_id, manifests.c.digest, repository_id, digests
        )

    async def manifest_parents(self, repository_id: int, digest: Digest) -> list[Digest]:
        return await self._referencing(repository_id, digest, ReferenceKind.MANIFEST)

    async def manifest_parents_many(
        self, repository_id: int, digests: Iterable[Digest]
    ) -> dict[Digest, list[Digest]]:
        found: dict[str, list[str]] = {}
        for chunk in chunks({str(d) for d in digests}):
            # No ORDER BY (sorted below), so that SQLite looks each child up in the index by
            # child rather than walking the repository's references (see _referencing).
            query = select(
                manifest_references.c.child_digest, manifest_references.c.manifest_digest
            ).where(
                manifest_references.c.child_digest.in_(chunk),
                manifest_references.c.repository_id == repository_id,
                manifest_references.c.kind == ReferenceKind.MANIFEST.value,
            )
            for row in await self._c.execute(query):
                found.setdefault(row.child_digest, []).append(row.manifest_digest)
        return {
            stored_digest(child): [stored_digest(parent) for parent in sorted(parents)]
            for child, parents in found.items()
        }

    async def _referencing(
        self, repository_id: int, digest: Digest, kind: ReferenceKind
    ) -> list[Digest]:
        """Digests of the repository's manifests that reference ``digest`` as ``kind``."""
        query = select(manifest_references.c.manifest_digest).where(
            manifest_references.c.child_digest == str(digest),
            manifest_references.c.repository_id == repository_id,
            manifest_references.c.kind == kind.value,
        )
        # Sorted here, as in tags_of: with an ORDER BY SQLite walks the primary key.
        return [stored_digest(text) for text in sorted(await self._c.scalars(query))]

    async def delete_manifest(
        self, repository_id: int, digest: Digest, *, now: datetime | None = None
    ) -> bool:
        return bool(await self.delete_manifests(repository_id, [digest], now=now))

    async def delete_manifests(
        self, repository_id: int, digests: Iterable[Digest], *, now: datetime | None = None
    ) -> int:
        batches = list(chunks(sorted({str(d) for d in digests})))
        if not batches:
            return 0
        # Their blobs' grace period starts now, before the cascade removes the references
        # that say which blobs they are.
        in_repository = manifest_references.c.repository_id == repository_id
        if len(batches) == 1:
            await self._touch_referenced_blobs(
                in_repository & manifest_references.c.manifest_digest.in_(batches[0]), now
            )
        else:
            # One touch per chunk of manifests would lock blobs out of digest order: name
            # the blobs first, then touch them in ascending batches.
            named: set[str] = set()
            for chunk in batches:
                query = select(manifest_references.c.child_digest).where(
                    in_repository,
                    manifest_references.c.manifest_digest.in_(chunk),
                    manifest_references.c.kind == ReferenceKind.BLOB.value,
                )
                named.update(await self._c.scalars(query))
            moment = now if now is not None else datetime.now(UTC)
            for chunk in chunks(sorted(named)):
                await self._touch_blobs(blobs.c.digest.in_(chunk), moment)
        # Foreign keys cascade to their tags and to the references they make.
        deleted = 0
        for chunk in batches:
            statement = delete(manifests).where(
                manifests.c.repository_id == repository_id, manifests.c.digest.in_(chunk)
            )
            deleted += (await self._c.execute(statement)).rowcount
        return deleted

    async def lock_manifest(self, repository_id: int, digest: Digest) -> bool:
        return bool(await self.lock_manifests(repository_id, [digest]))

    async def lock_manifests(self, repository_id: int, digests: Iterable[Digest]) -> set[Digest]:
        # FOR UPDATE conflicts with the FOR KEY SHARE that a new tag's foreign key check takes
        # on a manifest row: a tag pushed meanwhile is either committed before the lock is
        # granted (and seen by the caller's next statement) or waits for this transaction.
        # Rows are locked in digest order (ORDER BY sits below the lock, and the chunks
        # ascend), so two callers locking overlapping sets wait instead of deadlocking.
        wanted = {str(d): d for d in digests}
        locked: set[Digest] = set()
        for chunk in chunks(sorted(wanted)):
            query = (
                select(manifests.c.digest)
                .where(manifests.c.repository_id == repository_id, manifests.c.digest.in_(chunk))
                .order_by(manifests.c.digest)
                .with_for_update()
            )
            locked.update(wanted[text] for text in await self._c.scalars(query))
        return locked

    async def list_referrers(
        self, repository_id: int, subject: Digest, artifact_type: str | None = None
    ) -> list[ManifestRecord]:
        """Referrers in push order, with an empty ``payload``."""
        query = (
            select(*_MANIFEST_WITHOUT_PAYLOAD)
            .where(manifests.c.repository_id == repository_id)
            .where(manifests.c.subject == str(subject))
            .order_by(manifests.c.pushed_at, manifests.c.digest)
        )
        if artifact_type is not None:
            query = query.where(manifests.c.artifact_type == artifact_type)
        return [_manifest(row) for row in await self._c.execute(query)]

    async def touch_manifest_pull(self, repository_id: int, digest: Digest, now: datetime) -> None:
        # Pull records are written in the background and may land out of order.
        statement = (
            update(manifests)
            .where(manifests.c.repository_id == repository_id)
            .where(manifests.c.digest == str(digest))
            .where(or_(manifests.c.last_pulled_at.is_(None), manifests.c.last_pulled_at < now))
            .values(last_pulled_at=now)
        )
        await self._c.execute(statement)

    async def add_pull_counts(self, counts: Mapping[tuple[int, Digest], int]) -> None:
        # One UPDATE per manifest, in key order (two nodes flushing never deadlock).
        ordered = sorted(counts.items(), key=lambda item: (item[0][0], str(item[0][1])))
        for (repository_id, digest), count in ordered:
            await self._c.execute(
                update(manifests)
                .where(manifests.c.repository_id == repository_id)
                .where(manifests.c.digest == str(digest))
                .values(pull_count=manifests.c.pull_count + count)
            )

    # -- image listings -----------------------------------------------------------------

    async def list_manifests(
        self,
        repository_id: int,
        *,
        tagged: bool | None = None,
        after: Digest | None = None,
        limit: int | None = None,
    ) -> list[ManifestRecord]:
        query = (
            select(*_MANIFEST_WITHOUT_PAYLOAD)
            .where(manifests.c.repository_id == repository_id)
            .order_by(manifests.c.digest)
            .limit(limit)
        )
        if tagged is not None:
            has_tag = (
                select(tags.c.name)
                .where(
                    tags.c.repository_id == manifests.c.repository_id,
                    tags.c.manifest_digest == manifests.c.digest,
                )
                .exists()
            )
            query = query.where(has_tag if tagged else ~has_tag)
        if after is not None:
            query = query.where(manifests.c.digest > str(after))
        return [_manifest(row) for row in await self._c.execute(query)]

    async def list_image_ids(
        self,
        repository_id: int,
        *,
        tagged: bool | None = None,
        after: tuple[Digest, str] | None = None,
        limit: int | None = None,
    ) -> list[tuple[Digest, str | None]]:
        # Tags are never empty, so "" puts the untagged entry first on both databases (NULLs
        # sort first on SQLite and last on PostgreSQL).
        tag_key = func.coalesce(tags.c.name, "")
        joined = manifests.outerjoin(
            tags,
            and_(
                tags.c.repository_id == manifests.c.repository_id,
                tags.c.manifest_digest == manifests.c.digest,
            ),
        )
        query = (
            select(manifests.c.digest, tags.c.name.label("tag"))
            .select_from(joined)
            .where(manifests.c.repository_id == repository_id)
            .order_by(manifests.c.digest, tag_key)
            .limit(limit)
        )
        if tagged is not None:
            query = query.where(tags.c.name.is_not(None) if tagged else tags.c.name.is_(None))
        if after is not None:
            digest, tag = str(after[0]), after[1]
            query = query.where(
                or_(manifests.c.digest > digest, and_(manifests.c.digest == digest, tag_key > tag))
            )
        return [(stored_digest(row.digest), row.tag) for row in await self._c.execute(query)]

    async def tags_by_manifest(
        self, repository_id: int, digests: Iterable[Digest]
    ) -> dict[Digest, list[str]]:
        found: dict[Digest, list[str]] = {}
        for chunk in chunks({str(d) for d in digests}):
            # An image's tags in the order they were pointed at it, oldest first: the order
            # a client put them in, which is what ECR's users (and moto's tests) expect to
            # read back; AWS documents none. Equal times fall back to the name.
            query = (
                select(tags.c.manifest_digest, tags.c.name)
                .where(tags.c.repository_id == repository_id, tags.c.manifest_digest.in_(chunk))
                .order_by(tags.c.manifest_digest, tags.c.updated_at, tags.c.name)
            )
            for row in await self._c.execute(query):
                found.setdefault(stored_digest(row.manifest_digest), []).append(row.name)
        return found

    async def blob_totals(self, repository_id: int, digests: Iterable[Digest]) -> dict[Digest, int]:
        # manifest_references holds each (manifest, kind, child) once: a layer listed twice
        # counts once, as it is stored once. A blob that was never stored (a fixture image
        # of emulator mode) counts as the manifest declares it.
        totals: dict[Digest, int] = {}
        size = func.coalesce(blobs.c.size, manifest_references.c.declared_size, 0)
        for chunk in chunks({str(d) for d in digests}):
            query = (
                select(manifest_references.c.manifest_digest, func.sum(size).label("total"))
                .outerjoin(blobs, blobs.c.digest == manifest_references.c.child_digest)
                .where(
                    manifest_references.c.repository_id == repository_id,
                    manifest_references.c.kind == ReferenceKind.BLOB.value,
                    manifest_references.c.manifest_digest.in_(chunk),
                )
                .group_by(manifest_references.c.manifest_digest)
            )
            for row in await self._c.execute(query):
                totals[stored_digest(row.manifest_digest)] = int(row.total)
        return totals

    async def manifest_children(
        self, repository_id: int, digests: Iterable[Digest]
    ) -> dict[Digest, list[Digest]]:
        children: dict[Digest, list[Digest]] = {}
        for chunk in chunks({str(d) for d in digests}):
            query = (
                select(manifest_references.c.manifest_digest, manifest_references.c.child_digest)
                .where(
                    manifest_references.c.repository_id == repository_id,
                    manifest_references.c.kind == ReferenceKind.MANIFEST.value,
                    manifest_references.c.manifest_digest.in_(chunk),
                )
                .order_by(manifest_references.c.manifest_digest, manifest_references.c.child_digest)
            )
            for row in await self._c.execute(query):
                children.setdefault(stored_digest(row.manifest_digest), []).append(
                    stored_digest(row.child_digest)
                )
        return children

    # -- tags ---------------------------------------------------------------------------

    async def resolve_tag(self, repository_id: int, tag: str) -> ManifestRecord | None:
        parameters = {"repository_id": repository_id, "tag": tag}
        row = (await self._c.execute(_RESOLVE_TAG, parameters)).first()
        return None if row is None else _manifest(row)

    async def get_tag(self, repository_id: int, tag: str) -> TagRecord | None:
        query = select(tags).where(tags.c.repository_id == repository_id, tags.c.name == tag)
        row = (await self._c.execute(query)).first()
        return None if row is None else _tag(row)

    async def put_tag(
        self, repository_id: int, tag: str, digest: Digest, now: datetime, *, move: bool = True
    ) -> Digest | None:
        """Raises ManifestUnknown when ``digest`` is not a manifest in the repository."""
        # FOR UPDATE (PostgreSQL): a concurrent move of the same tag waits for this one,
        # so that each sees the target the other left.
        current = select(tags.c.manifest_digest).where(
            tags.c.repository_id == repository_id, tags.c.name == tag
        )
        old: str | None = await self._c.scalar(current.with_for_update())
        if old == str(digest):
            return digest
        if old is not None and not move:
            return stored_digest(old)
        # From the manifests row: an unknown digest inserts nothing (see link_blob).
        source = select(
            literal(repository_id), literal(tag), manifests.c.digest, literal(now, UtcDateTime())
        ).where(manifests.c.repository_id == repository_id, manifests.c.digest == str(digest))
        insert = self._insert(tags).from_select(
            ["repository_id", "name", "manifest_digest", "updated_at"], source
        )
        if move:
            statement = insert.on_conflict_do_update(
                index_elements=["repository_id", "name"],
                set_={
                    "manifest_digest": insert.excluded.manifest_digest,
                    "updated_at": insert.excluded.updated_at,
                },
            )
        else:
            # FOR UPDATE above locks no row when the tag is new, so a concurrent transaction
            # may create it meanwhile: DO NOTHING waits for that one and leaves its tag be.
            statement = insert.on_conflict_do_nothing(index_elements=["repository_id", "name"])
        if not (await self._c.execute(statement)).rowcount:
            if not move and (winner := await self._c.scalar(current)) is not None:
                return stored_digest(winner)
            raise ManifestUnknown(
                f"manifest {digest} is not in the repository", detail={"digest": str(digest)}
            )
        return None if old is None else stored_digest(old)

    async def delete_tag(self, repository_id: int, tag: str) -> bool:
        statement = delete(tags).where(tags.c.repository_id == repository_id, tags.c.name == tag)
        return bool((await self._c.execute(statement)).rowcount)

    async def list_tags(
        self, repository_id: int, *, after: str | None = None, limit: int | None = None
    ) -> list[str]:
        query = (
            select(tags.c.name)
            .where(tags.c.repository_id == repository_id)
            .order_by(tags.c.name)
            .limit(limit)
        )
        if after is not None:
            query = query.where(tags.c.name > after)
        return list(await self._c.scalars(query))

    async def tags_of(self, repository_id: int, digest: Digest) -> list[str]:
        query = (
            select(tags.c.name, tags.c.updated_at)
            .where(tags.c.repository_id == repository_id)
            .where(tags.c.manifest_digest == str(digest))
        )
        # In the order the tags were pointed at the image (see tags_by_manifest). Sorted
        # here: an ORDER BY lets SQLite, without statistics, walk the primary key (every tag
        # of the repository) instead of the manifest_digest index.
        rows = sorted(await self._c.execute(query), key=lambda row: (row.updated_at, row.name))
        return [row.name for row in rows]

    # -- upload sessions ----------------------------------------------------------------

    async def create_upload(self, session: UploadSession) -> None:
        parameters = {
            "upload_id": session.id,
            "repository_id": session.repository_id,
            "staged_size": session.size,
            "started": session.started_at,
            "updated": session.updated_at,
        }
        await self._c.execute(_CREATE_UPLOAD, parameters)

    async def get_upload(self, upload_id: str) -> UploadSession | None:
        row = (await self._c.execute(_GET_UPLOAD, {"id": upload_id})).first()
        return None if row is None else _upload(row)

    async def update_upload(self, upload_id: str, size: int, now: datetime) -> None:
        """Raises UploadUnknown when there is no such session."""
        parameters = {"upload_id": upload_id, "new_size": size, "now": now}
        if not (await self._c.execute(_UPDATE_UPLOAD, parameters)).rowcount:
            raise UploadUnknown(f"upload {upload_id} is not known", detail={"id": upload_id})

    async def delete_upload(self, upload_id: str) -> None:
        await self._c.execute(_DELETE_UPLOAD, {"upload_id": upload_id})

    async def list_uploads_updated_before(
        self, cutoff: datetime, *, after: UploadSession | None = None, limit: int | None = None
    ) -> list[UploadSession]:
        query = (
            select(upload_sessions)
            .where(upload_sessions.c.updated_at < cutoff)
            .order_by(upload_sessions.c.updated_at, upload_sessions.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(
                or_(
                    upload_sessions.c.updated_at > after.updated_at,
                    and_(
                        upload_sessions.c.updated_at == after.updated_at,
                        upload_sessions.c.id > after.id,
                    ),
                )
            )
        return [_upload(row) for row in await self._c.execute(query)]

    async def delete_stale_uploads(self, cutoff: datetime, limit: int) -> list[UploadSession]:
        """The outer ``updated_at < cutoff`` is not redundant: on PostgreSQL a session that
        a concurrent chunk updated is re-checked against it (and kept) after the wait."""
        stale = (
            select(upload_sessions.c.id)
            .where(upload_sessions.c.updated_at < cutoff)
            .order_by(upload_sessions.c.updated_at, upload_sessions.c.id)
            .limit(limit)
        )
        statement = (
            delete(upload_sessions)
            .where(upload_sessions.c.id.in_(stale), upload_sessions.c.updated_at < cutoff)
            .returning(*upload_sessions.c)
        )
        removed = [_upload(row) for row in await self._c.execute(statement)]
        return sorted(removed, key=lambda session: (session.updated_at, session.id))

    # -- helpers ------------------------------------------------------------------------

    async def _missing(
        self,
        scope: Column[Any],
        key: Column[Any],
        repository_id: int,
        digests: Iterable[Digest],
    ) -> set[Digest]:
        """Those of ``digests`` with no row where ``scope == repository_id``, ``key == digest``."""
        wanted = {str(d): d for d in digests}
        found: set[str] = set()
        for chunk in chunks(wanted):
            query = select(key).where(scope == repository_id, key.in_(chunk))
            found.update(await self._c.scalars(query))
        return {digest for text, digest in wanted.items() if text not in found}


def _referenced() -> Exists:
    """Some manifest, in any repository, references the blob row being looked at."""
    return exists().where(manifest_references.c.child_digest == blobs.c.digest)


def _orphaned_referrer(cutoff: datetime) -> ColumnElement[bool]:
    """The manifest row looked at has a subject that is no manifest of its repository,
    carries no tag, and was pushed before ``cutoff`` (docs/gc.md)."""
    subject = manifests.alias("subject")
    subject_present = exists().where(
        subject.c.repository_id == manifests.c.repository_id,
        subject.c.digest == manifests.c.subject,
    )
    tagged = exists().where(
        tags.c.repository_id == manifests.c.repository_id,
        tags.c.manifest_digest == manifests.c.digest,
    )
    return and_(
        manifests.c.subject.is_not(None),
        manifests.c.pushed_at < cutoff,
        ~subject_present,
        ~tagged,
    )


# Names "blob files of moorage" among PostgreSQL advisory locks (two-int form: this space,
# then 32 bits of the digest; two digests sharing them only wait for each other).
_FILE_LOCK_SPACE = 0x6D6F6F72


def _file_lock_key(digest: Digest) -> int:
    value = int(digest.hex[:8], 16)
    return value - (1 << 32) if value >= 1 << 31 else value


def _blob(row: Row[Any]) -> BlobRecord:
    return BlobRecord(digest=stored_digest(row.digest), size=row.size, created_at=row.created_at)


def _manifest_row(manifest: ManifestRecord) -> dict[str, object]:
    return {
        "repository_id": manifest.repository_id,
        "digest": str(manifest.digest),
        "media_type": manifest.media_type,
        "size": manifest.size,
        "payload": manifest.payload,
        "artifact_type": manifest.artifact_type,
        "config_media_type": manifest.config_media_type,
        "subject": None if manifest.subject is None else str(manifest.subject),
        "annotations": dict(manifest.annotations),
        "pushed_at": manifest.pushed_at,
        "last_pulled_at": manifest.last_pulled_at,
    }


def _manifest(row: Row[Any]) -> ManifestRecord:
    """A record from a manifests row; ``payload`` is empty when the row has none."""
    mapping = row._mapping
    return ManifestRecord(
        repository_id=row.repository_id,
        digest=stored_digest(row.digest),
        media_type=row.media_type,
        size=row.size,
        payload=bytes(mapping["payload"]) if "payload" in mapping else b"",
        pushed_at=row.pushed_at,
        artifact_type=row.artifact_type,
        config_media_type=row.config_media_type,
        subject=None if row.subject is None else stored_digest(row.subject),
        annotations=dict(row.annotations),
        last_pulled_at=row.last_pulled_at,
    )


def _tag(row: Row[Any]) -> TagRecord:
    return TagRecord(
        repository_id=row.repository_id,
        name=row.name,
        digest=stored_digest(row.manifest_digest),
        updated_at=row.updated_at,
    )


def _upload(row: Row[Any]) -> UploadSession:
    return UploadSession(
        id=row.id,
        repository_id=row.repository_id,
        size=row.size,
        started_at=row.started_at,
        updated_at=row.updated_at,
    )


if TYPE_CHECKING:
    from moorage.ports.metadata import MetadataStore

    _: type[MetadataStore] = SqlMetadataStore
