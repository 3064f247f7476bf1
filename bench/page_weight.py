"""Page weight of a first visit to the signed-in contact list, against DESIGN.md's budgets.

Starts the real app on demo data, signs in as the demo rep, fetches /contacts and every
file that first load pulls in (stylesheets, scripts, images, icons, the manifest and its
icons, then the service worker and what it precaches), and prints each body's size as the
app itself sends it: uncompressed, with gzip (what a browser gets over plain http), and with
brotli (what it gets over https); the budgets are checked against the gzip figures.

    .venv/bin/python bench/page_weight.py [--contacts 300]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from demo_server import demo_server

TOTAL_BUDGET = 50_000  # bytes, compressed, all told
OWN_BUDGET = 20_000  # bytes, compressed, our own CSS and JS
THIRD_PARTY = re.compile(r"/static/js/htmx-[\d.]+\.min\.js$")
LINK_RELS = {"stylesheet", "icon", "apple-touch-icon", "manifest", "preload", "modulepreload"}


@dataclass
class File:
    path: str
    kind: str
    phase: str
    raw: int
    gzip: int
    br: int
    encodings: str

    @property
    def own_code(self) -> bool:
        return self.kind in {"css", "js"} and not THIRD_PARTY.search(self.path)


class Subresources(HTMLParser):
    """Collect the URLs a page makes the browser fetch, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        rels = set((a.get("rel") or "").lower().split())
        if tag == "link" and rels & LINK_RELS and a.get("href"):
            self.urls.append(a["href"])
        elif tag in {"script", "img"} and a.get("src"):
            self.urls.append(a["src"])
        if a.get("data-script"):  # nav.js loads it as soon as the page is there
            self.urls.append(a["data-script"])


def kind_of(path: str, content_type: str) -> str:
    path = path.partition("?")[0]  # a versioned address (page.js?v=...) is still a script
    if path.endswith(".css") or content_type.startswith("text/css"):
        return "css"
    if path.endswith(".js") or "javascript" in content_type:
        return "js"
    if "manifest" in content_type:
        return "manifest"
    if content_type.startswith("image/"):
        return "image"
    return "html"


def _get(url: str, cookie: str, accept: str) -> tuple[bytes, str, str]:
    """(body as sent, its Content-Encoding or "none", content type)."""
    request = urllib.request.Request(  # noqa: S310 - our own server
        url, headers={"Cookie": cookie, "Accept-Encoding": accept}
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310
        return (
            response.read(),
            response.headers.get("Content-Encoding") or "none",
            response.headers.get_content_type(),
        )


def fetch(url: str, cookie: str, phase: str) -> tuple[File, bytes]:
    """One file as the app sends it plain, to a gzip-only client and to a brotli one."""
    body, _, content_type = _get(url, cookie, "identity")
    gz, gz_encoding, _ = _get(url, cookie, "gzip")
    br, br_encoding, _ = _get(url, cookie, "br, gzip")
    if gz_encoding == "gzip":
        assert gzip.decompress(gz) == body or kind_of(url, content_type) == "html", url
    path = urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
    kind = kind_of(path, content_type)
    encodings = "/".join(sorted({gz_encoding, br_encoding} - {"none"})) or "none"
    return File(path, kind, phase, len(body), len(gz), len(br), encodings), body


def first_load(base: str, cookie: str, page_path: str = "/contacts") -> list[File]:
    """Every file of a first visit, each once, in the order a browser would ask for it."""
    files: dict[str, File] = {}

    def get(url: str, phase: str) -> bytes:
        url = urljoin(base + "/", url)
        if url in files:
            return b""
        files[url], body = fetch(url, cookie, phase)
        return body

    page = get(f"{base}{page_path}", "page")
    parser = Subresources()
    parser.feed(page.decode())
    manifest_url = None
    for url in parser.urls:
        body = get(url, "page")
        if files[urljoin(base + "/", url)].kind == "manifest":
            manifest_url = urljoin(base + "/", url)
            manifest = json.loads(body)
    if manifest_url:
        icons = list(manifest.get("icons", []))
        for shortcut in manifest.get("shortcuts", []):
            icons += shortcut.get("icons", [])
        for icon in icons:
            get(urljoin(manifest_url, icon["src"]), "manifest")
    sw = get("/sw.js", "install").decode()
    shell = re.search(r"const SHELL = \[(.*?)\];", sw, re.S)
    constants = dict(re.findall(r'const (\w+) = "(/[^"]*)";', sw))
    for item in re.findall(r'"(/[^"]*)"|\b([A-Z_]+)\b', shell.group(1) if shell else ""):
        url = item[0] or constants.get(item[1])
        if url:
            get(url, "install")
    return list(files.values())


def table(files: list[File], contacts: int, page_path: str = "/contacts") -> tuple[str, bool]:
    """The per-file table and the totals against the budgets; and whether one failed."""
    lines = [
        f"Page weight: first visit to the signed-in {page_path} ({contacts} demo contacts).",
        "Each body as the app itself sends it: raw (no Accept-Encoding), gzip (a browser on"
        " plain http), br (a browser on https). Budgets are checked against gzip.",
        "Bodies only; headers excluded. Phases: page = the document and what it links, "
        "manifest = manifest icons, install = the service worker and its precache.",
        "",
        f"| {'file':<38} | {'kind':<8} | {'phase':<8} | {'origin':<11} | {'sent as':<7} "
        f"| {'raw B':>7} | {'gzip B':>7} | {'br B':>7} |",
        f"|{'-' * 40}|{'-' * 10}|{'-' * 10}|{'-' * 13}|{'-' * 9}|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|",
    ]
    for f in files:
        origin = "third-party" if THIRD_PARTY.search(f.path) else "own"
        lines.append(
            f"| {f.path:<38} | {f.kind:<8} | {f.phase:<8} | {origin:<11} | {f.encodings:<7} "
            f"| {f.raw:>7,} | {f.gzip:>7,} | {f.br:>7,} |"
        )
    page = [f for f in files if f.phase == "page"]
    own = [f for f in files if f.own_code]
    rows = [
        ("page (document + linked files)", page, None),
        ("all told (+ manifest icons, sw.js, precache)", files, TOTAL_BUDGET),
        ("own CSS + JS (htmx excluded)", own, OWN_BUDGET),
    ]
    lines += [
        "",
        f"| {'total':<46} | {'raw B':>7} | {'gzip B':>7} | {'br B':>7} | {'budget':>7} | result |",
        f"|{'-' * 48}|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}|",
    ]
    failed = False
    for label, group, budget in rows:
        raw, gz, br = (sum(getattr(f, a) for f in group) for a in ("raw", "gzip", "br"))
        verdict = "" if budget is None else ("pass" if gz <= budget else "FAIL")
        failed |= verdict == "FAIL"
        limit = f"{budget:,}" if budget else "-"
        lines.append(
            f"| {label:<46} | {raw:>7,} | {gz:>7,} | {br:>7,} | {limit:>7} | {verdict:<6} |"
        )
    return "\n".join(lines), failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--contacts", type=int, default=300, help="demo contacts to seed")
    parser.add_argument("--page", default="/contacts", help="the page visited, e.g. /deals")
    args = parser.parse_args()
    with demo_server(args.contacts) as server:
        files = first_load(server.url, server.sign_in("rep"), args.page)
    text, failed = table(files, args.contacts, args.page)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
