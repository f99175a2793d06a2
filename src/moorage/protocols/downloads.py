"""``GET /_moorage/layers/<token>``: the URLs GetDownloadUrlForLayer hands out.

Like a presigned S3 URL, the URL alone is the credential: no ``Authorization`` is read. An
unknown, altered or expired token answers 403 and a blob gone from its repository 404, in
plain text (an S3 client would see XML; nobody parses these bodies). ``Range`` is honoured.
"""

from __future__ import annotations

from aiohttp import web

from moorage.domain.errors import BlobUnknown, RepositoryNotFound
from moorage.iam.download_tokens import DownloadTokenExpired, DownloadTokenInvalid
from moorage.protocols.oci.blobs import send_blob
from moorage.services.downloads import LayerDownloadService

PATH_PREFIX = "/_moorage/layers/"
DOWNLOADS = web.AppKey("moorage.downloads", LayerDownloadService)


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
    return await send_blob(request, blob, location.path, headers, downloads.open)


def mount(app: web.Application, downloads: LayerDownloadService) -> None:
    app[DOWNLOADS] = downloads
    app.router.add_get(PATH_PREFIX + "{token}", get_layer)
