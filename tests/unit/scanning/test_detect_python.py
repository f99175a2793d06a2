from moorage.domain.digests import Digest
from moorage.domain.inventory import Package, PackageType
from moorage.scanning.detect import python
from moorage.scanning.files import FileEntry, ImageFiles

LAYER = Digest.parse("sha256:" + "a" * 64)
SITE = "usr/local/lib/python3.12/site-packages"


def kept(text: str) -> FileEntry:
    data = text.encode()
    return FileEntry(size=len(data), layer=LAYER, data=data)


def metadata(name: str, version: str) -> str:
    return (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: x\n\n"
        "Name: not-a-header\nlong description\n"
    )


def test_dist_info_egg_info_and_names_normalised_in_the_purl() -> None:
    files = ImageFiles(
        files={
            f"{SITE}/requests-2.31.0.dist-info/METADATA": kept(metadata("requests", "2.31.0")),
            f"{SITE}/requests-2.31.0.dist-info/RECORD": FileEntry(size=10, layer=LAYER),
            f"{SITE}/zope.interface-6.0.dist-info/METADATA": kept(
                metadata("zope.interface", "6.0")
            ),
            "usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA": kept(
                metadata("Jinja2", "3.1.2")
            ),
            f"{SITE}/six-1.16.0-py3.12.egg-info/PKG-INFO": kept(metadata("six", "1.16.0")),
            "usr/lib/python2.7/dist-packages/Foo_Bar-0.1.egg-info": kept(
                metadata("Foo_Bar", "0.1")
            ),
            # Not installed: a wheel's metadata in a source tree, a METADATA elsewhere.
            "src/pkg-1.0.dist-info/METADATA": kept(metadata("pkg", "1.0")),
            f"{SITE}/requests/METADATA": kept(metadata("other", "1.0")),
        }
    )
    detected = python.detect(files, None)
    assert detected.issues == ()
    assert sorted(detected.packages, key=lambda p: p.purl) == [
        Package(
            PackageType.PYPI,
            "Foo_Bar",
            "0.1",
            "pkg:pypi/foo-bar@0.1",
            "usr/lib/python2.7/dist-packages/Foo_Bar-0.1.egg-info",
            LAYER,
        ),
        Package(
            PackageType.PYPI,
            "Jinja2",
            "3.1.2",
            "pkg:pypi/jinja2@3.1.2",
            "usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA",
            LAYER,
        ),
        Package(
            PackageType.PYPI,
            "requests",
            "2.31.0",
            "pkg:pypi/requests@2.31.0",
            f"{SITE}/requests-2.31.0.dist-info/METADATA",
            LAYER,
        ),
        Package(
            PackageType.PYPI,
            "six",
            "1.16.0",
            "pkg:pypi/six@1.16.0",
            f"{SITE}/six-1.16.0-py3.12.egg-info/PKG-INFO",
            LAYER,
        ),
        Package(
            PackageType.PYPI,
            "zope.interface",
            "6.0",
            "pkg:pypi/zope-interface@6.0",
            f"{SITE}/zope.interface-6.0.dist-info/METADATA",
            LAYER,
        ),
    ]


def test_wants_only_metadata_files() -> None:
    assert python.wants(f"{SITE}/a-1.dist-info/METADATA")
    assert python.wants("usr/lib/python3/dist-packages/a-1.dist-info/METADATA")
    assert python.wants("opt/app/a.egg-info/PKG-INFO")
    assert python.wants("usr/lib/python2.7/dist-packages/a-1.egg-info")
    assert not python.wants(f"{SITE}/a-1.dist-info/RECORD")
    assert not python.wants(f"{SITE}/a/__init__.py")


def test_metadata_without_a_version_is_an_issue() -> None:
    path = f"{SITE}/broken-1.dist-info/METADATA"
    files = ImageFiles(files={path: kept("Metadata-Version: 2.1\nName: broken\n")})
    detected = python.detect(files, None)
    assert detected.packages == ()
    assert [(i.path, i.layer) for i in detected.issues] == [(path, LAYER)]
