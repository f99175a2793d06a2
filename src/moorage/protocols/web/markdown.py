"""Markdown of catalog data (``aboutText``, ``usageText``) to HTML that is safe to put in a
page.

markdown-it-py renders CommonMark (with tables and strikethrough, as GitHub-flavoured
Markdown has) with raw HTML turned off, so ``<script>`` in the text comes out as text; nh3
(ammonia's bindings) then keeps only the tags and attributes listed here, as a second line:
links get ``rel="noopener noreferrer nofollow"`` and only http(s) and mailto URLs. The input
is at most 25,600 characters (the model's limit); markdown-it's work is linear in it.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

_TAGS = {
    "a", "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "code",
    "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "img",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"align"},
    "td": {"align"},
}


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


# A page gives the text's sections its own h2; the text's headings go below it.
_HEADING_SHIFT = 2


def render(text: str) -> str:
    """Sanitized HTML of ``text``; its headings start at h3 (``#`` is an h3)."""
    renderer = _renderer()
    tokens = renderer.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + _HEADING_SHIFT)}"
    html = renderer.renderer.render(tokens, renderer.options, {})
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
