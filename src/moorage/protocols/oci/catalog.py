"""``GET /v2/_catalog`` (repositories of the caller's registry) and ``GET /v2/``."""

from __future__ import annotations

from aiohttp import web

from moorage.domain.errors import Unauthenticated
from moorage.iam.actions import Action
from moorage.protocols.oci.auth import allowed_repositories, public
from moorage.protocols.oci.context import principal, registry_id, services
from moorage.protocols.oci.pagination import Page, PaginationInvalid, pagination_error


@public
async def api_version(request: web.Request) -> web.Response:
    """The API version check every client starts with: 200 once authenticated.

    At the public address (which hands out anonymous tokens) an anonymous caller is answered
    the challenge anyway, as ECR Public answers it: clients learn there how to get a token
    (anonymous or logged in), and one that was given credentials learns to send them."""
    if principal(request).is_anonymous and services(request).anonymous_tokens:
        raise Unauthenticated("authentication required")
    return web.json_response({})


# Repositories read per store query while filtering the catalog for a caller.
_FILTER_BATCH = 1000


@public  # authorized below, repository by repository
async def catalog(request: web.Request) -> web.Response:
    """The registry's repositories that the caller may describe (``ecr:DescribeRepositories``
    on each repository's ARN), paginated with ``n`` and ``last``.

    ECR documents no catalog. Asking per repository is what makes a policy scoped to
    ``repository/team-*``, or a deny on one repository, show in the list as it does on every
    other call; an allow on ``*`` alone would list repositories the caller may not touch.
    """
    try:
        page = Page.from_query(request)
    except PaginationInvalid as exc:
        return pagination_error(exc)
    names = await _visible_names(request, page) if page.limit != 0 else []
    names, headers = page.link("/v2/_catalog", names)
    return web.json_response({"repositories": names}, headers=headers)


async def _visible_names(request: web.Request, page: Page) -> list[str]:
    """Up to ``page.fetch_limit`` names after ``page.after`` that the caller may describe."""
    wanted = page.fetch_limit
    visible: list[str] = []
    after = page.after
    while wanted is None or len(visible) < wanted:
        batch = await services(request).repositories.list(
            registry_id(request), after=after, limit=_FILTER_BATCH
        )
        names = [repository.name for repository in batch]
        visible += await allowed_repositories(request, Action.DESCRIBE_REPOSITORIES, names)
        if len(batch) < _FILTER_BATCH:
            break
        after = names[-1]
    return visible if wanted is None else visible[:wanted]
