"""HTML reduced to readable text for fetch_url."""

from __future__ import annotations

from agent_core.agent.tools.html_text import html_to_text


def test_html_to_text_drops_scripts_and_styles() -> None:
    html = "<head><title>T</title><style>p{color:red}</style><script>alert('x')</script></head><p>Body</p>"

    assert html_to_text(html) == "T\n\nBody"


def test_html_to_text_keeps_links_absolute() -> None:
    html = '<p>See <a href="/docs?a=1">the docs</a> or <a href="javascript:void(0)">this</a>.</p>'

    assert html_to_text(html, "https://example.com/dir/page") == "See [the docs](https://example.com/docs?a=1) or this."


def test_html_to_text_collapses_whitespace_but_keeps_preformatted_text() -> None:
    html = "<p>a   lot\n of   space</p><pre>def f():\n    return 1</pre><ul><li>one</li><li>two &amp; three</li></ul>"

    assert html_to_text(html) == "a lot of space\n\ndef f():\n    return 1\n\none\ntwo & three"
