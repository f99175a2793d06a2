"""The registry scanning configuration records of the MetadataStore port
(``get/put_registry_scanning_configuration``), run against every adapter.

An adapter subclasses :class:`ScanningConfigurationSuite` with a ``bare_store`` fixture (an
open, empty store) and :meth:`ScanningConfigurationSuite.leftovers`, as for
``metadata_suite``. Every test leaves the store empty (the emulator's wipe does that here).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from moorage.domain.scanning_configuration import (
    RegistryScanningConfiguration,
    RepositoryFilter,
    ScanFrequency,
    ScanningRule,
    ScanType,
)
from moorage.ports.metadata import MetadataStore

REGISTRY = "123456789012"
OTHER_REGISTRY = "210987654321"
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)

ENHANCED = RegistryScanningConfiguration(
    ScanType.ENHANCED,
    (
        ScanningRule(
            ScanFrequency.CONTINUOUS_SCAN,
            (RepositoryFilter("prod*"), RepositoryFilter("team/*/api")),
        ),
        ScanningRule(ScanFrequency.SCAN_ON_PUSH, ()),
    ),
)


class ScanningConfigurationSuite:
    """The contract. Subclasses provide the ``bare_store`` fixture and :meth:`leftovers`."""

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, bare_store: MetadataStore) -> AsyncIterator[MetadataStore]:
        yield bare_store
        # The configuration is account data: the emulator's reset must take it too.
        await bare_store.wipe()
        remaining = {kind: n for kind, n in (await self.leftovers(bare_store)).items() if n}
        assert not remaining, f"the wipe left records in the store: {remaining}"

    async def test_none_until_put(self, store: MetadataStore) -> None:
        async with store.read() as tx:
            assert await tx.get_registry_scanning_configuration(REGISTRY) is None

    async def test_put_get_replace_per_registry(self, store: MetadataStore) -> None:
        basic = RegistryScanningConfiguration(
            ScanType.BASIC, (ScanningRule(ScanFrequency.SCAN_ON_PUSH, (RepositoryFilter("*"),)),)
        )
        async with store.transaction() as tx:
            await tx.put_registry_scanning_configuration(REGISTRY, basic, T0)
            await tx.put_registry_scanning_configuration(OTHER_REGISTRY, ENHANCED, T0)
        async with store.read() as tx:
            assert await tx.get_registry_scanning_configuration(REGISTRY) == basic
            assert await tx.get_registry_scanning_configuration(OTHER_REGISTRY) == ENHANCED
        async with store.transaction() as tx:
            await tx.put_registry_scanning_configuration(REGISTRY, ENHANCED, T0 + timedelta(1))
        async with store.read() as tx:
            assert await tx.get_registry_scanning_configuration(REGISTRY) == ENHANCED

    async def test_rules_keep_their_order_and_empty_lists(self, store: MetadataStore) -> None:
        empty = RegistryScanningConfiguration(ScanType.ENHANCED, ())
        async with store.transaction() as tx:
            await tx.put_registry_scanning_configuration(REGISTRY, empty, T0)
            assert await tx.get_registry_scanning_configuration(REGISTRY) == empty
            await tx.put_registry_scanning_configuration(REGISTRY, ENHANCED, T0)
            got = await tx.get_registry_scanning_configuration(REGISTRY)
        assert got is not None
        assert [r.scan_frequency for r in got.rules] == [
            ScanFrequency.CONTINUOUS_SCAN,
            ScanFrequency.SCAN_ON_PUSH,
        ]
        assert got.rules[0].repository_filters == ENHANCED.rules[0].repository_filters

    async def test_a_rolled_back_put_leaves_nothing(self, store: MetadataStore) -> None:
        async def put_then_fail() -> None:
            async with store.transaction() as tx:
                await tx.put_registry_scanning_configuration(REGISTRY, ENHANCED, T0)
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError):
            await put_then_fail()
        async with store.read() as tx:
            assert await tx.get_registry_scanning_configuration(REGISTRY) is None
