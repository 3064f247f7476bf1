"""Handle normalization: one spelling per account, whatever people type or paste."""

import pytest

from social.matching import normalize_handle


@pytest.mark.parametrize(
    ("network", "raw", "expected"),
    [
        ("x", "@JaneDoe", "janedoe"),
        ("x", " jane_doe ", "jane_doe"),
        ("x", "https://x.com/JaneDoe", "janedoe"),
        ("x", "https://twitter.com/janedoe/status/1", "janedoe"),
        ("x", "https://mobile.twitter.com/JaneDoe", "janedoe"),
        ("mastodon", "@Jane@Mastodon.Social", "jane@mastodon.social"),
        ("mastodon", "jane@fosstodon.org", "jane@fosstodon.org"),
        ("mastodon", "https://hachyderm.io/@Jane", "jane@hachyderm.io"),
        ("bluesky", "@Jane.bsky.social", "jane.bsky.social"),
        ("bluesky", "https://bsky.app/profile/jane.example.com", "jane.example.com"),
        ("bluesky", "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:plc:ewvi7nxzyoun6zhxrhs64oiz"),
    ],
)
def test_normalizes(network, raw, expected):
    assert normalize_handle(network, raw) == expected


@pytest.mark.parametrize(
    ("network", "raw", "message"),
    [
        ("x", "", "Enter a handle."),
        ("x", "sixteen_chars_xx", "1 to 15"),
        ("x", "jane doe", "1 to 15"),
        ("x", "https://facebook.com/jane", "not an X profile link"),
        ("mastodon", "jane", "needs its server"),
        ("mastodon", "jane@localhost", "needs its server"),
        ("mastodon", "ja ne@mastodon.social", "letters, digits"),
        ("bluesky", "jane", "name.bsky.social"),
        ("bluesky", "<script>", "name.bsky.social"),
        ("myspace", "tom", "Unknown network"),
        ("x", "a" * 400, "at most 320"),
    ],
)
def test_rejects_with_a_reason(network, raw, message):
    with pytest.raises(ValueError, match=message):
        normalize_handle(network, raw)
