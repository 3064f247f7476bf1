"""The mentions service: each post stored once, scored, matched to the contact who wrote
it and put on that contact's timeline, whatever the batch; and the inbox's pages, which
on SQLite must walk an index rather than sort."""

import pytest
from sqlalchemy import select

from tests.webapp.incoming import count, incoming
from webapp.extensions import db
from webapp.models import Activity, Contact, Mention, Source
from webapp.models.base import utcnow
from webapp.services import mentions


def test_a_post_is_stored_once_whatever_the_route(app):
    with app.app_context():
        a, b = Source(name="A", kind="x", config={}), Source(name="B", kind="x", config={})
        db.session.add_all([a, b])
        db.session.flush()
        first = mentions.ingest(db.session, [incoming("1"), incoming("2"), incoming("1")], a)
        second = mentions.ingest(db.session, [incoming("2"), incoming("3")], b)
        db.session.commit()
        assert (len(first.stored), first.duplicates) == (2, 1)
        assert (len(second.stored), second.duplicates) == (1, 1)
        assert count(Mention) == 3
        assert (a.mentions_stored, b.mentions_stored) == (2, 1)
        # Same id on another network is another post.
        mentions.ingest(db.session, [incoming("1", network="mastodon", handle="x@m.social")])
        assert count(Mention) == 4


def test_sentiment_is_vaders_and_non_english_is_not_scored(app):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    texts = [
        "I love this product, it is great!",
        "Worst support ever. Never again.",
        "It arrived on Tuesday.",
    ]
    with app.app_context():
        mentions.ingest(db.session, [incoming(str(i), text=t) for i, t in enumerate(texts)])
        mentions.ingest(
            db.session,
            [incoming("es", text="El servicio fue muy malo y nadie respondió", language="es")],
        )
        db.session.commit()
        rows = {m.external_id: m for m in db.session.scalars(select(Mention))}
        raw = SentimentIntensityAnalyzer()
        for i, text in enumerate(texts):
            expected = raw.polarity_scores(text)
            m = rows[str(i)]
            assert (m.compound, m.pos, m.neu, m.neg) == (
                expected["compound"],
                expected["pos"],
                expected["neu"],
                expected["neg"],
            )
        assert [rows[str(i)].label for i in range(3)] == ["positive", "negative", "neutral"]
        assert (rows["es"].label, rows["es"].compound, rows["es"].sentiment_status) == (
            None,
            None,
            "not_english",
        )


@pytest.mark.parametrize(
    ("network", "contact_handle", "mention_handle", "author_id"),
    [
        ("x", "janedoe", "@JaneDoe", None),
        ("mastodon", "jane@mastodon.social", "Jane@Mastodon.Social", None),
        ("bluesky", "jane.bsky.social", "jane.bsky.social", None),
        # Bluesky handles change; the DID does not.
        ("bluesky", "did:plc:abc123", "renamed.bsky.social", "did:plc:abc123"),
    ],
)
def test_matching_puts_the_mention_on_the_contacts_timeline(
    app, client, login, make_user, make_contact, network, contact_handle, mention_handle, author_id
):
    rep = make_user("rep")
    jane = make_contact(rep, name="Jane Doe", **{f"handle_{network}": contact_handle})
    with app.app_context():
        post = incoming(
            "9",
            network=network,
            handle=mention_handle,
            author_id=author_id,
            text="Great visit today!",
        )
        result = mentions.ingest(db.session, [post])
        db.session.commit()
        assert result.attached == 1
        stored = db.session.scalar(select(Mention))
        assert stored.contact_id == jane.id
        # Matching again adds nothing: the same post again is a duplicate, and a mention
        # attached once more (its author's contact got a handle) keeps its one entry.
        again = mentions.ingest(db.session, [post])
        assert (again.stored, again.duplicates, again.attached) == ([], 1, 0)
        stored.contact_id = None
        assert mentions.attach_authored(db.session, db.session.get(Contact, jane.id)) == 1
        db.session.commit()
        assert stored.contact_id == jane.id
        assert count(Activity) == 1
    login(rep)
    html = client.get(f"/contacts/{jane.id}").get_data(as_text=True)
    assert "Great visit today!" in html
    assert 'class="badge badge-positive"' in html


def test_deleted_contacts_and_other_networks_do_not_match(app, make_user, make_contact):
    rep = make_user("rep")
    make_contact(rep, name="On X", handle_x="samehandle")
    gone = make_contact(rep, name="Gone", handle_bluesky="gone.bsky.social")
    with app.app_context():
        db.session.get(Contact, gone.id).deleted_at = utcnow()
        db.session.commit()
        result = mentions.ingest(
            db.session,
            [
                incoming("1", network="mastodon", handle="samehandle@example.social"),
                incoming("2", network="bluesky", handle="gone.bsky.social"),
                incoming("3", network="rss", handle="samehandle"),
            ],
        )
        assert result.attached == 0


def test_a_large_batch_of_distinct_authors_is_matched_in_one_go(app, make_user, make_contact):
    """A thousand and more authors in one batch (SQLite refuses an expression of one OR
    term per author past about a thousand)."""
    make_contact(make_user("rep"), name="Needle", handle_bluesky="did:plc:needle")
    batch = [
        incoming(
            str(i), network="bluesky", handle=f"user{i}.bsky.social", author_id=f"did:plc:u{i}"
        )
        for i in range(1500)
    ]
    batch.append(
        incoming("n", network="bluesky", handle="renamed.bsky.social", author_id="did:plc:needle")
    )
    with app.app_context():
        result = mentions.ingest(db.session, batch)
        db.session.commit()
        assert (len(result.stored), result.attached) == (1501, 1)


def test_a_failing_batch_stores_nothing_and_the_session_goes_on(app):
    """A batch larger than one chunk (PostgreSQL pipelines them) that the database
    refuses half-way stores nothing once rolled back, and the next batch goes in."""
    batch = [incoming(str(i), handle=f"fan{i % 50}") for i in range(600)]
    with app.app_context():
        good = Source(name="Real", kind="x", config={})
        db.session.add(good)
        db.session.commit()
        ghost = Source(id=good.id + 1000, name="Gone", kind="x", config={})
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            mentions.ingest(db.session, batch, ghost)
        db.session.rollback()
        assert count(Mention) == 0
        result = mentions.ingest(db.session, batch, good)
        db.session.commit()
        assert (len(result.stored), result.duplicates) == (600, 0)
        assert count(Mention) == 600


def test_a_fetched_post_no_database_could_store_is_cleaned_not_refused(app):
    """A network may send a NUL or half a surrogate pair; refusing the post would fail
    its poll again at every retry, so the characters go and the post is stored."""
    with app.app_context():
        result = mentions.ingest(
            db.session,
            [incoming("1", text="broken\x00 post \ud83d here", name="Nul\x00 Name")],
        )
        db.session.commit()
        assert len(result.stored) == 1
        stored = db.session.get(Mention, result.stored[0])
        assert stored.text == "broken post \ufffd here"
        assert stored.author_name == "Nul Name"


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"network": "x"},
        {"network": "mastodon", "label": "negative"},
        {"matched": True},
        {"matched": False, "label": "positive"},
        {"network": "x", "matched": True},
        {"label": "unscored"},
        {"label": "unscored", "network": "bluesky"},
        {"source_id": 1},
    ],
)
def test_every_inbox_filter_reads_a_page_in_order_without_sorting(app, backend, make_user, filters):
    """SQLite keeps no statistics: left to itself it reads every mention of a network
    through the author index and sorts them (70-230 ms at 300,000 mentions). Each inbox
    filter must walk an index in newest-first order and stop after a page."""
    from sqlalchemy import event

    user = make_user("support")
    statements = []
    with app.app_context():

        def capture(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("SELECT") and "FROM mentions" in statement:
                statements.append((statement, parameters))

        engine = db.engine
        event.listen(engine, "before_cursor_execute", capture)
        try:
            mentions.list_mentions(db.session, user, **filters)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        statement, parameters = statements[-1]
        explained = db.session.connection().exec_driver_sql(
            f"EXPLAIN QUERY PLAN {statement}", parameters
        )
        plan = " | ".join(row[3] for row in explained)
    assert "TEMP B-TREE" not in plan, plan
    assert (
        "ix_mentions_posted" in plan
        or "ix_mentions_unscored" in plan
        or ("ix_mentions_source" in plan)
    ), plan
