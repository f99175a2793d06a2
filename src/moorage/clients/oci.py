"""An OCI distribution client: the upstream port (``ports/upstream.py``) over aiohttp.

Authentication follows the registry's challenge, as docker does: a request goes out with
the token cached for its scope (or basic credentials, once the registry asked for them); a
``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` fetches a token
from the realm (anonymously, or with the credentials), caches it until its ``expires_in``
(60 s when it gives none, as the token spec says), and retries once; ``Basic`` retries once
with the credentials. Credentials never reach a log or an exception message.

Bounds: a manifest is read up to ``MAX_MANIFEST_BYTES``; every read waits at most
``read_timeout`` for the next bytes, a connection at most ``connect_timeout``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from moorage.domain.digests import Digest, is_digest
from moorage.domain.manifests import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
)
from moorage.ports.upstream import (
    UpstreamManifest,
    UpstreamNotFound,
    UpstreamRefused,
    UpstreamUnreachable,
)

ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
CHUNK_SIZE = 1 << 20
# Chunks of a blob pushed to another registry: large enough to be few, small enough that a
# resumed upload repeats little.
UPLOAD_CHUNK_SIZE = 8 << 20
RESUME_PAUSE = 0.5
DEFAULT_TOKEN_LIFETIME = 60.0
# A token is renewed this long before it expires, so that no request carries a dying one.
TOKEN_MARGIN = 5.0
MAX_TOKEN_BYTES = 64 * 1024
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never the secret
        return f"BasicCredentials(username={self.username!r})"


class _Stream:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.size = response.content_length

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK_SIZE):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnreachable(f"the upstream stopped sending: {exc!r}") from None


class OciRegistryClient:
    """One upstream registry at ``base_url`` (``https://host[:port]``)."""

    def __init__(
        self,
        base_url: str,
        credentials: BasicCredentials | None = None,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        session: aiohttp.ClientSession | None = None,
        bearer: Callable[[], str] | None = None,
    ) -> None:
        """``bearer``: a token to send as ``Authorization: Bearer`` on every request (another
        moorage's replication token), instead of answering the registry's challenges."""
        self._base = URL(base_url.rstrip("/"))
        self._credentials = credentials
        self._bearer = bearer
        self._session = session or aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=None, connect=connect_timeout, sock_read=read_timeout
            )
        )
        self._owns_session = session is None
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, expires, monotonic)
        self._basic = False

    async def close(self) -> None:
        if self._owns_session:
            await self._session.close()

    # -- the port --------------------------------------------------------------------------

    async def get_manifest(self, repository: str, reference: str) -> UpstreamManifest:
        path = f"/v2/{repository}/manifests/{reference}"
        async with self._request("GET", path, repository, {"Accept": ACCEPT}) as response:
            declared = response.content_length
            if declared is not None and declared > MAX_MANIFEST_BYTES:
                raise UpstreamRefused(f"the upstream manifest is {declared} bytes")
            payload = await _read_limited(response, MAX_MANIFEST_BYTES)
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            said = response.headers.get("Docker-Content-Digest")
        digest = Digest.of(payload)
        expected = reference if is_digest(reference) else said
        if expected is not None and expected != str(digest):
            raise UpstreamUnreachable(
                f"the upstream's manifest hashes to {digest}, not {expected}: corrupted in transit"
            )
        return UpstreamManifest(payload, media_type, digest)

    async def head_manifest(self, repository: str, reference: str) -> Digest:
        path = f"/v2/{repository}/manifests/{reference}"
        async with self._request("HEAD", path, repository, {"Accept": ACCEPT}) as response:
            said = response.headers.get("Docker-Content-Digest")
        if said is not None and is_digest(said):
            return Digest.parse(said)
        # A registry that does not say: the manifest itself tells.
        return (await self.get_manifest(repository, reference)).digest

    @asynccontextmanager
    async def blob(self, repository: str, digest: Digest) -> AsyncIterator[_Stream]:
        path = f"/v2/{repository}/blobs/{digest}"
        async with self._request("GET", path, repository, {}) as response:
            yield _Stream(response)

    async def check(self, repository: str | None = None) -> None:
        if repository is None:
            async with self._request("GET", "/v2/", None, {}):
                return
        # A HEAD of a tag that need not exist: proves the token for the repository.
        try:
            async with self._request("HEAD", f"/v2/{repository}/tags/list", repository, {}):
                return
        except UpstreamNotFound:
            return

    # -- pushing (replication to another registry) -----------------------------------------

    async def blob_exists(self, repository: str, digest: Digest) -> bool:
        """Whether the repository has the blob. Raises the UpstreamError kinds (but for 404,
        which is False: a missing repository has no blobs)."""
        try:
            async with self._request(
                "HEAD", f"/v2/{repository}/blobs/{digest}", repository, {}, push=True
            ):
                return True
        except UpstreamNotFound:
            return False

    async def upload_blob(
        self,
        repository: str,
        digest: Digest,
        size: int,
        read: Callable[[int, int], Awaitable[bytes]],
        *,
        chunk_size: int = UPLOAD_CHUNK_SIZE,
        resumes: int = 3,
    ) -> None:
        """Upload a blob in chunks of ``chunk_size`` (``read(offset, length)`` gives them).
        A chunk that fails mid-way is resumed from where the registry says the upload got
        (a GET of the upload), at most ``resumes`` times. Raises the UpstreamError kinds."""
        path = f"/v2/{repository}/blobs/uploads/"
        async with self._request("POST", path, repository, {}, push=True) as response:
            location = _location(response)
        offset = 0
        left = resumes
        while offset < size:
            length = min(chunk_size, size - offset)
            data = await read(offset, length)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + length - 1}",
            }
            try:
                async with self._request(
                    "PATCH", location, repository, headers, body=data, push=True
                ) as response:
                    location = _location(response)
                offset += length
            except UpstreamUnreachable:
                if left <= 0:
                    raise
                left -= 1
                await asyncio.sleep(RESUME_PAUSE * (resumes - left))
                location, offset = await self._upload_offset(repository, location)
                if offset == 0:
                    # "0-0" says no byte, or one: start a new upload rather than guess.
                    async with self._request("POST", path, repository, {}, push=True) as again:
                        location = _location(again)
        separator = "&" if "?" in location else "?"
        async with self._request(
            "PUT", f"{location}{separator}digest={digest}", repository, {}, body=b"", push=True
        ):
            return

    async def _upload_offset(self, repository: str, location: str) -> tuple[str, int]:
        """Where an upload stands: its location and the next byte it expects."""
        async with self._request("GET", location, repository, {}, push=True) as response:
            ranged = response.headers.get("Range", "")
            new_location = response.headers.get("Location") or location
        _, _, end = ranged.partition("-")
        # "0-N" holds N + 1 bytes; "0-0" is ambiguous (the caller starts again).
        return new_location, (int(end) + 1 if end.isdigit() and int(end) > 0 else 0)

    async def put_manifest(
        self,
        repository: str,
        reference: str,
        payload: bytes,
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        sent = {"Content-Type": media_type, **(headers or {})}
        async with self._request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            repository,
            sent,
            body=payload,
            push=True,
        ):
            return

    async def delete_manifest(self, repository: str, reference: str) -> bool:
        """False when the registry has no such manifest or tag."""
        try:
            async with self._request(
                "DELETE", f"/v2/{repository}/manifests/{reference}", repository, {}, push=True
            ):
                return True
        except UpstreamNotFound:
            return False

    # -- requests ----------------------------------------------------------------------------

    def _url(self, path: str) -> URL:
        """An absolute URL for ``path``, which may be a Location a registry answered (absolute,
        or relative to the registry; only the registry's own host is followed)."""
        if path.startswith(("http://", "https://")):
            absolute = URL(path)
            if absolute.origin() != self._base.origin():
                raise UpstreamRefused("the registry sent a location on another host")
            return absolute
        # As the registry wrote it (a Location's query is opaque state): no re-encoding.
        return URL(f"{self._base}{path}", encoded=True)

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        path: str,
        repository: str | None,
        headers: dict[str, str],
        *,
        body: bytes | None = None,
        push: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        actions = "pull,push" if push else "pull"
        scope = f"repository:{repository}:{actions}" if repository is not None else ""
        url = self._url(path)
        for attempt in (1, 2):
            sent = dict(headers)
            authorization = self._authorization(scope)
            if authorization is not None:
                sent["Authorization"] = authorization
            try:
                response = await self._session.request(method, url, headers=sent, data=body)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise UpstreamUnreachable(f"{method} {path}: {type(exc).__name__}") from None
            try:
                if response.status == 401 and attempt == 1 and self._bearer is None:
                    challenge = response.headers.get("WWW-Authenticate", "")
                    await self._answer(challenge, scope)
                    continue
                _raise_for_status(response, method, path)
                yield response
                return
            finally:
                response.release()

    def _authorization(self, scope: str) -> str | None:
        if self._bearer is not None:
            return f"Bearer {self._bearer()}"
        found = self._tokens.get(scope)
        if found is not None and found[1] > time.monotonic():
            return f"Bearer {found[0]}"
        if self._basic and self._credentials is not None:
            return aiohttp.BasicAuth(
                self._credentials.username, self._credentials.password
            ).encode()
        return None

    async def _answer(self, challenge: str, scope: str) -> None:
        """Obtain what the challenge asks for; raises UpstreamRefused when it cannot be."""
        kind, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        if kind.lower() == "basic":
            if self._credentials is None:
                raise UpstreamRefused(
                    "the upstream asks for credentials and the rule has none", status=401
                )
            self._basic = True
            return
        if kind.lower() != "bearer" or "realm" not in params:
            raise UpstreamRefused(
                "the upstream asked for an authentication scheme it did not name", status=401
            )
        query: dict[str, str] = {}
        if "service" in params:
            query["service"] = params["service"]
        wanted = params.get("scope") or scope
        if wanted:
            query["scope"] = wanted
        auth = None
        if self._credentials is not None:
            auth = aiohttp.BasicAuth(self._credentials.username, self._credentials.password)
        try:
            async with self._session.get(URL(params["realm"]), params=query, auth=auth) as response:
                if response.status in (401, 403):
                    raise UpstreamRefused(
                        "the upstream's token service refused the credentials", status=401
                    )
                _raise_for_status(response, "GET", "token")
                document: Any = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise UpstreamUnreachable(f"token service: {type(exc).__name__}") from None
        token = (
            document.get("token") or document.get("access_token")
            if isinstance(document, dict)
            else None
        )
        if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
            raise UpstreamRefused("the upstream's token service answered no token")
        lifetime = document.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        expires = time.monotonic() + max(float(lifetime) - TOKEN_MARGIN, 1.0)
        self._tokens[scope] = (token, expires)


def _location(response: aiohttp.ClientResponse) -> str:
    location = response.headers.get("Location")
    if not location:
        raise UpstreamRefused("the registry answered an upload without its location")
    return location


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None


def _raise_for_status(response: aiohttp.ClientResponse, method: str, path: str) -> None:
    status = response.status
    if status < 300:
        return
    where = f"{method} {path.split('?')[0]}: {status}"
    if status == 429 or status >= 500:
        raise UpstreamUnreachable(where, retry_after=_retry_after(response), status=status)
    if status == 404:
        raise UpstreamNotFound(where, status=status)
    raise UpstreamRefused(where, status=status)


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    body = bytearray()
    try:
        async for chunk in response.content.iter_chunked(CHUNK_SIZE):
            body += chunk
            if len(body) > limit:
                raise UpstreamRefused(f"the upstream manifest is over {limit} bytes")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamUnreachable(f"the upstream stopped sending: {type(exc).__name__}") from None
    return bytes(body)
