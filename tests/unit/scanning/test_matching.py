"""Matching inventories against advisories: keys, version checks, dedupe, severity, order."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from moorage.domain.findings import Severity
from moorage.domain.inventory import Inventory, OperatingSystem, Package, PackageType
from moorage.scanning.advisories import Advisory, Affected, Range, parse_osv
from moorage.scanning.advisories.keys import PackageKey, package_key
from moorage.scanning.matching import (
    cve_of,
    ecosystem_of,
    links_of,
    lookup_keys,
    match,
    normalise_severity,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "vulnscan" / "advisories"

DEBIAN_12 = OperatingSystem(id="debian", version_id="12", version_codename="bookworm")
ALPINE = OperatingSystem(id="alpine", version_id="3.20.3")
BOOKWORM = "Debian:12"


def load(name: str) -> Advisory:
    text = (FIXTURES / name).read_text()
    document: dict[str, Any] = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    return parse_osv(document, source=name)


def deb(
    name: str, version: str, source: str | None = None, source_version: str | None = None
) -> Package:
    return Package(
        type=PackageType.DEB,
        name=name,
        version=version,
        purl=f"pkg:deb/debian/{name}@{version}",
        path="var/lib/dpkg/status",
        source_name=source,
        source_version=source_version,
    )


def lang(type: PackageType, name: str, version: str, namespace: str | None = None) -> Package:
    return Package(
        type=type,
        name=name,
        version=version,
        purl=f"pkg:{type}/{name}@{version}",
        path="app",
        namespace=namespace,
    )


def advisory(
    id: str,
    ecosystem: str,
    package: str,
    *events: tuple[str, str],
    aliases: tuple[str, ...] = (),
    severity: str | None = None,
    vendor_severity: str | None = None,
    score: float | None = None,
    references: tuple[str, ...] = (),
    details: str = "",
) -> Advisory:
    range_ = Range("ECOSYSTEM", tuple(events))  # type: ignore[arg-type]
    fixed = tuple(v for kind, v in events if kind == "fixed")
    return Advisory(
        id=id,
        aliases=aliases,
        summary=f"summary of {id}",
        details=details,
        severity=severity,
        cvss_v3_score=score,
        cvss_v3_vector=None,
        references=references,
        published=None,
        modified=None,
        affected=(Affected(ecosystem, package, (range_,), (), fixed, vendor_severity),),
        source="test",
    )


def store(*advisories: Advisory) -> dict[PackageKey, list[Advisory]]:
    by_key: dict[PackageKey, list[Advisory]] = {}
    for record in advisories:
        for entry in record.affected:
            by_key.setdefault(package_key(entry.ecosystem, entry.package), []).append(record)
    return by_key


def run(
    os: OperatingSystem | None, packages: Sequence[Package], *advisories: Advisory
) -> list[Any]:
    return match(Inventory(os=os, packages=tuple(packages)), store(*advisories))


# ecosystem_of / lookup_keys


@pytest.mark.parametrize(
    ("os", "type", "expected"),
    [
        (DEBIAN_12, PackageType.DEB, "Debian:12"),
        (OperatingSystem(id="debian", version_id="11.9"), PackageType.DEB, "Debian:11"),
        (OperatingSystem(id="debian"), PackageType.DEB, None),  # sid/testing: no VERSION_ID
        (OperatingSystem(id="ubuntu", version_id="22.04"), PackageType.DEB, "Ubuntu:22.04:LTS"),
        (OperatingSystem(id="ubuntu", version_id="24.04"), PackageType.DEB, "Ubuntu:24.04:LTS"),
        (OperatingSystem(id="ubuntu", version_id="23.10"), PackageType.DEB, "Ubuntu:23.10"),
        (OperatingSystem(id="ubuntu", version_id="23.04"), PackageType.DEB, "Ubuntu:23.04"),
        (ALPINE, PackageType.APK, "Alpine:v3.20"),
        (OperatingSystem(id="wolfi", version_id="20230201"), PackageType.APK, "Wolfi"),
        (OperatingSystem(id="rocky", version_id="9.3"), PackageType.RPM, "Rocky Linux:9"),
        (OperatingSystem(id="almalinux", version_id="8.10"), PackageType.RPM, "AlmaLinux:8"),
        (OperatingSystem(id="photon", version_id="4.0"), PackageType.RPM, "Photon OS:4.0"),
        (OperatingSystem(id="rhel", version_id="9.4"), PackageType.RPM, None),
        (OperatingSystem(id="amzn", version_id="2023"), PackageType.RPM, None),
        (OperatingSystem(id="raspbian", version_id="12"), PackageType.DEB, None),
        (None, PackageType.DEB, None),
        (None, PackageType.PYPI, "PyPI"),
        (ALPINE, PackageType.NPM, "npm"),
        (None, PackageType.GOLANG, "Go"),
        (None, PackageType.MAVEN, "Maven"),
    ],
)
def test_ecosystem_of(os: OperatingSystem | None, type: PackageType, expected: str | None) -> None:
    assert ecosystem_of(os, lang(type, "p", "1")) == expected


def test_lookup_keys_use_source_names_and_ecosystem_names() -> None:
    packages = (
        deb("libssl3", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1"),
        deb("openssl", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1"),
        deb("bash", "5.2.15-2+b2", None, None),
        lang(PackageType.PYPI, "Django", "4.2"),
        lang(PackageType.MAVEN, "log4j-core", "2.14.1", "org.apache.logging.log4j"),
        lang(PackageType.NPM, "core", "7.0.0", "babel"),
        lang(PackageType.GOLANG, "stdlib", "1.21.3"),
        lang(PackageType.GOLANG, "golang.org/x/net", "v0.17.0"),
    )
    assert lookup_keys(Inventory(os=DEBIAN_12, packages=packages)) == {
        PackageKey("Debian:12", "openssl"),
        PackageKey("Debian:12", "bash"),
        PackageKey("PyPI", "django"),
        PackageKey("Maven", "org.apache.logging.log4j:log4j-core"),
        PackageKey("npm", "@babel/core"),
        PackageKey("Go", "stdlib"),
        PackageKey("Go", "golang.org/x/net"),
    }


def test_lookup_keys_skip_os_packages_of_unknown_distributions() -> None:
    inventory = Inventory(
        os=OperatingSystem(id="mystery", version_id="1"), packages=(deb("bash", "5.2-1"),)
    )
    assert lookup_keys(inventory) == set()


# match


OPENSSL_FIXED = advisory(
    "DEBIAN-CVE-2023-5678",
    BOOKWORM,
    "openssl",
    ("introduced", "0"),
    ("fixed", "3.0.11-1~deb12u2"),
    vendor_severity="low",
)


def test_binary_packages_of_a_vulnerable_source_each_get_a_finding() -> None:
    libssl = deb("libssl3", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1")
    tool = deb("openssl", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1")
    findings = run(DEBIAN_12, [tool, libssl], OPENSSL_FIXED)
    assert [(f.name, f.package.name) for f in findings] == [
        ("CVE-2023-5678", "libssl3"),
        ("CVE-2023-5678", "openssl"),
    ]
    assert findings[0].fixed_versions == ("3.0.11-1~deb12u2",)
    assert findings[0].fix_available
    assert findings[0].severity is Severity.LOW
    assert findings[0].advisory_id == "DEBIAN-CVE-2023-5678"
    assert findings[0].installed_version == "3.0.11-1~deb12u1"


def test_source_version_is_compared_not_the_binary_version() -> None:
    # A binNMU (+b1) binary of a fixed source: the source version decides.
    rebuilt = deb("libfoo1", "1.0-2+b1", "foo", "1.0-2")
    fixed_in_source = advisory(
        "CVE-2024-0001", BOOKWORM, "foo", ("introduced", "0"), ("fixed", "1.0-2")
    )
    assert run(DEBIAN_12, [rebuilt], fixed_in_source) == []


def test_fixed_package_is_not_reported() -> None:
    patched = deb("libssl3", "3.0.11-1~deb12u2", "openssl", "3.0.11-1~deb12u2")
    assert run(DEBIAN_12, [patched], OPENSSL_FIXED) == []


def test_unfixed_advisory_is_reported_without_fixed_versions() -> None:
    unfixed = advisory("CVE-2024-0002", BOOKWORM, "zlib", ("introduced", "0"), score=9.8)
    (finding,) = run(
        DEBIAN_12, [deb("zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1")], unfixed
    )
    assert finding.fixed_versions == ()
    assert not finding.fix_available
    assert finding.severity is Severity.CRITICAL  # from the CVSS score


def test_other_releases_advisories_are_not_looked_at() -> None:
    bullseye_only = advisory("CVE-2024-0003", "Debian:11", "openssl", ("introduced", "0"))
    libssl = deb("libssl3", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1")
    # Even if a store hands it over under bookworm's key, its entry names another release.
    advisories = {PackageKey(BOOKWORM, "openssl"): [bullseye_only]}
    assert match(Inventory(os=DEBIAN_12, packages=(libssl,)), advisories) == []


def test_unknown_distribution_is_not_matched() -> None:
    mystery = OperatingSystem(id="mystery", version_id="12")
    libssl = deb("libssl3", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1")
    assert run(mystery, [libssl], OPENSSL_FIXED) == []


def test_same_cve_from_two_records_is_reported_once_keeping_the_richer() -> None:
    bare = advisory("CVE-2023-5678", BOOKWORM, "openssl", ("introduced", "0"))
    libssl = deb("libssl3", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1")
    for order in ((bare, OPENSSL_FIXED), (OPENSSL_FIXED, bare)):
        (finding,) = run(DEBIAN_12, [libssl], *order)
        assert finding.advisory_id == "DEBIAN-CVE-2023-5678"  # it has a rating and a fix
        assert finding.fixed_versions == ("3.0.11-1~deb12u2",)


def test_ghsa_and_pysec_aliases_of_one_cve_are_reported_once() -> None:
    pysec = load("PYSEC-2023-246.yaml")
    ghsa = advisory(
        "GHSA-gfw2-4jvh-wgfg",
        "PyPI",
        "aiohttp",
        ("introduced", "0"),
        ("fixed", "3.8.6"),
        aliases=("CVE-2023-47627",),
        severity="MODERATE",
    )
    aiohttp = lang(PackageType.PYPI, "aiohttp", "3.8.5")
    findings = run(None, [aiohttp], pysec, ghsa)
    assert [(f.name, f.fixed_versions) for f in findings] == [("CVE-2023-47627", ("3.8.6",))]
    # Both rated, both with a fix: PYSEC has the CVSS score, so it is kept.
    assert findings[0].advisory_id == "PYSEC-2023-246"
    assert findings[0].severity is Severity.HIGH  # CVSS 7.5 (no vendor word)


def test_pysec_fixture_against_installed_versions() -> None:
    pysec = load("PYSEC-2023-246.yaml")
    old = lang(PackageType.PYPI, "AIOHTTP", "3.8.5")  # key normalisation: any case
    new = lang(PackageType.PYPI, "aiohttp", "3.8.6")
    (finding,) = run(None, [old, new], pysec)
    assert finding.package is old
    assert finding.name == "CVE-2023-47627"
    assert finding.cvss_v3_score == 7.5
    assert finding.links[0] == "https://osv.dev/vulnerability/PYSEC-2023-246"
    assert (
        finding.links.count(
            "https://github.com/aio-libs/aiohttp/security/advisories/GHSA-gfw2-4jvh-wgfg"
        )
        == 1
    )


def test_pypi_names_meet_whatever_the_spelling() -> None:
    record = advisory("PYSEC-2024-1", "PyPI", "Django", ("introduced", "4.2"), ("fixed", "4.2.11"))
    for spelling in ("django", "Django", "DJANGO"):
        (finding,) = run(None, [lang(PackageType.PYPI, spelling, "4.2.10")], record)
        assert finding.name == "PYSEC-2024-1"  # no CVE: the advisory's id
        assert finding.fixed_versions == ("4.2.11",)


def test_go_fixture_matches_module_with_v_prefix() -> None:
    go = load("GO-2022-0378.json")
    vulnerable = lang(PackageType.GOLANG, "github.com/foxcpp/maddy", "v0.5.1")
    patched = lang(PackageType.GOLANG, "github.com/foxcpp/maddy", "v0.5.2")
    (finding,) = run(None, [vulnerable, patched], go)
    assert finding.package is vulnerable
    assert finding.name == "GO-2022-0378"
    assert finding.severity is Severity.UNDEFINED  # no rating, no score
    assert finding.fixed_versions == ("0.5.2",)
    assert finding.links == (
        "https://pkg.go.dev/vuln/GO-2022-0378",
        "https://github.com/foxcpp/maddy/security/advisories/GHSA-qh54-9vc5-m9fg",
    )


def test_go_stdlib_toolchain_version() -> None:
    stdlib = advisory(
        "GO-2023-2185",
        "Go",
        "stdlib",
        ("introduced", "0"),
        ("fixed", "1.20.11"),
        ("introduced", "1.21.0-0"),
        ("fixed", "1.21.4"),
    )
    (finding,) = run(None, [lang(PackageType.GOLANG, "stdlib", "1.21.3")], stdlib)
    assert finding.fixed_versions == ("1.21.4",)
    assert run(None, [lang(PackageType.GOLANG, "stdlib", "1.21.4")], stdlib) == []
    (older,) = run(None, [lang(PackageType.GOLANG, "stdlib", "go1.20")], stdlib)
    assert older.fixed_versions == ("1.20.11", "1.21.4")


def test_maven_and_scoped_npm_names() -> None:
    log4j = advisory(
        "GHSA-jfh8-c2jp-5v3q",
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        ("introduced", "2.0-beta9"),
        ("fixed", "2.15.0"),
        aliases=("CVE-2021-44228",),
        severity="CRITICAL",
    )
    babel = advisory(
        "GHSA-67hx-6x53-jw92", "npm", "@babel/traverse", ("introduced", "0"), ("fixed", "7.23.2")
    )
    packages = [
        lang(PackageType.MAVEN, "log4j-core", "2.14.1", "org.apache.logging.log4j"),
        lang(PackageType.MAVEN, "log4j-core", "2.14.1"),  # no group: cannot match
        lang(PackageType.NPM, "traverse", "7.23.0", "babel"),
        lang(PackageType.NPM, "traverse", "7.23.0"),  # unscoped "traverse" is another package
    ]
    findings = run(None, packages, log4j, babel)
    assert [(f.name, f.package.namespace) for f in findings] == [
        ("CVE-2021-44228", "org.apache.logging.log4j"),
        ("GHSA-67hx-6x53-jw92", "babel"),
    ]
    assert findings[0].links[0] == "https://github.com/advisories/GHSA-jfh8-c2jp-5v3q"


def test_alpine_source_package_with_revision() -> None:
    apk = Package(
        type=PackageType.APK,
        name="libcrypto3",
        version="3.3.1-r9",
        purl="pkg:apk/alpine/libcrypto3",
        path="lib/apk/db/installed",
        source_name="openssl",
        source_version="3.3.1-r9",
    )
    record = advisory(
        "CVE-2024-5535", "Alpine:v3.20", "openssl", ("introduced", "0"), ("fixed", "3.3.1-r10")
    )
    (finding,) = run(ALPINE, [apk], record)
    assert finding.package.name == "libcrypto3"
    assert finding.fixed_versions == ("3.3.1-r10",)
    assert finding.links[0] == "https://nvd.nist.gov/vuln/detail/CVE-2024-5535"


# severity


def test_vendor_severity_wins_over_advisory_and_cvss() -> None:
    record = advisory(
        "CVE-2024-1000",
        BOOKWORM,
        "foo",
        ("introduced", "0"),
        vendor_severity="unimportant",
        severity="HIGH",
        score=9.8,
    )
    (finding,) = run(DEBIAN_12, [deb("foo", "1.0-1")], record)
    assert finding.severity is Severity.INFORMATIONAL


def test_advisory_severity_wins_over_cvss() -> None:
    record = advisory(
        "CVE-2024-1001", BOOKWORM, "foo", ("introduced", "0"), severity="MODERATE", score=9.8
    )
    (finding,) = run(DEBIAN_12, [deb("foo", "1.0-1")], record)
    assert finding.severity is Severity.MEDIUM


def test_unknown_vendor_word_falls_through() -> None:
    record = advisory(
        "CVE-2024-1002",
        BOOKWORM,
        "foo",
        ("introduced", "0"),
        vendor_severity="not yet assigned",
        score=5.0,
    )
    (finding,) = run(DEBIAN_12, [deb("foo", "1.0-1")], record)
    assert finding.severity is Severity.MEDIUM


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("MODERATE", Severity.MEDIUM),
        ("Important", Severity.HIGH),
        ("negligible", Severity.INFORMATIONAL),
        ("UNIMPORTANT", Severity.INFORMATIONAL),
        ("NONE", Severity.INFORMATIONAL),
        ("critical", Severity.CRITICAL),
        ("low", Severity.LOW),
        ("untriaged", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_severity(word: str | None, expected: Severity | None) -> None:
    assert normalise_severity(word) is expected


# names, links, order


def test_cve_of() -> None:
    base = OPENSSL_FIXED
    assert cve_of(base) == "CVE-2023-5678"
    assert (
        cve_of(dataclasses.replace(base, id="GHSA-x", aliases=("PYSEC-1", "CVE-2020-1")))
        == "CVE-2020-1"
    )
    assert cve_of(dataclasses.replace(base, id="GHSA-x", aliases=("PYSEC-1",))) is None


def test_links_put_the_advisorys_page_first_once() -> None:
    record = dataclasses.replace(
        OPENSSL_FIXED,
        references=(
            "https://example.org/a",
            "https://security-tracker.debian.org/tracker/CVE-2023-5678",
            "https://example.org/a",
        ),
    )
    assert links_of(record) == (
        "https://security-tracker.debian.org/tracker/CVE-2023-5678",
        "https://example.org/a",
    )
    unknown = dataclasses.replace(
        record, id="XYZ-9", references=("https://example.org/a", "https://db.example/XYZ-9")
    )
    assert links_of(unknown) == ("https://db.example/XYZ-9", "https://example.org/a")


def test_findings_sorted_by_severity_then_name_then_package() -> None:
    records = [
        advisory("CVE-2024-0002", BOOKWORM, "foo", ("introduced", "0"), severity="LOW"),
        advisory("CVE-2024-0001", BOOKWORM, "foo", ("introduced", "0"), severity="LOW"),
        advisory("CVE-2024-0009", BOOKWORM, "foo", ("introduced", "0"), severity="CRITICAL"),
        advisory("CVE-2024-0000", BOOKWORM, "foo", ("introduced", "0")),
    ]
    packages = [deb("libfoo", "1.0-1", "foo"), deb("foo-bin", "1.0-1", "foo")]
    findings = run(DEBIAN_12, packages, *records)
    assert [(f.severity.value, f.name, f.package.name) for f in findings] == [
        ("CRITICAL", "CVE-2024-0009", "foo-bin"),
        ("CRITICAL", "CVE-2024-0009", "libfoo"),
        ("LOW", "CVE-2024-0001", "foo-bin"),
        ("LOW", "CVE-2024-0001", "libfoo"),
        ("LOW", "CVE-2024-0002", "foo-bin"),
        ("LOW", "CVE-2024-0002", "libfoo"),
        ("UNDEFINED", "CVE-2024-0000", "foo-bin"),
        ("UNDEFINED", "CVE-2024-0000", "libfoo"),
    ]
    assert run(DEBIAN_12, packages[::-1], *records[::-1]) == findings


def test_matching_speed_150_packages_against_thousands_of_entries() -> None:
    # 150 OS packages from 50 sources; 60 advisories per source (3,000 affected entries).
    packages = [
        deb(f"lib{s}-{b}", f"1.{s}.0-1", f"src{s}", f"1.{s}.0-1")
        for s in range(50)
        for b in range(3)
    ]
    records = [
        advisory(
            f"CVE-2024-{s:02d}{i:03d}",
            BOOKWORM,
            f"src{s}",
            ("introduced", f"1.{s}.0-0"),
            ("fixed", f"1.{s}.{i % 3}-1~deb12u1"),
        )
        for s in range(50)
        for i in range(60)
    ]
    started = time.perf_counter()
    findings = run(DEBIAN_12, packages, *records)
    elapsed = time.perf_counter() - started
    # Fixed in 1.s.0-1~deb12u1 (< installed 1.s.0-1) for i % 3 == 0: 40 of 60 affect each source.
    assert len(findings) == 50 * 3 * 40
    assert elapsed < 5.0  # about 0.1 s warm on a laptop; a generous bound for slow CI
