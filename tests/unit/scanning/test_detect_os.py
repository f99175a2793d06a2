"""OS detection (os-release) and the OS package detectors (dpkg, apk, rpm), on real package
databases from Debian bookworm and Alpine 3.10/3.20 root filesystems (tests/fixtures/vulnscan,
copied from ../shared/data/vulnscan)."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import pytest

from moorage.domain.digests import Digest
from moorage.domain.inventory import OperatingSystem, PackageType
from moorage.scanning.detect import apk, dpkg, os_release, rpm
from moorage.scanning.files import FileEntry, ImageFiles

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "vulnscan"
LAYER = Digest.parse("sha256:" + "ab" * 32)
DEBIAN = OperatingSystem(id="debian", version_id="12", version_codename="bookworm")
ALPINE = OperatingSystem(id="alpine", version_id="3.20.3")


def image(files: dict[str, bytes], links: dict[str, str] | None = None) -> ImageFiles:
    return ImageFiles(
        files={p: FileEntry(len(d), LAYER, d) for p, d in files.items()}, links=links or {}
    )


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


# os-release


def test_os_release_through_the_etc_symlink() -> None:
    files = image(
        {"usr/lib/os-release": fixture("debian/bookworm.os-release")},
        links={"etc/os-release": "../usr/lib/os-release"},
    )
    os, issues = os_release.detect(files)
    assert os == OperatingSystem(
        id="debian",
        version_id="12",
        version_codename="bookworm",
        pretty_name="Debian GNU/Linux 12 (bookworm)",
    )
    assert issues == []


@pytest.mark.parametrize(
    ("name", "version_id", "pretty"),
    [
        ("alpine/alpine-3.10-minirootfs.os-release", "3.10.3", "Alpine Linux v3.10"),
        ("alpine/alpine-3.20-minirootfs.os-release", "3.20.3", "Alpine Linux v3.20"),
    ],
)
def test_os_release_alpine(name: str, version_id: str, pretty: str) -> None:
    os, _ = os_release.detect(image({"etc/os-release": fixture(name)}))
    assert os is not None
    assert (os.id, os.version_id, os.pretty_name) == ("alpine", version_id, pretty)


def test_os_release_quoting_and_comments() -> None:
    text = (
        "# a comment\n"
        "ID='rhel'\n"
        'ID_LIKE="fedora  Centos"\n'
        'PRETTY_NAME="Red Hat \\"Enterprise\\" $Linux"\n'
        "VERSION_ID=9.4 # trailing comment\n"
        "not an assignment\n"
        'BROKEN="unterminated\n'
    )
    assert os_release.parse(text) == {
        "ID": "rhel",
        "ID_LIKE": "fedora  Centos",
        "PRETTY_NAME": 'Red Hat "Enterprise" $Linux',
        "VERSION_ID": "9.4",
    }
    os = os_release.from_fields(os_release.parse(text))
    assert os is not None
    assert os.id_like == ("fedora", "centos")


def test_os_release_etc_wins_and_missing_id_is_an_issue() -> None:
    files = image({"etc/os-release": b"NAME=x\n", "usr/lib/os-release": b"ID=debian\n"})
    os, issues = os_release.detect(files)
    assert os is None
    assert [(i.path, i.problem) for i in issues] == [("etc/os-release", "os-release has no ID")]
    assert os_release.detect(image({})) == (None, [])


# dpkg


def test_dpkg_bookworm_minbase() -> None:
    files = image({dpkg.STATUS: fixture("debian/bookworm-minbase.dpkg-status")})
    detected = dpkg.detect(files, DEBIAN)
    assert len(detected.packages) == 88
    assert detected.issues == ()
    by_name = {p.name: p for p in detected.packages}
    libc6 = by_name["libc6"]
    assert (libc6.type, libc6.version, libc6.arch) == (PackageType.DEB, "2.36-9+deb12u14", "amd64")
    assert (libc6.source_name, libc6.source_version) == ("glibc", "2.36-9+deb12u14")
    assert libc6.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12"
    assert (libc6.path, libc6.layer) == ("var/lib/dpkg/status", LAYER)
    bsdutils = by_name["bsdutils"]  # epoch kept as written; source with its own version
    assert bsdutils.version == "1:2.38.1-5+deb12u3"
    assert (bsdutils.source_name, bsdutils.source_version) == ("util-linux", "2.38.1-5+deb12u3")
    assert bsdutils.purl.startswith("pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?")
    bash = by_name["bash"]  # binNMU: source version differs from the binary's
    assert (bash.version, bash.source_name, bash.source_version) == (
        "5.2.15-2+b13",
        "bash",
        "5.2.15-2",
    )
    adduser = by_name["adduser"]  # no Source field: its own source
    assert (adduser.source_name, adduser.source_version, adduser.arch) == (
        "adduser",
        "3.134",
        "all",
    )


def test_dpkg_bookworm_vulnset_count() -> None:
    files = image({dpkg.STATUS: fixture("debian/bookworm-vulnset.dpkg-status")})
    assert len(dpkg.detect(files, DEBIAN).packages) == 144


def test_dpkg_skips_packages_not_installed_and_reads_owned_files() -> None:
    status = fixture("debian/bookworm-minbase.dpkg-status") + (
        b"\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n"
        b"Architecture: amd64\n\nPackage: held\nStatus: hold ok installed\nVersion: 2.0\n"
        b"Architecture: amd64\n"
    )
    files = image(
        {
            dpkg.STATUS: status,
            "var/lib/dpkg/info/libc6:amd64.list": (
                b"/.\n/usr\n/usr/lib/x86_64-linux-gnu/libc.so.6\n"
            ),
            "var/lib/dpkg/info/adduser.list": b"/usr/sbin/adduser\n",
        }
    )
    detected = dpkg.detect(files, DEBIAN)
    names = {p.name for p in detected.packages}
    assert "removed" not in names
    assert "held" in names
    assert len(detected.packages) == 89
    assert detected.owned == {"usr", "usr/lib/x86_64-linux-gnu/libc.so.6", "usr/sbin/adduser"}


def test_dpkg_distroless_status_d() -> None:
    files = image(
        {
            "var/lib/dpkg/status.d/libc6": (
                b"Package: libc6\nVersion: 2.36-9+deb12u7\nArchitecture: arm64\n"
                b"Source: glibc\nMaintainer: x\n"
            ),
            "var/lib/dpkg/status.d/libc6.md5sums": (
                b"0123456789abcdef0123456789abcdef  lib/aarch64-linux-gnu/libc.so.6\n"
            ),
            "var/lib/dpkg/status.d/tzdata": b"Package: tzdata\nVersion: 2024a-0+deb12u1\n"
            b"Architecture: all\n",
        }
    )
    detected = dpkg.detect(files, DEBIAN)
    assert [(p.name, p.version, p.source_name, p.path) for p in detected.packages] == [
        ("libc6", "2.36-9+deb12u7", "glibc", "var/lib/dpkg/status.d/libc6"),
        ("tzdata", "2024a-0+deb12u1", "tzdata", "var/lib/dpkg/status.d/tzdata"),
    ]
    assert detected.packages[0].purl == (
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=arm64&distro=debian-12"
    )
    assert detected.owned == {"lib/aarch64-linux-gnu/libc.so.6"}


def test_dpkg_wants() -> None:
    assert dpkg.wants("var/lib/dpkg/status")
    assert dpkg.wants("var/lib/dpkg/status.d/libc6")
    assert dpkg.wants("var/lib/dpkg/info/libc6:amd64.list")
    assert not dpkg.wants("var/lib/dpkg/info/libc6:amd64.md5sums")
    assert not dpkg.wants("var/lib/dpkg/status-old")


def test_dpkg_without_os_uses_debian_namespace() -> None:
    files = image({"var/lib/dpkg/status.d/x": b"Package: x\nVersion: 1\nArchitecture: all\n"})
    assert dpkg.detect(files, None).packages[0].purl == "pkg:deb/debian/x@1?arch=all"


# apk


@pytest.mark.parametrize(
    ("name", "count", "package", "version", "origin"),
    [
        ("alpine/alpine-3.10-minirootfs.apk-installed", 14, "musl", "1.1.22-r3", "musl"),
        ("alpine/alpine-3.20-minirootfs.apk-installed", 14, "libcrypto3", "3.3.2-r0", "openssl"),
    ],
)
def test_apk(name: str, count: int, package: str, version: str, origin: str) -> None:
    detected = apk.detect(image({apk.INSTALLED: fixture(name)}), ALPINE)
    assert len(detected.packages) == count
    assert detected.issues == ()
    found = next(p for p in detected.packages if p.name == package)
    assert (found.type, found.version, found.source_name, found.arch) == (
        PackageType.APK,
        version,
        origin,
        "x86_64",
    )
    assert found.purl == f"pkg:apk/alpine/{package}@{version}?arch=x86_64&distro=alpine-3.20.3"


def test_apk_owned_paths() -> None:
    name = "alpine/alpine-3.20-minirootfs.apk-installed"
    detected = apk.detect(image({apk.INSTALLED: fixture(name)}), ALPINE)
    assert {"etc/motd", "etc/crontabs/root", "etc/modprobe.d/aliases.conf"} <= detected.owned
    assert "lib/libcrypto.so.3" in detected.owned
    assert detected.owned == {
        p for p in detected.owned if not p.startswith("/") and ".." not in p.split("/")
    }


# rpm


def _header(tags: list[tuple[int, int, bytes, int]]) -> bytes:
    """An rpm header blob: (tag, type, data, count) entries."""
    index, store = b"", b""
    for tag, type_, data, count in tags:
        if type_ == 4:
            store += b"\0" * (-len(store) % 4)
        index += struct.pack(">IIII", tag, type_, len(store), count)
        store += data
    return struct.pack(">II", len(tags), len(store)) + index + store


def _s(value: str) -> bytes:
    return value.encode() + b"\0"


def _rpmdb(*blobs: bytes) -> bytes:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    db.executemany("INSERT INTO Packages (blob) VALUES (?)", [(b,) for b in blobs])
    db.commit()
    data = db.serialize()
    db.close()
    return data


OPENSSL = _header(
    [
        (rpm.NAME, 6, _s("openssl-libs"), 1),
        (rpm.VERSION, 6, _s("3.0.7"), 1),
        (rpm.RELEASE, 6, _s("27.el9"), 1),
        (rpm.EPOCH, 4, struct.pack(">i", 1), 1),
        (rpm.ARCH, 6, _s("x86_64"), 1),
        (rpm.SOURCERPM, 6, _s("openssl-3.0.7-27.el9.src.rpm"), 1),
        (rpm.DIRINDEXES, 4, struct.pack(">ii", 0, 1), 2),
        (rpm.BASENAMES, 8, _s("libssl.so.3") + _s("openssl.cnf"), 2),
        (rpm.DIRNAMES, 8, _s("/usr/lib64/") + _s("/etc/pki/tls/"), 2),
    ]
)
BASH = _header(
    [
        (rpm.NAME, 6, _s("bash"), 1),
        (rpm.VERSION, 6, _s("5.1.8"), 1),
        (rpm.RELEASE, 6, _s("9.el9"), 1),
        (rpm.ARCH, 6, _s("x86_64"), 1),
        (rpm.SOURCERPM, 6, _s("bash-5.1.8-9.el9.src.rpm"), 1),
    ]
)
PUBKEY = _header(
    [
        (rpm.NAME, 6, _s("gpg-pubkey"), 1),
        (rpm.VERSION, 6, _s("fd431d51"), 1),
        (rpm.RELEASE, 6, _s("4ae0493b"), 1),
    ]
)


def test_rpm_sqlite() -> None:
    rhel = OperatingSystem(id="rhel", version_id="9.4")
    files = image({"var/lib/rpm/rpmdb.sqlite": _rpmdb(OPENSSL, BASH, PUBKEY, b"\0\0\0\xff")})
    detected = rpm.detect(files, rhel)
    assert [(p.name, p.version, p.source_name, p.source_version) for p in detected.packages] == [
        ("openssl-libs", "1:3.0.7-27.el9", "openssl", "1:3.0.7-27.el9"),
        ("bash", "5.1.8-9.el9", "bash", "5.1.8-9.el9"),
    ]
    assert detected.packages[0].purl == (
        "pkg:rpm/rhel/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rhel-9.4&epoch=1"
    )
    assert detected.packages[0].type == PackageType.RPM
    assert detected.owned == {"usr/lib64/libssl.so.3", "etc/pki/tls/openssl.cnf"}
    assert [i.problem for i in detected.issues] == ["rpm header 4 unreadable: header too short"]


@pytest.mark.parametrize("path", ["var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages.db"])
def test_rpm_older_formats_are_unsupported(path: str) -> None:
    detected = rpm.detect(image({path: b"\0" * 64}), None)
    assert detected.packages == ()
    assert [(i.path, i.problem) for i in detected.issues] == [(path, rpm.UNSUPPORTED)]


def test_rpm_not_a_database() -> None:
    detected = rpm.detect(image({"var/lib/rpm/rpmdb.sqlite": b"garbage" * 100}), None)
    assert detected.packages == ()
    assert detected.issues[0].problem.startswith("rpm database unreadable")


def test_rpm_split_source_rpm() -> None:
    assert rpm.split_source_rpm("glibc-2.34-60.el9.src.rpm") == ("glibc", "2.34-60.el9")
    assert rpm.split_source_rpm("python3.11-3.11.5-1.el9.nosrc.rpm") == (
        "python3.11",
        "3.11.5-1.el9",
    )
    assert rpm.split_source_rpm("nonsense") is None
