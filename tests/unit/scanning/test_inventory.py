"""The inventory: OS, OS packages, language packages, the "owned by an OS package" rule, and
UNSUPPORTED_IMAGE."""

from __future__ import annotations

from pathlib import Path

from moorage.domain.digests import Digest
from moorage.domain.inventory import InventoryIssue, OperatingSystem, Package, PackageType
from moorage.scanning.detect import apk, dpkg
from moorage.scanning.files import FileEntry, ImageFiles
from moorage.scanning.inventory import (
    Detected,
    FunctionDetector,
    default_detectors,
    inventory,
    wanted,
)

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "vulnscan"
LAYER = Digest.parse("sha256:" + "cd" * 32)
OWNED_METADATA = "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA"
LOOSE_METADATA = "usr/local/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA"


def image(files: dict[str, bytes], links: dict[str, str] | None = None) -> ImageFiles:
    return ImageFiles(
        files={p: FileEntry(len(d), LAYER, d) for p, d in files.items()}, links=links or {}
    )


def _fake_python(files: ImageFiles, os: OperatingSystem | None) -> Detected:
    return Detected(
        packages=tuple(
            Package(PackageType.PYPI, "six", "1.16.0", "pkg:pypi/six@1.16.0", path)
            for path in files.paths()
            if path.endswith(".dist-info/METADATA")
        )
    )


FAKE_PYTHON = FunctionDetector("python", lambda p: p.endswith("METADATA"), _fake_python)


def test_debian_with_a_python_package_owned_by_dpkg() -> None:
    status = (DATA / "debian/bookworm-minbase.dpkg-status").read_bytes() + (
        b"\nPackage: python3-six\nStatus: install ok installed\nVersion: 1.16.0-4\n"
        b"Architecture: all\nSource: six\n"
    )
    files = image(
        {
            "usr/lib/os-release": (DATA / "debian/bookworm.os-release").read_bytes(),
            dpkg.STATUS: status,
            "var/lib/dpkg/info/python3-six.list": f"/{OWNED_METADATA}\n".encode(),
            OWNED_METADATA: b"Name: six\n",
            LOOSE_METADATA: b"Name: six\n",
        },
        links={"etc/os-release": "../usr/lib/os-release"},
    )
    result = inventory(files, [dpkg.DETECTOR, FAKE_PYTHON])
    assert result.os is not None
    assert (result.os.id, result.os.version_id) == ("debian", "12")
    assert result.unsupported is None
    assert len(result.packages) == 89 + 1  # 89 deb, the pip-installed six; the owned one dropped
    pypi = [p for p in result.packages if p.type == PackageType.PYPI]
    assert [p.path for p in pypi] == [LOOSE_METADATA]
    assert [p.type for p in result.packages] == sorted(p.type for p in result.packages)
    debs = [p.name for p in result.packages if p.type == PackageType.DEB]
    assert debs == sorted(debs)


def test_alpine() -> None:
    files = image(
        {
            "etc/os-release": (DATA / "alpine/alpine-3.20-minirootfs.os-release").read_bytes(),
            apk.INSTALLED: (DATA / "alpine/alpine-3.20-minirootfs.apk-installed").read_bytes(),
        }
    )
    result = inventory(files, [apk.DETECTOR])
    assert len(result.packages) == 14
    assert result.packages[0].purl.endswith("distro=alpine-3.20.3")


def test_unsupported_when_nothing_is_found() -> None:
    files = image({"bin/busybox": b"\x7fELF"})
    files.issues.append(InventoryIssue("etc/passwd", "link out of the root", LAYER))
    result = inventory(files, [dpkg.DETECTOR, apk.DETECTOR])
    assert result.os is None
    assert result.packages == ()
    assert result.unsupported is not None
    assert result.unsupported.startswith("no operating system (os-release) and no package found")
    assert "etc/passwd: link out of the root" in result.unsupported
    assert result.issues == (InventoryIssue("etc/passwd", "link out of the root", LAYER),)


def test_packages_without_os_are_supported() -> None:
    result = inventory(image({LOOSE_METADATA: b"Name: six\n"}), [FAKE_PYTHON])
    assert result.os is None
    assert result.unsupported is None
    assert len(result.packages) == 1


def test_os_without_packages_is_supported() -> None:
    result = inventory(image({"etc/os-release": b"ID=scratchy\n"}), [])
    assert result.os == OperatingSystem(id="scratchy")
    assert result.unsupported is None


def test_wanted() -> None:
    detectors = [dpkg.DETECTOR, apk.DETECTOR]
    for path in ("etc/os-release", "usr/lib/os-release", dpkg.STATUS, apk.INSTALLED):
        assert wanted(path, detectors)
    assert not wanted("usr/bin/bash", detectors)
    assert wanted("var/lib/rpm/rpmdb.sqlite")  # the default detectors


def test_default_detectors_os_package_managers_first() -> None:
    names = [d.name for d in default_detectors()]
    assert names[:3] == ["dpkg", "apk", "rpm"]
