"""X (Twitter) API v2 through tweepy: mentions of an account, or a recent search.

What belongs here: the one `fetch` the poll job calls for an X source, the mapping of
X's posts and expanded users to `Mention`s, and the translation of X's failures into
`SourceError`, `RateLimited` and `UsageCapped`; and `reply`, which posts an answer to
one post with the account's user-context credentials (see social/replies.py for the
keys) and translates X's refusals into ReplyErrors. Nothing here sleeps: a rate limit
is raised with the time to come back, and the worker reschedules.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import tweepy

from social import replies
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
        body = _json(exc.response)
        problem = f"{body.get('title', '')} {body.get('type', '')}".lower()
        if "usagecapped" in problem or "usage-capped" in problem:
            detail = body.get("detail") or "usage cap exceeded"
            raise UsageCapped(
                f"X says this app's usage cap is reached ({detail}); polling cannot resume "
                "until the cap resets or the plan changes."
            ) from None
        retry_at = _reset_time(exc.response)
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


def _json(response: requests.Response) -> dict[str, Any]:
    """The response's JSON object, or {} when it has none."""
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _detail(exc: tweepy.HTTPException) -> str:
    """X's own words about the failure, if it sent any."""
    body = _json(exc.response)
    words = body.get("detail") or "; ".join(str(m) for m in exc.api_messages)
    return f" X says: {str(words)[:300]}" if words else ""


def _reset_time(response: requests.Response) -> datetime:
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


# Replies: posting an answer to one post.

# Our posts newer than the one answered, read before posting: pages of X's most.
REPLY_LOOKUP = 100
REPLY_PAGES = 3
_REPLY_FIELDS = ["referenced_tweets", "created_at"]
# How X words a refusal because of who may reply (its rule on API replies, or the
# author's reply settings).
_RESTRICTED = (
    "not been mentioned",
    "engaged by the author",
    "reply to this conversation",
    "reply settings",
    "who can reply",
)
_HANDLES_AHEAD = re.compile(r"^(?:@\w{1,15}\s+)+")
_SPACE = re.compile(r"\s+")


def reply(
    config: dict[str, Any],
    target: replies.Target,
    text: str,
    *,
    key: str,
    client: tweepy.Client | None = None,
) -> replies.Posted:
    """Post text as a reply to the X post target names, at most once.

    X has no idempotency key, so our own posts newer than the target are read first: a
    reply to it with the same text (sent by an earlier attempt whose answer was lost) is
    returned instead of posting again, and X's refusal of a duplicate is met the same way.
    key is accepted for the common interface; X has nowhere to put it.
    :raise ReplyError: NotAllowed, TooLong, RateLimited, Unavailable or Rejected.
    """
    post_id = target.external_id
    if not (post_id.isascii() and post_id.isdigit()):
        raise replies.Rejected("This X post has no id to reply to.")
    text = replies.compose("x", text, target)
    if replies.x_length(text) > replies.X_LIMIT:
        raise replies.TooLong(f"X takes at most {replies.X_LIMIT} characters as it counts them.")
    own = client is None
    if client is None:
        client = _user_client(config)
    try:
        user_auth = client.consumer_key is not None  # OAuth 1.0a; else an OAuth 2 user token
        user_id = _own_id(config, client, user_auth)
        found = _already_replied(client, user_id, post_id, text, user_auth)
        if found is None:
            found = _create_reply(client, user_id, post_id, text, user_auth)
        return replies.Posted(external_id=found, url=_post_url(config, found))
    finally:
        if own:
            client.session.close()


def _user_client(config: dict[str, Any]) -> tweepy.Client:
    """A tweepy client acting as the account: OAuth 1.0a keys, or an OAuth 2 user token."""
    names = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
    keys = {name: str(config.get(name) or "").strip() for name in names}
    if all(keys.values()):
        return tweepy.Client(**keys, wait_on_rate_limit=False)
    token = str(config.get("user_access_token") or "").strip()
    if token:
        return tweepy.Client(bearer_token=token, wait_on_rate_limit=False)
    raise replies.Rejected(
        "Replying on X needs the account's own credentials: the app's consumer key and "
        "secret with the account's access token and secret, or an OAuth 2 user access token "
        "(the bearer token only reads)."
    )


def _own_id(config: dict[str, Any], client: tweepy.Client, user_auth: bool) -> str:
    """Our account's numeric id: the source's, else the one inside an OAuth 1.0a access
    token, else X's answer to who we are."""
    user_id = str(config.get("user_id") or "")
    if user_id.isascii() and user_id.isdigit():
        return user_id
    prefix = str(client.access_token or "").partition("-")[0]
    if user_auth and prefix.isascii() and prefix.isdigit():
        return prefix
    response = _reply_call(lambda: client.get_me(user_auth=user_auth))
    return str(response.data.id)


def _comparable(text: str) -> str:
    """A post's text as X may give it back: entities unescaped, the handles X puts ahead
    of a reply dropped, links (which X shortens) and spacing made alike."""
    text = html.unescape(text).strip()
    text = _HANDLES_AHEAD.sub("", text)
    for start, end in reversed(replies.links(text)):
        text = f"{text[:start]}<link>{text[end:]}"
    return _SPACE.sub(" ", text).strip().casefold()


def _already_replied(
    client: tweepy.Client, user_id: str, post_id: str, text: str, user_auth: bool
) -> str | None:
    """The id of our reply to post_id with this text, if one is there already (among our
    posts since post_id, REPLY_PAGES pages at most)."""
    wanted = _comparable(text)
    params: dict[str, Any] = {
        "since_id": post_id,
        "max_results": REPLY_LOOKUP,
        "tweet_fields": _REPLY_FIELDS,
        "exclude": ["retweets"],
        "user_auth": user_auth,
    }
    for _page in range(REPLY_PAGES):
        response = _reply_call(lambda: client.get_users_tweets(user_id, **params))
        for tweet in response.data or []:
            data = tweet.data
            answers = any(
                ref.get("type") == "replied_to" and str(ref.get("id")) == post_id
                for ref in data.get("referenced_tweets") or []
            )
            if answers and _comparable(data.get("text") or "") == wanted:
                return str(data["id"])
        next_token = response.meta.get("next_token")
        if not next_token:
            return None
        params["pagination_token"] = next_token
    return None


def _create_reply(
    client: tweepy.Client, user_id: str, post_id: str, text: str, user_auth: bool
) -> str:
    """Post the reply; the new post's id."""
    try:
        response = client.create_tweet(text=text, in_reply_to_tweet_id=post_id, user_auth=user_auth)
        return str(response.data["id"])
    except tweepy.Forbidden as exc:
        if "duplicate" not in _said(exc).lower():
            raise _reply_error(exc) from None
    except Exception as exc:
        translated = _reply_error(exc)
        if translated is None:
            raise
        raise translated from None
    # X refuses the same text twice: the first attempt went through after all.
    found = _already_replied(client, user_id, post_id, text, user_auth)
    if found is None:
        raise replies.Rejected(
            "X refuses this text as a duplicate of one of our recent posts; change the wording."
        )
    return found


def _post_url(config: dict[str, Any], post_id: str) -> str:
    username = str(config.get("username") or "").lstrip("@")
    if re.fullmatch(r"\w{1,15}", username):
        return f"https://x.com/{username}/status/{post_id}"
    return f"https://x.com/i/web/status/{post_id}"


def _reply_call(call: Callable[[], tweepy.Response]) -> tweepy.Response:
    """One request made while replying, with X's failures turned into ReplyErrors."""
    try:
        return call()
    except replies.ReplyError:
        raise
    except Exception as exc:
        translated = _reply_error(exc)
        if translated is None:
            raise
        raise translated from None


def _said(exc: tweepy.HTTPException) -> str:
    """X's own words about a failure (its detail, else its messages), or ""."""
    body = _json(exc.response)
    words = body.get("detail") or "; ".join(str(m) for m in exc.api_messages)
    return str(words or "")[:300]


def _reply_error(exc: Exception) -> replies.ReplyError | None:
    """X's failure while replying as a ReplyError (None: not one of X's)."""
    if isinstance(exc, tweepy.TooManyRequests):
        retry_at = _reset_time(exc.response)
        body = _json(exc.response)
        if "usage" in f"{body.get('title', '')} {body.get('type', '')}".lower():
            return replies.RateLimited(
                "X says this app's usage cap is reached; replies wait until it resets.",
                retry_at=retry_at,
            )
        return replies.RateLimited(
            f"X rate limit reached; the reply goes out after {retry_at:%H:%M} UTC.",
            retry_at=retry_at,
        )
    if isinstance(exc, tweepy.Unauthorized):
        return replies.Rejected(
            "X rejected the account's credentials (401): they are wrong, revoked or expired."
        )
    if isinstance(exc, tweepy.HTTPException):
        said = _said(exc)
        quoted = f" X says: {said}" if said else ""
        low = said.lower()
        status = exc.response.status_code
        if isinstance(exc, tweepy.TwitterServerError):
            return replies.Unavailable(f"X had a server error ({status}); trying again later.")
        if "too long" in low:
            return replies.TooLong(f"X says the reply is too long.{quoted}")
        if isinstance(exc, tweepy.Forbidden) and any(words in low for words in _RESTRICTED):
            return replies.NotAllowed(
                "X does not let us reply to this post from here: X refuses API replies to "
                "posts that did not mention or quote our account (outside its enterprise "
                "tier), and authors can limit who may reply. Open it on X to reply by hand."
                + quoted
            )
        if isinstance(exc, tweepy.Forbidden):
            return replies.Rejected(
                "X refused the reply (403 Forbidden): the app may lack write permission, or "
                f"the post is deleted or hidden from us.{quoted}"
            )
        return replies.Rejected(f"X refused the reply ({status}).{quoted}")
    if isinstance(exc, requests.JSONDecodeError):
        return replies.Unavailable("X sent a response that is not JSON; the reply is tried again.")
    if isinstance(exc, requests.RequestException):
        return replies.Unavailable(f"Could not reach X ({type(exc).__name__}); tried again later.")
    if isinstance(exc, tweepy.TweepyException | ValueError | KeyError | TypeError):
        return replies.Unavailable(f"X sent a response we could not read ({type(exc).__name__}).")
    return None
