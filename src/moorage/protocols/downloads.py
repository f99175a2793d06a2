"""``GET /_moorage/layers/<token>``: the URLs GetDownloadUrlForLayer hands out.

Like a presigned S3 URL, the URL alone is the credential: no ``Authorization`` is read. An
unknown, altered or expired token answers 403 and a blob gone from its repository 404, in
plain text (an S3 client would see XML; nobody parses these bodies). ``Range`` is honoured.
"""

from __future__ import annotations

import logging

from aiohttp import web

from moorage.domain.errors import BlobUnknown, RepositoryNotFound
from moorage.iam.download_tokens import DownloadTokenExpired, DownloadTokenInvalid
from moorage.protocols.oci.ranges import UnsatisfiableRange, parse_byte_range
from moorage.services.downloads import LayerDownloadService

log = logging.getLogger("moorage.downloads")

PATH_PREFIX = "/_moorage/layers/"
DOWNLOADS = web.AppKey("moorage.downloads", LayerDownloadService)
_CHUNK = 1 << 20


def download_url(scheme: str, host: str, token: str) -> str:
    """Where a token is redeemed, as the client that asked for it reached this server."""
    return f"{scheme}://{host}{PATH_PREFIX}{token}"


async def get_layer(request: web.Request) -> web.StreamResponse:
    downloads = request.app[DOWNLOADS]
    try:
        blob, location = await downloads.redeem(request.match_info["token"])
    except DownloadTokenExpired:
        return web.Response(status=403, text="Request has expired\n")
    except DownloadTokenInvalid:
        return web.Response(status=403, text="Access denied\n")
    except (BlobUnknown, RepositoryNotFound):
        return web.Response(status=404, text="The layer no longer exists\n")
    headers = {
        "Content-Type": "application/octet-stream",
        "ETag": f'"{blob.digest}"',
        "Accept-Ranges": "bytes",
    }
    if location.url is not None:
        raise web.HTTPTemporaryRedirect(location.url)
    if location.path is not None:
        # aiohttp answers Range (206/416) itself.
        return web.FileResponse(location.path, chunk_size=_CHUNK, headers=headers)
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
    await response.prepare(request)
    try:
        async for chunk in downloads.open(blob.digest, start, end - start + 1):
            await response.write(chunk)
    except Exception:
        # Headers are gone already: the only honest signal left is a cut connection.
        log.exception("layer %s failed mid-stream; aborting the connection", blob.digest)
        if request.transport is not None:
            request.transport.abort()
        raise
    await response.write_eof()
    return response


def mount(app: web.Application, downloads: LayerDownloadService) -> None:
    app[DOWNLOADS] = downloads
    app.router.add_get(PATH_PREFIX + "{token}", get_layer)
