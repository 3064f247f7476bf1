"""Responses compressed by the app itself: text when the browser takes it, never tiny or
already-compressed bodies, and caches told that the encoding varies."""

import gzip

import brotli
import pytest


@pytest.mark.parametrize(("accept", "encoding"), [("gzip", "gzip"), ("gzip, deflate, br", "br")])
def test_pages_styles_and_scripts_are_compressed(client, login, make_user, accept, encoding):
    login(make_user("rep"))
    for path in ("/contacts", "/static/css/app.css", "/static/js/app.js", "/sw.js"):
        with client.get(path) as first:
            plain = first.get_data()
        r = client.get(path, headers={"Accept-Encoding": accept})
        assert r.status_code == 200, path
        assert r.headers["Content-Encoding"] == encoding, path
        assert "Accept-Encoding" in r.headers["Vary"], path
        body = r.get_data()
        unpacked = gzip.decompress(body) if encoding == "gzip" else brotli.decompress(body)
        if path != "/contacts":  # the page carries a fresh CSRF token each time
            assert unpacked == plain, path
        assert len(body) < len(unpacked) / 2, path
        r.close()


def test_tiny_and_already_compressed_bodies_go_as_they_are(client):
    for path in ("/healthz", "/static/icons/icon-192.png"):
        r = client.get(path, headers={"Accept-Encoding": "gzip, br"})
        assert "Content-Encoding" not in r.headers, path
        r.close()


def test_no_compression_unless_asked(client, login, make_user):
    login(make_user("rep"))
    r = client.get("/contacts")
    assert "Content-Encoding" not in r.headers
    assert b"<!doctype html>" in r.get_data()
