import json

from moorage.domain.digests import Digest
from moorage.domain.inventory import Package, PackageType
from moorage.scanning.detect import npm
from moorage.scanning.files import FileEntry, ImageFiles

LAYER = Digest.parse("sha256:" + "b" * 64)
NM = "app/node_modules"


def manifest(**fields: object) -> FileEntry:
    data = json.dumps(fields).encode()
    return FileEntry(size=len(data), layer=LAYER, data=data)


def test_packages_scoped_nested_and_aliased() -> None:
    files = ImageFiles(
        files={
            "app/package.json": manifest(name="my-app", version="1.0.0"),
            f"{NM}/lodash/package.json": manifest(name="lodash", version="4.17.20"),
            f"{NM}/@babel/core/package.json": manifest(name="@babel/core", version="7.22.0"),
            f"{NM}/express/node_modules/qs/package.json": manifest(name="qs", version="6.5.2"),
            f"{NM}/alias/package.json": manifest(name="minimist", version="1.2.5"),
            # Not packages: fixtures inside a package, the scope folder itself, no version,
            # not JSON, a list.
            f"{NM}/lodash/test/fixture/package.json": manifest(name="fixture", version="0.0.1"),
            f"{NM}/@babel/package.json": manifest(name="@babel", version="1.0.0"),
            f"{NM}/noversion/package.json": manifest(name="noversion"),
            f"{NM}/garbage/package.json": FileEntry(size=3, layer=LAYER, data=b"{{{"),
            f"{NM}/list/package.json": FileEntry(size=2, layer=LAYER, data=b"[]"),
        }
    )
    detected = npm.detect(files, None)
    assert detected.issues == ()
    assert list(detected.packages) == [
        Package(
            PackageType.NPM,
            "core",
            "7.22.0",
            "pkg:npm/%40babel/core@7.22.0",
            f"{NM}/@babel/core/package.json",
            LAYER,
            namespace="babel",
        ),
        Package(
            PackageType.NPM,
            "minimist",
            "1.2.5",
            "pkg:npm/minimist@1.2.5",
            f"{NM}/alias/package.json",
            LAYER,
        ),
        Package(
            PackageType.NPM,
            "qs",
            "6.5.2",
            "pkg:npm/qs@6.5.2",
            f"{NM}/express/node_modules/qs/package.json",
            LAYER,
        ),
        Package(
            PackageType.NPM,
            "lodash",
            "4.17.20",
            "pkg:npm/lodash@4.17.20",
            f"{NM}/lodash/package.json",
            LAYER,
        ),
    ]


def test_wants() -> None:
    assert npm.wants("node_modules/a/package.json")
    assert npm.wants("usr/lib/node_modules/npm/node_modules/@npmcli/arborist/package.json")
    assert not npm.wants("app/package.json")
    assert not npm.wants("node_modules/a/lib/package.json")
    assert not npm.wants("node_modules/@scope/package.json")
