"""``moorage advisories import|status`` in-process, on the repository's fixture records."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from moorage.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vulnscan" / "advisories"
OSV_RECORDS = ("GO-2022-0378.json", "PSF-2024-6.json", "PYSEC-2023-246.yaml")


def _invoke(*arguments: str | Path) -> Result:
    env = {name: None for name in os.environ if name.startswith("MOORAGE_")}
    return CliRunner().invoke(main, ["advisories", *map(str, arguments)], env=env)


def _archive(tmp_path: Path, name: str, members: dict[str, Path | bytes]) -> Path:
    """A tar.gz whose members (under one top folder, like a GitHub download) are fixture
    files or literal bytes."""
    staging = tmp_path / "staging" / name
    for member, content in members.items():
        target = staging / "db-3ccb612" / member
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_bytes(content)
    archive = tmp_path / name
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging / "db-3ccb612", arcname="db-3ccb612")
    return archive


@pytest.fixture
def osv_archive(tmp_path: Path) -> Path:
    members: dict[str, Path | bytes] = {f"vulns/{n}": FIXTURES / n for n in OSV_RECORDS}
    members["README.md"] = b"not a record"
    members[".github/workflow.yaml"] = b"not a record either"
    return _archive(tmp_path, "osv-db-3ccb612.tar.gz", members)


def test_status_of_an_empty_database(tmp_path: Path) -> None:
    result = _invoke("status", "--data-dir", tmp_path / "data")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no advisories imported\n"


def test_import_an_archive_and_a_folder_then_status(tmp_path: Path, osv_archive: Path) -> None:
    folder = tmp_path / "folder-db"
    folder.mkdir()
    shutil.copyfile(FIXTURES / "GO-2022-0378.json", folder / "GO-2022-0378.json")
    data = tmp_path / "data"

    result = _invoke("import", "--data-dir", data, osv_archive, folder)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.rsplit(",", 1)[0] for line in lines] == [
        "osv-db-3ccb612.tar.gz: 3 records, 0 errors",
        "folder-db: 1 record, 0 errors",
    ]
    assert all(line.endswith(" s") for line in lines)
    assert "osv-db-3ccb612.tar.gz" in result.stderr  # the progress bar's label

    status = _invoke("status", "--data-dir", data)
    assert status.exit_code == 0, status.output
    header, *rows, updated = status.stdout.splitlines()
    assert header.split() == ["SOURCE", "RECORDS", "ERRORS", "IMPORTED", "AT", "NEWEST", "ADVISORY"]
    assert [row.split()[:3] for row in rows] == [
        ["folder-db", "1", "0"],
        ["osv-db-3ccb612.tar.gz", "3", "0"],
    ]
    assert rows[1].split()[4] == "2024-07-01T13:51:32Z"  # PSF-2024-6 is the newest
    assert updated.startswith("database updated at 20")


def test_importing_again_replaces_the_records(tmp_path: Path, osv_archive: Path) -> None:
    data = tmp_path / "data"
    for _ in range(2):
        assert _invoke("import", "--data-dir", data, osv_archive).exit_code == 0
    status = _invoke("status", "--data-dir", data)
    assert [row.split()[:2] for row in status.stdout.splitlines()[1:-1]] == [
        ["osv-db-3ccb612.tar.gz", "3"]
    ]


def test_source_names_the_import(tmp_path: Path, osv_archive: Path) -> None:
    data = tmp_path / "data"
    result = _invoke("import", "--data-dir", data, "--source", "osv", osv_archive)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("osv: 3 records")
    refused = _invoke("import", "--data-dir", data, "--source", "osv", osv_archive, osv_archive)
    assert refused.exit_code == 1
    assert refused.stderr.startswith("moorage: error: --source names the source of one PATH")


def test_a_missing_path_imports_nothing(tmp_path: Path, osv_archive: Path) -> None:
    data = tmp_path / "data"
    result = _invoke("import", "--data-dir", data, osv_archive, tmp_path / "nowhere.tar.gz")
    assert result.exit_code == 1
    assert (
        result.stderr == f"moorage: error: no such file or folder: {tmp_path / 'nowhere.tar.gz'}\n"
    )
    assert _invoke("status", "--data-dir", data).stdout == "no advisories imported\n"


def test_skipped_records_are_reported_and_all_failing_exits_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mixed = _archive(
        tmp_path,
        "mixed.tar.gz",
        {"GO-2022-0378.json": FIXTURES / "GO-2022-0378.json", "bad.json": b"{not json"},
    )
    result = _invoke("import", "--data-dir", data, mixed)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("mixed.tar.gz: 1 record, 1 error")
    assert f"skipped {mixed.resolve()}!db-3ccb612/bad.json: JSONDecodeError" in result.stderr

    broken = _archive(tmp_path, "broken.tar.gz", {"bad.json": b"{not json", "no-id.json": b"{}"})
    result = _invoke("import", "--data-dir", data, broken)
    assert result.exit_code == 1
    assert result.stdout.startswith("broken.tar.gz: 0 records, 2 errors")
    assert result.stderr.splitlines()[-1] == (f"moorage: error: every record failed in {broken}")
    assert "Traceback" not in result.stderr
