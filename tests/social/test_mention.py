"""The normalized mention: one JSON object per import line or webhook item, read into a
Mention with every field checked (a bad one refused with its name and the reason, unknown
ones kept in extra) and written out again as the same object; and the lenient readers of
a polled post's time and follower count, which make a value storable instead of refusing
the post."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from social.mention import (
    FOLLOWERS_MAX,
    FUTURE_SLACK,
    NETWORKS,
    TEXT_LIMIT,
    Mention,
    MentionError,
    fetched_followers,
    fetched_time,
    from_json,
    from_line,
    parse_time,
)

EARLY = "0001-01-01T00:00:00+23:59"  # the year 0 in UTC
LATE = "9999-12-31T23:59:59-23:59"  # the year 10000 in UTC
DEEP = "[" * 100_000 + "]" * 100_000
FETCHED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def fields(**changes) -> dict:
    """A valid normalized object (the fields an import line needs), changed."""
    base = {
        "source": "x",
        "external_id": "1",
        "author_handle": "fan",
        "text": "Love the new grinder",
        "created_at": "2026-11-20T10:00:00Z",
    }
    return {**base, **changes}


def line(**changes) -> str:
    """One import line of fields(**changes)."""
    return json.dumps(fields(**changes))


def test_a_full_line_is_read_field_by_field():
    mention = from_line(
        line(
            source="mastodon",
            external_id="https://remote.example/users/zoe/statuses/1",
            author_handle="zoe@remote.example",
            author_name="Zoë",
            author_followers=1234,
            author_id="https://remote.example/users/zoe",
            text="Broken again <3",
            url="https://remote.example/@zoe/1",
            created_at="2026-11-20T12:30:00+02:00",
            in_reply_to="https://mastodon.example/users/kestrel/statuses/9",
            language="en",
        )
    )
    assert mention == Mention(
        network="mastodon",
        external_id="https://remote.example/users/zoe/statuses/1",
        author_handle="zoe@remote.example",
        author_name="Zoë",
        text="Broken again <3",
        created_at=datetime(2026, 11, 20, 10, 30, tzinfo=UTC),
        url="https://remote.example/@zoe/1",
        author_followers=1234,
        author_id="https://remote.example/users/zoe",
        in_reply_to="https://mastodon.example/users/kestrel/statuses/9",
        language="en",
        extra={},
    )


def test_optional_fields_may_be_missing_null_or_empty():
    mention = from_json(fields(author_name=None, url="", language=None))
    assert mention.author_name == ""
    assert (mention.url, mention.language, mention.author_followers) == (None, None, None)
    assert (mention.author_id, mention.in_reply_to, mention.extra) == (None, None, {})


def test_numeric_ids_are_read_as_text():
    mention = from_json(fields(external_id=1578516295611748353, author_id=42))
    assert (mention.external_id, mention.author_id) == ("1578516295611748353", "42")


def test_the_source_names_the_network_else_the_default():
    assert from_json(fields(source="bluesky"), default_network="webhook").network == "bluesky"
    no_source = {k: v for k, v in fields().items() if k != "source"}
    assert from_json(no_source, default_network="webhook").network == "webhook"
    for network in NETWORKS:
        assert from_json(fields(source=network)).network == network


def test_fields_it_does_not_know_are_kept_in_extra():
    media = [{"type": "image", "url": "https://files.example/1.jpg"}]
    mention = from_line(line(lang_confidence=0.9, media=media, campaign=None))
    assert mention.extra == {"lang_confidence": 0.9, "media": media, "campaign": None}
    assert mention.to_json()["media"] == media


def test_to_json_is_read_back_as_the_same_mention():
    mention = Mention(
        network="bluesky",
        external_id="at://did:plc:abc/app.bsky.feed.post/3lbw",
        author_handle="lucia.bsky.social",
        author_name="Lucía",
        text="kestrel duo is loud 😡",
        created_at=datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC),
        url="https://bsky.app/profile/lucia.bsky.social/post/3lbw",
        author_followers=FOLLOWERS_MAX,
        author_id="did:plc:abc",
        in_reply_to="at://did:plc:xyz/app.bsky.feed.post/1",
        language="es",
        extra={"reason": "mention", "labels": ["a", {"b": 1}]},
    )
    data = mention.to_json()
    assert data["source"] == "bluesky"
    assert data["created_at"] == "2026-11-20T10:00:00.123456+00:00"
    assert data["reason"] == "mention"
    assert from_json(data) == mention
    assert from_line(json.dumps(data)) == mention


def test_to_json_leaves_out_what_is_unknown():
    mention = from_json(fields())
    assert mention.to_json() == {
        "source": "x",
        "external_id": "1",
        "author_handle": "fan",
        "author_name": "",
        "text": "Love the new grinder",
        "created_at": "2026-11-20T10:00:00+00:00",
    }


def test_an_extra_never_overrides_a_known_field():
    mention = from_json(fields())
    mention.extra = {"text": "not this", "source": "rss", "tag": "kept"}
    data = mention.to_json()
    assert (data["text"], data["source"], data["tag"]) == ("Love the new grinder", "x", "kept")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        ("", "not valid JSON (Expecting value at column 1)"),
        ("[]", "a mention is a JSON object"),
        ('"a mention"', "a mention is a JSON object"),
        (line(source="myspace"), "source must be one of x, mastodon, bluesky, rss, webhook"),
        (line(source=None), "source must be one of"),
        (line(external_id=None), "external_id is missing"),
        (line(external_id=""), "external_id is missing"),
        (line(external_id=["1"]), "external_id must be a string"),
        (line(external_id=True), "external_id must be a string"),
        (line(external_id="x" * 513), "external_id is longer than 512 characters"),
        (line(author_handle=None), "author_handle is missing"),
        (line(author_handle="fan\u0000"), "author_handle has a NUL character (\\u0000)"),
        (line(author_name="n" * 201), "author_name is longer than 200 characters"),
        (line(language="en-GB-x-oxendict1"), "language is longer than 16 characters"),
        (line(url={"href": "https://x.com"}), "url must be a string"),
        (line(text=None), "text is missing"),
        (line(text=" \n "), "text is missing"),
        (line(text=42), "text is missing"),
        (line(text="t" * (TEXT_LIMIT + 1)), f"text is longer than {TEXT_LIMIT} characters"),
        (line(text="love\u0000it"), "text has a NUL character (\\u0000)"),
        (line(author_followers=-1), "author_followers must be a whole number or null"),
        (line(author_followers=1.5), "author_followers must be a whole number or null"),
        (line(author_followers="12"), "author_followers must be a whole number or null"),
        (line(author_followers=True), "author_followers must be a whole number or null"),
        (line(created_at=None), "created_at must be an ISO 8601 string"),
        (line(created_at="yesterday"), "created_at is not an ISO 8601 time: 'yesterday'"),
        (line(created_at="2026-11-20T10:00:00"), "created_at needs a time zone (Z or +hh:mm)"),
    ],
)
def test_a_bad_line_is_refused_with_its_reason(text, reason):
    with pytest.raises(MentionError) as refused:
        from_line(text)
    assert str(refused.value).startswith(reason)


def test_half_a_surrogate_pair_is_refused():
    text = json.dumps(fields()).replace("grinder", "grinder \\ud83d")
    with pytest.raises(MentionError, match=r"text has an unpaired surrogate escape"):
        from_line(text)
    handle = json.dumps(fields()).replace('"fan"', '"fan\\udc00"')
    with pytest.raises(MentionError, match=r"author_handle has an unpaired surrogate escape"):
        from_line(handle)


@pytest.mark.parametrize("value", [EARLY, LATE])
def test_a_time_that_overflows_in_utc_is_refused_in_words(value):
    with pytest.raises(MentionError, match="created_at is out of range"):
        parse_time(value)
    with pytest.raises(MentionError, match="out of range"):
        from_line(line(created_at=value))


def test_a_follower_count_beyond_the_column_is_refused():
    assert from_line(line(author_followers=FOLLOWERS_MAX)).author_followers == FOLLOWERS_MAX
    for followers in (FOLLOWERS_MAX + 1, 10**30):
        with pytest.raises(MentionError, match="author_followers is larger than 2,147,483,647"):
            from_line(line(author_followers=followers))


def test_json_nested_too_deeply_is_refused():
    with pytest.raises(MentionError, match="nested more than 64 levels"):
        from_line('{"source": "x", "extra": ' + DEEP + "}")
    # Deep enough to load, but not to be written out again from deeper in the stack.
    with pytest.raises(MentionError, match="nested more than 64 levels"):
        from_line(line(extra=json.loads("[" * 900 + "]" * 900)))
    assert from_line(line(extra=json.loads("[" * 20 + "]" * 20))).extra


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T10:00:00Z", datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),
        ("2026-11-20T10:00:00.250+00:00", datetime(2026, 11, 20, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-11-20T12:00:00+02:00", datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),
        ("2026-11-19T23:30:00-10:30", datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),
    ],
)
def test_parse_time_gives_utc(value, expected):
    when = parse_time(value)
    assert when == expected
    assert when.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "created_at must be an ISO 8601 string"),
        (1763632800, "created_at must be an ISO 8601 string"),
        ("", "created_at is not an ISO 8601 time: ''"),
        ("20 Nov 2026", "created_at is not an ISO 8601 time: '20 Nov 2026'"),
        ("2026-11-20 10:00", "created_at needs a time zone (Z or +hh:mm)"),
    ],
)
def test_parse_time_refuses_in_words(value, reason):
    with pytest.raises(MentionError) as refused:
        parse_time(value)
    assert str(refused.value) == reason


def test_parse_time_quotes_at_most_the_start_of_a_long_value():
    with pytest.raises(MentionError) as refused:
        parse_time("x" * 10_000)
    assert str(refused.value) == f"created_at is not an ISO 8601 time: {'x' * 40!r}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T10:00:00Z", datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),
        (
            datetime(2026, 11, 20, 11, 0, tzinfo=timezone(timedelta(hours=1))),
            datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
        ),
        (datetime(2026, 11, 20, 10, 0), datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),  # naive: UTC
        (FETCHED + FUTURE_SLACK, FETCHED + FUTURE_SLACK),  # a clock a little ahead
    ],
)
def test_fetched_time_keeps_a_readable_time(value, expected):
    when = fetched_time(value, FETCHED)
    assert when == expected
    assert when.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "yesterday",
        "2026-11-20T10:00:00",  # no time zone
        1763632800,
        EARLY,
        LATE,
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # the year 0 in UTC
        FETCHED + FUTURE_SLACK + timedelta(seconds=1),
        "2099-01-01T00:00:00Z",
    ],
)
def test_fetched_time_is_the_fetch_time_for_what_cannot_be_stored(value):
    assert fetched_time(value, FETCHED) == FETCHED


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1234, 1234),
        (FOLLOWERS_MAX, FOLLOWERS_MAX),
        (FOLLOWERS_MAX + 1, FOLLOWERS_MAX),
        (10**30, FOLLOWERS_MAX),
        (-5, None),
        (True, None),
        (12.0, None),
        ("1234", None),
        (None, None),
    ],
)
def test_fetched_followers_is_a_whole_number_that_fits(value, expected):
    assert fetched_followers(value) == expected


def _read_in_python(text: str) -> Mention | str:
    """What the checks in Python alone make of a line: the mention, or the reason."""
    try:
        return from_json(json.loads(text))
    except json.JSONDecodeError:
        return "not valid JSON"
    except MentionError as exc:
        return str(exc)


@pytest.mark.parametrize(
    "text",
    [
        line(),
        line(author_followers=0, language="en", url="https://x.com/fan/1", in_reply_to="9"),
        line(author_name="", url="", language=None, author_followers=None),
        line(external_id=123, author_id=456),
        line(source="", text="Café ☕ 😍"),
        line(campaign={"name": "spring", "ids": [1, 2**70, None, 1.5]}),
        line(text="love\u0000it"),
        line(author_name="n" * 201),
        line(author_followers=True),
        line(author_followers=FOLLOWERS_MAX + 1),
        line(created_at=EARLY),
        line(text=" \n "),
        json.dumps(fields()).replace("grinder", "grinder \\ud83d"),
        '{"source": "x", "external_id": NaN}',
        "[1]",
        "{",
    ],
)
def test_the_typed_check_agrees_with_the_checks_in_python(text):
    """Whether a line takes the typed check or not, from_line makes of it what the
    per-field checks make: the same mention, or the same reason."""
    try:
        got: Mention | str = from_line(text)
    except MentionError as exc:
        got = "not valid JSON" if str(exc).startswith("not valid JSON") else str(exc)
    assert got == _read_in_python(text)


def test_a_plain_line_is_checked_without_the_checks_in_python(monkeypatch):
    """The common line is decoded and checked by msgspec, not field by field in Python;
    a line that needs words for what is wrong still gets them."""
    import social.mention as module

    def slow(*args, **kwargs):
        raise AssertionError("checked field by field")

    monkeypatch.setattr(module, "from_json", slow)
    monkeypatch.setattr(module.json, "loads", slow)
    assert from_line(line(language="en", author_followers=3)).language == "en"
    with pytest.raises(AssertionError):
        from_line(line(author_followers="12"))
