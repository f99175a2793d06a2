"""The ECR Public records of the MetadataStore port (``PublicRecords``: public registries and
catalog data), run against every adapter. Public repositories are ordinary repositories in
the ``PUBLIC_NAMESPACE``, which ``regions_in_use`` leaves out.

An adapter subclasses :class:`PublicRecordsSuite` with a ``bare_store`` fixture (an open,
empty store) and :meth:`PublicRecordsSuite.leftovers`, as for ``metadata_suite``. Every test
leaves the store empty (the emulator's wipe does that here).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

import pytest

from moorage.domain.names import RepositoryName
from moorage.domain.public import PUBLIC_NAMESPACE, CatalogData, PublicRegistry
from moorage.ports.metadata import MetadataStore

REGISTRY = "123456789012"
OTHER_REGISTRY = "210987654321"
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


class PublicRecordsSuite:
    """The contract. Subclasses provide the ``bare_store`` fixture and :meth:`leftovers`."""

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, bare_store: MetadataStore) -> AsyncIterator[MetadataStore]:
        yield bare_store
        await bare_store.wipe()
        remaining = {kind: n for kind, n in (await self.leftovers(bare_store)).items() if n}
        assert not remaining, f"the wipe left records in the store: {remaining}"

    async def test_a_registry_per_account_and_an_alias_per_registry(
        self, store: MetadataStore
    ) -> None:
        first = PublicRegistry(REGISTRY, "team", T0)
        async with store.transaction() as tx:
            assert await tx.insert_public_registry(first)
            # The account has one already; and another account cannot take its alias.
            assert not await tx.insert_public_registry(PublicRegistry(REGISTRY, "other", T0))
            assert not await tx.insert_public_registry(PublicRegistry(OTHER_REGISTRY, "team", T0))
            assert await tx.insert_public_registry(PublicRegistry(OTHER_REGISTRY, "them", T0))
        async with store.read() as tx:
            assert await tx.get_public_registry(REGISTRY) == first
            assert await tx.public_registry_by_alias("team") == first
            assert await tx.public_registry_by_alias("nobody") is None
            listed = await tx.list_public_registries()
            assert [r.registry_id for r in listed] == [REGISTRY, OTHER_REGISTRY]
            assert await tx.list_public_registries(after=REGISTRY, limit=1) == [listed[1]]

    async def test_registry_catalog_data_is_replaced(self, store: MetadataStore) -> None:
        async with store.transaction() as tx:
            await tx.insert_public_registry(PublicRegistry(REGISTRY, "team", T0))
        changed = PublicRegistry(
            REGISTRY,
            "team",
            T0,
            display_name="Team",
            description="d",
            logo=b"\x89PNG",
            verified=True,
        )
        async with store.transaction() as tx:
            await tx.update_public_registry(changed)
        async with store.read() as tx:
            assert await tx.get_public_registry(REGISTRY) == changed

    async def test_catalog_data_of_a_public_repository(self, store: MetadataStore) -> None:
        public = store.in_region(PUBLIC_NAMESPACE)
        async with public.transaction() as tx:
            repository = await tx.create_repository(REGISTRY, RepositoryName("web/app"), T0)
            assert await tx.get_catalog_data(repository.id) is None
            data = CatalogData(
                description="An app",
                architectures=("x86-64", "ARM 64"),
                operating_systems=("Linux",),
                about_text="# About",
                usage_text="pull it",
                logo=b"\x89PNG...",
                categories=("web",),
            )
            await tx.put_catalog_data(repository.id, data, T0)
            assert await tx.get_catalog_data(repository.id) == data
            await tx.put_catalog_data(repository.id, CatalogData(description="new"), T0)
        async with public.read() as tx:
            assert await tx.get_catalog_data(repository.id) == CatalogData(description="new")
            # The public namespace is not a region.
            assert PUBLIC_NAMESPACE not in await tx.regions_in_use()
        async with store.read() as tx:
            # Nor does a region see its repositories.
            assert await tx.get_repository(REGISTRY, "web/app") is None
        async with public.transaction() as tx:
            await tx.delete_repository(repository.id)
            # The catalog data goes with its repository.
            assert await tx.get_catalog_data(repository.id) is None
