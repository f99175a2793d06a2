"""Container images the scanner's tests build from the fixtures in ``tests/fixtures/vulnscan``:
gzip tar layers holding real package databases, and an OCI image config for them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vulnscan"


def tar_layer(files: Mapping[str, bytes]) -> bytes:
    """A gzip-compressed tar of ``files`` (path -> contents), deterministic bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def debian_layer(status: str = "bookworm-vulnset.dpkg-status") -> bytes:
    """A Debian 12 root: its os-release and a real dpkg status database."""
    debian = FIXTURES / "debian"
    return tar_layer(
        {
            "etc/os-release": (debian / "bookworm.os-release").read_bytes(),
            "var/lib/dpkg/status": (debian / status).read_bytes(),
        }
    )


def image_config(layers: list[bytes], seed: str = "") -> bytes:
    """An OCI image config for ``layers`` (gzip tars): their diff ids, amd64/linux."""
    diff_ids = [f"sha256:{hashlib.sha256(gzip.decompress(layer)).hexdigest()}" for layer in layers]
    document = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"seed": seed}} if seed else {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return json.dumps(document, sort_keys=True).encode()
