"""The one wrapper around every BlobStore adapter: key checks, error normalisation, metrics.

What it guarantees to callers, whatever the adapter:

- **Keys.** An upload id must be a lowercase canonical UUID (``str(uuid.uuid4())``) and a
  digest must satisfy :meth:`Digest.parse`. Nothing else reaches an adapter, so no id or
  digest can name a path outside an adapter's layout (``..``, ``/``, NUL, a newline). An id
  that breaks the grammar cannot exist: lookups raise UploadUnknown, ``cancel_upload`` does
  nothing, and ``start_upload`` raises ValueError (the caller minted it). Offsets, lengths
  and sizes must not be negative (ValueError).
- **Errors.** Domain errors (:class:`RegistryError`) and cancellation pass through unchanged,
  and so does any exception raised by the caller's own ``chunks`` iterable in
  ``write_upload`` (a client that disconnects is not a storage failure). Every other exception
  from the adapter (OSError, an SDK's errors, a bug) becomes :class:`BlobStoreError`, with the
  original as ``__cause__``.
- **Metrics.** Calls, errors, failures and time per operation, and bytes moved, in
  :class:`BlobStoreMetrics` (plain counters; export them however the server likes).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType

from moorage.domain.digests import Digest
from moorage.domain.errors import InvalidDigest, RegistryError, UploadUnknown
from moorage.ports.blobs import BlobLocation, BlobStore, BlobStoreError

_UPLOAD_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_upload_id(text: str) -> bool:
    """True when ``text`` is a lowercase canonical UUID, the only upload id the store takes."""
    return _UPLOAD_ID.fullmatch(text) is not None


@dataclass(slots=True)
class OperationStats:
    """Counters for one operation. ``errors``: domain errors raised (an unknown upload, a bad
    range); ``failures``: storage failures turned into BlobStoreError. ``seconds`` is wall
    time, including the time a stream's consumer spends between chunks."""

    calls: int = 0
    errors: int = 0
    failures: int = 0
    seconds: float = 0.0
    max_seconds: float = 0.0


@dataclass(slots=True)
class BlobStoreMetrics:
    operations: dict[str, OperationStats] = field(default_factory=dict)
    bytes_written: int = 0
    """Bytes handed to ``write_upload`` (whether or not the call then succeeded)."""
    bytes_read: int = 0
    """Bytes streamed out by ``open`` and ``read_upload``."""

    def operation(self, name: str) -> OperationStats:
        stats = self.operations.get(name)
        if stats is None:
            stats = self.operations[name] = OperationStats()
        return stats


class CheckedBlobStore:
    """Wraps ``inner`` (any adapter) with the guarantees in the module docstring."""

    def __init__(self, inner: BlobStore, metrics: BlobStoreMetrics | None = None) -> None:
        self.inner = inner
        self.metrics = metrics if metrics is not None else BlobStoreMetrics()

    # -- committed blobs ----------------------------------------------------------------

    async def stat(self, digest: Digest) -> int | None:
        _check_digest(digest)
        with self._operation("stat"):
            return await self.inner.stat(digest)

    async def locate(self, digest: Digest) -> BlobLocation | None:
        _check_digest(digest)
        with self._operation("locate"):
            return await self.inner.locate(digest)

    def open(
        self, digest: Digest, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Checks the arguments now; the stream raises BlobUnknown on its first iteration."""
        _check_digest(digest)
        _check_range(offset, length)
        return self._stream("open", lambda: self.inner.open(digest, offset, length))

    async def delete(self, digest: Digest) -> bool:
        _check_digest(digest)
        with self._operation("delete"):
            return await self.inner.delete(digest)

    async def stat_many(self, digests: Sequence[Digest]) -> dict[Digest, int]:
        for digest in digests:
            _check_digest(digest)
        with self._operation("stat_many"):
            return await self.inner.stat_many(digests)

    async def delete_many(self, digests: Sequence[Digest]) -> set[Digest]:
        for digest in digests:
            _check_digest(digest)
        with self._operation("delete_many"):
            return await self.inner.delete_many(digests)

    async def list_digests(self, modified_before: datetime | None = None) -> AsyncIterator[Digest]:
        _check_instant(modified_before)
        with self._operation("list_digests"):
            digests = self.inner.list_digests(modified_before)
            try:
                async for digest in digests:
                    yield digest
            finally:
                await _aclose(digests)

    # -- uploads ------------------------------------------------------------------------

    async def start_upload(self, upload_id: str) -> None:
        if not is_upload_id(upload_id):
            raise ValueError(f"upload ids are lowercase canonical UUIDs, not {upload_id!r}")
        with self._operation("start_upload"):
            await self.inner.start_upload(upload_id)

    async def write_upload(self, upload_id: str, offset: int, chunks: AsyncIterable[bytes]) -> int:
        _check_upload_id(upload_id)
        _check_offset(offset, "offset")
        source = _Source(chunks, self.metrics)
        with self._operation("write_upload", source):
            async with aclosing(source.iterate()) as counted:
                return await self.inner.write_upload(upload_id, offset, counted)

    async def upload_size(self, upload_id: str) -> int:
        _check_upload_id(upload_id)
        with self._operation("upload_size"):
            return await self.inner.upload_size(upload_id)

    def read_upload(self, upload_id: str, length: int | None = None) -> AsyncIterator[bytes]:
        """Checks the arguments now; the stream raises UploadUnknown on its first iteration."""
        _check_upload_id(upload_id)
        _check_range(0, length)
        return self._stream("read_upload", lambda: self.inner.read_upload(upload_id, length))

    async def commit_upload(self, upload_id: str, digest: Digest, size: int) -> None:
        _check_upload_id(upload_id)
        _check_digest(digest)
        _check_offset(size, "size")
        with self._operation("commit_upload"):
            await self.inner.commit_upload(upload_id, digest, size)

    async def cancel_upload(self, upload_id: str) -> None:
        if not is_upload_id(upload_id):
            return  # it cannot exist, so it is already gone
        with self._operation("cancel_upload"):
            await self.inner.cancel_upload(upload_id)

    async def list_uploads(self, modified_before: datetime | None = None) -> AsyncIterator[str]:
        """Ids of the staging areas; a name that is not an upload id (which no caller could
        pass back) is skipped."""
        _check_instant(modified_before)
        with self._operation("list_uploads"):
            upload_ids = self.inner.list_uploads(modified_before)
            try:
                async for upload_id in upload_ids:
                    if is_upload_id(upload_id):
                        yield upload_id
            finally:
                await _aclose(upload_ids)

    async def close(self) -> None:
        with self._operation("close"):
            await self.inner.close()

    # -- helpers ------------------------------------------------------------------------

    def _operation(self, name: str, source: _Source | None = None) -> _Operation:
        return _Operation(name, self.metrics.operation(name), source)

    async def _stream(
        self, operation: str, open_inner: Callable[[], AsyncIterator[bytes]]
    ) -> AsyncIterator[bytes]:
        with self._operation(operation):
            chunks = open_inner()
            try:
                async for chunk in chunks:
                    self.metrics.bytes_read += len(chunk)
                    yield chunk
            finally:
                await _aclose(chunks)


class _Operation:
    """Times one call and turns an adapter's unexpected exception into BlobStoreError.

    For a stream, the block spans the whole iteration (it is entered around the ``yield``s),
    so the time includes the consumer's; an early ``aclose`` ends it with GeneratorExit,
    which passes through like any non-Exception.
    """

    __slots__ = ("_name", "_source", "_started", "_stats")

    def __init__(self, name: str, stats: OperationStats, source: _Source | None) -> None:
        self._name = name
        self._stats = stats
        self._source = source
        self._started = 0.0

    def __enter__(self) -> None:
        self._stats.calls += 1
        self._started = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._started
        self._stats.seconds += elapsed
        self._stats.max_seconds = max(self._stats.max_seconds, elapsed)
        if exc is None or not isinstance(exc, Exception):
            return  # success, cancellation, GeneratorExit: nothing to translate
        if self._source is not None and exc is self._source.error:
            return  # the caller's chunks failed (a client went away): theirs, not ours
        if isinstance(exc, RegistryError):
            self._stats.errors += 1
            return
        self._stats.failures += 1
        raise BlobStoreError(self._name, exc) from exc


class _Source:
    """The caller's chunks, counted, remembering the exception they raise (if any)."""

    def __init__(self, chunks: AsyncIterable[bytes], metrics: BlobStoreMetrics) -> None:
        self._chunks = chunks
        self._metrics = metrics
        self.error: BaseException | None = None

    async def iterate(self) -> AsyncGenerator[bytes, None]:
        iterator = aiter(self._chunks)
        while True:
            try:
                chunk = await anext(iterator)
            except StopAsyncIteration:
                return
            except BaseException as exc:
                self.error = exc
                raise
            self._metrics.bytes_written += len(chunk)
            yield chunk


async def _aclose(iterator: AsyncIterator[object]) -> None:
    """Close an adapter's stream early (an async generator runs its ``finally`` then)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


def _check_upload_id(upload_id: str) -> None:
    if not is_upload_id(upload_id):
        raise UploadUnknown(f"upload {upload_id!r} is unknown")


def _check_digest(digest: Digest) -> None:
    # Digest is a plain dataclass that anyone can build; parse its text to re-validate it.
    if not isinstance(digest, Digest) or Digest.parse(str(digest)) != digest:
        raise InvalidDigest(f"invalid digest {digest!r}")


def _check_instant(value: datetime | None) -> None:
    # A naive datetime would be compared in the host's time zone: refuse it, as the
    # metadata store does.
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")


def _check_offset(value: int, name: str) -> None:
    if value < 0:
        raise ValueError(f"{name} must not be negative, not {value}")


def _check_range(offset: int, length: int | None) -> None:
    _check_offset(offset, "offset")
    if length is not None:
        _check_offset(length, "length")
