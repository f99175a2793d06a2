"""The AdvisoryRecords contract (``moorage.ports.advisories``), run against every adapter.

Advisory records live in the metadata transaction: an adapter runs this suite as it runs
``lifecycle_suite``, subclassing :class:`AdvisoryRecordsSuite` with a ``bare_store`` fixture
(an open, empty store) and :meth:`AdvisoryRecordsSuite.leftovers`. Every test leaves the store
empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from moorage.ports.advisories import PACKAGE_NAME_LENGTH
from moorage.ports.metadata import MetadataStore
from moorage.scanning.advisories.keys import PackageKey, package_key
from moorage.scanning.advisories.model import Advisory, Affected, Range

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SOURCES = ("pypa.tar.gz", "go.tar.gz", "other.tar.gz")


def affected(ecosystem: str, package: str, fixed: str = "2.0") -> Affected:
    return Affected(
        ecosystem=ecosystem,
        package=package,
        ranges=(Range("ECOSYSTEM", (("introduced", "0"), ("fixed", fixed))),),
        versions=(),
        fixed=(fixed,),
    )


def advisory(
    advisory_id: str, *entries: Affected, modified: datetime | None = T0, summary: str = ""
) -> Advisory:
    return Advisory(
        id=advisory_id,
        aliases=(f"CVE-{advisory_id}",),
        summary=summary or f"about {advisory_id}",
        details="",
        severity="HIGH",
        cvss_v3_score=7.5,
        cvss_v3_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
        references=("https://example.test/",),
        published=T0,
        modified=modified,
        affected=entries,
        source="/somewhere/file.json",
    )


class AdvisoryRecordsSuite:
    """The contract. Subclasses provide the ``bare_store`` fixture and :meth:`leftovers`."""

    async def leftovers(self, store: MetadataStore) -> Mapping[str, int]:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, bare_store: MetadataStore) -> AsyncIterator[MetadataStore]:
        yield bare_store
        async with bare_store.transaction() as tx:
            for source in await tx.advisory_sources():
                await tx.forget_advisory_source(source.name)
        remaining = {kind: n for kind, n in (await self.leftovers(bare_store)).items() if n}
        assert not remaining, f"the test left records in the store: {remaining}"

    async def put(
        self,
        store: MetadataStore,
        source: str,
        *advisories: Advisory,
        at: datetime = T0,
        finish: bool = True,
    ) -> int:
        async with store.transaction() as tx:
            import_id = await tx.begin_advisory_import(source, f"/data/{source}", at)
        async with store.transaction() as tx:
            await tx.put_advisories(import_id, advisories, at)
        if finish:
            async with store.transaction() as tx:
                await tx.finish_advisory_import(import_id, at + MINUTE, len(advisories), 0)
        return import_id

    # -- put and look up ---------------------------------------------------------------

    async def test_an_empty_database_answers_nothing(self, store: MetadataStore) -> None:
        async with store.read() as tx:
            assert await tx.advisories_for([package_key("PyPI", "django")]) == {}
            assert await tx.advisories_for([]) == {}
            assert await tx.advisory_sources() == []
            assert await tx.advisories_updated_at() is None
            assert await tx.keys_changed_since(T0) == set()

    async def test_advisories_are_found_by_package_key_with_pypi_normalisation(
        self, store: MetadataStore
    ) -> None:
        django = advisory("PYSEC-1", affected("PyPI", "Django"), affected("PyPI", "django_cms"))
        flask = advisory("PYSEC-2", affected("PyPI", "Flask"))
        maddy = advisory("GO-1", affected("Go", "github.com/foxcpp/maddy"))
        await self.put(store, "pypa.tar.gz", django, flask)
        await self.put(store, "go.tar.gz", maddy)
        wanted = [
            package_key("PyPI", "DJANGO"),
            package_key("PyPI", "Django.CMS"),
            package_key("Go", "github.com/foxcpp/maddy"),
            package_key("Go", "github.com/FOXCPP/maddy"),  # Go names are case-sensitive
            package_key("npm", "django"),
        ]
        async with store.read() as tx:
            found = await tx.advisories_for(wanted)
        stored_django = replace(django, source="pypa.tar.gz")
        assert found == {
            PackageKey("PyPI", "django"): [stored_django],
            PackageKey("PyPI", "django-cms"): [stored_django],
            PackageKey("Go", "github.com/foxcpp/maddy"): [replace(maddy, source="go.tar.gz")],
        }

    async def test_a_package_lists_advisories_of_every_source_by_source_then_id(
        self, store: MetadataStore
    ) -> None:
        key = package_key("PyPI", "requests")
        await self.put(store, "pypa.tar.gz", advisory("B", affected("PyPI", "requests")))
        await self.put(
            store,
            "other.tar.gz",
            advisory("Z", affected("PyPI", "requests")),
            advisory("A", affected("PyPI", "Requests")),
        )
        async with store.read() as tx:
            found = await tx.advisories_for([key, key])
        assert [(a.source, a.id) for a in found[key]] == [
            ("other.tar.gz", "A"),
            ("other.tar.gz", "Z"),
            ("pypa.tar.gz", "B"),
        ]

    async def test_records_without_a_package_are_stored_but_not_indexed(
        self, store: MetadataStore
    ) -> None:
        git_only = advisory("PSF-1", affected("", ""))
        await self.put(store, "psf.tar.gz", git_only)
        async with store.read() as tx:
            (source,) = await tx.advisory_sources()
            assert source.records == 1
            assert await tx.keys_changed_since(T0) == set()

    async def test_a_put_replaces_the_record_and_its_index_rows(self, store: MetadataStore) -> None:
        old = advisory("PYSEC-1", affected("PyPI", "django"), affected("PyPI", "flask"))
        new = advisory("PYSEC-1", affected("PyPI", "django", fixed="3.0"), summary="revised")
        await self.put(store, "pypa.tar.gz", old)
        await self.put(store, "pypa.tar.gz", new, at=T0 + 10 * MINUTE)
        keys = [package_key("PyPI", "django"), package_key("PyPI", "flask")]
        async with store.read() as tx:
            found = await tx.advisories_for(keys)
            (source,) = await tx.advisory_sources()
        assert found == {keys[0]: [replace(new, source="pypa.tar.gz")]}
        assert source.records == 1

    async def test_the_last_of_one_id_in_a_batch_wins(self, store: MetadataStore) -> None:
        first = advisory("X-1", affected("npm", "left-pad"), summary="first")
        second = advisory("X-1", affected("npm", "left-pad"), summary="second")
        await self.put(store, "other.tar.gz", first, second)
        async with store.read() as tx:
            found = await tx.advisories_for([package_key("npm", "left-pad")])
        assert [a.summary for a in found[package_key("npm", "left-pad")]] == ["second"]

    async def test_refuses_what_does_not_fit_and_unknown_imports(
        self, store: MetadataStore
    ) -> None:
        too_long = advisory("X-2", affected("npm", "a" * (PACKAGE_NAME_LENGTH + 1)))
        import_id = await self.put(store, "other.tar.gz")
        with pytest.raises(ValueError, match="package name"):
            async with store.transaction() as tx:
                await tx.put_advisories(import_id, [advisory("X-1"), too_long], T0)
        with pytest.raises(ValueError, match="not known"):
            async with store.transaction() as tx:
                await tx.put_advisories(import_id + 1000, [advisory("X-1")], T0)
        async with store.read() as tx:
            assert (await tx.advisory_sources())[0].records == 0

    # -- sources and freshness ----------------------------------------------------------

    async def test_sources_report_their_latest_import_and_their_records(
        self, store: MetadataStore
    ) -> None:
        older = T0 - 30 * MINUTE
        await self.put(
            store,
            "pypa.tar.gz",
            advisory("A", affected("PyPI", "a"), modified=older),
            advisory("B", affected("PyPI", "b"), modified=None),
        )
        async with store.transaction() as tx:
            import_id = await tx.begin_advisory_import(
                "pypa.tar.gz", "/new/pypa.tar.gz", T0 + MINUTE
            )
            await tx.put_advisories(import_id, [advisory("C", affected("PyPI", "c"))])
            await tx.finish_advisory_import(import_id, T0 + 2 * MINUTE, records=1, errors=3)
        unmodified = replace(advisory("G", modified=None), published=T0 - MINUTE)
        running = await self.put(store, "go.tar.gz", unmodified, at=T0 + 5 * MINUTE, finish=False)
        async with store.read() as tx:
            pypa, go = sorted(await tx.advisory_sources(), key=lambda s: s.name, reverse=True)
            updated_at = await tx.advisories_updated_at()
        assert (pypa.name, pypa.location, pypa.started_at, pypa.finished_at) == (
            "pypa.tar.gz",
            "/new/pypa.tar.gz",
            T0 + MINUTE,
            T0 + 2 * MINUTE,
        )
        assert (pypa.records, pypa.errors, pypa.newest_modified) == (3, 3, T0)
        # Without "modified", the publication date tells how fresh a record is.
        assert (go.name, go.finished_at, go.records, go.errors, go.newest_modified) == (
            "go.tar.gz",
            None,
            1,
            0,
            T0 - MINUTE,
        )
        # The running import has not finished: the database last changed when pypa's ended.
        assert updated_at == T0 + 2 * MINUTE
        async with store.transaction() as tx:
            await tx.finish_advisory_import(running, T0 + 9 * MINUTE, 1, 0)
            await tx.finish_advisory_import(running + 1000, T0 + 99 * MINUTE, 1, 0)  # ignored
        async with store.read() as tx:
            assert await tx.advisories_updated_at() == T0 + 9 * MINUTE
            assert [s.name for s in await tx.advisory_sources()] == ["go.tar.gz", "pypa.tar.gz"]

    async def test_forgetting_a_source_keeps_the_others(self, store: MetadataStore) -> None:
        await self.put(store, "pypa.tar.gz", advisory("A", affected("PyPI", "a")))
        await self.put(store, "other.tar.gz", advisory("A", affected("PyPI", "a")))
        async with store.transaction() as tx:
            assert await tx.forget_advisory_source("pypa.tar.gz") == 1
            assert await tx.forget_advisory_source("nothing") == 0
        async with store.read() as tx:
            found = await tx.advisories_for([package_key("PyPI", "a")])
            assert [s.name for s in await tx.advisory_sources()] == ["other.tar.gz"]
        assert [a.source for a in found[package_key("PyPI", "a")]] == ["other.tar.gz"]

    async def test_withdrawing_deletes_only_the_sources_advisories_not_kept(
        self, store: MetadataStore
    ) -> None:
        a = advisory("A", affected("PyPI", "Alpha"), affected("npm", "Beta"))
        b = advisory("B", affected("Go", "example.com/gamma"))
        await self.put(store, "pypa.tar.gz", a, b)
        await self.put(store, "other.tar.gz", advisory("A", affected("PyPI", "alpha")))
        async with store.transaction() as tx:
            # A newer download of pypa.tar.gz has B alone.
            assert await tx.withdraw_advisories("pypa.tar.gz", {"B"}) == (
                1,
                {PackageKey("PyPI", "alpha"), PackageKey("npm", "beta")},
            )
            assert await tx.withdraw_advisories("pypa.tar.gz", {"B"}) == (0, set())
        async with store.read() as tx:
            found = await tx.advisories_for(
                [
                    package_key("PyPI", "alpha"),
                    package_key("npm", "beta"),
                    PackageKey("Go", "example.com/gamma"),
                ]
            )
        # The other source's A stays, B stays, and pypa's A is gone with its index rows.
        assert {key: [(x.source, x.id) for x in found[key]] for key in found} == {
            PackageKey("PyPI", "alpha"): [("other.tar.gz", "A")],
            PackageKey("Go", "example.com/gamma"): [("pypa.tar.gz", "B")],
        }

    # -- what changed -------------------------------------------------------------------

    async def test_keys_changed_since_follow_writes_not_rereads(self, store: MetadataStore) -> None:
        a = advisory("A", affected("PyPI", "Alpha"), affected("npm", "Beta"))
        b = advisory("B", affected("Go", "example.com/gamma"))
        await self.put(store, "pypa.tar.gz", a, b)
        async with store.read() as tx:
            assert await tx.keys_changed_since(T0) == {
                PackageKey("PyPI", "alpha"),
                PackageKey("npm", "beta"),
                PackageKey("Go", "example.com/gamma"),
            }
            assert await tx.keys_changed_since(T0 + timedelta(microseconds=1)) == set()
        # The same database again, later: nothing changed, so nothing to rescan; then B changes.
        later = T0 + 60 * MINUTE
        await self.put(store, "pypa.tar.gz", a, b, at=later)
        async with store.read() as tx:
            assert await tx.keys_changed_since(later) == set()
        await self.put(store, "pypa.tar.gz", replace(b, summary="revised"), at=later)
        async with store.read() as tx:
            assert await tx.keys_changed_since(later) == {PackageKey("Go", "example.com/gamma")}
            assert len(await tx.keys_changed_since(T0 + MINUTE)) == 1

    async def test_large_batches(self, store: MetadataStore) -> None:
        # More than one IN chunk, each advisory under several keys, some shared.
        batch = [
            advisory(
                f"PYSEC-{n}",
                affected("PyPI", f"package-{n}"),
                affected("PyPI", f"Package_{n}_extra"),
                affected("PyPI", "shared"),
            )
            for n in range(1200)
        ]
        await self.put(store, "pypa.tar.gz", *batch)
        await self.put(store, "pypa.tar.gz", *batch[:700], at=T0 + MINUTE)  # unchanged
        revised = [replace(a, summary="revised") for a in batch[600:]]
        await self.put(store, "pypa.tar.gz", *revised, at=T0 + 2 * MINUTE)
        keys = [package_key("PyPI", f"package.{n}") for n in range(1200)]
        async with store.read() as tx:
            found = await tx.advisories_for([*keys, package_key("PyPI", "SHARED")])
            changed = await tx.keys_changed_since(T0 + MINUTE)
            (source,) = await tx.advisory_sources()
        assert source.records == 1200
        assert len(found) == 1201
        assert len(found[PackageKey("PyPI", "shared")]) == 1200
        assert [a.summary for a in found[keys[599]]] == ["about PYSEC-599"]
        assert [a.summary for a in found[keys[600]]] == ["revised"]
        assert len(changed) == 600 * 2 + 1
