"""A local Bluesky that takes replies, for web tests and benches (no command to run).

Start it with the context manager, store its `config` as a Bluesky source's config (or
pass it to social.replies.post with allow_private=True: it listens on 127.0.0.1), make
posts to answer with `mention`, and read what was posted with `replies`:

    with bluesky_replies() as fake:
        mention = fake.mention(1, "Where is my order?")
        posted = replies.post(
            fake.config, replies.target_of(mention), "On its way!", key="reply-1",
            allow_private=True,
        )
        assert fake.replies()[0]["value"]["text"] == "@fan1.bsky.social On its way!"

It is the FakeBluesky of test_bluesky.py: the real atproto client talks to it (sign-in,
getPosts, createRecord with its record key, getRecord), a reused session signs in once,
and a reply retried with the same key is found rather than written twice. One worker
sends it about 240 replies a second (1,000 in about 4 s on the 2-core machine).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from social.mention import Mention
from tests.social.test_bluesky import BASE_TIME, BRAND, PASSWORD, FakeBluesky, post_view


class BlueskyReplies:
    """The running fake, the source config that reaches it, and helpers."""

    def __init__(self, fake: FakeBluesky) -> None:
        self.fake = fake
        self.config = {
            "mode": "notifications",
            "service": fake.url,
            "handle": BRAND[0],
            "password": PASSWORD,
        }

    def mention(self, n: int, text: str = "", handle: str | None = None) -> Mention:
        """A post on the fake (the n-th; handle default fan<n>.bsky.social) that replies
        can answer, as the connector stores it."""
        handle = handle or f"fan{n}.bsky.social"
        view = post_view(n, text or f"@{BRAND[0]} question {n}", handle=handle)
        self.fake.views[view["uri"]] = view
        rkey = view["uri"].rsplit("/", 1)[-1]
        return Mention(
            network="bluesky",
            external_id=view["uri"],
            author_handle=handle,
            author_name=view["author"]["displayName"] or handle,
            author_id=view["author"]["did"],
            text=view["record"]["text"],
            url=f"https://bsky.app/profile/{handle}/post/{rkey}",
            created_at=BASE_TIME + timedelta(minutes=n),
            language="en",
        )

    def replies(self) -> list[dict]:
        """The records our account wrote ({"uri", "cid", "value"}), oldest first."""
        return list(self.fake.records.values())

    def lose_next_answer(self) -> None:
        """The next reply is written, but its answer never arrives (the job will retry)."""
        self.fake.lose_answers.add("com.atproto.repo.createRecord")

    def sign_ins(self) -> int:
        """How many times the account signed in with its password."""
        return self.fake.count("com.atproto.server.createSession")


@contextmanager
def bluesky_replies() -> Iterator[BlueskyReplies]:
    """A fake Bluesky on 127.0.0.1 for as long as the block runs."""
    with FakeBluesky() as fake:
        yield BlueskyReplies(fake)
