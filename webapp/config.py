"""Settings read from the environment; the README lists each one in a table."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _hosts(name: str, default: str = "") -> frozenset[str]:
    """A comma-separated list of host names, lower-cased, without trailing dots."""
    raw = os.environ.get(name)
    if raw is None:
        raw = default
    return frozenset(h.strip().rstrip(".").lower() for h in raw.split(",") if h.strip())


def _secret(name: str) -> str | None:
    """An environment credential, None when unset or blank."""
    return (os.environ.get(name) or "").strip() or None


def cookie_secure(default: bool | str = True) -> bool | str:
    """SESSION_COOKIE_SECURE: true, false or "auto" (Secure only over https); default when
    unset (`crm up`, which serves plain http, passes "auto")."""
    raw = (os.environ.get("SESSION_COOKIE_SECURE") or "").strip().lower()
    if not raw:
        return default
    return "auto" if raw == "auto" else _bool("SESSION_COOKIE_SECURE", True)


def database_url(raw: str | None, instance_path: str) -> str:
    """Return the SQLAlchemy URL for DATABASE_URL, or the SQLite file under instance/."""
    if not raw:
        return "sqlite:///" + str(Path(instance_path) / "crm.sqlite3")
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants the driver named.
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def secret_key(instance_path: str) -> str:
    """Return SECRET_KEY, or a key generated once and kept in instance/secret_key."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def instance_path(default: Path) -> str:
    """INSTANCE_PATH: where the SQLite file, the generated key and the embedded Redis's
    data live (./instance unless set)."""
    return os.environ.get("INSTANCE_PATH") or str(default)


# The push services of Chrome and Android, Firefox, Safari and Edge (a host or any host
# under it).
PUSH_SERVICE_HOSTS = (
    "fcm.googleapis.com,updates.push.services.mozilla.com,push.apple.com,notify.windows.com"
)


def port() -> int:
    """PORT: the port `crm up` and the Procfile's gunicorn listen on."""
    return int(os.environ.get("PORT", "8000"))


def from_environment(instance_path: str) -> dict:
    """Build the Flask config mapping from environment variables."""
    return {
        "SECRET_KEY": secret_key(instance_path),
        # A key made on this machine's disk: another machine would make another.
        "SECRET_KEY_FROM_DISK": not os.environ.get("SECRET_KEY"),
        "SQLALCHEMY_DATABASE_URI": database_url(os.environ.get("DATABASE_URL"), instance_path),
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "SESSION_COOKIE_SECURE": cookie_secure(),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "crm_session",
        "PERMANENT_SESSION_LIFETIME": timedelta(days=int(os.environ.get("SESSION_DAYS", "30"))),
        # A sign-in ends SESSION_DAYS after it was made (its server row says so), so the
        # cookie set then expires when it does: signing it again on every response would
        # only push out an expiry the server no longer honours.
        "SESSION_REFRESH_EACH_REQUEST": False,
        # Pages stay open on phones for days; the token is bound to the session anyway.
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_HEADERS": ["X-CSRFToken"],
        "LOGIN_MAX_FAILURES": int(os.environ.get("LOGIN_MAX_FAILURES", "5")),
        "LOGIN_LOCK_MINUTES": int(os.environ.get("LOGIN_LOCK_MINUTES", "15")),
        "TRUSTED_PROXIES": int(os.environ.get("TRUSTED_PROXIES", "0")),
        # Every request body; a route that needs more (an import) raises it for itself.
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_BODY_BYTES", str(1024 * 1024))),
        "HSTS_SECONDS": int(os.environ.get("HSTS_SECONDS", "31536000")),
        "UNDO_MINUTES": int(os.environ.get("UNDO_MINUTES", "30")),
        # How often the inbox asks whether its queue changed, and a mention's page who
        # else is on it (seconds); each unchanged answer is a 304.
        "LIVE_POLL_SECONDS": int(os.environ.get("LIVE_POLL_SECONDS", "15")),
        "PRESENCE_POLL_SECONDS": int(os.environ.get("PRESENCE_POLL_SECONDS", "10")),
        # The currency a new deal starts in (an ISO 4217 code).
        "DEFAULT_CURRENCY": (os.environ.get("DEFAULT_CURRENCY") or "EUR").upper(),
        # Unset: no country is guessed for a number written without + (see the README).
        "DEFAULT_PHONE_REGION": os.environ.get("DEFAULT_PHONE_REGION") or None,
        # How often a worker renews the heartbeat of a batch it runs in place, and looks
        # for abandoned jobs (seconds; checked by `crm worker`).
        "WORKER_HEARTBEAT_SECONDS": os.environ.get("CRM_WORKER_HEARTBEAT_SECONDS"),
        "WORKER_MAINTENANCE_SECONDS": os.environ.get("CRM_WORKER_MAINTENANCE_SECONDS"),
        "ARGON2_PROFILE": os.environ.get("ARGON2_PROFILE", "RFC_9106_LOW_MEMORY"),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # Compressed by the app itself, since not every platform compresses in front of
        # it: text only (images are compressed already), and nothing under 500 bytes.
        "COMPRESS_ALGORITHM": ["br", "gzip"],
        "COMPRESS_MIMETYPES": [
            "text/html",
            "text/css",
            "text/javascript",
            "application/javascript",
            "application/json",
            "application/manifest+json",
            "image/svg+xml",
        ],
        "COMPRESS_MIN_SIZE": 500,
        "COMPRESS_BR_LEVEL": 5,
        # Lets connectors reach servers on internal addresses (tests, local development);
        # CRM_RSS_ALLOW_PRIVATE=1 is its older name, kept working.
        "OUTBOUND_ALLOW_PRIVATE": _bool("OUTBOUND_ALLOW_PRIVATE", False)
        or os.environ.get("CRM_RSS_ALLOW_PRIVATE") == "1",
        # Deployment-wide credentials for sources that store none of their own, and the
        # hosts each may be sent to.
        "X_BEARER_TOKEN": _secret("X_BEARER_TOKEN"),
        "MASTODON_ACCESS_TOKEN": _secret("MASTODON_ACCESS_TOKEN"),
        "MASTODON_TOKEN_HOSTS": _hosts("MASTODON_TOKEN_HOSTS"),
        "BLUESKY_APP_PASSWORD": _secret("BLUESKY_APP_PASSWORD"),
        "BLUESKY_PASSWORD_HOSTS": _hosts("BLUESKY_PASSWORD_HOSTS", "bsky.social"),
        # Web Push: our own VAPID key pair (unset: made once and kept in the database),
        # the contact push services may write to, and the push services subscriptions
        # may point at (a subscription names the address the workers will post to).
        "VAPID_PRIVATE_KEY": _secret("VAPID_PRIVATE_KEY"),
        "VAPID_SUBJECT": (os.environ.get("VAPID_SUBJECT") or "").strip(),
        "PUSH_SERVICE_HOSTS": _hosts("PUSH_SERVICE_HOSTS", PUSH_SERVICE_HOSTS),
        "PUSH_TTL_SECONDS": int(os.environ.get("PUSH_TTL_SECONDS", str(12 * 3600))),
        "PUSH_TIMEOUT_SECONDS": float(os.environ.get("PUSH_TIMEOUT_SECONDS", "10")),
    }
