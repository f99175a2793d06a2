"""The CacheRecords port on SQL: a mixin of the store's transaction (``store.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, delete, select, update

from moorage.domain.digests import Digest
from moorage.domain.pull_through_cache import CacheRule
from moorage.ports.caches import UpstreamImage, UpstreamTag
from moorage.storage.metadata.sql.rows import stored_digest
from moorage.storage.metadata.sql.tables import (
    manifests,
    pull_through_cache_rules,
    upstream_images,
    upstream_tags,
)

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _InsertFactory, _Statements

_rules = pull_through_cache_rules.c


def _rule_of(row: Row[Any]) -> CacheRule:
    return CacheRule(
        prefix=row.prefix,
        upstream_url=row.upstream_registry_url,
        upstream_repository_prefix=row.upstream_repository_prefix,
        upstream_registry=row.upstream_registry,
        credential_arn=row.credential_arn,
        custom_role_arn=row.custom_role_arn,
        upstream_role_arn=row.upstream_role_arn,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlCacheRecords:
    """Cache records on the transaction's connection ``_c``, in region ``region``;
    ``_insert`` is the dialect's INSERT. All are set by ``_SqlTransaction.__init__``."""

    _c: _Statements
    _insert: _InsertFactory
    region: str

    def _in_registry(self, registry_id: str) -> tuple[Any, ...]:
        return (_rules.registry_id == registry_id, _rules.region == self.region)

    async def list_cache_rules(self, registry_id: str) -> list[CacheRule]:
        query = (
            select(pull_through_cache_rules)
            .where(*self._in_registry(registry_id))
            .order_by(_rules.prefix)
        )
        return [_rule_of(row) for row in await self._c.execute(query)]

    async def insert_cache_rule(self, registry_id: str, rule: CacheRule, now: datetime) -> bool:
        statement = (
            self._insert(pull_through_cache_rules)
            .values(
                registry_id=registry_id,
                region=self.region,
                prefix=rule.prefix,
                upstream_registry_url=rule.upstream_url,
                upstream_registry=rule.upstream_registry,
                upstream_repository_prefix=rule.upstream_repository_prefix,
                credential_arn=rule.credential_arn,
                custom_role_arn=rule.custom_role_arn,
                upstream_role_arn=rule.upstream_role_arn,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["registry_id", "region", "prefix"])
        )
        return bool((await self._c.execute(statement)).rowcount)

    async def update_cache_rule(
        self,
        registry_id: str,
        prefix: str,
        *,
        credential_arn: str | None,
        custom_role_arn: str | None,
        upstream_role_arn: str | None,
        now: datetime,
    ) -> CacheRule | None:
        where = (*self._in_registry(registry_id), _rules.prefix == prefix)
        await self._c.execute(
            update(pull_through_cache_rules)
            .where(*where)
            .values(
                credential_arn=credential_arn,
                custom_role_arn=custom_role_arn,
                upstream_role_arn=upstream_role_arn,
                updated_at=now,
            )
        )
        row = (await self._c.execute(select(pull_through_cache_rules).where(*where))).first()
        return None if row is None else _rule_of(row)

    async def delete_cache_rule(self, registry_id: str, prefix: str) -> CacheRule | None:
        where = (*self._in_registry(registry_id), _rules.prefix == prefix)
        row = (await self._c.execute(select(pull_through_cache_rules).where(*where))).first()
        if row is None:
            return None
        await self._c.execute(delete(pull_through_cache_rules).where(*where))
        return _rule_of(row)

    async def get_upstream_tag(self, repository_id: int, tag: str) -> UpstreamTag | None:
        t = upstream_tags.c
        row = (
            await self._c.execute(
                select(t.digest, t.checked_at).where(t.repository_id == repository_id, t.tag == tag)
            )
        ).first()
        return None if row is None else UpstreamTag(stored_digest(row.digest), row.checked_at)

    async def put_upstream_tag(
        self, repository_id: int, tag: str, digest: Digest, checked_at: datetime
    ) -> None:
        insert = self._insert(upstream_tags).values(
            repository_id=repository_id, tag=tag, digest=str(digest), checked_at=checked_at
        )
        await self._c.execute(
            insert.on_conflict_do_update(
                index_elements=["repository_id", "tag"],
                set_={"digest": str(digest), "checked_at": checked_at},
            )
        )

    async def record_upstream_image(
        self,
        repository_id: int,
        digest: Digest,
        upstream_url: str,
        upstream_repository: str,
        now: datetime,
    ) -> None:
        exists = await self._c.execute(
            select(manifests.c.digest).where(
                manifests.c.repository_id == repository_id, manifests.c.digest == str(digest)
            )
        )
        if exists.first() is None:
            return
        await self._c.execute(
            self._insert(upstream_images)
            .values(
                repository_id=repository_id,
                digest=str(digest),
                upstream_registry_url=upstream_url,
                upstream_repository=upstream_repository,
                imported_at=now,
            )
            .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
        )

    async def get_upstream_image(self, repository_id: int, digest: Digest) -> UpstreamImage | None:
        t = upstream_images.c
        row = (
            await self._c.execute(
                select(t.upstream_registry_url, t.upstream_repository, t.imported_at).where(
                    t.repository_id == repository_id, t.digest == str(digest)
                )
            )
        ).first()
        if row is None:
            return None
        return UpstreamImage(row.upstream_registry_url, row.upstream_repository, row.imported_at)
