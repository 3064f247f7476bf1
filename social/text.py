"""Text from outside (posts, forms, JSON bodies): what no database can store, in words,
how fetched text is made storable, and the plain text of fetched HTML. One rule for
ingest, the forms and the API; one reading of HTML for every connector that gets some
(Mastodon statuses, feed entries)."""

from __future__ import annotations

import re
from html.parser import HTMLParser


def unstorable(value: str) -> str | None:
    """Why no database would store value, or None: a NUL character (which PostgreSQL
    text refuses and SQLite's full-text search stops at) or half of a surrogate pair
    (which JSON can escape, as "\\ud83d" alone, but which is no UTF-8)."""
    if "\x00" in value:
        return "has a NUL character (\\u0000)"
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "has an unpaired surrogate escape (\\ud800-\\udfff)"
    return None


def storable(value: str) -> str:
    """value with what no database stores taken out: NUL characters dropped, halves of
    surrogate pairs replaced by U+FFFD. For text fetched from a network, where refusing
    the post would fail its poll again at every retry."""
    if value.isascii():
        return value.replace("\x00", "") if "\x00" in value else value
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value


# White space as HTML defines it: in the source it is layout, one space to a reader.
_HTML_SPACE = re.compile(r"[ \t\r\n\f]+")


class _VisibleText(HTMLParser):
    """Collects the text a reader sees: tags dropped, entities decoded, blocks apart."""

    # Blocks set apart by a blank line, and those that only start a new line.
    _PARAGRAPH = frozenset(
        "address article aside blockquote dl figure footer h1 h2 h3 h4 h5 h6 header hr "
        "main nav ol p pre section table ul".split()
    )
    _LINE = frozenset("br dd div dt figcaption li tr".split())
    # Elements that start a line but need no end tag to end one.
    _OPEN_ENDED = frozenset({"br", "li", "dt", "dd", "tr"})
    # Their content is never shown, so it is not part of what was said.
    _HIDDEN = frozenset({"script", "style", "template", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.pre = 0

    def _boundary(self, tag: str) -> None:
        """Start a paragraph or a line where tag begins or ends one."""
        if tag in self._PARAGRAPH:
            self.parts.append("\n\n")
        elif tag in self._LINE:
            self.parts.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Break before a block; enter a hidden element; keep an image's alt text."""
        if tag in self._HIDDEN:
            self.hidden += 1
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and not self.hidden:
                self.parts.append(f" {alt} ")
        else:
            if tag == "pre":
                self.pre += 1
            self._boundary(tag)

    def handle_endtag(self, tag: str) -> None:
        """Break after a block; leave a hidden element."""
        if tag in self._HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag not in self._OPEN_ENDED:
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self._boundary(tag)

    def handle_data(self, data: str) -> None:
        """Keep visible text; outside <pre>, source line breaks are layout, not text."""
        if self.hidden:
            return
        if self.pre:
            self.parts.append(data.replace("\r\n", "\n").replace("\r", "\n"))
        else:
            self.parts.append(_HTML_SPACE.sub(" ", data))


def html_to_text(html: str) -> str:
    """Plain text of HTML a network sent (a Mastodon status, a feed entry), as a reader
    sees it: paragraphs apart by one blank line; <br>, list items and the lines of a
    <pre> on lines of their own; spaces tidied; entities decoded; link text kept (a
    mention's @name, a hashtag's #tag, the parts of a URL Mastodon hides); scripts,
    styles and what else is never shown dropped; an image as its alt text."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    lines: list[str] = []
    blank = False
    for raw in "".join(parser.parts).splitlines():
        line = " ".join(raw.split())
        if not line:
            blank = True
            continue
        if blank and lines:
            lines.append("")
        lines.append(line)
        blank = False
    return "\n".join(lines)
