"""The pull-through cache records port: a registry's cache rules, and what the cache knows
of the upstream (each cached tag's upstream digest and when it was last checked; where each
cached image came from).

Part of every metadata transaction (``MetadataTransaction`` includes :class:`CacheRecords`).
Rules are those of the transaction's region. The SQL schema is in
``storage/metadata/sql/tables.py``; the cache itself in ``services/pull_through_cache.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from moorage.domain.digests import Digest
from moorage.domain.pull_through_cache import CacheRule


@dataclass(frozen=True, slots=True)
class UpstreamTag:
    digest: Digest
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class UpstreamImage:
    upstream_url: str
    upstream_repository: str
    imported_at: datetime


class CacheRecords(Protocol):
    async def list_cache_rules(self, registry_id: str) -> list[CacheRule]:
        """The registry's rules in this region, by prefix."""
        ...

    async def insert_cache_rule(self, registry_id: str, rule: CacheRule, now: datetime) -> bool:
        """Add a rule (created and updated ``now``); False when its prefix has one already."""
        ...

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
        """Set a rule's credentials and roles; the rule as stored, None when there is none."""
        ...

    async def delete_cache_rule(self, registry_id: str, prefix: str) -> CacheRule | None:
        """Remove a rule; the rule it was, None when there was none."""
        ...

    async def get_upstream_tag(self, repository_id: int, tag: str) -> UpstreamTag | None: ...

    async def put_upstream_tag(
        self, repository_id: int, tag: str, digest: Digest, checked_at: datetime
    ) -> None: ...

    async def record_upstream_image(
        self,
        repository_id: int,
        digest: Digest,
        upstream_url: str,
        upstream_repository: str,
        now: datetime,
    ) -> None:
        """Remember where a cached image came from (kept from its first import; the image
        must exist)."""
        ...

    async def get_upstream_image(
        self, repository_id: int, digest: Digest
    ) -> UpstreamImage | None: ...
