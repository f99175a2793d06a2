"""``GET /v2/_catalog`` (repositories of the caller's registry) and ``GET /v2/``."""

from __future__ import annotations

from aiohttp import web

from moorage.iam.actions import Action
from moorage.protocols.oci.auth import public, requires
from moorage.protocols.oci.context import registry_id, services
from moorage.protocols.oci.pagination import Page, PaginationInvalid, pagination_error


@public
async def api_version(request: web.Request) -> web.Response:
    """The API version check every client starts with: 200 once authenticated."""
    return web.json_response({})


@requires(Action.DESCRIBE_REPOSITORIES)
async def catalog(request: web.Request) -> web.Response:
    try:
        page = Page.from_query(request)
    except PaginationInvalid as exc:
        return pagination_error(exc)
    names: list[str] = []
    if page.limit != 0:
        repositories = await services(request).repositories.list(
            registry_id(request), after=page.after, limit=page.fetch_limit
        )
        names = [repository.name for repository in repositories]
    names, headers = page.link("/v2/_catalog", names)
    return web.json_response({"repositories": names}, headers=headers)
