"""Blob endpoints: ``GET|HEAD|DELETE /v2/<name>/blobs/<digest>``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from moorage.domain.digests import Digest
from moorage.domain.errors import BlobUnknown
from moorage.domain.models import BlobRecord
from moorage.iam.actions import Action
from moorage.protocols.oci.auth import requires
from moorage.protocols.oci.context import registry_id, repository_name, services
from moorage.protocols.oci.ranges import UnsatisfiableRange, parse_byte_range
from moorage.protocols.oci.sendfile import SENDFILE, ThreadedSendfile
from moorage.services.pull_through_cache import BlobSink

log = logging.getLogger("moorage.oci")

OCTET_STREAM = "application/octet-stream"
# Reads ``count`` bytes of a blob from ``offset`` (BlobService.open and its kin).
OpenBytes = Callable[[Digest, int, int], AsyncIterator[bytes]]
FILE_CHUNK_SIZE = 1 << 20


def _headers(blob: BlobRecord) -> dict[str, str]:
    return {
        "Docker-Content-Digest": str(blob.digest),
        "Content-Type": OCTET_STREAM,
        "Accept-Ranges": "bytes",
        "ETag": f'"{blob.digest}"',
        # Content-addressed: the bytes at this URL never change.
        "Cache-Control": "max-age=31536000",
    }


@requires(Action.BATCH_CHECK_LAYER_AVAILABILITY)
async def head_blob(request: web.Request) -> web.Response:
    digest = Digest.parse(request.match_info["digest"])
    blobs = services(request).blobs
    try:
        blob = await blobs.stat(registry_id(request), repository_name(request), digest)
    except BlobUnknown:
        # A pull-through cache's blob not fetched yet: fetched now, then answered.
        if not await _cache_blob(request, digest, response=None):
            raise
        blob = await blobs.stat(registry_id(request), repository_name(request), digest)
    headers = _headers(blob)
    headers["Content-Length"] = str(blob.size)
    return web.Response(headers=headers)


@requires(Action.GET_DOWNLOAD_URL_FOR_LAYER)
async def get_blob(request: web.Request) -> web.StreamResponse:
    digest = Digest.parse(request.match_info["digest"])
    blob_service = services(request).blobs
    try:
        blob, location = await blob_service.locate(
            registry_id(request), repository_name(request), digest
        )
    except BlobUnknown:
        # A pull-through cache's blob not fetched yet: streamed to the client as it arrives
        # (whole: a ranged request waits for the fetch, then gets its range from the store).
        streamed = None if "Range" in request.headers else _streamed(request, digest)
        if not await _cache_blob(request, digest, response=streamed):
            raise
        if streamed is not None and streamed.prepared:
            return streamed
        blob, location = await blob_service.locate(
            registry_id(request), repository_name(request), digest
        )
    if location.url is not None:
        raise web.HTTPTemporaryRedirect(
            location.url, headers={"Docker-Content-Digest": str(digest)}
        )
    return await send_blob(request, blob, location.path, _headers(blob), blob_service.open)


def _streamed(request: web.Request, digest: Digest) -> web.StreamResponse:
    return web.StreamResponse(
        headers={
            "Docker-Content-Digest": str(digest),
            "Content-Type": OCTET_STREAM,
            "ETag": f'"{digest}"',
        }
    )


async def _cache_blob(
    request: web.Request, digest: Digest, *, response: web.StreamResponse | None
) -> bool:
    """Fetch a blob that a pull-through cache's manifest names from the upstream, into the
    store, writing it to ``response`` as it arrives when given (which is then finished, or
    its connection cut when the bytes were not the blob's). False when no cache wants it."""
    cache = services(request).cache
    if cache is None:
        return False
    name = repository_name(request)
    rule = await cache.wants_blob(registry_id(request), name, digest)
    if rule is None:
        return False
    sink = None
    if response is not None:
        stream = response

        async def start(size: int | None) -> None:
            if size is not None:
                stream.content_length = size
            await stream.prepare(request)

        sink = BlobSink(start, stream.write)
    try:
        fetched = await cache.fetch_blob(registry_id(request), name, rule, digest, sink)
    except Exception:
        if response is not None and response.prepared:
            # Headers are gone already: the only honest signal left is a cut connection.
            log.exception("cached blob %s failed mid-stream; aborting the connection", digest)
            if request.transport is not None:
                request.transport.abort()
        raise
    if fetched is not None and response is not None and response.prepared:
        await response.write_eof()
    return True


async def send_blob(
    request: web.Request,
    blob: BlobRecord,
    path: Path | None,
    headers: dict[str, str],
    open_bytes: OpenBytes,
) -> web.StreamResponse:
    """Answer a GET of ``blob`` (``Range`` honoured): from ``path`` when the store has the
    bytes in a local file, else streamed from ``open_bytes(digest, offset, count)``."""
    if path is not None:
        sender = request.app[SENDFILE]
        if sender is not None and sender.can_send(request):
            return await _send_file(request, sender, blob, path, headers)
        # aiohttp answers Range (206/416) itself and uses sendfile where the event loop has
        # it; elsewhere large reads keep its executor round trips few.
        return web.FileResponse(path, chunk_size=FILE_CHUNK_SIZE, headers=headers)
    return await _stream(request, blob, headers, open_bytes)


def _body_response(
    request: web.Request, blob: BlobRecord, headers: dict[str, str]
) -> web.Response | tuple[web.StreamResponse, int, int]:
    """The response for a GET of ``blob``, with its ``Range`` applied: a finished 416, or an
    unprepared response with the (offset, count) of the bytes its body must carry."""
    headers = dict(headers)
    try:
        byte_range = parse_byte_range(request.headers.get("Range"), blob.size)
    except UnsatisfiableRange:
        headers["Content-Range"] = f"bytes */{blob.size}"
        return web.Response(status=416, headers=headers)
    start, end = byte_range if byte_range else (0, blob.size - 1)
    response = web.StreamResponse(status=206 if byte_range else 200, headers=headers)
    if byte_range:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    response.content_length = end - start + 1
    return response, start, end - start + 1


async def _send_file(
    request: web.Request,
    sender: ThreadedSendfile,
    blob: BlobRecord,
    path: Path,
    headers: dict[str, str],
) -> web.StreamResponse:
    planned = _body_response(request, blob, headers)
    if isinstance(planned, web.Response):
        return planned
    response, offset, count = planned
    return await sender.send(request, response, path, offset, count)


async def _stream(
    request: web.Request, blob: BlobRecord, headers: dict[str, str], open_bytes: OpenBytes
) -> web.StreamResponse:
    planned = _body_response(request, blob, headers)
    if isinstance(planned, web.Response):
        return planned
    response, offset, count = planned
    await response.prepare(request)
    try:
        async for chunk in open_bytes(blob.digest, offset, count):
            await response.write(chunk)
    except Exception:
        # Headers are gone already: the only honest signal left is a cut connection.
        log.exception("blob %s failed mid-stream; aborting the connection", blob.digest)
        if request.transport is not None:
            request.transport.abort()
        raise
    await response.write_eof()
    return response


@requires(Action.BATCH_DELETE_IMAGE)
async def delete_blob(request: web.Request) -> web.Response:
    digest = Digest.parse(request.match_info["digest"])
    await services(request).blobs.delete(registry_id(request), repository_name(request), digest)
    return web.Response(status=202)
