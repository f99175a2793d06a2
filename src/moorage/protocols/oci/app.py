"""Mount the OCI Distribution API on an aiohttp application."""

from __future__ import annotations

from aiohttp import web

from moorage.protocols.oci import token
from moorage.protocols.oci.auth import access_middleware
from moorage.protocols.oci.context import SERVICES, OciServices
from moorage.protocols.oci.errors import add_api_version_header, error_middleware
from moorage.protocols.oci.routes import ROUTES
from moorage.protocols.oci.sendfile import sendfile_context

# Outermost first: errors wrap access checks, which wrap handlers.
MIDDLEWARES = (error_middleware, access_middleware)


def mount(app: web.Application, oci_services: OciServices) -> None:
    """Add the ``/v2/`` routes. The app must be built with :data:`MIDDLEWARES`."""
    app[SERVICES] = oci_services
    app.add_routes(ROUTES)
    app.add_routes(token.ROUTES)
    app.cleanup_ctx.append(sendfile_context)

    async def version_header(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/v2"):
            await add_api_version_header(request, response)

    app.on_response_prepare.append(version_header)
