"""The image's final filesystem, as far as the package detectors need it.

The layer reader (``layers.py``) applies the layers in order (whiteouts and opaque
directories included) and keeps only what a detector asked for: the *contents* of files
whose path the detectors want (a predicate on the path, given to the reader), within size
limits, and the *names* of every regular file (detectors find ``*.dist-info/METADATA`` or
``node_modules/**/package.json`` by walking names). Paths are normalised: relative to the
root, no leading ``/`` or ``./``, no ``..``; symbolic links are resolved inside the root only.

Detectors read through :class:`ImageFiles` and never touch a tar stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from moorage.domain.digests import Digest
from moorage.domain.inventory import InventoryIssue


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A regular file of the final filesystem: its size, the layer that wrote it, and its
    bytes when a detector wanted them (None otherwise, or when over the size limit)."""

    size: int
    layer: Digest | None
    data: bytes | None = None
    mode: int = 0o644


@dataclass
class ImageFiles:
    """Regular files by normalised path, symbolic links by path (target as written), and
    what the reader refused."""

    files: dict[str, FileEntry] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    issues: list[InventoryIssue] = field(default_factory=list)

    def read(self, path: str) -> bytes | None:
        """The contents of ``path`` (following links inside the root), or None when absent
        or not kept."""
        entry = self.files.get(self.resolve(path))
        return None if entry is None else entry.data

    def entry(self, path: str) -> FileEntry | None:
        return self.files.get(self.resolve(path))

    def paths(self) -> Iterator[str]:
        """Every regular file's path, sorted (detectors then report in a stable order)."""
        return iter(sorted(self.files))

    def kept(self, wants: Callable[[str], bool]) -> Iterator[tuple[str, FileEntry, bytes]]:
        """The files ``wants`` names whose contents were kept, with those contents, sorted by
        path: what a detector reads."""
        for path in self.paths():
            if wants(path):
                entry = self.files[path]
                if entry.data is not None:
                    yield path, entry, entry.data

    def resolve(self, path: str, _depth: int = 0) -> str:
        """``path`` with symbolic links in it resolved, never leaving the root (an absolute
        target is relative to the image root; ``..`` stops at the root); unchanged when no
        link applies. At most 40 links are followed, as Linux does."""
        parts = [p for p in path.strip("/").split("/") if p and p != "."]
        resolved: list[str] = []
        followed = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/".join([*resolved, part])
            target = self.links.get(candidate)
            if target is None:
                resolved.append(part)
                continue
            followed += 1
            if followed > 40:
                return candidate
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.strip("/").split("/") if p and p != "."] + parts
        return "/".join(resolved)
