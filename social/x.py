"""X (Twitter) API v2 through tweepy: mentions of an account, or a recent search.

What belongs here: the one `fetch` the poll job calls for an X source, the mapping of
X's posts and expanded users to `Mention`s, and the translation of X's failures into
`SourceError`, `RateLimited` and `UsageCapped`. Nothing here sleeps: a rate limit is
raised with the time to come back, and the worker reschedules. Replying (posting an
answer to one post) is in social/x_reply.py, which reads X's error bodies and rate
windows with response_json and reset_time from here.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import tweepy

from social.mention import (
    FetchResult,
    Mention,
    MentionError,
    RateLimited,
    SourceError,
    UsageCapped,
    fetched_followers,
    fetched_time,
    parse_time,
)

log = logging.getLogger(__name__)

# X's mention timeline reaches back only 800 posts: 8 pages of 100 cover all of it.
MAX_PAGES = 8
MAX_RESULTS = 100
TWEET_FIELDS = ["created_at", "lang", "conversation_id", "in_reply_to_user_id", "referenced_tweets"]
USER_FIELDS = ["username", "name", "public_metrics"]
# X ids are snowflakes: milliseconds since this epoch, shifted left by 22 bits.
_SNOWFLAKE_EPOCH_MS = 1288834974657
_RATE_WINDOW = timedelta(minutes=15)


class _RedactBearer(logging.Filter):
    """Tweepy logs every request's headers at DEBUG, bearer token included."""

    _pattern = re.compile(r"Bearer [^\s'\",}]+")

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace any bearer token in the record's text; never drop the record."""
        message = record.getMessage()
        if "Bearer " in message:
            record.msg = self._pattern.sub("Bearer [redacted]", message)
            record.args = None
        return True


logging.getLogger("tweepy.client").addFilter(_RedactBearer())


def fetch(
    config: dict[str, Any], cursor: str | None, *, client: tweepy.Client | None = None
) -> FetchResult:
    """Posts newer than cursor (an X post id), oldest first, and the newest id as the
    next cursor. :raise SourceError: (RateLimited, UsageCapped) saying what X said."""
    if cursor is not None and not (cursor.isascii() and cursor.isdigit()):
        raise SourceError(f"The saved X cursor is not a post id: {cursor[:40]!r}.")
    if client is not None:
        return _fetch(config, cursor, client)
    client = tweepy.Client(bearer_token=_token(config), wait_on_rate_limit=False)
    try:
        return _fetch(config, cursor, client)
    finally:
        client.session.close()


def _fetch(config: dict[str, Any], cursor: str | None, client: tweepy.Client) -> FetchResult:
    """fetch, with the client in hand."""
    call, page_param = _endpoint(config, client)
    params: dict[str, Any] = {
        "expansions": ["author_id"],
        "user_fields": USER_FIELDS,
        "tweet_fields": TWEET_FIELDS,
        "max_results": _max_results(config),
    }
    if cursor:
        params["since_id"] = cursor

    posts: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, Any]] = []
    reads = 0
    budget = int(config.get("max_pages", MAX_PAGES))
    for _page in range(budget):
        response = _call(call, params)
        page_posts = [tweet.data for tweet in response.data or []]
        page_users = [user.data for user in response.includes.get("users", [])]
        reads += len(page_posts) + len(page_users)
        posts.update((post["id"], post) for post in page_posts)
        users.update((user["id"], user) for user in page_users)
        errors.extend(e for e in response.errors if isinstance(e, dict))
        next_token = response.meta.get("next_token")
        if not next_token:
            break
        params[page_param] = next_token
    else:
        # Older posts than the budget reaches are skipped, not retried: say so.
        log.warning("X source: stopped after %d pages; older posts were not fetched", budget)

    now = datetime.now(UTC)
    mentions = [
        _mention(post, users, errors, now) for post in sorted(posts.values(), key=_id_order)
    ]
    _log_errors(errors)
    newest = mentions[-1].external_id if mentions else None
    if newest is None or (cursor is not None and int(cursor) >= int(newest)):
        newest = cursor
    return FetchResult(mentions=mentions, cursor=newest, reads=reads)


def _token(config: dict[str, Any]) -> str:
    """The bearer token the source is given (its own, or the deployment's)."""
    token = str(config.get("bearer_token") or "").strip()
    if not token:
        raise SourceError("No X bearer token: store one on the source, or set X_BEARER_TOKEN.")
    return token


def _endpoint(
    config: dict[str, Any], client: tweepy.Client
) -> tuple[Callable[..., tweepy.Response], str]:
    """The tweepy method for the source's mode, and its name for the page token."""
    mode = config.get("mode", "mentions")
    if mode == "mentions":
        user_id = str(config.get("user_id") or "")
        if not user_id.isdigit():
            raise SourceError("An X mentions source needs the account's numeric user id.")
        return (lambda **params: client.get_users_mentions(user_id, **params)), "pagination_token"
    if mode == "search":
        query = config.get("query")
        if not query:
            raise SourceError("An X search source needs a query.")
        return (lambda **params: client.search_recent_tweets(query, **params)), "next_token"
    raise SourceError(f"Unknown X source mode {mode!r}: use mentions or search.")


def _max_results(config: dict[str, Any]) -> int:
    """Page size within what both endpoints accept (search wants at least 10)."""
    value = int(config.get("max_results") or MAX_RESULTS)
    return max(10, min(MAX_RESULTS, value))


def _call(call: Callable[..., tweepy.Response], params: dict[str, Any]) -> tweepy.Response:
    """One request, with X's failures turned into our errors (token never included)."""
    try:
        return call(**params)
    except tweepy.TooManyRequests as exc:
        body = response_json(exc.response)
        problem = f"{body.get('title', '')} {body.get('type', '')}".lower()
        if "usagecapped" in problem or "usage-capped" in problem:
            detail = body.get("detail") or "usage cap exceeded"
            raise UsageCapped(
                f"X says this app's usage cap is reached ({detail}); polling cannot resume "
                "until the cap resets or the plan changes."
            ) from None
        retry_at = reset_time(exc.response)
        raise RateLimited(
            f"X rate limit reached; try again after {retry_at:%H:%M} UTC.", retry_at
        ) from None
    except tweepy.Unauthorized:
        raise SourceError(
            "X rejected the token (401 Unauthorized): the bearer token is wrong, revoked or "
            "expired."
        ) from None
    except tweepy.Forbidden as exc:
        raise SourceError(
            "X refused access (403 Forbidden): this token's app or plan may not read this "
            f"endpoint.{_detail(exc)}"
        ) from None
    except tweepy.TwitterServerError as exc:
        raise SourceError(
            f"X had a server error ({exc.response.status_code}); the next poll tries again."
        ) from None
    except tweepy.HTTPException as exc:
        raise SourceError(
            f"X refused the request ({exc.response.status_code}).{_detail(exc)}"
        ) from None
    except requests.JSONDecodeError:
        raise SourceError("X sent a response that is not JSON.") from None
    except requests.RequestException as exc:
        raise SourceError(f"Could not reach X ({type(exc).__name__}).") from None
    except (tweepy.TweepyException, ValueError, KeyError) as exc:
        raise SourceError(f"X sent a response we could not read ({type(exc).__name__}).") from None


def response_json(response: requests.Response) -> dict[str, Any]:
    """The response's JSON object, or {} when it has none."""
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _detail(exc: tweepy.HTTPException) -> str:
    """X's own words about the failure, if it sent any."""
    body = response_json(exc.response)
    words = body.get("detail") or "; ".join(str(m) for m in exc.api_messages)
    return f" X says: {str(words)[:300]}" if words else ""


def reset_time(response: requests.Response) -> datetime:
    """When X's rate window resets (x-rate-limit-reset, epoch seconds)."""
    try:
        return datetime.fromtimestamp(int(response.headers["x-rate-limit-reset"]), UTC)
    except (KeyError, ValueError, OverflowError, OSError):
        return datetime.now(UTC) + _RATE_WINDOW


def _id_order(post: dict[str, Any]) -> int:
    return int(post["id"])


def _created_at(post: dict[str, Any], now: datetime) -> datetime:
    """The post's created_at, else the time inside its snowflake id, else now (the fetch
    time) when neither is a time that can be stored."""
    value = post.get("created_at")
    if isinstance(value, str):
        try:
            return fetched_time(parse_time(value), now)
        except MentionError:
            pass
    try:
        ms = (int(post["id"]) >> 22) + _SNOWFLAKE_EPOCH_MS
        return fetched_time(datetime.fromtimestamp(ms / 1000, UTC), now)
    except (OverflowError, OSError, ValueError):
        return now


def _mention(
    post: dict[str, Any],
    users: dict[str, dict[str, Any]],
    errors: list[dict[str, Any]],
    now: datetime,
) -> Mention:
    """One X post as a Mention; an author X did not expand keeps its id as handle."""
    post_id = str(post["id"])
    author_id = str(post.get("author_id") or "") or None
    user = users.get(author_id or "", {})
    username = user.get("username")
    followers = (user.get("public_metrics") or {}).get("followers_count")
    referenced = post.get("referenced_tweets") or []
    replied_to = next((r.get("id") for r in referenced if r.get("type") == "replied_to"), None)
    extra: dict[str, Any] = {
        key: post[key]
        for key in ("conversation_id", "in_reply_to_user_id", "referenced_tweets")
        if post.get(key)
    }
    if author_id and not user:
        # A deleted, suspended or protected author: X says why in the partial errors.
        extra["x_errors"] = [
            {k: e[k] for k in ("title", "detail", "type") if k in e}
            for e in errors
            if str(e.get("resource_id") or e.get("value") or "") == author_id
        ]
    return Mention(
        network="x",
        external_id=post_id,
        author_handle=(username or author_id or "unknown").lower(),
        author_name=user.get("name") or "",
        author_followers=fetched_followers(followers),
        author_id=author_id,
        text=post.get("text") or "",
        url=(
            f"https://x.com/{username}/status/{post_id}"
            if username
            else f"https://x.com/i/web/status/{post_id}"
        ),
        created_at=_created_at(post, now),
        in_reply_to=str(replied_to) if replied_to else None,
        language=post.get("lang"),
        extra=extra,
    )


def _log_errors(errors: list[dict[str, Any]]) -> None:
    """Partial errors do not fail the poll; they are logged, titles and ids only."""
    for error in errors:
        log.warning(
            "X partial error: %s (%s %s)",
            error.get("title") or error.get("type") or "unknown",
            error.get("resource_type") or "resource",
            error.get("resource_id") or error.get("value") or "?",
        )
