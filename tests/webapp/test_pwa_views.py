"""The shell's files as the server hands them out."""

import json
import re
import shutil

from webapp import ROOT
from webapp.views import pwa


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


def test_service_worker_version_follows_the_shell(tmp_path):
    static, templates = tmp_path / "static", tmp_path / "templates"
    shutil.copytree(ROOT / "static", static)
    shutil.copytree(ROOT / "templates", templates)
    before = pwa._service_worker.__wrapped__(str(static), str(templates))
    assert before == pwa._service_worker.__wrapped__(str(static), str(templates))
    css = static / "css" / "app.css"
    css.write_text(css.read_text() + "\n.new { color: red; }\n")
    after = pwa._service_worker.__wrapped__(str(static), str(templates))
    assert before != after


def test_the_shell_precaches_every_script_and_stylesheet_a_page_loads(client):
    page = client.get("/login").get_data(as_text=True)
    loaded = re.findall(r'<script src="([^"]+)"', page)
    loaded += re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    worker = client.get("/sw.js").get_data(as_text=True)
    shell = re.search(r"const SHELL = \[(.*?)\];", worker, re.S)
    assert len(loaded) > 2
    assert set(loaded) <= set(re.findall(r'"(/static/[^"]+)"', shell.group(1)))
    assert all("defer" in tag for tag in re.findall(r"<script [^>]*>", page))
