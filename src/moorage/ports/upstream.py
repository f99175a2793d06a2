"""The upstream port: another OCI registry that images are read from (a pull-through
cache's upstream).

An adapter (``clients/oci.py``) speaks the distribution API to it, authenticates as the
registry asks (anonymous or basic bearer tokens, basic auth), and sorts every failure into
the three exceptions below, so that the cache decides by kind, never by HTTP status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from moorage.domain.digests import Digest


class UpstreamError(Exception):
    """Base of the upstream's failures; the message is fit for a log (no secrets).
    ``status``: the HTTP status the registry answered, when it answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UpstreamUnreachable(UpstreamError):
    """No answer, a cut connection, a timeout, 429 or 5xx: the upstream may do better later.
    ``retry_after``: seconds the upstream asked to wait (429/503 ``Retry-After``)."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class UpstreamNotFound(UpstreamError):
    """The upstream answered that the repository, tag, manifest or blob does not exist."""


class UpstreamRefused(UpstreamError):
    """The upstream refused the credentials, or the request (another 4xx)."""


@dataclass(frozen=True, slots=True)
class UpstreamManifest:
    payload: bytes
    media_type: str
    digest: Digest  # the sha256 of ``payload``, checked against what the upstream said


class BlobStream(Protocol):
    size: int | None  # the upstream's Content-Length, when it sent one

    def chunks(self) -> AsyncIterator[bytes]: ...


class UpstreamRegistry(Protocol):
    async def get_manifest(self, repository: str, reference: str) -> UpstreamManifest:
        """The manifest a tag or digest names, verified: its digest is the sha256 of its
        bytes, and equals the reference when that is a digest, and the upstream's
        ``Docker-Content-Digest`` when it sends one. Raises the UpstreamError kinds."""
        ...

    async def head_manifest(self, repository: str, reference: str) -> Digest:
        """The digest a tag names now (a HEAD, which registries such as Docker Hub do not
        count against pull limits). Raises the UpstreamError kinds."""
        ...

    def blob(self, repository: str, digest: Digest) -> AbstractAsyncContextManager[BlobStream]:
        """The blob's bytes as they arrive (unverified: the caller hashes them). Raises the
        UpstreamError kinds on entry and while reading."""
        ...

    async def check(self, repository: str | None = None) -> None:
        """Reach the registry and authenticate (``GET /v2/``, then a token for
        ``repository`` when given). Raises the UpstreamError kinds."""
        ...

    async def close(self) -> None: ...


class RegistryPusher(Protocol):
    """Another registry that images are written to (a replication destination)."""

    async def blob_exists(self, repository: str, digest: Digest) -> bool: ...

    async def upload_blob(
        self,
        repository: str,
        digest: Digest,
        size: int,
        read: Callable[[int, int], Awaitable[bytes]],
    ) -> None:
        """Upload in chunks, resuming a chunk that fails where the registry says the upload
        got. Raises the UpstreamError kinds."""
        ...

    async def put_manifest(
        self,
        repository: str,
        reference: str,
        payload: bytes,
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None: ...

    async def delete_manifest(self, repository: str, reference: str) -> bool: ...

    async def close(self) -> None: ...
