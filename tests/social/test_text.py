"""The plain text of fetched HTML, as Mastodon statuses and feed entries both store it:
what a reader sees, with paragraphs and lines kept and nothing hidden let in."""

from __future__ import annotations

import pytest

from social.text import html_to_text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("a<br>b<br />c<br/>d", "a\nb\nc\nd"),
        (
            "<p>first line<br>second line</p><p>next paragraph</p>",
            "first line\nsecond line\n\nnext paragraph",
        ),
        ("<h2>Title</h2><blockquote>quoted</blockquote>after", "Title\n\nquoted\n\nafter"),
        ("<ul><li>one</li><li>two <b>bold</b></li></ul>after", "one\ntwo bold\n\nafter"),
        ("before<div>inside</div>after", "before\ninside\nafter"),
        ("<p>a</p>\n\n\n<p>b</p><p></p><p>c</p>", "a\n\nb\n\nc"),
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("", ""),
    ],
)
def test_paragraphs_and_line_breaks(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_white_space_in_the_source_is_layout_except_in_pre() -> None:
    assert html_to_text("  lots\n  of   \n space  ") == "lots of space"
    assert html_to_text("<p>a hard-wrapped\nsentence, <b>bold</b>  here</p>") == (
        "a hard-wrapped sentence, bold here"
    )
    assert html_to_text("<p>run this:</p><pre>make run\r\nmake test</pre>") == (
        "run this:\n\nmake run\nmake test"
    )


@pytest.mark.parametrize(
    ("html", "text"),
    [
        (
            "<p>fish &amp; chips &lt;b&gt; &#x1F600; &#8212; &quot;ok&quot;</p>",
            'fish & chips <b> \U0001f600 \u2014 "ok"',
        ),
        ("Fast&nbsp;&amp; friendly &lt;3", "Fast & friendly <3"),
        ("I <3 it", "I <3 it"),
        ("caf&eacute; &copy; 2024", "caf\u00e9 \u00a9 2024"),
    ],
)
def test_entities_are_decoded(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_links_keep_their_text() -> None:
    assert html_to_text('<a href="x"><span>nested <b>link</b></span> text</a>') == (
        "nested link text"
    )
    # Mastodon shortens a long URL with spans a client hides; the text keeps all of it.
    shortened = (
        '<a href="https://example.com/a/very/long/support/article" rel="nofollow noopener"'
        ' target="_blank"><span class="invisible">https://</span><span class="ellipsis">'
        'example.com/a/very/long/su</span><span class="invisible">pport/article</span></a>'
    )
    assert html_to_text(f"<p>See {shortened}</p>") == (
        "See https://example.com/a/very/long/support/article"
    )
    assert html_to_text('<a href="javascript:alert(1)" onclick="evil()">click <i>me</i></a>') == (
        "click me"
    )


def test_mentions_and_hashtags_as_mastodon_writes_them() -> None:
    html = (
        '<p><span class="h-card" translate="no"><a href="https://mastodon.social/@alice"'
        ' class="u-url mention">@<span>alice</span></a></span> loving the new'
        ' <a href="https://mastodon.social/tags/Kestrel" class="mention hashtag" rel="tag">'
        "#<span>Kestrel</span></a> grinder, thanks"
        ' <span class="h-card"><a href="https://remote.example/@bob" class="u-url mention">'
        "@<span>bob</span></a></span>!</p>"
    )
    assert html_to_text(html) == "@alice loving the new #Kestrel grinder, thanks @bob!"


def test_scripts_styles_and_what_is_never_shown_are_dropped() -> None:
    html = (
        "<html><head><title>Shop</title><style>p {color: red}</style></head><body>"
        "<p>safe<script>var x = '<p>no</p>'; document.cookie</script></p>"
        "<template><p>later</p></template><style>p{display:none}</style>"
        "<img src=x onerror=alert(1)><img src=chart.png alt='a chart'></body></html>"
    )
    assert html_to_text(html) == "safe\n\na chart"
