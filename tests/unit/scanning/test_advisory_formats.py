"""Advisory formats other than OSV: the Debian Security Tracker export, Alpine's secdb and the
Node.js security WG's npm records, parsed directly and through ``iter_records``."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from moorage.scanning.advisories import Affected, InvalidAdvisory, Range, RecordError, iter_records
from moorage.scanning.advisories.alpine_secdb import iter_secdb
from moorage.scanning.advisories.debian_tracker import iter_debian_tracker, urgency_severity
from moorage.scanning.advisories.nodejs import parse_nodejs, semver_events
from moorage.scanning.versions import Scheme, in_range

FIXTURES = Path(__file__).parents[2] / "fixtures" / "vulnscan" / "advisories"
TRACKER = FIXTURES / "debian-tracker-bookworm.json"
SECDB = FIXTURES / "alpine-secdb" / "v3.8-main.yaml"
NODEJS = FIXTURES / "nodejs"


def tracker() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(TRACKER.read_text())
    return document


def fixed_range(version: str) -> tuple[Range, ...]:
    return (Range("ECOSYSTEM", (("introduced", "0"), ("fixed", version))),)


# --- Debian Security Tracker ---------------------------------------------------------------


def test_tracker_gives_one_advisory_per_id_with_bookworm_fixes() -> None:
    advisories = {a.id: a for a in iter_debian_tracker(tracker())}
    # CVE-2024-3094 is resolved with fixed_version "0" in bookworm: never affected, no advisory.
    assert list(advisories) == [
        "CVE-2023-0286",
        "CVE-2026-63072",
        "CVE-2026-75803",
        "CVE-2025-59375",
        "CVE-2025-48060",
        "TEMP-1147318-639065",
        "CVE-2026-103111",
        "CVE-2021-4217",
        "CVE-2010-4756",
    ]
    expected = {
        "CVE-2026-63072": ("openssl", "3.0.22-1~deb12u2", None),
        "CVE-2026-75803": ("openssl", "3.0.22-1~deb12u2", "HIGH"),
        "CVE-2025-59375": ("expat", "2.5.0-1+deb12u5", "MEDIUM"),
        "CVE-2025-48060": ("jq", "1.6-2.1+deb12u3", "LOW"),
        "TEMP-1147318-639065": ("xz-utils", "5.4.1-1+deb12u2", None),
        "CVE-2026-103111": ("pcre2", "10.42-1+deb12u2", "HIGH"),
        "CVE-2021-4217": ("unzip", "6.0-28+deb12u1", "INFORMATIONAL"),
    }
    for advisory_id, (package, fixed, severity) in expected.items():
        # sid is not a numbered release: only the bookworm entry is kept.
        assert advisories[advisory_id].affected == (
            Affected(
                ecosystem="Debian:12",
                package=package,
                ranges=fixed_range(fixed),
                versions=(),
                fixed=(fixed,),
                severity=severity,
            ),
        ), advisory_id


def test_tracker_open_issue_is_unfixed_and_other_releases_keep_their_ecosystem() -> None:
    advisories = {a.id: a for a in iter_debian_tracker(tracker(), source="tracker")}
    glibc = advisories["CVE-2010-4756"]
    # trixie is "undetermined": skipped.
    assert glibc.affected == (
        Affected(
            ecosystem="Debian:12",
            package="glibc",
            ranges=(Range("ECOSYSTEM", (("introduced", "0"),)),),
            versions=(),
            fixed=(),
            severity="INFORMATIONAL",
        ),
    )
    assert glibc.details.startswith("The glob implementation in the GNU C Library")
    assert glibc.references == ("https://security-tracker.debian.org/tracker/CVE-2010-4756",)
    assert glibc.source == "tracker"
    bullseye = advisories["CVE-2023-0286"].affected
    assert [(a.ecosystem, a.fixed, a.severity) for a in bullseye] == [
        ("Debian:11", ("1.1.1n-0+deb11u4",), "HIGH")
    ]
    assert advisories["CVE-2025-59375"].references == (
        "https://security-tracker.debian.org/tracker/CVE-2025-59375",
        "https://bugs.debian.org/1115852",
    )


def test_tracker_id_under_two_packages_is_one_advisory() -> None:
    document = {
        "openssl": {"CVE-1": {"releases": {"trixie": {"status": "open", "urgency": "low"}}}},
        "nodejs": {
            "CVE-1": {
                "releases": {
                    "bookworm": {"status": "resolved", "fixed_version": "18.20.4+dfsg-1~deb12u1"}
                }
            }
        },
    }
    (advisory,) = iter_debian_tracker(document)
    assert [(a.package, a.ecosystem, a.fixed) for a in advisory.affected] == [
        ("openssl", "Debian:13", ()),
        ("nodejs", "Debian:12", ("18.20.4+dfsg-1~deb12u1",)),
    ]


@pytest.mark.parametrize(
    ("urgency", "severity"),
    [
        ("unimportant", "INFORMATIONAL"),
        ("low", "LOW"),
        ("low**", "LOW"),
        ("medium*", "MEDIUM"),
        ("high", "HIGH"),
        ("not yet assigned", None),
        ("end-of-life", None),
        (None, None),
    ],
)
def test_tracker_urgency_mapping(urgency: str | None, severity: str | None) -> None:
    assert urgency_severity(urgency) == severity


def test_tracker_bad_entries_are_reported_and_the_rest_kept() -> None:
    document = {
        "a": {"CVE-1": {"releases": {"bookworm": {"status": "resolved"}}}},
        "b": {"CVE-2": {"releases": {"bookworm": {"status": "fixed-ish"}}}},
        "c": ["not", "a", "mapping"],
        "d": {"CVE-3": {"releases": {"bookworm": {"status": "open"}}}},
        "e": {"CVE-4": {"releases": []}},  # the export writes an empty list for no release
    }
    problems: list[str] = []
    advisories = list(
        iter_debian_tracker(document, on_invalid=lambda where, e: problems.append(f"{where}|{e}"))
    )
    assert [a.id for a in advisories] == ["CVE-3"]
    assert problems == [
        "c|a package's issues are not a mapping",
        "a/CVE-1|a/CVE-1: release bookworm is resolved without a fixed_version",
        "b/CVE-2|b/CVE-2: release bookworm has an unknown status 'fixed-ish'",
    ]
    with pytest.raises(InvalidAdvisory, match="c: a package's issues are not a mapping"):
        list(iter_debian_tracker(document))


# --- Alpine secdb --------------------------------------------------------------------------


def test_secdb_yaml_file() -> None:
    document = yaml.safe_load(SECDB.read_text())
    advisories = {a.aliases[0]: a for a in iter_secdb(document)}
    # db's ids are all under "0" (never affected): no advisory for them.
    assert not any(a.affected[0].package == "db" for a in advisories.values())
    assert len(advisories) == 3 + 2 + 18
    musl = advisories["CVE-2019-14697"]
    assert musl.affected == (
        Affected(
            ecosystem="Alpine:v3.8",
            package="musl",
            ranges=fixed_range("1.1.19-r11"),
            versions=(),
            fixed=("1.1.19-r11",),
        ),
    )
    assert musl.references == ("https://security.alpinelinux.org/vuln/CVE-2019-14697",)
    # One advisory per release and repository: the id says which; the CVE names findings.
    assert musl.id == "ALPINE-v3.8/main-CVE-2019-14697"
    assert (musl.severity, musl.source, musl.aliases) == (None, "alpine-secdb", ("CVE-2019-14697",))
    talos = advisories["CVE-2019-5060"]
    assert talos.aliases == ("CVE-2019-5060", "TALOS-2019-0844")
    assert talos.affected[0].fixed == ("2.0.5-r0",)
    assert advisories["CVE-2019-12217"].aliases == ("CVE-2019-12217",)


def test_secdb_id_under_two_versions_and_extra_text() -> None:
    document = {
        "distroversion": "v3.20",
        "reponame": "main",
        "packages": [
            {"pkg": {"name": "wpa_supplicant", "secfixes": {"2.7-r0": ["CVE-2017-13077"]}}},
            {"pkg": {"name": "wpa_supplicant", "secfixes": {"2.6-r7": ["CVE-2017-13077"]}}},
            {"pkg": {"name": "hostapd", "secfixes": {"2.6-r2": ["CVE-2017-13077 (KRACK)"]}}},
            {"pkg": {"name": "xen", "secfixes": {"4.11.2-r0": ["CVE-????-?????  XSA-295"]}}},
            {"pkg": {"name": "openjdk7", "secfixes": {"7.2-r0": ["CVE_2019-2426"]}}},
            {"pkg": {"name": "empty", "secfixes": None}},
            "junk",
        ],
    }
    problems: list[str] = []
    advisories = list(
        iter_secdb(document, on_invalid=lambda where, e: problems.append(f"{where}|{e}"))
    )
    assert [a.id for a in advisories] == [
        "ALPINE-v3.20/main-CVE-2017-13077",
        "ALPINE-v3.20/main-XSA-295",
    ]
    krack = advisories[0]
    assert [(a.ecosystem, a.package, a.ranges) for a in krack.affected] == [
        (
            "Alpine:v3.20",
            "wpa_supplicant",
            (
                Range(
                    "ECOSYSTEM",
                    (
                        ("introduced", "0"),
                        ("fixed", "2.6-r7"),
                        # After every revision of 2.6: the 2.7 line lacked the fix until 2.7-r0.
                        ("introduced", "2.6-r4294967295"),
                        ("fixed", "2.7-r0"),
                    ),
                ),
            ),
        ),
        ("Alpine:v3.20", "hostapd", fixed_range("2.6-r2")),
    ]
    assert krack.affected[0].fixed == ("2.7-r0", "2.6-r7")
    (wpa_range,) = krack.affected[0].ranges
    affected = {
        v: in_range(Scheme.ALPINE, v, wpa_range)
        for v in ("2.6-r6", "2.6-r7", "2.6-r8", "2.6.1-r0", "2.7_rc1-r0", "2.7-r0", "2.8-r0")
    }
    assert affected == {
        "2.6-r6": True,
        "2.6-r7": False,
        "2.6-r8": False,
        "2.6.1-r0": True,
        "2.7_rc1-r0": True,
        "2.7-r0": False,
        "2.8-r0": False,
    }
    assert problems == [
        "openjdk7@7.2-r0|no advisory id in 'CVE_2019-2426'",
        "packages[6]|not a mapping with a 'pkg' mapping",
    ]


@pytest.mark.parametrize(
    "document",
    [
        {"packages": []},
        {"distroversion": "v3.20", "packages": {"pkg": {}}},
        {"distroversion": "v3.20", "packages": [{"pkg": {"name": "x", "secfixes": {1.0: []}}}]},
    ],
)
def test_secdb_invalid_documents(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidAdvisory):
        list(iter_secdb(document))


# --- Node.js security WG -------------------------------------------------------------------


def nodejs(number: int) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((NODEJS / f"{number}.json").read_text())
    return document


def test_nodejs_simple_record() -> None:
    advisory = parse_nodejs(nodejs(1), source="wg")
    assert advisory.id == "NSWG-ECO-1"
    assert advisory.aliases == ("CVE-2014-7205",)
    assert advisory.summary == "Arbitrary JavaScript Execution"
    assert advisory.details.startswith("A vulnerability exists in bassmaster <= 1.5.1")
    assert (advisory.cvss_v3_score, advisory.severity) == (6.5, "MEDIUM")
    assert advisory.cvss_v3_vector == "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N"
    assert advisory.published == datetime(2014, 9, 27, tzinfo=UTC)
    assert advisory.modified == datetime(2016, 4, 28, tzinfo=UTC)
    assert advisory.references[0] == "https://www.npmjs.org/package/bassmaster"
    assert advisory.affected == (
        Affected(
            ecosystem="npm",
            package="bassmaster",
            ranges=(Range("SEMVER", (("introduced", "0"), ("last_affected", "1.5.1"))),),
            versions=(),
            fixed=("1.5.2",),  # from patched_versions ">=1.5.2"
        ),
    )


def test_nodejs_union_of_x_ranges() -> None:
    advisory = parse_nodejs(nodejs(11))  # "2.0.x || 2.1.x", patched ">= 2.2.x"
    (affected,) = advisory.affected
    assert affected.package == "hapi"
    assert affected.ranges == (
        Range("SEMVER", (("introduced", "2.0.0"), ("fixed", "2.1.0"))),
        Range("SEMVER", (("introduced", "2.1.0"), ("fixed", "2.2.0"))),
    )
    assert affected.fixed == ()  # "2.2.x" is no version to upgrade to
    assert (advisory.severity, advisory.source) == ("HIGH", "nodejs-security-wg")


def test_nodejs_tilde_range_with_a_prerelease() -> None:
    # ">= 0.2.0 <= 0.9.6 || ~0.8.0-pre": ~ allows patch updates, from the prerelease on.
    (affected,) = parse_nodejs(nodejs(305)).affected
    assert [r.events for r in affected.ranges] == [
        (("introduced", "0.2.0"), ("last_affected", "0.9.6")),
        (("introduced", "0.8.0-pre"), ("fixed", "0.9.0-0")),
    ]


@pytest.mark.parametrize(
    ("expression", "ranges", "versions"),
    [
        ("*", ((("introduced", "0"),),), ()),
        ("<1.6.5 || < 2.1.7 > 2.0.0", (
            (("introduced", "0"), ("fixed", "1.6.5")),
            (("introduced", "2.0.1-0"), ("fixed", "2.1.7")),
        ), ()),
        (">=3.0.0 <=3.9.1 || =3.10.2", (
            (("introduced", "3.0.0"), ("last_affected", "3.9.1")),
        ), ("3.10.2",)),
        ("<=0.9.4 || 1.0.0", ((("introduced", "0"), ("last_affected", "0.9.4")),), ("1.0.0",)),
        (">2.0.0-beta <3.11 || >= 4 <=4.5", (
            (("introduced", "2.0.0-beta.0"), ("fixed", "3.11.0")),
            (("introduced", "4.0.0"), ("fixed", "4.6.0")),
        ), ()),
        ("2.1.0-M1 || 2.1.0-M2", (), ("2.1.0-M1", "2.1.0-M2")),
        # node-semver's sugar (its README, "Advanced Range Syntax").
        ("^1.2.3", ((("introduced", "1.2.3"), ("fixed", "2.0.0-0")),), ()),
        ("^0.2.3", ((("introduced", "0.2.3"), ("fixed", "0.3.0-0")),), ()),
        ("^0.0.3", ((("introduced", "0.0.3"), ("fixed", "0.0.4-0")),), ()),
        ("^0.x", ((("introduced", "0.0.0"), ("fixed", "1.0.0-0")),), ()),
        ("~1.2.3", ((("introduced", "1.2.3"), ("fixed", "1.3.0-0")),), ()),
        ("~1", ((("introduced", "1.0.0"), ("fixed", "2.0.0-0")),), ()),
        ("1.2 - 2.3.4", ((("introduced", "1.2.0"), ("last_affected", "2.3.4")),), ()),
        ("1.2.3 - 2.3", ((("introduced", "1.2.3"), ("fixed", "2.4.0")),), ()),
    ],
)  # fmt: skip
def test_semver_events(
    expression: str, ranges: tuple[tuple[tuple[str, str], ...], ...], versions: tuple[str, ...]
) -> None:
    assert semver_events(expression) == (ranges, versions)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("^1.2.3 >=1.0.0", "two lower or two upper bounds"),
        ("1.0.0 - ", "not a range"),
        ("~banana", "not a version"),
        (">=1.0.0 >=2.0.0", "two lower or two upper bounds"),
        ("<1.0.0 || ", "empty alternative"),
        ("1.0.0 <2.0.0", "exact version '1.0.0' is combined"),
        ("<x", "wildcard"),
    ],
)
def test_semver_expressions_that_are_not_events(expression: str, message: str) -> None:
    with pytest.raises(InvalidAdvisory, match=message):
        semver_events(expression)


@pytest.mark.parametrize(
    "document",
    [
        {"module_name": "x", "vulnerable_versions": "*"},
        {"id": 1, "vulnerable_versions": "*"},
        {"id": 1, "module_name": "x", "vulnerable_versions": None},
        {"id": 1, "module_name": "x", "vulnerable_versions": "*", "cves": "CVE-1"},
        {"id": 1, "module_name": "x", "vulnerable_versions": "*", "publish_date": "soon"},
    ],
)
def test_nodejs_invalid_records(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidAdvisory):
        parse_nodejs(document)


# --- through iter_records ------------------------------------------------------------------


def add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def test_archive_of_mixed_formats_is_dispatched(tmp_path: Path) -> None:
    path = tmp_path / "mixed.tar.gz"
    core = {"cve": ["CVE-2017-1000381"], "vulnerable": "8.x", "patched": "^8.1.4"}
    with tarfile.open(path, "w:gz") as archive:
        add(archive, "vuln/core/1.json", json.dumps(core).encode())
        add(archive, "vuln/npm/1.json", (NODEJS / "1.json").read_bytes())
        add(archive, "vuln/npm/305.json", (NODEJS / "305.json").read_bytes())
        add(archive, "vuln/npm/index.json", json.dumps({"1": nodejs(1)}).encode())
        add(archive, "v3.8/main.yaml", SECDB.read_bytes())
        add(archive, "tracker.json", TRACKER.read_bytes())
        add(archive, "v3.20/main.json", b'{"distroversion": "v3.20", "packages": 7}')
        add(archive, "other.json", b'{"name": "not an advisory"}')
    errors: list[RecordError] = []
    advisories = list(iter_records(path, errors.append))
    sources = [a.source.split("!")[1] for a in advisories]
    assert sources.count("vuln/npm/1.json") == 1
    assert sources.count("v3.8/main.yaml") == 23
    assert sources.count("tracker.json") == 9
    assert len(advisories) == 2 + 23 + 9
    assert [(e.location.split("!")[1], e.message.split(":")[0]) for e in errors] == [
        ("v3.20/main.json", "InvalidAdvisory"),
        ("other.json", "InvalidAdvisory"),
    ]


def test_bad_tracker_entry_is_reported_with_its_place(tmp_path: Path) -> None:
    document = tracker()
    document["jq"]["CVE-2025-48060"]["releases"]["bookworm"]["status"] = "fixed-ish"
    path = tmp_path / "tracker.json"
    path.write_text(json.dumps(document))
    errors: list[RecordError] = []
    assert len(list(iter_records(path, errors.append))) == 8
    assert [e.location for e in errors] == [f"{path}#jq/CVE-2025-48060"]
