"""ECR Public's registries and catalog data: the public registry of each account (made, with
its default alias, by the account's first public repository), the registry's catalog data
(display name, description, logo) and each public repository's (description, badges, about
and usage text, logo). What they mean is ``domain/public.py``'s.

The public repositories themselves, their images, tags, uploads and policies are the
ordinary services acting in the ``PUBLIC_NAMESPACE`` (``app.PublicSite`` wires them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple
from urllib.parse import urlsplit

from moorage.domain.errors import PublicRegistryNotFound
from moorage.domain.models import Repository
from moorage.domain.names import RepositoryName
from moorage.domain.public import CatalogData, PublicRegistry, check_logo, new_default_alias
from moorage.iam.login_tokens import LoginTokens
from moorage.ports.access import Authorizer
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore
from moorage.services.blobs import BlobService
from moorage.services.images import ImageService
from moorage.services.repositories import RepositoryService, require
from moorage.services.uploads import UploadService

# Tries at a random default alias before giving up: with 36^7 * 26 of them, a clash is
# already rare; several in a row mean something else is wrong.
_ALIAS_ATTEMPTS = 8


@dataclass(frozen=True)
class PublicSite:
    """ECR Public on this deployment: the ordinary repository, image, upload and blob
    services acting in the public namespace (domain/public.py), with nothing hooked to a
    push (no scans, no replication: ECR Public has neither), the registries and catalog
    data, and an authorizer whose ARNs are ECR Public's."""

    metadata: MetadataStore
    repositories: RepositoryService
    images: ImageService
    uploads: UploadService
    blobs: BlobService
    catalog: PublicRegistryService
    authorizer: Authorizer
    login_tokens: LoginTokens
    # settings.public_host and public_port: where public images are pulled from.
    public_host: str | None
    public_port: int | None = None

    def address(self, request_host: str) -> str:
        """The host[:port] of public image addresses: ``public_host`` when configured, else
        the host a client reached this server at, on the public address's port."""
        if self.public_host:
            return self.public_host
        if self.public_port:
            hostname = urlsplit(f"//{request_host}").hostname or request_host
            if ":" in hostname:  # an IPv6 literal
                hostname = f"[{hostname}]"
            return f"{hostname}:{self.public_port}"
        return request_host


class PublicRepository(NamedTuple):
    repository: Repository
    catalog: CatalogData


class PublicRegistryService:
    def __init__(
        self, metadata: MetadataStore, repositories: RepositoryService, clock: Clock
    ) -> None:
        """``metadata`` and ``repositories`` act in the public namespace."""
        self._metadata = metadata
        self._repositories = repositories
        self._clock = clock

    # -- registries ---------------------------------------------------------------------

    async def get(self, registry_id: str) -> PublicRegistry | None:
        async with self._metadata.read() as tx:
            return await tx.get_public_registry(registry_id)

    async def ensure(self, registry_id: str) -> PublicRegistry:
        """The account's public registry, made with a fresh default alias if it has none."""
        for _ in range(_ALIAS_ATTEMPTS):
            async with self._metadata.transaction() as tx:
                found = await tx.get_public_registry(registry_id)
                if found is not None:
                    return found
                made = PublicRegistry(registry_id, new_default_alias(), self._clock())
                if await tx.insert_public_registry(made):
                    return made
            # Another account holds that alias, or a concurrent call made this registry.
        raise RuntimeError(f"no free default alias for {registry_id} in {_ALIAS_ATTEMPTS} tries")

    async def registry_of(self, id_or_alias: str) -> str:
        """The registry id an ECR Public ``registryId`` names: an account id as it is, an
        alias through its registry. Raises PublicRegistryNotFound for an unknown alias."""
        if id_or_alias.isdigit():
            return id_or_alias
        async with self._metadata.read() as tx:
            found = await tx.public_registry_by_alias(id_or_alias)
        if found is None:
            raise PublicRegistryNotFound(
                f"The registry with id or alias '{id_or_alias}' does not exist"
            )
        return found.registry_id

    async def by_alias(self, alias: str) -> PublicRegistry | None:
        async with self._metadata.read() as tx:
            return await tx.public_registry_by_alias(alias)

    async def list_registries(self, *, after: str | None, limit: int) -> list[PublicRegistry]:
        async with self._metadata.read() as tx:
            return await tx.list_public_registries(after=after, limit=limit)

    async def put_registry_catalog(
        self,
        registry_id: str,
        *,
        display_name: str | None = None,
        description: str | None = None,
        logo: bytes | None = None,
    ) -> PublicRegistry:
        """PutRegistryCatalogData: the members given replace theirs (an empty logo removes
        it). Raises InvalidParameter for a logo that is not a PNG of the limits."""
        checked_logo = None if not logo else check_logo(logo)
        registry = await self.ensure(registry_id)
        changes: dict[str, object] = {}
        if display_name is not None:
            changes["display_name"] = display_name
        if description is not None:
            changes["description"] = description
        if logo is not None:
            changes["logo"] = checked_logo
        updated = replace(registry, **changes)  # type: ignore[arg-type]
        async with self._metadata.transaction() as tx:
            await tx.update_public_registry(updated)
        return updated

    # -- repositories -------------------------------------------------------------------

    async def create_repository(
        self,
        registry_id: str,
        name: str,
        *,
        catalog: Mapping[str, object] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> PublicRepository:
        """ECR Public's CreateRepository: the registry (made if this is its first public
        repository), the repository with its tags, and its catalog data. The catalog data
        is checked before anything is written. Raises what RepositoryService.create and
        CatalogData.replaced raise."""
        data = CatalogData().replaced(catalog or {})
        RepositoryName(name)  # InvalidName before the registry is made
        await self.ensure(registry_id)
        repository = await self._repositories.create(registry_id, name, tags=tags)
        if data != CatalogData():
            async with self._metadata.transaction() as tx:
                await tx.put_catalog_data(repository.id, data, self._clock())
        return PublicRepository(repository, data)

    async def catalog_data(self, registry_id: str, name: str) -> CatalogData:
        """GetRepositoryCatalogData: empty for a repository never given any. Raises
        InvalidName, RepositoryNotFound."""
        valid = RepositoryName(name)
        async with self._metadata.read() as tx:
            repository = await require(tx, registry_id, valid)
            return await tx.get_catalog_data(repository.id) or CatalogData()

    async def catalogs(self, repositories: list[Repository]) -> dict[int, CatalogData]:
        """The catalog data of each repository, by id (empty for those without)."""
        async with self._metadata.read() as tx:
            return {
                repository.id: await tx.get_catalog_data(repository.id) or CatalogData()
                for repository in repositories
            }

    async def put_catalog_data(
        self, registry_id: str, name: str, given: Mapping[str, object]
    ) -> CatalogData:
        """PutRepositoryCatalogData: the members given replace theirs. Raises InvalidName,
        InvalidParameter, RepositoryNotFound."""
        valid = RepositoryName(name)
        async with self._metadata.transaction() as tx:
            repository = await require(tx, registry_id, valid)
            current = await tx.get_catalog_data(repository.id) or CatalogData()
            data = current.replaced(given)
            await tx.put_catalog_data(repository.id, data, self._clock())
            return data
