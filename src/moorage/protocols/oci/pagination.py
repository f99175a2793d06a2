"""``n``/``last`` pagination and the ``Link: <...>; rel="next"`` header (distribution-spec,
"Listing Tags")."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from moorage.protocols.oci.errors import error_response


class PaginationInvalid(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Page:
    limit: int | None
    after: str | None

    @classmethod
    def from_query(cls, request: web.Request) -> Page:
        text = request.query.get("n")
        limit = None
        if text is not None:
            if not text.isdigit() or len(text) > 9:
                raise PaginationInvalid(f"n must be a non-negative integer, not {text[:16]!r}")
            limit = int(text)
        return cls(limit=limit, after=request.query.get("last") or None)

    @property
    def fetch_limit(self) -> int | None:
        """Ask the store for one extra item to learn whether a next page exists."""
        return None if self.limit is None else self.limit + 1

    def link(self, path: str, items: list[str]) -> tuple[list[str], dict[str, str]]:
        """Trim ``items`` (fetched with :attr:`fetch_limit`) and build the Link header."""
        if self.limit is None or len(items) <= self.limit:
            return items, {}
        page = items[: self.limit]
        query = urlencode({"n": self.limit, "last": page[-1]})
        return page, {"Link": f'<{path}?{query}>; rel="next"'}


def pagination_error(exc: PaginationInvalid) -> web.Response:
    # distribution's registered code for this case.
    return error_response("PAGINATION_NUMBER_INVALID", str(exc), 400)
