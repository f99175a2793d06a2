"""A small async OCI Distribution client, just enough for the benchmark workloads.

It speaks `/v2/` as a real pushing or pulling client does (distribution-spec v1.1):

- blob push, monolithic: ``POST /v2/<name>/blobs/uploads/`` then one
  ``PUT <location>?digest=<d>`` carrying the whole body;
- blob push, chunked: ``POST``, one ``PATCH <location>`` per chunk with ``Content-Range``,
  each following the ``Location`` the previous response returned, then ``PUT ?digest=``;
- cross-repository mount: ``POST ?mount=<d>&from=<repo>``, falling back to an upload when the
  server answers 202 instead of 201 (the spec allows both);
- manifests by tag or digest, tag lists and the catalog, following ``Link`` for pagination.

Bodies are streamed from files in 1 MiB reads, so a 256 MiB push holds at most one chunk in
client memory. Every unexpected status raises `UnexpectedResponseError`, which carries the request,
the status and the start of the body, because that is what a server developer needs to see.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import aiohttp

READ_CHUNK = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


class UnexpectedResponseError(Exception):
    """A request got a status the client did not expect; the message names all of it."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} -> {status}: {body}")
        self.method = method
        self.url = url
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: media type, digest and size."""

    media_type: str
    digest: str
    size: int

    def as_json(self) -> dict[str, object]:
        """Return the descriptor as it appears inside a manifest."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def sha256_digest(data: bytes) -> str:
    """Return the ``sha256:<hex>`` digest of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_manifest(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """Serialise an OCI image manifest (schemaVersion 2) referencing `config` and `layers`."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.as_json(),
        "layers": [layer.as_json() for layer in layers],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


async def iter_file(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    """Yield `length` bytes of `path` from `start` in 1 MiB reads.

    Reads are synchronous: the benchmark files sit in the page cache, where a 1 MiB read costs
    far less than a hop to an executor thread.
    """
    remaining = length
    with path.open("rb", buffering=0) as f:
        f.seek(start)
        while remaining > 0:
            chunk = f.read(min(READ_CHUNK, remaining))
            if not chunk:
                raise OSError(f"{path} ended {remaining} bytes early")
            remaining -= len(chunk)
            yield chunk


class OciClient:
    """Async `/v2/` client bound to one registry base URL and one aiohttp session.

    The caller owns the session (and so the connector's size, which bounds concurrency).
    Methods raise `UnexpectedResponseError` on any status other than the ones the spec allows.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")

    def url(self, path: str) -> str:
        """Return the absolute URL of a path below the registry root (``/v2/...``)."""
        return self.base_url + path

    def _resolve(self, location: str) -> str:
        # The spec lets Location be absolute or relative to the registry root.
        return urljoin(self.base_url + "/", location)

    async def _fail(self, method: str, url: str, resp: aiohttp.ClientResponse) -> None:
        body = (await resp.read())[:800].decode(errors="replace")
        raise UnexpectedResponseError(method, url, resp.status, body)

    # -- blobs -------------------------------------------------------------------------------

    async def blob_exists(self, name: str, digest: str) -> bool:
        """HEAD a blob: True on 200, False on 404."""
        url = self.url(f"/v2/{name}/blobs/{digest}")
        async with self.session.head(url) as resp:
            if resp.status == 200:
                return True
            if resp.status == 404:
                return False
            await self._fail("HEAD", url, resp)
        raise AssertionError("unreachable")

    async def start_upload(self, name: str, query: str = "") -> tuple[int, str]:
        """POST an upload session; return (status, absolute Location).

        Status is 202 for a new session, or 201 when a ``mount`` query was honoured.
        """
        url = self.url(f"/v2/{name}/blobs/uploads/{query}")
        async with self.session.post(url, headers={"Content-Length": "0"}) as resp:
            if resp.status not in (201, 202):
                await self._fail("POST", url, resp)
            await resp.read()
            return resp.status, self._resolve(resp.headers["Location"])

    async def _finish_upload(self, location: str, digest: str, body: object, length: int) -> None:
        sep = "&" if "?" in location else "?"
        url = f"{location}{sep}digest={digest}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        async with self.session.put(url, data=body, headers=headers) as resp:
            if resp.status != 201:
                await self._fail("PUT", url, resp)
            await resp.read()

    async def push_blob_bytes(self, name: str, data: bytes, digest: str | None = None) -> str:
        """Push a small blob monolithically (POST, then PUT with the body); return its digest."""
        digest = digest or sha256_digest(data)
        _, location = await self.start_upload(name)
        await self._finish_upload(location, digest, data, len(data))
        return digest

    async def push_blob_file(self, name: str, path: Path, digest: str, size: int) -> None:
        """Push the `size` bytes of a file monolithically: POST, then one streaming PUT."""
        _, location = await self.start_upload(name)
        await self._finish_upload(location, digest, iter_file(path, 0, size), size)

    async def push_blob_file_chunked(
        self, name: str, path: Path, digest: str, size: int, chunk_size: int
    ) -> None:
        """Push a file as PATCH chunks of `chunk_size` with Content-Range, then a bodiless PUT."""
        _, location = await self.start_upload(name)
        offset = 0
        while offset < size:
            length = min(chunk_size, size - offset)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(length),
                "Content-Range": f"{offset}-{offset + length - 1}",
            }
            body = iter_file(path, offset, length)
            async with self.session.patch(location, data=body, headers=headers) as resp:
                if resp.status != 202:
                    await self._fail("PATCH", location, resp)
                await resp.read()
                location = self._resolve(resp.headers["Location"])
            offset += length
        await self._finish_upload(location, digest, b"", 0)

    async def ensure_blob(self, name: str, data: bytes, digest: str, mount_from: str) -> None:
        """Make a blob present in `name` as docker does: HEAD, then mount, then upload if needed."""
        if await self.blob_exists(name, digest):
            return
        status, location = await self.start_upload(name, f"?mount={digest}&from={mount_from}")
        if status == 202:
            await self._finish_upload(location, digest, data, len(data))

    async def pull_blob(self, name: str, digest: str, verify: bool = False) -> int:
        """GET a blob, reading and discarding the body; return its length.

        With `verify`, hash the body and raise `ValueError` when it does not match `digest`.
        """
        url = self.url(f"/v2/{name}/blobs/{digest}")
        hasher = hashlib.sha256() if verify else None
        total = 0
        async with self.session.get(url) as resp:
            if resp.status != 200:
                await self._fail("GET", url, resp)
            async for chunk in resp.content.iter_any():
                total += len(chunk)
                if hasher is not None:
                    hasher.update(chunk)
        if hasher is not None and "sha256:" + hasher.hexdigest() != digest:
            raise ValueError(f"GET {url}: body does not match its digest")
        return total

    # -- manifests and tags ------------------------------------------------------------------

    async def put_manifest(self, name: str, reference: str, body: bytes) -> None:
        """PUT an OCI image manifest under a tag or digest; expects 201."""
        url = self.url(f"/v2/{name}/manifests/{reference}")
        headers = {"Content-Type": OCI_MANIFEST}
        async with self.session.put(url, data=body, headers=headers) as resp:
            if resp.status != 201:
                await self._fail("PUT", url, resp)
            await resp.read()

    async def get_manifest(self, name: str, reference: str, method: str = "GET") -> bytes:
        """GET (or HEAD) a manifest with the usual Accept list; return the body (empty on HEAD)."""
        url = self.url(f"/v2/{name}/manifests/{reference}")
        async with self.session.request(method, url, headers={"Accept": MANIFEST_ACCEPT}) as resp:
            if resp.status != 200:
                await self._fail(method, url, resp)
            return await resp.read()

    async def _paged_list(
        self, path: str, key: str, page_size: int | None
    ) -> tuple[list[str], int]:
        url = self.url(path + (f"?n={page_size}" if page_size else ""))
        names: list[str] = []
        pages = 0
        while url:
            async with self.session.get(url) as resp:
                if resp.status != 200:
                    await self._fail("GET", url, resp)
                doc = await resp.json(content_type=None)
                link = resp.links.get("next")
            names.extend(doc.get(key) or [])
            pages += 1
            url = self._resolve(str(link["url"])) if link else ""
        return names, pages

    async def list_tags(self, name: str, page_size: int | None = None) -> tuple[list[str], int]:
        """List all tags of `name`, following ``Link: rel="next"``; return (tags, pages fetched)."""
        return await self._paged_list(f"/v2/{name}/tags/list", "tags", page_size)

    async def catalog_page(self, page_size: int) -> int:
        """GET the first ``/v2/_catalog?n=<page_size>`` page; return how many names it held."""
        url = self.url(f"/v2/_catalog?n={page_size}")
        async with self.session.get(url) as resp:
            if resp.status != 200:
                await self._fail("GET", url, resp)
            doc = await resp.json(content_type=None)
        return len(doc.get("repositories") or [])

    async def catalog(self, page_size: int | None = None) -> tuple[list[str], int]:
        """List all repositories via ``/v2/_catalog``, following Link; return (names, pages)."""
        return await self._paged_list("/v2/_catalog", "repositories", page_size)
