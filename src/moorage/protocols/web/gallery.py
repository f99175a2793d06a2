"""The public gallery on ``/gallery/`` (ECR Public's gallery.ecr.aws): no login, public
repositories only.

    GET /gallery/                       search (``q``) with operating system and architecture
                                        filters (``os``, ``arch``), a page at a time
    GET /gallery/<alias>/<repository>   a repository's page
    GET /gallery/_logos/<alias>[/<repository>]   a logo (PNG)
    GET /gallery/_static/...            the stylesheet and the copy buttons' script

Paths under ``_`` cannot clash with a registry: an alias starts with a letter. Every input is
bounded (the query text, the number of filters) before it reaches a query. Pages carry a
Content-Security-Policy that allows only this server's own stylesheet, script and images,
so that nothing in catalog data can run even if it got past the sanitizer
(``markdown.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup

from moorage.protocols.web.markdown import render
from moorage.services.gallery import PAGE_SIZE, GalleryService
from moorage.services.public import PublicSite

HERE = Path(__file__).parent
# ECR Public's badge values (the gallery's filters); other values are stored and shown.
OPERATING_SYSTEMS = ("Linux", "Windows")
ARCHITECTURES = ("ARM", "ARM 64", "x86", "x86-64")
MAX_QUERY = 100
MAX_FILTERS = 8
MAX_FILTER_LENGTH = 50
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class Gallery:
    service: GalleryService
    site: PublicSite
    templates: jinja2.Environment


GALLERY = web.AppKey("moorage.gallery", Gallery)


def templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["filesize"] = filesize
    return environment


def filesize(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def mount(app: web.Application, service: GalleryService, site: PublicSite) -> None:
    app[GALLERY] = Gallery(service, site, templates())
    app.router.add_get("/gallery", _to_gallery)
    app.router.add_get("/gallery/", search_page)
    app.router.add_static("/gallery/_static", HERE / "static", append_version=False)
    app.router.add_get("/gallery/_logos/{alias}", logo)
    app.router.add_get("/gallery/_logos/{alias}/{name:.+}", logo)
    app.router.add_get("/gallery/{alias}/{name:.+}", repository_page)


async def _to_gallery(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/gallery/")


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    html = request.app[GALLERY].templates.get_template(template).render(**context)
    return web.Response(
        text=html,
        content_type="text/html",
        charset="utf-8",
        status=status,
        headers=SECURITY_HEADERS,
    )


def _filters(request: web.Request, key: str) -> list[str]:
    values = [value[:MAX_FILTER_LENGTH] for value in request.query.getall(key, [])]
    return list(dict.fromkeys(values))[:MAX_FILTERS]


@dataclass(frozen=True)
class Query:
    text: str
    operating_systems: list[str]
    architectures: list[str]


async def search_page(request: web.Request) -> web.Response:
    gallery = request.app[GALLERY]
    query = Query(
        request.query.get("q", "").strip()[:MAX_QUERY],
        _filters(request, "os"),
        _filters(request, "arch"),
    )
    after = _cursor(request.query.get("after", ""))
    entries = await gallery.service.search(
        query.text,
        operating_systems=query.operating_systems,
        architectures=query.architectures,
        after=after,
        limit=PAGE_SIZE + 1,
    )
    next_page = None
    if len(entries) > PAGE_SIZE:
        last = entries[PAGE_SIZE - 1]
        params: list[tuple[str, str]] = [("q", query.text)] if query.text else []
        params += [("os", value) for value in query.operating_systems]
        params += [("arch", value) for value in query.architectures]
        params.append(("after", f"{last.alias}/{last.name}"))
        next_page = f"/gallery/?{urlencode(params)}"
    return _page(
        request,
        "search.html",
        query=query,
        entries=entries[:PAGE_SIZE],
        next_page=next_page,
        operating_systems=sorted({*OPERATING_SYSTEMS, *query.operating_systems}),
        architectures=sorted({*ARCHITECTURES, *query.architectures}),
    )


def _cursor(text: str) -> tuple[str, str] | None:
    alias, slash, name = text[:300].partition("/")
    return (alias, name) if slash and alias and name else None


async def repository_page(request: web.Request) -> web.Response:
    gallery = request.app[GALLERY]
    alias, name = request.match_info["alias"], request.match_info["name"]
    page = await gallery.service.repository(alias, name)
    if page is None:
        return _page(
            request,
            "not_found.html",
            status=404,
            message=f"There is no public repository {alias}/{name}.",
        )
    return _page(
        request,
        "repository.html",
        entry=page.entry,
        page=page,
        address=gallery.site.address(request.host),
        about=Markup(render(page.catalog.about_text)) if page.catalog.about_text else None,
        usage=Markup(render(page.catalog.usage_text)) if page.catalog.usage_text else None,
    )


async def logo(request: web.Request) -> web.Response:
    gallery = request.app[GALLERY]
    data = await gallery.service.logo(request.match_info["alias"], request.match_info.get("name"))
    if data is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=data,
        content_type="image/png",
        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=300"},
    )
