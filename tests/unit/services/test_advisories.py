"""Importing advisory files: batches of short transactions, progress, one import per path."""

from __future__ import annotations

import json
import zipfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from moorage.ports.metadata import MetadataTransaction
from moorage.scanning.advisories.keys import package_key
from moorage.services import advisories as service
from moorage.services.advisories import ImportProgress, count_record_files, import_paths
from moorage.storage.metadata.sql.store import SqlMetadataStore, open_sql_metadata_store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class StepClock:
    """A second later at every call."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    store = await open_sql_metadata_store(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        yield store
    finally:
        await store.close()


def osv(n: int) -> dict[str, object]:
    return {
        "id": f"PYSEC-{n}",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": f"Package_{n % 7}"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2"}]}],
            }
        ],
    }


def zip_of(path: Path, records: int, broken: int = 0) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(records):
            archive.writestr(f"db/vulns/PYSEC-{n}.json", json.dumps(osv(n)))
        for n in range(broken):
            archive.writestr(f"db/vulns/broken-{n}.json", "{")
        archive.writestr("db/LICENSE", "not a record")
    return path


async def test_batches_progress_and_counts(
    store: SqlMetadataStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "BATCH_SIZE", 4)
    archive = zip_of(tmp_path / "pypa-db-abc.zip", records=10, broken=2)
    seen: list[ImportProgress] = []
    transactions = 0
    real_transaction = store.transaction

    def counting_transaction() -> AbstractAsyncContextManager[MetadataTransaction]:
        nonlocal transactions
        transactions += 1
        return real_transaction()

    monkeypatch.setattr(store, "transaction", counting_transaction)
    clock = StepClock()
    (report,) = await import_paths(store, [archive], clock, progress=seen.append)

    assert (report.source, report.records, report.errors) == ("pypa-db-abc.zip", 10, 2)
    assert [e.location.rsplit("!", 1)[1] for e in report.first_errors] == [
        "db/vulns/broken-0.json",
        "db/vulns/broken-1.json",
    ]
    # begin, three batches (4 + 4 + 2), finish
    assert transactions == 5
    assert [(p.done, p.total) for p in seen][-1] == (12, 12)
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    async with store.read() as tx:
        (source,) = await tx.advisory_sources()
        found = await tx.advisories_for([package_key("PyPI", "package-3")])
        assert await tx.advisories_updated_at() == source.finished_at == clock.now
    assert (source.location, source.records, source.errors) == (str(archive.resolve()), 10, 2)
    assert [a.id for a in found[package_key("PyPI", "package-3")]] == ["PYSEC-3"]


async def test_one_import_per_path_and_nothing_when_one_is_missing(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    first = zip_of(tmp_path / "a.zip", records=2)
    record = tmp_path / "PYSEC-9.json"
    record.write_text(json.dumps(osv(9)))
    with pytest.raises(FileNotFoundError, match=r"missing\.zip"):
        await import_paths(store, [first, tmp_path / "missing.zip"], StepClock())
    async with store.read() as tx:
        assert await tx.advisory_sources() == []
    reports = await import_paths(store, [first, record], StepClock())
    assert [(r.source, r.records) for r in reports] == [("a.zip", 2), ("PYSEC-9.json", 1)]


def test_count_record_files(tmp_path: Path) -> None:
    assert count_record_files(zip_of(tmp_path / "a.zip", records=3, broken=1)) == 4
    assert count_record_files(tmp_path / "a.zip") == 4
    (tmp_path / "dir" / ".git").mkdir(parents=True)
    (tmp_path / "dir" / ".git" / "x.json").write_text("{}")
    (tmp_path / "dir" / "y.yaml").write_text("{}")
    assert count_record_files(tmp_path / "dir") == 1
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    assert count_record_files(tmp_path / "bad.zip") is None


async def test_a_complete_newer_download_withdraws_what_it_no_longer_has(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    """PYSEC-0 .. PYSEC-9, then a download of the same source with PYSEC-0 .. PYSEC-7: the
    last two go, with the keys they named (Package_8 % 7 = 1, Package_9 % 7 = 2)."""
    await import_paths(store, [zip_of(tmp_path / "db.zip", 10)], StepClock(), source="pypa")
    (report,) = await import_paths(
        store, [zip_of(tmp_path / "newer.zip", 8)], StepClock(), source="pypa"
    )
    assert (report.records, report.withdrawn) == (8, 2)
    assert report.withdrawn_keys == {
        package_key("PyPI", "Package_1"),
        package_key("PyPI", "Package_2"),
    }
    async with store.read() as tx:
        found = await tx.advisories_for([package_key("PyPI", "Package_1")])
    # Package_1 is still named by PYSEC-1; PYSEC-8 is gone.
    assert [a.id for a in found[package_key("PyPI", "package-1")]] == ["PYSEC-1"]


async def test_an_import_with_errors_withdraws_nothing(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    """A record that cannot be read may be one of those missing: keep them all."""
    await import_paths(store, [zip_of(tmp_path / "db.zip", 10)], StepClock(), source="pypa")
    (report,) = await import_paths(
        store, [zip_of(tmp_path / "newer.zip", 8, broken=1)], StepClock(), source="pypa"
    )
    assert (report.records, report.errors, report.withdrawn) == (8, 1, 0)
    assert report.withdrawn_keys == frozenset()
    async with store.read() as tx:
        found = await tx.advisories_for([package_key("PyPI", "Package_1")])
    assert [a.id for a in found[package_key("PyPI", "package-1")]] == ["PYSEC-1", "PYSEC-8"]
