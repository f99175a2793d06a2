"""BlobStore adapters, registered by name and built from configuration.

    build_blob_store("filesystem", root=settings.data_dir)
    build_blob_store("memory")

Every store it builds is wrapped in :class:`~moorage.storage.blobs.checked.CheckedBlobStore`
(key checks, error normalisation, metrics), so each adapter holds only its backend's logic.

Adding a backend: write ``<name>.py`` with a class that satisfies
:class:`moorage.ports.blobs.BlobStore`, add a factory below that imports it lazily (so an SDK
is loaded only when configured) and register it in ``_FACTORIES``; then add the one small test
module that runs ``tests/contract/blob_store_suite.py`` on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moorage.ports.blobs import BlobStore
from moorage.storage.blobs.checked import BlobStoreMetrics, CheckedBlobStore

__all__ = [
    "BlobStoreMetrics",
    "CheckedBlobStore",
    "blob_store_names",
    "build_blob_store",
    "register_blob_store",
]

BlobStoreFactory = Callable[..., BlobStore]
"""Builds an unwrapped adapter from keyword options; raises TypeError on unknown options."""


def _filesystem(**options: Any) -> BlobStore:
    from moorage.storage.blobs.filesystem import FilesystemBlobStore

    return FilesystemBlobStore(**options)


def _memory(*, root: object = None) -> BlobStore:
    # ``root`` is accepted and ignored: the composition root passes the data directory to
    # whichever backend is configured.
    from moorage.storage.blobs.memory import MemoryBlobStore

    return MemoryBlobStore()


_FACTORIES: dict[str, BlobStoreFactory] = {
    "filesystem": _filesystem,
    "memory": _memory,
}


def register_blob_store(name: str, factory: BlobStoreFactory) -> None:
    """Make ``factory`` buildable as ``name``. Raises ValueError if the name is taken."""
    if name in _FACTORIES:
        raise ValueError(f"a blob store named {name!r} is already registered")
    _FACTORIES[name] = factory


def blob_store_names() -> tuple[str, ...]:
    """The names ``build_blob_store`` accepts, sorted."""
    return tuple(sorted(_FACTORIES))


def build_blob_store(name: str, **options: Any) -> CheckedBlobStore:
    """Build the adapter registered as ``name`` from ``options``, wrapped in CheckedBlobStore.

    Raises ValueError for an unknown name and TypeError for options the adapter does not take.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        known = ", ".join(blob_store_names())
        raise ValueError(f"unknown blob store {name!r}; known: {known}")
    return CheckedBlobStore(factory(**options))
