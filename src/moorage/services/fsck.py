"""Check the registry's invariants: what ``moorage fsck`` runs, and the fault storm after
every restart.

The invariants, each a kind of :class:`Problem`:

- ``dangling``: every tag names a manifest of its repository; every manifest's config and
  layers are blobs linked to its repository; every index's children are manifests of it.
- ``missing-file``: every recorded blob has its bytes in the blob store, of the recorded size
  (``size-mismatch`` otherwise).
- ``corrupt-file``: every file at a blob's final key holds bytes that hash to that key. Bytes
  are read for unrecorded files always (a crash may leave one; it must still be whole), and for
  recorded ones with ``verify_digests``.
- with ``after_gc`` (run right after a collection with no grace period): no staging area
  without an upload session (``leftover-staging``), and no unrecorded blob file
  (``orphan-file``). Without it, both are normal between collections and not reported.

The check reads the stores a page at a time and holds no lock: run it on a quiet registry (a
push in progress may show as a problem that is gone a moment later).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from moorage.domain.digests import Digest, StreamingHasher
from moorage.domain.errors import BlobUnknown
from moorage.ports.blobs import BlobStore
from moorage.ports.metadata import MetadataStore

PAGE = 500


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass
class FsckReport:
    problems: list[Problem] = field(default_factory=list)
    blobs_checked: int = 0
    files_checked: int = 0
    bytes_hashed: int = 0

    @property
    def clean(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "clean" if self.clean else f"{len(self.problems)} problems"
        return (
            f"{verdict}: {self.blobs_checked} recorded blobs, {self.files_checked} blob files, "
            f"{self.bytes_hashed} bytes hashed"
        )


class RegistryChecker:
    """Runs the checks of the module docstring; holds no state between runs."""

    def __init__(
        self, metadata: MetadataStore, blobs: BlobStore, *, max_problems: int = 1000
    ) -> None:
        self._metadata = metadata
        self._blobs = blobs
        self._max = max_problems

    async def run(self, *, verify_digests: bool = False, after_gc: bool = False) -> FsckReport:
        report = FsckReport()
        add = self._adder(report)
        async with self._metadata.read() as tx:
            for dangling in await tx.dangling_references(self._max):
                add(
                    "dangling",
                    f"repository {dangling.repository_id}: {dangling.kind} reference from "
                    f"{dangling.source} to {dangling.target}",
                )
        await self._recorded_blobs(report, add, verify_digests)
        await self._files(report, add, after_gc)
        if after_gc:
            await self._staging(add)
        return report

    def _adder(self, report: FsckReport) -> Callable[[str, str], None]:
        def add(kind: str, detail: str) -> None:
            if len(report.problems) < self._max:
                report.problems.append(Problem(kind, detail))

        return add

    async def _recorded_blobs(
        self, report: FsckReport, add: Callable[[str, str], None], verify: bool
    ) -> None:
        after: Digest | None = None
        while True:
            async with self._metadata.read() as tx:
                page = await tx.list_blobs(after=after, limit=PAGE)
            if not page:
                break
            sizes = await self._blobs.stat_many([blob.digest for blob in page])
            for blob in page:
                report.blobs_checked += 1
                size = sizes.get(blob.digest)
                if size is None:
                    add("missing-file", f"blob {blob.digest} is recorded but has no bytes")
                elif size != blob.size:
                    add(
                        "size-mismatch",
                        f"blob {blob.digest} is recorded as {blob.size} bytes, stored {size}",
                    )
                elif verify:
                    await self._hash(report, add, blob.digest)
            after = page[-1].digest

    async def _files(
        self, report: FsckReport, add: Callable[[str, str], None], after_gc: bool
    ) -> None:
        """Every blob file; those no row records are hashed (and reported after a GC). Asked a
        page at a time, so memory does not grow with the store."""
        page: list[Digest] = []
        async for digest in self._blobs.list_digests():
            report.files_checked += 1
            page.append(digest)
            if len(page) >= PAGE:
                await self._unrecorded(report, add, page, after_gc)
                page = []
        if page:
            await self._unrecorded(report, add, page, after_gc)

    async def _unrecorded(
        self,
        report: FsckReport,
        add: Callable[[str, str], None],
        page: list[Digest],
        after_gc: bool,
    ) -> None:
        async with self._metadata.read() as tx:
            unrecorded = await tx.unrecorded_blobs(page)
        for digest in sorted(unrecorded, key=str):
            if after_gc:
                add("orphan-file", f"blob file {digest} is recorded nowhere")
            await self._hash(report, add, digest)

    async def _hash(
        self, report: FsckReport, add: Callable[[str, str], None], digest: Digest
    ) -> None:
        hasher = StreamingHasher(digest.algorithm)
        try:
            async for chunk in self._blobs.open(digest):
                hasher.update(chunk)
        except BlobUnknown:
            return  # deleted meanwhile (a collection): nothing at the final key
        report.bytes_hashed += hasher.size
        if hasher.digest() != digest:
            add("corrupt-file", f"blob file {digest} holds bytes that hash to {hasher.digest()}")

    async def _staging(self, add: Callable[[str, str], None]) -> None:
        async with self._metadata.read() as tx:
            sessions = {session.id for session in await tx.list_uploads_updated_before(_FAR)}
        async for upload_id in self._blobs.list_uploads():
            if upload_id not in sessions:
                add("leftover-staging", f"staging area {upload_id} has no upload session")


_FAR = datetime(9999, 1, 1, tzinfo=UTC)  # "updated before the end of time": every session
