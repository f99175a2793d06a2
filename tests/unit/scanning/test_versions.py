"""Version ordering per ecosystem, and OSV's evaluation of affected ranges."""

from __future__ import annotations

import logging

import pytest

from moorage.scanning.advisories.model import Affected, EventKind, Range, RangeType
from moorage.scanning.versions import Scheme, fixes_after, is_affected, parse, scheme_of


def lt(scheme: Scheme, a: str, b: str) -> bool:
    left, right = parse(scheme, a), parse(scheme, b)
    assert left is not None, a
    assert right is not None, b
    return bool(left < right)


@pytest.mark.parametrize(
    ("ecosystem", "scheme"),
    [
        ("Debian:12", Scheme.DEBIAN),
        ("Debian", Scheme.DEBIAN),
        ("Ubuntu:22.04:LTS", Scheme.DEBIAN),
        ("Alpine:v3.20", Scheme.ALPINE),
        ("Red Hat:enterprise_linux:9::appstream", Scheme.RPM),
        ("AlmaLinux:9", Scheme.RPM),
        ("Rocky Linux:8", Scheme.RPM),
        ("openSUSE:Leap 15.5", Scheme.RPM),
        ("PyPI", Scheme.PYPI),
        ("npm", Scheme.SEMVER),
        ("Go", Scheme.GO),
        ("Maven", Scheme.MAVEN),
        ("crates.io", None),
        ("", None),
    ],
)
def test_scheme_of_osv_ecosystems(ecosystem: str, scheme: Scheme | None) -> None:
    assert scheme_of(ecosystem) is scheme


@pytest.mark.parametrize(
    ("scheme", "lower", "higher"),
    [
        # Debian: an epoch beats everything; ~ sorts before the release; stable-update revisions.
        (Scheme.DEBIAN, "2.0-1", "1:2.0~rc1-1"),
        (Scheme.DEBIAN, "2.0~rc1-1", "2.0-1"),
        (Scheme.DEBIAN, "3.0.20-1~deb12u2", "3.0.22-1~deb12u2"),
        (Scheme.DEBIAN, "3.0.11-1~deb12u1", "3.0.11-1~deb12u2"),
        (Scheme.DEBIAN, "1.2.13.dfsg-1", "1:1.2.13.dfsg-1"),
        (Scheme.DEBIAN, "3.0.2-0ubuntu1.15", "3.0.2-0ubuntu1.18"),
        # Alpine: -r10 after -r9 (numbers, not text); pre-release and patch suffixes.
        (Scheme.ALPINE, "1.36.1-r9", "1.36.1-r10"),
        (Scheme.ALPINE, "3.1.4_rc1-r0", "3.1.4-r0"),
        (Scheme.ALPINE, "3.1.4-r0", "3.1.4_p1-r0"),
        (Scheme.ALPINE, "3.1.4_p1-r0", "3.1.4_p2-r0"),
        (Scheme.ALPINE, "9.3_p1-r3", "9.3_p2-r0"),
        # apk's _git (univers alone rejects it): after the release, before _p.
        (Scheme.ALPINE, "2.4.7-r0", "2.4.7_git20230101-r0"),
        (Scheme.ALPINE, "2.4.7_git20230101-r0", "2.4.7_git20230201-r0"),
        (Scheme.ALPINE, "2.4.7_git20230101-r0", "2.4.7_p1-r0"),
        # RPM: epochs and tildes.
        (Scheme.RPM, "3.0.7-27.el9", "1:3.0.7-25.el9"),
        (Scheme.RPM, "1.0~rc1-1", "1.0-1"),
        (Scheme.RPM, "2.34-60.el9", "2.34-100.el9"),
        # PEP 440: pre < release < local < post; normalised spellings.
        (Scheme.PYPI, "3.8.6rc1", "3.8.6"),
        (Scheme.PYPI, "3.8.6", "3.8.6+ubuntu1"),
        (Scheme.PYPI, "3.8.6+ubuntu1", "3.8.6.post1"),
        (Scheme.PYPI, "1.0.dev0", "1.0a1"),
        (Scheme.PYPI, "3.9.0", "3.10.0"),
        # npm semver: pre-releases sort before their release, numerically by identifier.
        (Scheme.SEMVER, "4.17.20", "4.17.21"),
        (Scheme.SEMVER, "1.0.0-beta.2", "1.0.0-beta.11"),
        (Scheme.SEMVER, "1.0.0-rc.1", "1.0.0"),
        # Go: with or without v, pre-releases, +incompatible, pseudo-versions, toolchains.
        (Scheme.GO, "v1.2.3-pre", "v1.2.3"),
        (Scheme.GO, "1.2.3", "v1.2.4"),
        (Scheme.GO, "v1.9.0", "v2.0.0+incompatible"),
        (Scheme.GO, "v0.0.0-20220101000000-abcdef123456", "v0.0.1"),
        (Scheme.GO, "go1.21rc2", "1.21.0"),
        (Scheme.GO, "1.21.0-rc.1", "go1.21rc2"),
        (Scheme.GO, "go1.20.14", "1.21.3"),
        # Maven: qualifiers.
        (Scheme.MAVEN, "1.0-alpha1", "1.0-beta1"),
        (Scheme.MAVEN, "1.0-beta1", "1.0-RC1"),
        (Scheme.MAVEN, "1.0-SNAPSHOT", "1.0"),
        (Scheme.MAVEN, "1.0", "1.0-sp1"),
        (Scheme.MAVEN, "2.14.1", "2.17.1"),
        (Scheme.MAVEN, "9.0.9", "9.0.10"),
    ],
)
def test_ordering(scheme: Scheme, lower: str, higher: str) -> None:
    assert lt(scheme, lower, higher)
    assert not lt(scheme, higher, lower)


@pytest.mark.parametrize(
    ("scheme", "a", "b"),
    [
        (Scheme.GO, "v1.2.3", "1.2.3"),
        (Scheme.GO, "go1.20", "1.20.0"),
        (Scheme.GO, "go1.21rc2", "1.21.0-rc.2"),
        (Scheme.PYPI, "1.0", "1.0.0"),
        (Scheme.DEBIAN, "0:1.0-1", "1.0-1"),
        (Scheme.MAVEN, "1.0", "1.0.0"),
    ],
)
def test_equal_spellings(scheme: Scheme, a: str, b: str) -> None:
    assert parse(scheme, a) == parse(scheme, b)


@pytest.mark.parametrize(
    ("scheme", "text"),
    [
        (Scheme.DEBIAN, "not a version!"),
        (Scheme.DEBIAN, ""),
        (Scheme.PYPI, "not-pep440"),
        (Scheme.ALPINE, "bogus!"),
    ],
)
def test_unparseable_is_none_and_logged(
    scheme: Scheme, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    parse.cache_clear()  # the warning is logged when the text is first parsed
    with caplog.at_level(logging.DEBUG, logger="moorage.scanning.versions"):
        assert parse(scheme, text) is None
    assert f"{text!r} is not a valid {scheme.value} version" in caplog.text


def rng(*events: tuple[EventKind, str], type: RangeType = "ECOSYSTEM") -> Range:
    return Range(type=type, events=events)


def entry(*ranges: Range, versions: tuple[str, ...] = ()) -> Affected:
    return Affected(ecosystem="PyPI", package="x", ranges=ranges, versions=versions, fixed=())


FIXED = rng(("introduced", "1.2.0"), ("fixed", "1.4.0"))


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.1.9", False), ("1.2.0", True), ("1.3.9", True), ("1.4.0", False), ("2.0", False)],
)
def test_introduced_inclusive_fixed_exclusive(version: str, expected: bool) -> None:
    assert is_affected(Scheme.PYPI, version, entry(FIXED)) is expected


@pytest.mark.parametrize(("version", "expected"), [("0.0.1", True), ("9.9", True)])
def test_introduced_zero_without_fix_is_every_version(version: str, expected: bool) -> None:
    assert is_affected(Scheme.PYPI, version, entry(rng(("introduced", "0")))) is expected


@pytest.mark.parametrize(
    ("version", "expected"), [("1.0", True), ("1.5.0", True), ("1.5.1", False)]
)
def test_last_affected_is_inclusive(version: str, expected: bool) -> None:
    last = rng(("introduced", "0"), ("last_affected", "1.5.0"))
    assert is_affected(Scheme.PYPI, version, entry(last)) is expected


@pytest.mark.parametrize(
    ("version", "expected"), [("1.0", True), ("1.9", True), ("2.0", False), ("3.0", False)]
)
def test_limit_bounds_the_range(version: str, expected: bool) -> None:
    limited = rng(("introduced", "0"), ("limit", "2.0"))
    assert is_affected(Scheme.PYPI, version, entry(limited)) is expected


def test_limit_star_is_infinity() -> None:
    assert is_affected(Scheme.PYPI, "99", entry(rng(("introduced", "0"), ("limit", "*"))))


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.0", True), ("1.5", False), ("1.9", False), ("2.0", True), ("2.2", False)],
)
def test_events_out_of_order_are_sorted(version: str, expected: bool) -> None:
    # One range, two vulnerable spans, written fix-first: sorting decides, not record order.
    shuffled = rng(("fixed", "2.2"), ("introduced", "2.0"), ("fixed", "1.5"), ("introduced", "0"))
    assert is_affected(Scheme.PYPI, version, entry(shuffled)) is expected


@pytest.mark.parametrize(
    ("version", "expected"), [("1.0", True), ("1.4", False), ("2.1", True), ("2.3", False)]
)
def test_any_of_several_ranges(version: str, expected: bool) -> None:
    first = rng(("introduced", "0"), ("fixed", "1.4"))
    second = rng(("introduced", "2.0"), ("fixed", "2.3"))
    assert is_affected(Scheme.PYPI, version, entry(first, second)) is expected


def test_introduced_and_fixed_at_one_version_affect_nothing() -> None:
    empty = rng(("introduced", "1.0"), ("fixed", "1.0"))
    assert not is_affected(Scheme.PYPI, "1.0", entry(empty))


def test_explicit_versions_without_ranges() -> None:
    listed = entry(versions=("1.0", "1.1"))
    assert is_affected(Scheme.PYPI, "1.1", listed)
    assert is_affected(Scheme.PYPI, "1.1.0", listed)  # PEP 440 equal
    assert not is_affected(Scheme.PYPI, "1.2", listed)


def test_git_ranges_are_ignored() -> None:
    git = rng(
        ("introduced", "0"), ("fixed", "d5c12ba890557a575c313bb3017910d7616fce3d"), type="GIT"
    )
    assert not is_affected(Scheme.PYPI, "1.0", entry(git))


def test_go_semver_range_with_v_prefixed_installed_version() -> None:
    go = Affected(
        "Go", "m", (rng(("introduced", "0.5.0"), ("fixed", "0.5.2"), type="SEMVER"),), (), ()
    )
    assert is_affected(Scheme.GO, "v0.5.1", go)
    assert not is_affected(Scheme.GO, "v0.5.2", go)


def test_unparseable_installed_version_is_not_affected() -> None:
    assert not is_affected(Scheme.DEBIAN, "garbage!", entry(rng(("introduced", "0"))))


def test_range_with_unparseable_fix_is_skipped_not_widened() -> None:
    broken = rng(("introduced", "0"), ("fixed", "not a version!"))
    good = rng(("introduced", "5.0"), ("fixed", "6.0"))
    assert not is_affected(Scheme.DEBIAN, "1.0-1", entry(broken, good))
    assert is_affected(Scheme.DEBIAN, "5.1-1", entry(broken, good))


def test_fixes_after_sorted_in_scheme_and_only_greater() -> None:
    fixes = ("3.0.11-1~deb12u2", "3.0.9-1", "1:0.1-1", "3.0.11-1~deb12u2", "junk!")
    assert fixes_after(Scheme.DEBIAN, "3.0.10-1", fixes) == ("3.0.11-1~deb12u2", "1:0.1-1")
    assert fixes_after(Scheme.PYPI, "1.9", ("1.10", "1.2", "2.0rc1")) == ("1.10", "2.0rc1")


@pytest.mark.parametrize(
    ("version", "expected"), [("3.3.1-r8", True), ("3.3.1-r9", True), ("3.3.1-r10", False)]
)
def test_alpine_revision_fix_is_ordered_numerically(version: str, expected: bool) -> None:
    # univers' own ">=" on Alpine compares text ("-r9" >= "-r10"); only "<" is trusted.
    apk = Affected(
        "Alpine:v3.20", "openssl", (rng(("introduced", "0"), ("fixed", "3.3.1-r10")),), (), ()
    )
    assert is_affected(Scheme.ALPINE, version, apk) is expected


def test_alpine_listed_version_equal_in_apk_order() -> None:
    listed = Affected("Alpine:v3.20", "x", (), ("1.0_p1-r0",), ())
    assert is_affected(Scheme.ALPINE, "1.0_p1-r0", listed)
    assert not is_affected(Scheme.ALPINE, "1.0_p2-r0", listed)
