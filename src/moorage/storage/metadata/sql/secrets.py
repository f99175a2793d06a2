"""The SecretRecords port on SQL: a mixin of the store's transaction (``store.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, delete, func, select, update

from moorage.ports.secrets import SecretRecord, SecretVersion
from moorage.storage.metadata.sql.tables import secret_tags, secret_versions, secrets

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _InsertFactory, _Statements

_s = secrets.c


def _secret_of(row: Row[Any]) -> SecretRecord:
    return SecretRecord(
        id=row.id,
        registry_id=row.registry_id,
        region=row.region,
        name=row.name,
        arn=row.arn,
        description=row.description,
        kms_key_id=row.kms_key_id,
        created_at=row.created_at,
        changed_at=row.changed_at,
        accessed_at=row.accessed_at,
        deleted_at=row.deleted_at,
    )


class SqlSecretRecords:
    """Secret records on the transaction's connection ``_c``, in region ``region``;
    ``_insert`` is the dialect's INSERT. All are set by ``_SqlTransaction.__init__``."""

    _c: _Statements
    _insert: _InsertFactory
    region: str

    async def create_secret(
        self,
        registry_id: str,
        name: str,
        arn: str,
        now: datetime,
        *,
        description: str | None,
        kms_key_id: str | None,
    ) -> SecretRecord | None:
        statement = (
            self._insert(secrets)
            .values(
                registry_id=registry_id,
                region=self.region,
                name=name,
                arn=arn,
                description=description,
                kms_key_id=kms_key_id,
                created_at=now,
                changed_at=now,
            )
            .on_conflict_do_nothing(index_elements=["registry_id", "region", "name"])
        )
        if not (await self._c.execute(statement)).rowcount:
            return None
        return await self.get_secret(registry_id, name=name)

    async def get_secret(
        self, registry_id: str, *, name: str | None = None, arn: str | None = None
    ) -> SecretRecord | None:
        query = select(secrets).where(_s.registry_id == registry_id, _s.region == self.region)
        if name is not None:
            query = query.where(_s.name == name)
        if arn is not None:
            query = query.where(_s.arn == arn)
        row = (await self._c.execute(query)).first()
        return None if row is None else _secret_of(row)

    async def list_secrets(self, registry_id: str, limit: int) -> list[SecretRecord]:
        query = (
            select(secrets)
            .where(_s.registry_id == registry_id, _s.region == self.region)
            .order_by(_s.name)
            .limit(limit)
        )
        return [_secret_of(row) for row in await self._c.execute(query)]

    async def count_secrets(self, registry_id: str) -> int:
        query = select(func.count()).where(_s.registry_id == registry_id, _s.region == self.region)
        return int((await self._c.execute(query)).scalar() or 0)

    async def update_secret(
        self,
        secret_id: int,
        *,
        description: str | None = None,
        kms_key_id: str | None = None,
        changed_at: datetime | None = None,
        accessed_at: datetime | None = None,
        deleted_at: datetime | None = None,
        clear_deletion: bool = False,
    ) -> None:
        values: dict[str, Any] = {
            key: value
            for key, value in (
                ("description", description),
                ("kms_key_id", kms_key_id),
                ("changed_at", changed_at),
                ("accessed_at", accessed_at),
                ("deleted_at", deleted_at),
            )
            if value is not None
        }
        if clear_deletion:
            values["deleted_at"] = None
        if values:
            await self._c.execute(update(secrets).where(_s.id == secret_id).values(**values))

    async def delete_secret(self, secret_id: int) -> None:
        await self._c.execute(delete(secrets).where(_s.id == secret_id))

    async def secret_versions(self, secret_id: int) -> list[SecretVersion]:
        v = secret_versions.c
        query = (
            select(secret_versions)
            .where(v.secret_id == secret_id)
            .order_by(v.created_at, v.version_id)
        )
        return [
            SecretVersion(
                row.version_id,
                bool(row.binary),
                bytes(row.ciphertext),
                tuple(row.stages),
                row.created_at,
            )
            for row in await self._c.execute(query)
        ]

    async def put_secret_version(
        self,
        secret_id: int,
        version_id: str,
        *,
        binary: bool,
        ciphertext: bytes,
        stages: Sequence[str],
        now: datetime,
    ) -> None:
        await self._c.execute(
            self._insert(secret_versions).values(
                secret_id=secret_id,
                version_id=version_id,
                binary=binary,
                ciphertext=ciphertext,
                stages=list(stages),
                created_at=now,
            )
        )

    async def set_version_stages(self, secret_id: int, stages: Mapping[str, Sequence[str]]) -> None:
        v = secret_versions.c
        for version_id, labels in stages.items():
            await self._c.execute(
                update(secret_versions)
                .where(v.secret_id == secret_id, v.version_id == version_id)
                .values(stages=list(labels))
            )

    async def delete_secret_versions(self, secret_id: int, version_ids: Iterable[str]) -> None:
        v = secret_versions.c
        ids = list(version_ids)
        if ids:
            await self._c.execute(
                delete(secret_versions).where(v.secret_id == secret_id, v.version_id.in_(ids))
            )

    async def secret_tags(self, secret_id: int) -> dict[str, str]:
        t = secret_tags.c
        query = select(t.key, t.value).where(t.secret_id == secret_id).order_by(t.key)
        return {row.key: row.value for row in await self._c.execute(query)}

    async def put_secret_tags(self, secret_id: int, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            insert = self._insert(secret_tags).values(secret_id=secret_id, key=key, value=value)
            await self._c.execute(
                insert.on_conflict_do_update(
                    index_elements=["secret_id", "key"], set_={"value": value}
                )
            )

    async def delete_secret_tags(self, secret_id: int, keys: Iterable[str]) -> None:
        t = secret_tags.c
        wanted = list(keys)
        if wanted:
            await self._c.execute(
                delete(secret_tags).where(t.secret_id == secret_id, t.key.in_(wanted))
            )
