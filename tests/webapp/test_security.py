"""Security headers everywhere, CSRF on every unsafe request, bounded bodies, and escaping
of input."""

import re
import uuid

import pytest

from tests.conftest import PASSWORD
from webapp.extensions import db
from webapp.models import Contact
from webapp.security import CSP

FRAGMENT = {"HX-Request": "true", "HX-Request-Type": "partial"}
PAYLOADS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '"><svg onload=alert(1)>',
    '<div hx-get="/logout" hx-trigger="load">x</div>',
]


def assert_secure_headers(response):
    h = response.headers
    assert h["Content-Security-Policy"] == CSP
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "same-origin"
    assert h["Strict-Transport-Security"].startswith("max-age=")
    assert "frame-ancestors 'none'" in CSP and "object-src 'none'" in CSP
    assert "base-uri 'none'" in CSP
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP


def test_headers_on_pages_fragments_and_errors(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Hedda")
    assert_secure_headers(client.get("/login"))
    login(rep)
    for r in (
        client.get("/contacts"),
        client.get("/contacts?q=hed", headers=FRAGMENT),
        client.get(f"/contacts/{c.id}"),
        client.get("/contacts/424242"),
        client.post("/users/1/disable"),
        client.get("/no-such-page"),
    ):
        assert_secure_headers(r)
        assert "HX-Request" in r.headers["Vary"]


def test_headers_on_a_server_error(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaput")

    r = client.get("/boom")
    assert r.status_code == 500
    assert "Something went wrong on our side" in r.get_data(as_text=True)
    assert "kaput" not in r.get_data(as_text=True)
    assert_secure_headers(r)


def test_no_inline_script_or_style_in_pages(client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Ines")
    login(rep)
    for url in ("/contacts", f"/contacts/{c.id}", f"/contacts/{c.id}/edit", "/account"):
        html = client.get(url).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert " style=" not in html and "<style" not in html, url
        assert not re.search(r"\son[a-z]+=", html), url


@pytest.fixture
def csrf_app(app):
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def test_unsafe_requests_need_the_csrf_token(csrf_app, make_user):
    rep = make_user("rep")
    client = csrf_app.test_client()
    # Over HTTPS Flask-WTF also checks that the Referer is this site, as browsers send it.
    client.environ_base["HTTP_REFERER"] = "https://localhost/contacts"
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"email": rep.email, "password": PASSWORD}).status_code == 400
    r = client.post("/login", data={"email": rep.email, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303

    page = client.get("/contacts").get_data(as_text=True)
    header_token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    r = client.post("/contacts", data={"name": "No Token"})
    assert r.status_code == 400
    assert "This form expired" in r.get_data(as_text=True)
    # htmx sends the token in a header (static/js/app.js).
    r = client.post(
        "/contacts",
        data={"name": "With Header", "uuid": str(uuid.uuid4())},
        headers={"X-CSRFToken": header_token},
    )
    assert r.status_code == 303
    with csrf_app.app_context():
        assert [c.name for c in db.session.query(Contact)] == ["With Header"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_input_is_rendered_escaped_everywhere(app, client, login, make_user, payload):
    login(make_user("rep"))
    r = client.post(
        "/contacts",
        data={
            "name": f"N {payload}",
            "company": payload,
            "notes": payload,
            "tags": "t1",
            "uuid": str(uuid.uuid4()),
        },
    )
    assert r.status_code == 303
    contact_url = r.headers["Location"]
    client.post(
        f"{contact_url}/activities",
        data={"kind": "note", "body": payload, "uuid": str(uuid.uuid4())},
    )
    pages = [
        client.get(contact_url),  # with the "Added …" flash, timeline and notes
        client.get("/contacts"),
        client.get("/contacts?q=N", headers=FRAGMENT),
        client.get(f"{contact_url}/edit"),
        client.post(f"{contact_url}/edit", data={"name": payload, "email": payload}),  # 422
    ]
    for response in pages:
        html = response.get_data(as_text=True)
        assert payload not in html
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "<div hx-get" not in html and "<svg onload" not in html
    escaped = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert escaped.replace('"', "&#34;") in pages[0].get_data(as_text=True)


class _CountingStream:
    """A request body that counts how much of it the server read."""

    def __init__(self, size: int):
        self.left = size
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        self.read_bytes += n
        return b"x" * n

    def readline(self, limit: int = -1) -> bytes:
        return self.read(min(limit, 65536) if limit and limit > 0 else 65536)

    def tell(self) -> int:
        return self.read_bytes

    def seek(self, *args) -> int:
        return self.read_bytes


def test_every_body_is_bounded(app, client):
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert 1_000_000 <= limit <= 2_000_000
    big = b"x" * (limit + 1)
    with client.post("/login", data=big, content_type="text/plain") as r:
        assert r.status_code == 413
    upload = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        + big
        + b"\r\n--b--\r\n"
    )
    with client.post("/login", data=upload, content_type="multipart/form-data; boundary=b") as r:
        assert r.status_code == 413
        assert "too large" in r.get_data(as_text=True)


def test_a_chunked_webhook_body_is_cut_off_at_the_bound_before_the_signature(app, client):
    """No length given (chunked): the server stops reading at the bound and answers 413,
    rather than reading it all to find the signature wrong."""
    from webapp.models import Source

    with app.app_context():
        source = Source(name="Hook", kind="webhook", config={}, secret="s3cret")
        db.session.add(source)
        db.session.commit()
        source_id = source.id
    body = _CountingStream(50 * 1024 * 1024)
    r = client.open(
        f"/api/webhooks/{source_id}",
        method="POST",
        input_stream=body,
        headers={"X-CRM-Signature": "sha256=00", "X-CRM-Timestamp": "1", "Content-Type": "a/b"},
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert r.status_code == 413
    assert r.get_json()["error"]
    assert body.read_bytes < 2 * 1024 * 1024
