"""Security headers on every response (pages, fragments, errors), the session user, and
when cookies are Secure."""

from __future__ import annotations

from flask import Flask, current_app, flash, jsonify, redirect, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import login_url
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.extensions import db, login
from webapp.models import User
from webapp.services import auth

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def cookie_secure() -> bool:
    """Whether this response's cookies are Secure: SESSION_COOKIE_SECURE is true, false or
    "auto" (Secure when the request came over https, as the trusted proxies tell). Safari's
    engine keeps no Secure cookie from http://127.0.0.1, so `crm up` serves with "auto"."""
    setting = current_app.config["SESSION_COOKIE_SECURE"]
    return request.is_secure if setting == "auto" else bool(setting)


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, Secure by cookie_secure(), and named with the
    __Host- prefix over https (Secure, the whole site, no Domain: a subdomain or a plain
    http page cannot plant or overwrite it)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return cookie_secure()

    def get_cookie_name(self, app: Flask) -> str:
        name = app.config["SESSION_COOKIE_NAME"]
        whole_site = self.get_cookie_path(app) == "/" and not self.get_cookie_domain(app)
        if request.is_secure and cookie_secure() and whole_site:
            return "__Host-" + name
        return name


@login.user_loader
def load_user(session_key: str) -> User | None:
    """The user of this cookie's session row: a signed-out session, an ended one or a
    disabled user signs the cookie out."""
    user = auth.session_user(db.session, session_key, current_app.permanent_session_lifetime)
    if user is not None:
        # What the audit log records of where a change came from.
        user.client_address = request.remote_addr or ""
    return user


def init_app(app: Flask) -> None:
    """Configure the login manager, trust the proxies the settings name, and add the
    headers to every response."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Behind N proxies, the client is the address the Nth one saw; without this
        # every client would share the proxy's address (and its sign-in throttle).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    app.session_interface = SessionCookies()
    login.login_view = "auth.login"
    login.login_message = "Sign in to continue."
    login.login_message_category = "info"
    login.session_protection = "basic"

    @login.unauthorized_handler
    def unauthorized():
        """The JSON API answers 401 in JSON: fetch would follow a redirect to the sign-in
        page and read its 200 as an answer. Pages go to the sign-in page, as by default."""
        if request.path.startswith("/api/"):
            return jsonify(error="Your session has ended: sign in again.", signed_in=False), 401
        flash(login.login_message, login.login_message_category)
        return redirect(login_url(login.login_view, next_url=request.url))

    @app.after_request
    def security_headers(response):
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(self)")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        seconds = app.config["HSTS_SECONDS"]
        if seconds:
            h.setdefault("Strict-Transport-Security", f"max-age={seconds}; includeSubDomains")
        if request.endpoint != "static" and "Cache-Control" not in h:
            # Pages carry personal data: never kept by shared caches.
            h["Cache-Control"] = "private, no-cache"
        return response
