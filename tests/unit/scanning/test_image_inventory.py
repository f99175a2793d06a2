"""Layers to inventory, end to end: a Debian base layer (gzip) and an application layer
(zstd) that pip-installs a package and removes a file of the base with a whiteout."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import zstandard

from moorage.domain.digests import Digest
from moorage.domain.inventory import PackageType
from moorage.scanning.inventory import inventory, wanted
from moorage.scanning.layers import read_layers_sync

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "vulnscan" / "debian"
METADATA = "usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA"


def tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_debian_image_with_a_pip_installed_package() -> None:
    base = gzip.compress(
        tar(
            {
                "etc/os-release": (DATA / "bookworm.os-release").read_bytes(),
                "var/lib/dpkg/status": (DATA / "bookworm-minbase.dpkg-status").read_bytes(),
                "usr/share/doc/removed-later": b"gone in the next layer",
            }
        )
    )
    app = zstandard.ZstdCompressor().compress(
        tar(
            {
                METADATA: b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
                "usr/share/doc/.wh.removed-later": b"",
            }
        )
    )
    base_digest, app_digest = Digest.of(base), Digest.of(app)
    files = read_layers_sync(
        [
            (base_digest, "application/vnd.oci.image.layer.v1.tar+gzip", io.BytesIO(base)),
            (app_digest, "application/vnd.oci.image.layer.v1.tar+zstd", io.BytesIO(app)),
        ],
        wanted,
    )
    assert files.entry("usr/share/doc/removed-later") is None
    assert files.entry("var/lib/dpkg/status") is not None
    found = inventory(files)
    assert found.unsupported is None
    assert found.os is not None
    assert (found.os.id, found.os.version_id) == ("debian", "12")
    debs = [p for p in found.packages if p.type is PackageType.DEB]
    assert len(debs) == 88
    assert {p.layer for p in debs} == {base_digest}
    [requests] = [p for p in found.packages if p.type is PackageType.PYPI]
    assert (requests.name, requests.version, requests.purl) == (
        "requests",
        "2.31.0",
        "pkg:pypi/requests@2.31.0",
    )
    assert (requests.path, requests.layer) == (METADATA, app_digest)
