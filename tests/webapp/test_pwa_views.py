"""The shell's files as the server hands them out."""

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest

from webapp import ROOT
from webapp.views.pwa import PAGE_SCRIPTS, compact


def test_manifest_and_service_worker(client):
    with client.get("/manifest.webmanifest") as r:
        assert r.mimetype == "application/manifest+json"
        manifest = json.loads(r.get_data(as_text=True))
    assert manifest["display"] == "standalone"
    assert {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
    assert any("maskable" in i.get("purpose", "") for i in manifest["icons"])

    r = client.get("/sw.js")
    assert r.mimetype == "text/javascript"
    assert r.headers["Service-Worker-Allowed"] == "/"
    assert r.headers["Cache-Control"] == "no-cache"
    assert "__SHELL_VERSION__" not in r.get_data(as_text=True)


@pytest.mark.parametrize("changed", ["css/app.css", "js/dom.js", "js/nav.js", "sw.js"])
def test_service_worker_version_follows_the_shell(app, tmp_path, changed):
    """The same shell files give the same version wherever they are; a change to any of
    them gives a new one."""

    def version(static: Path) -> str:
        app.static_folder = str(static)
        body = app.test_client().get("/sw.js").get_data(as_text=True)
        return re.search(r'const VERSION = "(\w+)"', body)[1]

    same, edited = tmp_path / "same", tmp_path / "edited"
    shutil.copytree(ROOT / "static", same)
    shutil.copytree(ROOT / "static", edited)
    path = edited / changed
    path.write_text(path.read_text() + "\n/* changed */\n")
    assert version(same) == version(ROOT / "static")
    assert version(edited) != version(same)


def _shell(client) -> set[str]:
    worker = client.get("/sw.js").get_data(as_text=True)
    shell = re.search(r"const SHELL = \[(.*?)\];", worker, re.S)
    return set(re.findall(r'"(/static/[^"]+)"', shell.group(1)))


def _page_assets(client) -> re.Pattern:
    """The worker's own pattern for what a kept page needs beyond the shell."""
    worker = client.get("/sw.js").get_data(as_text=True)
    return re.compile(re.search(r"const PAGE_ASSET = /(.*)/g;", worker)[1].replace("\\/", "/"))


def test_the_shell_precaches_every_script_and_stylesheet_a_page_loads(client):
    page = client.get("/login").get_data(as_text=True)
    loaded = re.findall(r'<script src="([^"]+)"', page)
    loaded += re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert len(loaded) > 2
    assert set(loaded) <= _shell(client)
    assert all("defer" in tag for tag in re.findall(r"<script [^>]*>", page))


def test_the_browsers_own_icon_loads_are_left_to_the_network(client):
    """The tab icon, the touch icon and the install icons are the browser's loads, not
    the page's: the worker leaves them to the network and the HTTP cache (Firefox cancels
    a tab icon's load when the page moves on, and reports a cancelled load the worker was
    answering as the worker's error), and so does not precache them either."""
    page = client.get("/login").get_data(as_text=True)
    icons = re.findall(r'<link rel="(?:icon|apple-touch-icon)" href="([^"]+)"', page)
    with client.get("/manifest.webmanifest") as r:
        icons += [i["src"] for i in json.loads(r.get_data(as_text=True))["icons"]]
    assert len(icons) >= 4
    worker = client.get("/sw.js").get_data(as_text=True)
    left = re.compile(re.search(r"const BROWSER_ICON = /(.*)/;", worker)[1].replace("\\/", "/"))
    assert all(left.fullmatch(icon) for icon in icons), icons
    assert not set(icons) & _shell(client)


PAGES_WITH_THEIR_OWN = {
    "/today": {"/static/js/tasks.js"},
    "/tasks": {"/static/js/tasks.js"},
    "/notifications": {"/static/js/push.js"},
    "/deals": {"/static/js/board.js", "/static/css/deals.css"},
    "/deals/forecast": {"/static/css/deals.css", "/static/css/deal-pages.css"},
    "/nearby": {"/static/js/nearby.js"},
    "/contacts": {"/static/js/nearby.js"},
    "/account": {"/static/js/signout.js"},
}


@pytest.mark.parametrize("path", PAGES_WITH_THEIR_OWN)
def test_a_page_names_what_it_needs_beyond_the_shell_where_the_worker_finds_it(
    client, login, make_user, path
):
    """What one page alone needs is not precached (a first visit loads only what every
    page needs); the page names it in its body, which a boosted visit swaps in, where
    the service worker's pattern finds it to keep it with the saved page."""
    login(make_user("manager"))
    page = client.get(path).get_data(as_text=True)
    body = page.partition("<body")[2]
    assert "<script" not in body
    named = set(_page_assets(client).findall(body))
    assert named == PAGES_WITH_THEIR_OWN[path]
    assert not named & _shell(client)
    for url in named:
        with client.get(url) as r:
            assert r.status_code == 200, url


def test_a_page_loads_its_own_scripts_as_one_file_named_by_its_version(app, client, tmp_path):
    page = client.get("/login").get_data(as_text=True)
    joined = [s for s in re.findall(r'<script src="([^"]+)"', page) if "page.js" in s]
    assert len(joined) == 1 and re.fullmatch(r"/static/js/page\.js\?v=\w{12}", joined[0])
    r = client.get(joined[0])
    assert r.mimetype == "text/javascript"
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    body = r.get_data(as_text=True)
    # Every script's code, in the order the page runs them, without whole-line comments.
    files = [(ROOT / "static" / "js" / name).read_text() for name in PAGE_SCRIPTS]
    first_code = [
        next(ln for ln in f.splitlines() if ln.strip().startswith(("(", "const", "'use")))
        for f in files
    ]
    positions = [body.index(line.strip()) for line in first_code]
    assert positions == sorted(positions)
    markers = [ln for ln in body.splitlines() if ln.lstrip().startswith(("//", "/*"))]
    assert markers == [f"// {name}" for name in PAGE_SCRIPTS]
    assert len(body) < sum(map(len, files))
    # An old or unnamed version is not kept for a year, and the worker precaches this one.
    assert client.get("/static/js/page.js").headers["Cache-Control"] == "no-cache"
    assert f'"{joined[0]}"' in client.get("/sw.js").get_data(as_text=True)


@pytest.mark.parametrize("name", ["js/offline.js", "css/app.css", "js/board.js"])
def test_our_scripts_and_styles_are_served_without_comment_lines_or_indentation(client, name):
    source = (ROOT / "static" / name).read_text()
    r = client.get(f"/static/{name}")
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and len(body) < len(source)
    assert not [ln for ln in body.splitlines() if ln.lstrip().startswith(("//", "/*"))]
    assert not [ln for ln in body.splitlines() if ln[:1] in (" ", "\t")]
    # Every line of code is there, in order.
    served = [ln for ln in body.splitlines() if ln.strip()]
    code = [ln.strip() for ln in source.splitlines() if ln.strip() and ln.strip() in served]
    assert code == served
    again = client.get(f"/static/{name}", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304


def test_a_template_literal_across_lines_keeps_its_spaces():
    source = "const a = 1;\n    // a note\n  const text = `one\n    two\n  three`;\n    b();\n"
    assert compact(source) == "const a = 1;\nconst text = `one\n    two\n  three`;\nb();\n"


@pytest.mark.parametrize(
    "path", ["/static/css/app.css", "/static/js/htmx-4.0.1.min.js", "/sw.js", "page.js"]
)
def test_scripts_and_styles_come_compressed_ahead_smaller_than_zlib_can(client, path):
    """Compressed once at the best setting (zopfli's gzip, brotli 11), not per request at
    flask-compress's: each encoding decodes to the same bytes and has its own ETag."""
    import brotli

    if path == "page.js":
        page = client.get("/login").get_data(as_text=True)
        path = re.search(r'<script src="(/static/js/page\.js\?v=\w+)"', page)[1]
    with client.get(path) as plain:
        body = plain.data
        assert "Content-Encoding" not in plain.headers
    with client.get(path, headers={"Accept-Encoding": "gzip, deflate"}) as gz:
        assert gz.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in gz.headers["Vary"]
        assert gzip.decompress(gz.data) == body
        assert len(gz.data) < len(gzip.compress(body, 9))
    with client.get(path, headers={"Accept-Encoding": "gzip, br"}) as br:
        assert br.headers["Content-Encoding"] == "br"
        assert brotli.decompress(br.data) == body and len(br.data) < len(gz.data)
    if gz.headers.get("ETag"):
        assert len({plain.headers["ETag"], gz.headers["ETag"], br.headers["ETag"]}) == 3
        again = client.get(
            path, headers={"Accept-Encoding": "gzip", "If-None-Match": gz.headers["ETag"]}
        )
        assert again.status_code == 304


def test_vendored_and_missing_files_are_sent_as_they_are(client):
    with client.get("/static/js/htmx-4.0.1.min.js") as htmx:
        assert htmx.data == (ROOT / "static/js/htmx-4.0.1.min.js").read_bytes()
    for path in ("/static/js/missing.js", "/static/../pyproject.toml", "/static/js/a%00.js"):
        assert client.get(path).status_code == 404, path
