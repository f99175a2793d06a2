"""Scan one stored image: read its layers from the blob store into an inventory, and match
the inventory against the imported advisories.

What may be scanned is decided from the manifest alone (:func:`unsupported_reason`): an image
manifest whose config is an image config. An index is not scanned (its images are, each on its
own push), nor is an artifact (a Helm chart, a signature, the scanner's own SBOMs), so a scan
never scans what it pushed.

Layers are read from the blob store's file where it has one, and otherwise spooled to a
temporary file first (an object store), since the layer reader works on blocking file objects
in a thread.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from moorage.domain.digests import Digest
from moorage.domain.findings import Finding
from moorage.domain.inventory import Inventory, InventoryIssue, PackageType
from moorage.domain.manifests import ParsedManifest
from moorage.ports.blobs import BlobStore
from moorage.ports.metadata import MetadataStore
from moorage.scanning.advisories.keys import PackageKey
from moorage.scanning.inventory import inventory as build_inventory
from moorage.scanning.inventory import wanted
from moorage.scanning.layers import Layer, LayerSource, read_layers
from moorage.scanning.matching import ecosystem_of, lookup_keys, match

IMAGE_CONFIG_TYPES = frozenset(
    {
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.oci.image.config.v1+json",
    }
)
OS_PACKAGE_TYPES = frozenset({PackageType.DEB, PackageType.APK, PackageType.RPM})

# Spooled in memory up to this size, then to a temporary file.
_SPOOL_IN_MEMORY = 8 << 20


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What one scan found. ``unsupported``: why the image cannot be scanned (no findings
    then); ``packages``: the advisory keys of its packages (what continuous scanning rescans
    it for)."""

    inventory: Inventory
    findings: tuple[Finding, ...]
    packages: frozenset[PackageKey]
    advisories_updated_at: datetime | None
    unsupported: str | None = None


def unsupported_reason(manifest: ParsedManifest) -> str | None:
    """Why an image cannot be scanned from its manifest alone, or None."""
    if manifest.is_index:
        return "an image index is not scanned; each of the images it lists is"
    if manifest.config is None or manifest.config.media_type not in IMAGE_CONFIG_TYPES:
        kind = manifest.referrer_artifact_type or "unknown"
        return f"the artifact is not a container image (artifact type {kind})"
    if not manifest.layers:
        return "the image has no layers"
    return None


class ImageScanner:
    def __init__(self, metadata: MetadataStore, blob_store: BlobStore) -> None:
        self._metadata = metadata
        self._blob_store = blob_store

    async def scan(self, manifest: ParsedManifest, *, os_packages_only: bool) -> ScanResult:
        """Scan the image. ``os_packages_only``: ECR's basic scanning, which reports the
        operating system's packages alone (enhanced scanning reports language packages too)."""
        reason = unsupported_reason(manifest)
        if reason is not None:
            return _unsupported(Inventory(os=None), reason)
        async with self._layers(manifest) as (layers, issues):
            files = await read_layers(layers, wanted)
        inventory = build_inventory(files)
        if issues:
            inventory = Inventory(
                inventory.os,
                inventory.packages,
                tuple(issues) + inventory.issues,
                inventory.unsupported,
            )
        if inventory.unsupported is not None:
            return _unsupported(inventory, inventory.unsupported)
        if os_packages_only:
            reason = _basic_unsupported(inventory)
            if reason is not None:
                return _unsupported(inventory, reason)
            inventory = Inventory(
                inventory.os,
                tuple(p for p in inventory.packages if p.type in OS_PACKAGE_TYPES),
                inventory.issues,
            )
        keys = lookup_keys(inventory)
        async with self._metadata.read() as tx:
            advisories = await tx.advisories_for(keys)
            updated_at = await tx.advisories_updated_at()
        findings = tuple(match(inventory, advisories))
        return ScanResult(inventory, findings, frozenset(keys), updated_at)

    @contextlib.asynccontextmanager
    async def _layers(
        self, manifest: ParsedManifest
    ) -> AsyncIterator[tuple[list[Layer], list[InventoryIssue]]]:
        """The layers as the reader takes them (base first); a layer whose blob is missing
        (a foreign layer, never pushed) is left out and reported."""
        layers: list[Layer] = []
        issues: list[InventoryIssue] = []
        with contextlib.ExitStack() as stack:
            for descriptor in manifest.layers:
                source = await self._source(descriptor.digest, stack)
                if source is None:
                    issues.append(
                        InventoryIssue(
                            "", "layer not read: its blob is not stored", descriptor.digest
                        )
                    )
                    continue
                layers.append((descriptor.digest, descriptor.media_type, source))
            yield layers, issues

    async def _source(self, digest: Digest, stack: contextlib.ExitStack) -> LayerSource | None:
        location = await self._blob_store.locate(digest)
        if location is None:
            return None
        if location.path is not None:
            return location.path
        spool = stack.enter_context(tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY))  # noqa: SIM115
        async for chunk in self._blob_store.open(digest):
            spool.write(chunk)
        spool.seek(0)
        return spool  # type: ignore[return-value]  # a binary file object, as BinaryIO


def _unsupported(inventory: Inventory, reason: str) -> ScanResult:
    return ScanResult(inventory, (), frozenset(), None, unsupported=reason)


def _basic_unsupported(inventory: Inventory) -> str | None:
    """Why basic scanning (operating system packages) cannot scan the image, or None."""
    os = inventory.os
    if os is None:
        return "no operating system was found (no /etc/os-release)"
    os_packages = [p for p in inventory.packages if p.type in OS_PACKAGE_TYPES]
    if not os_packages:
        name = " ".join(filter(None, (os.id, os.version_id)))
        return f"no package database of the operating system ({name}) was found"
    if all(ecosystem_of(os, p) is None for p in os_packages):
        name = " ".join(filter(None, (os.id, os.version_id)))
        return f"the operating system {name} is not supported"
    return None
