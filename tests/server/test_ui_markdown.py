"""render_markdown: CommonMark for notes and descriptions, raw HTML shown as text, safe links."""

from __future__ import annotations

from markupsafe import Markup, escape

from runyard.server.ui.markdown import render_markdown


def test_commonmark_rendering() -> None:
    html = render_markdown("# Notes\n\nTrained on *iris* with **care**.\n\n- a\n- b\n\n`code`")

    assert isinstance(html, Markup)
    assert "<h3>Notes</h3>" in html  # a note's headings sit below the page's own titles
    assert "<em>iris</em>" in html
    assert "<strong>care</strong>" in html
    assert "<li>a</li>" in html
    assert "<code>code</code>" in html


def test_headings_shift_below_the_page_title() -> None:
    html = render_markdown("# One\n## Two\n#### Four\n###### Six")

    assert "<h3>One</h3>" in html
    assert "<h4>Two</h4>" in html
    assert "<h6>Four</h6>" in html
    assert "<h6>Six</h6>" in html
    assert "<h1" not in html
    assert "<h2" not in html


def test_raw_html_is_text() -> None:
    html = render_markdown('Hi <script>alert("x")</script> <img src=x onerror=alert(1)>')

    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_html_blocks_are_text() -> None:
    html = render_markdown("<div onclick='x()'>\nblock\n</div>")

    assert "<div" not in html
    assert "&lt;div onclick=" in html


def test_links_get_rel_noopener() -> None:
    html = render_markdown("[docs](https://example.com/a?b=1&c=2) and [run](/runs/abc)")

    assert (
        '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener" target="_blank">docs</a>'
        in html
    )
    assert '<a href="/runs/abc" rel="noopener">run</a>' in html


def test_autolinks_get_rel_noopener() -> None:
    html = render_markdown("<https://example.com>")

    assert 'rel="noopener"' in html
    assert 'href="https://example.com"' in html


def test_unsafe_link_schemes_are_not_links() -> None:
    html = render_markdown("[x](javascript:alert(1)) [y](vbscript:msgbox) [z](data:text/html,hi)")

    assert "<a" not in html
    assert "javascript:alert(1)" in html  # shown as the literal text


def test_markup_survives_escaping_once() -> None:
    html = render_markdown("a < b & c")

    assert str(escape(html)) == str(html)  # already safe: not escaped twice
    assert "a &lt; b &amp; c" in html


def test_empty_text() -> None:
    assert render_markdown("") == Markup("")
    assert render_markdown(None) == Markup("")
