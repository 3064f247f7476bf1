"""X replies: posting an answer to one X post with the account's own credentials.

What belongs here: `reply`, the client acting as the account (OAuth 1.0a keys or an OAuth
2 user token; see social/replies.py for the keys), our account's id, looking among our
own newer posts for a reply an earlier attempt made (X has no idempotency key), the
create_tweet call, and X's refusals while replying as ReplyErrors. Fetching stays in
social.x, which also keeps tweepy's logs free of tokens.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import requests
import tweepy

from social import replies
from social.x import reset_time, response_json

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
    body = response_json(exc.response)
    words = body.get("detail") or "; ".join(str(m) for m in exc.api_messages)
    return str(words or "")[:300]


def _reply_error(exc: Exception) -> replies.ReplyError | None:
    """X's failure while replying as a ReplyError (None: not one of X's)."""
    if isinstance(exc, tweepy.TooManyRequests):
        retry_at = reset_time(exc.response)
        body = response_json(exc.response)
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
