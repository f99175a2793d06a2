"""Advisory records: OSV parsing, and reading them from files, folders and archives."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from moorage.scanning.advisories import (
    Advisory,
    Affected,
    InvalidAdvisory,
    Range,
    RecordError,
    iter_records,
    parse_osv,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "vulnscan" / "advisories"
GO = FIXTURES / "GO-2022-0378.json"
PYSEC = FIXTURES / "PYSEC-2023-246.yaml"
PSF = FIXTURES / "PSF-2024-6.json"


def load(path: Path) -> dict[str, Any]:
    text = path.read_text()
    document: dict[str, Any] = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return document


def test_go_vulndb_record() -> None:
    advisory = parse_osv(load(GO), source="go")
    assert advisory == Advisory(
        id="GO-2022-0378",
        aliases=("GHSA-qh54-9vc5-m9fg",),
        summary="MD5 hash support in github.com/foxcpp/maddy",
        details="MD5 hash support in github.com/foxcpp/maddy",
        severity=None,
        cvss_v3_score=None,
        cvss_v3_vector=None,
        references=("https://github.com/foxcpp/maddy/security/advisories/GHSA-qh54-9vc5-m9fg",),
        published=None,  # Go's zero time, 0001-01-01T00:00:00Z, means unknown
        modified=None,
        affected=(
            Affected(
                ecosystem="Go",
                package="github.com/foxcpp/maddy",
                ranges=(Range("SEMVER", (("introduced", "0.5.0"), ("fixed", "0.5.2"))),),
                versions=(),
                fixed=("0.5.2",),
            ),
        ),
        source="go",
    )


def test_pypa_yaml_record_with_cvss_vector_and_fixed_range() -> None:
    advisory = parse_osv(load(PYSEC))
    assert advisory.id == "PYSEC-2023-246"
    assert advisory.aliases == ("CVE-2023-47627", "GHSA-gfw2-4jvh-wgfg")
    assert advisory.summary == ""
    assert advisory.details.startswith("aiohttp is an asynchronous HTTP client/server framework")
    assert advisory.cvss_v3_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N"
    assert advisory.cvss_v3_score == 7.5
    assert advisory.severity == "HIGH"
    assert advisory.published == datetime(2023, 11, 14, 21, 15, tzinfo=UTC)
    assert advisory.modified == datetime(2023, 11, 22, 23, 23, 57, 547793, tzinfo=UTC)
    assert advisory.references == (
        "https://github.com/aio-libs/aiohttp/security/advisories/GHSA-gfw2-4jvh-wgfg",
        "https://github.com/aio-libs/aiohttp/security/advisories/GHSA-gfw2-4jvh-wgfg",
        "https://github.com/aio-libs/aiohttp/commit/d5c12ba890557a575c313bb3017910d7616fce3d",
    )
    (affected,) = advisory.affected
    assert (affected.ecosystem, affected.package) == ("PyPI", "aiohttp")
    assert affected.ranges == (
        Range(
            "GIT",
            (("introduced", "0"), ("fixed", "d5c12ba890557a575c313bb3017910d7616fce3d")),
        ),
        Range("ECOSYSTEM", (("introduced", "0"), ("fixed", "3.8.6"))),
    )
    assert affected.fixed == ("3.8.6",)  # the GIT commit is not a version to upgrade to
    assert len(affected.versions) == 220
    assert affected.versions[:3] == ("0.1", "0.10.0", "0.10.1")  # "0.1" stays a string
    assert affected.versions[-1] == "3.8.5"


def test_psf_record_without_package() -> None:
    advisory = parse_osv(load(PSF))
    assert advisory.id == "PSF-2024-6"
    assert advisory.aliases == ("CVE-2024-5642",)
    assert advisory.severity is None
    assert advisory.cvss_v3_score is None
    assert advisory.published == datetime(2024, 6, 27, 21, 5, 31, 281000, tzinfo=UTC)
    assert advisory.modified == datetime(2024, 7, 1, 13, 51, 32, 404000, tzinfo=UTC)
    assert len(advisory.references) == 7
    assert advisory.references[0] == (
        "https://jbp.io/2024/06/27/cve-2024-5535-openssl-memory-safety.html"
    )
    assert advisory.affected == (
        Affected(
            ecosystem="",
            package="",
            ranges=(
                Range(
                    "GIT",
                    (("introduced", "0"), ("fixed", "39258d3595300bc7b952854c915f63ae2d4b9c3e")),
                ),
            ),
            versions=(),
            fixed=(),
        ),
    )


def minimal(**fields: Any) -> dict[str, Any]:
    return {"id": "TEST-1", "modified": "2024-01-01T00:00:00Z", **fields}


@pytest.mark.parametrize(
    ("fields", "severity"),
    [
        ({"database_specific": {"severity": "MODERATE"}}, "MEDIUM"),
        ({"database_specific": {"severity": "critical"}}, "CRITICAL"),
        (
            {
                "affected": [
                    {"package": {"ecosystem": "npm", "name": "x"}},
                    {
                        "package": {"ecosystem": "npm", "name": "y"},
                        "ecosystem_specific": {"severity": "LOW"},
                    },
                ]
            },
            "LOW",
        ),
        # the database's own rating wins over the vector's (9.8, CRITICAL)
        (
            {
                "database_specific": {"severity": "HIGH"},
                "severity": [
                    {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}
                ],
            },
            "HIGH",
        ),
        ({}, None),
    ],
)
def test_severity_sources(fields: dict[str, Any], severity: str | None) -> None:
    assert parse_osv(minimal(**fields)).severity == severity


def test_cvss_v3_vector_gives_score_and_severity() -> None:
    advisory = parse_osv(
        minimal(
            severity=[
                {"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
            ]
        )
    )
    assert (advisory.cvss_v3_score, advisory.severity) == (9.8, "CRITICAL")


def test_malformed_cvss_vector_is_kept_without_score() -> None:
    advisory = parse_osv(minimal(severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:Q"}]))
    assert advisory.cvss_v3_vector == "CVSS:3.1/AV:Q"
    assert (advisory.cvss_v3_score, advisory.severity) == (None, None)


def test_last_affected_and_limit_events() -> None:
    events = [{"introduced": "1.0"}, {"last_affected": "1.4"}, {"limit": "2.0"}]
    advisory = parse_osv(
        minimal(
            affected=[
                {
                    "package": {"ecosystem": "PyPI", "name": "p"},
                    "ranges": [{"type": "ECOSYSTEM", "events": events}],
                }
            ]
        )
    )
    assert advisory.affected[0].ranges == (
        Range("ECOSYSTEM", (("introduced", "1.0"), ("last_affected", "1.4"), ("limit", "2.0"))),
    )
    assert advisory.affected[0].fixed == ()


@pytest.mark.parametrize(
    "document",
    [
        {"modified": "2024-01-01T00:00:00Z"},
        minimal(aliases="CVE-1"),
        minimal(affected=[{"ranges": [{"type": "RPM", "events": []}]}]),
        minimal(affected=[{"ranges": [{"type": "SEMVER", "events": [{"removed": "1"}]}]}]),
        minimal(affected=[{"ranges": [{"type": "SEMVER", "events": [{"fixed": 1.1}]}]}]),
        minimal(published="yesterday"),
    ],
)
def test_invalid_records_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidAdvisory):
        parse_osv(document)


def add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def test_tar_gz_archive_is_read_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "db.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        add(archive, "db/LICENSE", b"licence text")
        add(archive, "db/vulns/.id-allocator", b"1")
        add(archive, "db/.github/workflows/ci.yml", b"on: push")
        add(archive, "db/osv/GO-2022-0378.json", GO.read_bytes())
        add(archive, "db/vulns/aiohttp/PYSEC-2023-246.yaml", PYSEC.read_bytes())
        add(archive, "db/advisories/python/PSF-2024-6.json", PSF.read_bytes())
        add(archive, "db/osv/broken.json", b"{not json")
        add(archive, "db/osv/list.json", b"[]")
    errors: list[RecordError] = []
    advisories = list(iter_records(path, errors.append))
    assert [a.id for a in advisories] == ["GO-2022-0378", "PYSEC-2023-246", "PSF-2024-6"]
    assert advisories[1] == parse_osv(
        load(PYSEC), source=f"{path}!db/vulns/aiohttp/PYSEC-2023-246.yaml"
    )
    assert [e.location for e in errors] == [
        f"{path}!db/osv/broken.json",
        f"{path}!db/osv/list.json",
    ]
    assert not list(tmp_path.glob("db"))  # nothing extracted


def test_zip_archive(tmp_path: Path) -> None:
    path = tmp_path / "db.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("osv/GO-2022-0378.json", GO.read_bytes())
        archive.writestr("README.md", b"# db")
    assert [a.source for a in iter_records(path)] == [f"{path}!osv/GO-2022-0378.json"]


def test_folder_and_single_files(tmp_path: Path) -> None:
    # The folder also holds the other formats' fixtures (test_advisory_formats.py): here, the
    # OSV records only, found recursively and in order.
    osv_files = {str(GO), str(PSF), str(PYSEC)}
    assert [a.id for a in iter_records(FIXTURES, lambda _: None) if a.source in osv_files] == [
        "GO-2022-0378",
        "PSF-2024-6",
        "PYSEC-2023-246",
    ]
    assert [a.id for a in iter_records(PYSEC)] == ["PYSEC-2023-246"]
    errors: list[RecordError] = []
    (tmp_path / "bad.yaml").write_text("id: [unclosed")
    assert list(iter_records(tmp_path / "bad.yaml", errors.append)) == []
    assert list(iter_records(tmp_path / "missing.tar.gz", errors.append)) == []
    assert [e.location for e in errors] == [
        str(tmp_path / "bad.yaml"),
        str(tmp_path / "missing.tar.gz"),
    ]


def test_truncated_archive_is_reported(tmp_path: Path) -> None:
    whole = tmp_path / "whole.tar.gz"
    with tarfile.open(whole, "w:gz") as archive:
        for i in range(50):
            add(archive, f"osv/GO-2022-{i:04}.json", GO.read_bytes().replace(b"0378", b"%04d" % i))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    errors: list[RecordError] = []
    read = list(iter_records(cut, errors.append))
    assert 0 < len(read) < 50
    assert [e.location for e in errors] == [str(cut)]
