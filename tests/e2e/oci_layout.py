"""Build an OCI image layout on disk (the format ``skopeo copy oci:DIR:TAG`` reads): a
multi-architecture index over image manifests, each with real gzip'd tar layers."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Layout:
    path: Path
    tag: str
    index_digest: str
    manifest_digests: tuple[str, ...]
    blob_digests: tuple[str, ...]


def _write_blob(root: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    target = root / "blobs" / "sha256" / digest
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(rng: random.Random, files: int, file_size: int) -> tuple[bytes, str]:
    """A gzip'd tar layer and its diff id (sha256 of the uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for index in range(files):
            content = rng.randbytes(file_size)
            info = tarfile.TarInfo(f"data/file-{index}.bin")
            info.size = len(content)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def build_layout(
    path: Path,
    *,
    tag: str = "latest",
    architectures: tuple[str, ...] = ("amd64", "arm64"),
    layers_per_image: int = 3,
    file_size: int = 64 * 1024,
    seed: int = 7,
) -> Layout:
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    manifests: list[dict[str, Any]] = []
    blobs: list[str] = []
    for architecture in architectures:
        layer_descriptors = []
        diff_ids = []
        for _ in range(layers_per_image):
            compressed, diff_id = _layer(rng, files=2, file_size=file_size)
            layer_descriptors.append({"mediaType": OCI_LAYER, **_write_blob(path, compressed)})
            diff_ids.append(diff_id)
        config = json.dumps(
            {
                "architecture": architecture,
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "config": {"Cmd": ["/bin/true"]},
            }
        ).encode()
        config_descriptor = {"mediaType": OCI_CONFIG, **_write_blob(path, config)}
        blobs += [config_descriptor["digest"], *(d["digest"] for d in layer_descriptors)]
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config_descriptor,
                "layers": layer_descriptors,
            }
        ).encode()
        manifests.append(
            {
                "mediaType": OCI_MANIFEST,
                **_write_blob(path, manifest),
                "platform": {"architecture": architecture, "os": "linux"},
            }
        )
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    ).encode()
    index_descriptor = _write_blob(path, index)
    (path / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_INDEX,
                        **index_descriptor,
                        "annotations": {"org.opencontainers.image.ref.name": tag},
                    }
                ],
            }
        )
    )
    return Layout(
        path=path,
        tag=tag,
        index_digest=index_descriptor["digest"],
        manifest_digests=tuple(m["digest"] for m in manifests),
        blob_digests=tuple(blobs),
    )
