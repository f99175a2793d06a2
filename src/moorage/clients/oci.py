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

import re
import time
from collections.abc import AsyncIterator
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
    ) -> None:
        self._base = URL(base_url.rstrip("/"))
        self._credentials = credentials
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

    # -- requests ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _request(
        self, method: str, path: str, repository: str | None, headers: dict[str, str]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        scope = f"repository:{repository}:pull" if repository is not None else ""
        url = self._base.with_path(path, encoded=False)
        for attempt in (1, 2):
            sent = dict(headers)
            authorization = self._authorization(scope)
            if authorization is not None:
                sent["Authorization"] = authorization
            try:
                response = await self._session.request(method, url, headers=sent)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise UpstreamUnreachable(f"{method} {path}: {type(exc).__name__}") from None
            try:
                if response.status == 401 and attempt == 1:
                    challenge = response.headers.get("WWW-Authenticate", "")
                    await self._answer(challenge, scope)
                    continue
                _raise_for_status(response, method, path)
                yield response
                return
            finally:
                response.release()

    def _authorization(self, scope: str) -> str | None:
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
                raise UpstreamRefused("the upstream asks for credentials and the rule has none")
            self._basic = True
            return
        if kind.lower() != "bearer" or "realm" not in params:
            raise UpstreamRefused("the upstream asked for an authentication scheme it did not name")
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
                    raise UpstreamRefused("the upstream's token service refused the credentials")
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
    where = f"{method} {path}: {status}"
    if status == 429 or status >= 500:
        raise UpstreamUnreachable(where, retry_after=_retry_after(response))
    if status == 404:
        raise UpstreamNotFound(where)
    raise UpstreamRefused(where)


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
