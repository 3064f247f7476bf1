"""The demo source: replays bundled sample mentions over time, for `make run` with no
credentials.

The samples (data/demo_mentions.jsonl) are customers talking about Kestrel, the
fictional coffee-machine maker whose sales team uses the demo CRM: praise,
complaints, questions, sarcasm, several languages, and a few hostile payloads so the
demo exercises the UI's escaping too. About half come from DEMO_AUTHORS, whom the
demo seed creates as contacts with exactly these handles, so they match; the rest
are strangers.

Each sample also has an `id` (a stable name), the `label` a reader gives it
(positive, negative or neutral; non-English ones too, though the product leaves them
unscored) and, where VADER reads it otherwise, a `miss` saying why. The English
samples are written so that VADER agrees with their labels about as often as it
agrees with people on rated tweets, misses included: the demo shows sentiment as it
will be on real mentions, and gives staff labels to correct. Those three fields
describe the sample and are not part of the mention.

Each mention keeps the network of its author's handle (x, mastodon, bluesky), since
that is what matching keys on; external_id is "demo-<sample>-<cycle>", which no
real network produces, so demo rows never collide with real ones. Its url is the
app's own page for the sample (POST_PATH), dated like the mention: a fictional post
has no page on its network, and a link there would lead nowhere.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from social.mention import FetchResult, Mention, SourceError

DEMO_BRAND = "Kestrel"
# (name, network, handle): the demo seed creates one contact per name, with these
# handles, which follow its rules (x: ascii-folded first_last, lower-case, at most 15
# characters; mastodon: the same @mastodon.social; bluesky: first.last.bsky.social).
DEMO_AUTHORS: list[tuple[str, str, str]] = [
    ("Olivia Okafor", "x", "olivia_okafor"),
    ("Mateo García", "x", "mateo_garcia"),
    ("Priya Patel", "x", "priya_patel"),
    ("Priya Patel", "bluesky", "priya.patel.bsky.social"),
    ("Kenji Tanaka", "mastodon", "kenji_tanaka@mastodon.social"),
    ("Freya Johansson", "bluesky", "freya.johansson.bsky.social"),
    ("Liam O'Brien", "x", "liam_obrien"),
    ("Zara Haddad", "bluesky", "zara.haddad.bsky.social"),
    ("Hannah Müller", "mastodon", "hannah_muller@mastodon.social"),
    ("Diego Fernández", "x", "diego_fernandez"),
    ("Leila Dubois", "bluesky", "leila.dubois.bsky.social"),
    ("Tomasz Kowalski", "mastodon", "tomasz_kowalski@mastodon.social"),
    ("Grace Walsh", "x", "grace_walsh"),
    ("Kwame Mensah", "bluesky", "kwame.mensah.bsky.social"),
    ("Ingrid Lindqvist", "mastodon", "ingrid_lindqvis@mastodon.social"),
    ("Aisha Nguyen", "x", "aisha_nguyen"),
]
DEFAULT_BATCH = 3
MAX_BATCH = 50
# Seconds between the mentions of one batch, so they do not share a timestamp.
SPACING = 7
# The web app serves each sample as its network would show it, at this path.
POST_PATH = "/demo/posts/{}"
# How a post page's URL carries the time of its mention, to the second.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@cache
def samples() -> tuple[dict[str, Any], ...]:
    """The bundled samples, in replay order."""
    text = resources.files("social").joinpath("data/demo_mentions.jsonl").read_text("utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


@cache
def _by_id() -> dict[str, dict[str, Any]]:
    """The samples by their id."""
    return {sample["id"]: sample for sample in samples()}


def find_sample(sample_id: str) -> dict[str, Any] | None:
    """The sample with this id, or None."""
    return _by_id().get(sample_id)


def post_url(sample_id: str, posted_at: datetime) -> str:
    """The app's page for a sample, showing it as posted at posted_at."""
    stamp = posted_at.astimezone(UTC).strftime(TIME_FORMAT)
    return POST_PATH.format(quote(sample_id, safe="")) + f"?at={stamp}"


def fetch(
    config: dict[str, Any], cursor: str | None, *, now: datetime | None = None
) -> FetchResult:
    """The next config["batch"] (default 3) samples after cursor, dated just before now.

    The cursor counts samples replayed since the source began, so it also says which
    cycle through the list we are on: the same cursor yields the same ids (a replayed
    poll stores nothing twice), and a new cycle yields new ones.
    """
    position = _position(cursor)
    batch = config.get("batch", DEFAULT_BATCH)
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= MAX_BATCH:
        raise SourceError(f"The demo batch is a whole number from 1 to {MAX_BATCH}.")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    pool = samples()
    mentions = []
    for offset in range(batch):
        cycle, index = divmod(position + offset, len(pool))
        sample = pool[index]
        # The last of the batch is the newest, as if they arrived in order.
        created_at = now - timedelta(seconds=SPACING * (batch - 1 - offset))
        mentions.append(
            Mention(
                network=sample["network"],
                external_id=f"demo-{index}-{cycle}",
                author_handle=sample["author_handle"],
                author_name=sample["author_name"],
                author_followers=sample.get("author_followers"),
                text=sample["text"],
                url=post_url(sample["id"], created_at),
                created_at=created_at,
                language=sample.get("language"),
                extra={"demo": True},
            )
        )
    return FetchResult(mentions=mentions, cursor=str(position + batch))


def _position(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit():
        raise SourceError("The demo source's cursor is unreadable; reset the source.")
    return int(cursor)
