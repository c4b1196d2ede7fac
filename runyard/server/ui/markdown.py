"""Markdown of notes and descriptions, rendered server-side and safe to mark as HTML.

markdown-it-py's CommonMark preset with raw HTML disabled: a ``<script>`` in a note is shown as
text, and links with unsafe schemes (``javascript:``, ``vbscript:``, ``data:`` other than images)
are refused by markdown-it's link validation. Links get ``rel="noopener"``; links to other sites
open in a new tab; headings start at ``<h3>`` so a note never adds a second page title. This
module's output is the only HTML built from user text that the UI marks safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

__all__ = ["render_markdown"]


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    token.attrSet("rel", "noopener")
    href = str(token.attrGet("href") or "")
    if href.startswith(("http://", "https://", "//")):
        token.attrSet("target", "_blank")
    rendered: str = self.renderToken(tokens, idx, options, env)
    return rendered


def _heading(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    # A note's "# Title" must not compete with the page's own <h1>/<h2>: headings start at <h3>.
    token = tokens[idx]
    token.tag = f"h{min(6, int(token.tag[1]) + 2)}"
    rendered: str = self.renderToken(tokens, idx, options, env)
    return rendered


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False})
    parser.add_render_rule("link_open", _link_open)
    parser.add_render_rule("heading_open", _heading)
    parser.add_render_rule("heading_close", _heading)
    return parser


def render_markdown(text: str | None) -> Markup:
    """``text`` (CommonMark) as HTML, safe to insert into a page; empty Markup for none."""
    if not text:
        return Markup("")
    return Markup(_parser().render(text))
