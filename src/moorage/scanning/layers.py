"""Read an image's layers, base to top, into its final filesystem (:class:`ImageFiles`).

Each layer is read once as a tar stream (``tarfile`` in stream mode), never unpacked to disk:
plain, gzip or zstd, recognised by the blob's first bytes (gzip ``1f 8b``, zstd
``28 b5 2f fd``) rather than by its media type, which may lie. Layers are applied as the OCI
image spec says (image-spec ``layer.md``):

- a later entry for a path replaces an earlier one; a non-directory replaces a directory and
  everything under it, and a path under a former file turns that file into a directory;
- ``.wh.<name>`` deletes ``<name>`` (a file, or a directory and everything under it) as lower
  layers left it; ``.wh..wh..opq`` hides everything lower layers put in its directory. Whiteouts
  never hide entries of their own layer, whatever their order in the tar;
- a hard link gets the size and, when they were kept, the contents of the file it names (as the
  filesystem stood when the link was read: its own layer or a lower one). When the target's
  contents were not kept (nobody wanted the target's path) a wanted link gets None and an issue.

Only regular files and symbolic links are kept: regular files as :class:`FileEntry` (contents
when ``wants(path)`` and the size is at most ``Limits.max_file_bytes``), links by their target
as written. Directories are implied by their contents; FIFOs are skipped silently (harmless, and
some base images ship one); device files are skipped and reported, since an image has no use for
them and a runtime would create them.

Hostile layers are bounded, and each refusal is an :class:`InventoryIssue`:

- paths are normalised (no leading ``/`` or ``./``, ``..`` applied); an absolute path is read
  relative to the root and reported; a path that ``..`` takes out of the root, or deeper than
  ``MAX_PATH_DEPTH`` directories, is refused;
- a symbolic link whose relative target climbs out of the root is kept (``ImageFiles.resolve``
  stops at the root) and reported; nothing is ever read through the host filesystem;
- the uncompressed bytes read per image (tar headers, contents, skipped contents, padding) are
  capped by ``Limits.max_total_bytes`` and the entries per image by ``Limits.max_entries``: the
  layer stops there, what was read is kept, and later layers are not read (each is reported);
- a corrupt or truncated layer is reported and what was read before the damage is kept.

The work is synchronous (:func:`read_layers_sync`): decompression and tar parsing are CPU work
and blob reads are blocking file I/O, and neither belongs on the event loop. :func:`read_layers`
runs it in a worker thread (zlib and zstd release the GIL while they decompress) and asks it to
stop at the next entry when the caller is cancelled.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import tarfile
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import BinaryIO, Protocol, cast

import zstandard

from moorage.domain.digests import Digest
from moorage.domain.inventory import InventoryIssue
from moorage.scanning.files import FileEntry, ImageFiles

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_OTHER_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}

MAX_PATH_DEPTH = 256  # Linux's PATH_MAX allows ~2,000; no real image comes near 256
WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"

_CHUNK = 1 << 20  # bytes asked of a decompressor at a time (tarfile's buffer size too)
_BLOCK = tarfile.BLOCKSIZE

LayerSource = BinaryIO | str | os.PathLike[str]
Layer = tuple[Digest | None, str, LayerSource]
"""(layer digest, media type, a binary file object or the blob's path), base layer first."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one image may make the reader do.

    ``max_total_bytes``: uncompressed bytes read over all layers (a decompression bomb stops
    here); ``max_file_bytes``: the largest file whose contents are kept; ``max_entries``: tar
    entries over all layers.
    """

    max_total_bytes: int = 8 << 30
    max_file_bytes: int = 64 << 20
    max_entries: int = 1_000_000


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Exhausted(Exception):
    """A per-image limit was reached; the message says which."""


class _Cancelled(Exception):
    """The caller gave up; stop at once."""


class _Budget:
    """What is left of the per-image limits, shared by every layer."""

    def __init__(self, limits: Limits, stop: threading.Event | None) -> None:
        self.limits = limits
        self.bytes_read = 0
        self.entries = 0
        self.stop = stop

    def take_bytes(self, count: int) -> None:
        self.bytes_read += count
        if self.bytes_read > self.limits.max_total_bytes:
            raise _Exhausted(
                f"more than {self.limits.max_total_bytes} uncompressed bytes in the image "
                "(a decompression bomb?); the rest of the layer was not read"
            )

    def take_entry(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise _Cancelled
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise _Exhausted(
                f"more than {self.limits.max_entries} entries in the image; "
                "the rest of the layer was not read"
            )


class _Counted:
    """The uncompressed tar stream as tarfile reads it: counts bytes against the budget and
    keeps the last few chunks so that the block where tarfile stopped can be looked at."""

    def __init__(self, raw: _Readable, budget: _Budget) -> None:
        self._read: Callable[[int], bytes] = getattr(raw, "read1", raw.read)
        self._budget = budget
        self.position = 0
        self._recent: deque[tuple[int, bytes]] = deque()
        self._recent_bytes = 0

    def read(self, size: int = -1, /) -> bytes:
        if size < 0 or size > _CHUNK:
            size = _CHUNK
        # read1: a decompressor's read(size) may decompress many chunks before it meets the
        # damage and raises, losing the good ones; read1 hands over what one step gave.
        chunk = self._read(size)
        if chunk:
            self._budget.take_bytes(len(chunk))
            self._recent.append((self.position, chunk))
            self._recent_bytes += len(chunk)
            while self._recent_bytes - len(self._recent[0][1]) >= 2 * _CHUNK + _BLOCK:
                self._recent_bytes -= len(self._recent.popleft()[1])
            self.position += len(chunk)
        return chunk

    def block_at(self, offset: int) -> bytes | None:
        """The 512 bytes at ``offset`` if still held, else None."""
        parts = []
        for start, chunk in self._recent:
            end = start + len(chunk)
            if end <= offset or start >= offset + _BLOCK:
                continue
            parts.append(chunk[max(0, offset - start) : offset + _BLOCK - start])
        data = b"".join(parts)
        return data if len(data) == _BLOCK else None

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


class _Prefixed:
    """A stream whose first bytes were already read (to sniff the compression)."""

    def __init__(self, prefix: bytes, rest: _Readable) -> None:
        self._prefix = prefix
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if self._prefix:
            if size < 0:
                data, self._prefix = self._prefix + self._rest.read(), b""
                return data
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._rest.read(size)


def _read_exactly(stream: _Readable, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


# --- the filesystem being built --------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    kind: str  # "file", "link" or "dir"
    layer: int  # index of the layer that last wrote it
    entry: FileEntry | None = None
    target: str = ""


class _Tree:
    """The filesystem as the layers read so far leave it, with each directory's children so
    that whiteouts and replacements remove subtrees without scanning every path."""

    def __init__(self) -> None:
        self.nodes: dict[str, _Node] = {}
        self.children: dict[str, set[str]] = {"": set()}

    def _parent(self, path: str) -> str:
        return path.rpartition("/")[0]

    def _ensure_dir(self, path: str, layer: int) -> None:
        """Make ``path`` and its ancestors directories (a file in the way is replaced)."""
        if path == "":
            return
        node = self.nodes.get(path)
        if node is not None and node.kind == "dir":
            return
        if node is not None:
            self.remove(path)
        self._ensure_dir(self._parent(path), layer)
        self.nodes[path] = _Node("dir", layer)
        self.children[path] = set()
        self.children[self._parent(path)].add(path)

    def put(self, path: str, node: _Node) -> None:
        self._ensure_dir(self._parent(path), node.layer)
        existing = self.nodes.get(path)
        if existing is not None:
            if existing.kind == "dir" and node.kind == "dir":
                existing.layer = max(existing.layer, node.layer)
                return
            self.remove(path)
        self.nodes[path] = node
        self.children[self._parent(path)].add(path)
        if node.kind == "dir":
            self.children[path] = set()

    def remove(self, path: str) -> None:
        """Remove ``path`` and everything under it."""
        node = self.nodes.pop(path, None)
        if node is None:
            return
        self.children[self._parent(path)].discard(path)
        if node.kind == "dir":
            for child in list(self.children.pop(path, ())):
                self._remove_below(child)

    def _remove_below(self, path: str) -> None:
        node = self.nodes.pop(path, None)
        if node is not None and node.kind == "dir":
            for child in self.children.pop(path, ()):
                self._remove_below(child)

    def hide_lower(self, path: str, layer: int) -> None:
        """Remove what layers below ``layer`` left at ``path`` (a whiteout)."""
        node = self.nodes.get(path)
        if node is None:
            return
        if node.kind == "dir":
            self.hide_lower_children(path, layer)
            if node.layer < layer and not self.children.get(path):
                self.remove(path)
        elif node.layer < layer:
            self.remove(path)

    def hide_lower_children(self, directory: str, layer: int) -> None:
        """Remove what layers below ``layer`` left under ``directory`` (an opaque whiteout)."""
        for child in list(self.children.get(directory, ())):
            self.hide_lower(child, layer)

    def file(self, path: str) -> _Node | None:
        node = self.nodes.get(path)
        return node if node is not None and node.kind == "file" else None

    def image_files(self, issues: list[InventoryIssue]) -> ImageFiles:
        files: dict[str, FileEntry] = {}
        links: dict[str, str] = {}
        for path, node in self.nodes.items():
            if node.kind == "file" and node.entry is not None:
                files[path] = node.entry
            elif node.kind == "link":
                links[path] = node.target
        return ImageFiles(files=files, links=links, issues=issues)


# --- paths -----------------------------------------------------------------------------------


def normalise(name: str) -> tuple[str | None, str | None]:
    """``(path, problem)``: the normalised path of a tar entry name (None when it leaves the
    root) and what was wrong with the name, if anything."""
    problem = None
    if name.startswith("/"):
        problem = "absolute path, read relative to the image root"
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None, "path leaves the image root ('..'); entry refused"
            parts.pop()
            problem = problem or "path contains '..'; normalised"
            continue
        parts.append(part)
        if len(parts) > MAX_PATH_DEPTH:
            return None, f"path deeper than {MAX_PATH_DEPTH} directories; entry refused"
    return "/".join(parts), problem


def _link_leaves_root(path: str, target: str) -> bool:
    if target.startswith("/"):
        return False  # absolute targets are relative to the image root
    depth = path.count("/")  # directories between the root and the link
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


# --- reading ---------------------------------------------------------------------------------


class _LayerReader:
    def __init__(
        self,
        tree: _Tree,
        wants: Callable[[str], bool],
        limits: Limits,
        budget: _Budget,
        issues: list[InventoryIssue],
    ) -> None:
        self.tree = tree
        self.wants = wants
        self.limits = limits
        self.budget = budget
        self.issues = issues

    def read(self, index: int, digest: Digest | None, media_type: str, raw: _Readable) -> None:
        def issue(path: str, problem: str) -> None:
            self.issues.append(InventoryIssue(path, problem, digest))

        magic = _read_exactly(raw, 6)
        source: _Readable = _Prefixed(magic, raw)
        with ExitStack() as stack:
            if magic.startswith(GZIP_MAGIC):
                source = stack.enter_context(
                    gzip.GzipFile(fileobj=cast(BinaryIO, source), mode="rb")
                )
            elif magic.startswith(ZSTD_MAGIC):
                decompressor = zstandard.ZstdDecompressor()
                source = stack.enter_context(
                    decompressor.stream_reader(
                        cast(BinaryIO, source), read_size=_CHUNK, read_across_frames=True
                    )
                )
            else:
                for prefix, name in _OTHER_MAGIC.items():
                    if magic.startswith(prefix):
                        issue("", f"{name}-compressed layer ({media_type}) is not supported")
                        return
            counted = _Counted(source, self.budget)
            try:
                self._entries(index, digest, counted, issue)
            except (
                tarfile.TarError,
                EOFError,
                OSError,
                zlib.error,
                zstandard.ZstdError,
            ) as error:
                issue(
                    "", f"corrupt or truncated layer ({media_type}): {error}; kept what came before"
                )

    def _entries(
        self,
        index: int,
        digest: Digest | None,
        counted: _Counted,
        issue: Callable[[str, str], None],
    ) -> None:
        archive = tarfile.open(fileobj=cast(BinaryIO, counted), mode="r|", bufsize=_CHUNK)  # noqa: SIM115
        for member in _members(archive, self.budget):
            self._entry(index, digest, archive, member, issue)
        # tarfile ends quietly at a short or invalid header: tell those from the end marker.
        end = counted.block_at(archive.offset)
        if counted.position < archive.offset + _BLOCK:
            issue("", "truncated layer (no end-of-archive marker); kept what came before")
            return
        if end is not None and end.count(0) != _BLOCK:
            issue("", "invalid tar header; the rest of the layer was not read")
            return
        counted.drain()  # the compressed stream's own checks (CRC, end of frame) run at its end

    def _entry(
        self,
        index: int,
        digest: Digest | None,
        archive: tarfile.TarFile,
        member: tarfile.TarInfo,
        issue: Callable[[str, str], None],
    ) -> None:
        path, problem = normalise(member.name)
        if problem is not None:
            issue(member.name, problem)
        if not path:
            return  # the root itself, or refused
        directory, _, base = path.rpartition("/")
        if base == OPAQUE_WHITEOUT:
            self.tree.hide_lower_children(directory, index)
            return
        if base.startswith(WHITEOUT_PREFIX):
            hidden = base[len(WHITEOUT_PREFIX) :]
            if hidden and hidden not in (".", ".."):
                self.tree.hide_lower(f"{directory}/{hidden}" if directory else hidden, index)
            return
        if member.isreg():
            data = None
            if self.wants(path):
                if member.size <= self.limits.max_file_bytes:
                    stream = archive.extractfile(member)
                    data = stream.read() if stream is not None else None
                else:
                    issue(
                        path,
                        f"file of {member.size} bytes is over the {self.limits.max_file_bytes}"
                        "-byte limit; contents not kept",
                    )
            entry = FileEntry(member.size, digest, data, member.mode & 0o7777)
            self.tree.put(path, _Node("file", index, entry))
        elif member.islnk():
            self._hard_link(index, digest, path, member, issue)
        elif member.issym():
            if _link_leaves_root(path, member.linkname):
                issue(path, f"symbolic link target {member.linkname!r} leaves the image root")
            self.tree.put(path, _Node("link", index, target=member.linkname))
        elif member.isdir():
            self.tree.put(path, _Node("dir", index))
        elif member.ischr() or member.isblk():
            issue(path, "device file skipped")
        # FIFOs (and any other type tarfile knows) are skipped silently.

    def _hard_link(
        self,
        index: int,
        digest: Digest | None,
        path: str,
        member: tarfile.TarInfo,
        issue: Callable[[str, str], None],
    ) -> None:
        target, _ = normalise(member.linkname)
        node = self.tree.file(target) if target else None
        if node is None or node.entry is None:
            issue(path, f"hard link to {member.linkname!r}, which is not a regular file; skipped")
            return
        data = None
        if self.wants(path):
            if node.entry.size > self.limits.max_file_bytes:
                issue(
                    path,
                    f"file of {node.entry.size} bytes is over the {self.limits.max_file_bytes}"
                    "-byte limit; contents not kept",
                )
            elif node.entry.data is None:
                issue(path, f"hard link to {target!r}, whose contents were not kept")
            else:
                data = node.entry.data
        entry = FileEntry(node.entry.size, digest, data, member.mode & 0o7777)
        self.tree.put(path, _Node("file", index, entry))


def _members(archive: tarfile.TarFile, budget: _Budget) -> Iterator[tarfile.TarInfo]:
    while True:
        budget.take_entry()
        member = archive.next()
        archive.members.clear()  # type: ignore[attr-defined]  # stream mode needs no list
        if member is None:
            return
        yield member


def _open(source: LayerSource, stack: ExitStack) -> _Readable:
    if isinstance(source, str | os.PathLike):
        return stack.enter_context(open(source, "rb"))
    return source


def read_layers_sync(
    layers: Sequence[Layer],
    wants: Callable[[str], bool],
    limits: Limits = Limits(),
    stop: threading.Event | None = None,
) -> ImageFiles:
    """The final filesystem of ``layers`` (base first), keeping the contents of the files
    ``wants`` names; see the module docstring. ``stop`` set: give up at the next entry."""
    tree = _Tree()
    issues: list[InventoryIssue] = []
    budget = _Budget(limits, stop)
    reader = _LayerReader(tree, wants, limits, budget, issues)
    exhausted = False
    for index, (digest, media_type, source) in enumerate(layers):
        if exhausted:
            issues.append(
                InventoryIssue("", "layer not read: the image's limits were reached", digest)
            )
            continue
        with ExitStack() as stack:
            try:
                reader.read(index, digest, media_type, _open(source, stack))
            except _Exhausted as error:
                issues.append(InventoryIssue("", str(error), digest))
                exhausted = True
    return tree.image_files(issues)


async def read_layers(
    layers: Sequence[Layer],
    wants: Callable[[str], bool],
    limits: Limits = Limits(),
) -> ImageFiles:
    """:func:`read_layers_sync` in a worker thread; cancelling the caller stops the reader at
    its next entry."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(read_layers_sync, layers, wants, limits, stop)
    except asyncio.CancelledError:
        stop.set()
        raise


__all__ = ["Layer", "LayerSource", "Limits", "normalise", "read_layers", "read_layers_sync"]
