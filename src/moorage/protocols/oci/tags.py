"""``GET /v2/<name>/tags/list``: tags in binary order, with ``n``, ``last`` and ``Link``."""

from __future__ import annotations

from aiohttp import web

from moorage.iam.actions import Action
from moorage.protocols.oci.auth import requires
from moorage.protocols.oci.context import registry_id, repository_name, services
from moorage.protocols.oci.pagination import Page, PaginationInvalid, pagination_error


@requires(Action.LIST_IMAGES)
async def list_tags(request: web.Request) -> web.Response:
    name = repository_name(request)
    try:
        page = Page.from_query(request)
    except PaginationInvalid as exc:
        return pagination_error(exc)
    if page.limit == 0:
        tags: list[str] = []
        # Still answer NAME_UNKNOWN for a missing repository.
        await services(request).repositories.get(registry_id(request), name)
        headers: dict[str, str] = {}
    else:
        tags = await services(request).images.list_tags(
            registry_id(request), name, after=page.after, limit=page.fetch_limit
        )
        tags, headers = page.link(f"/v2/{name}/tags/list", tags)
    return web.json_response({"name": name, "tags": tags}, headers=headers)
