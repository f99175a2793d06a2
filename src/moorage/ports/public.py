"""The ECR Public records port: accounts' public registries and public repositories' catalog
data. Part of every metadata transaction (``MetadataTransaction`` includes
:class:`PublicRecords`); what they mean is ``domain/public.py``'s. The repositories, images
and policies of a public registry are the ordinary records, in the store's namespace
``PUBLIC_NAMESPACE``."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from moorage.domain.public import CatalogData, PublicRegistry


class PublicRecords(Protocol):
    async def get_public_registry(self, registry_id: str) -> PublicRegistry | None: ...

    async def public_registry_by_alias(self, alias: str) -> PublicRegistry | None: ...

    async def insert_public_registry(self, registry: PublicRegistry) -> bool:
        """Add the account's public registry; False when the account, or another account
        with the same alias, has one already (nothing is written then)."""
        ...

    async def update_public_registry(self, registry: PublicRegistry) -> None:
        """Replace the display name, description, logo and verified flag."""
        ...

    async def list_public_registries(
        self, *, after: str | None = None, limit: int | None = None
    ) -> list[PublicRegistry]:
        """Every public registry, by registry id, after ``after``."""
        ...

    async def get_catalog_data(self, repository_id: int) -> CatalogData | None: ...

    async def put_catalog_data(
        self, repository_id: int, data: CatalogData, now: datetime
    ) -> None: ...
