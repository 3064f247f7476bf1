"""Mentions: stored once, scored, matched to contacts, listed, linked, imported, and
received through signed webhooks."""

import json
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from social import webhook
from social.mention import Mention as Incoming
from webapp.extensions import db
from webapp.models import Activity, Contact, Mention, Source
from webapp.models.base import utcnow
from webapp.services import contacts, mentions

FRAGMENT = {"HX-Request": "true", "HX-Request-Type": "partial"}


def incoming(external_id="1", network="x", handle="Someone", text="I love this product!", **kw):
    return Incoming(
        network=network,
        external_id=external_id,
        author_handle=handle,
        author_name=kw.pop("name", "Some One"),
        text=text,
        created_at=kw.pop("created_at", datetime(2026, 11, 20, 9, 0, tzinfo=UTC)),
        **kw,
    )


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


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


HOSTILE = (
    "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"
    '<a href="javascript:alert(1)">x</a><div hx-get="/logout" hx-trigger="load">'
)


def test_inbox_lists_filters_and_escapes(app, client, login, make_user, make_contact):
    rep = make_user("support")
    make_contact(make_user("rep"), name="Known Person", handle_x="known")
    with app.app_context():
        src = Source(name="Brand", kind="x", config={})
        db.session.add(src)
        db.session.flush()
        mentions.ingest(
            db.session,
            [
                incoming("1", handle="known", text="Absolutely love it, thank you!"),
                incoming("2", handle="stranger", text="This is terrible and broken.", name=HOSTILE),
                incoming("3", handle="other", text=HOSTILE),
            ],
            src,
        )
        db.session.commit()
    login(rep)
    page = client.get("/inbox/").get_data(as_text=True)
    assert page.index("Known Person") > 0  # matched mention shows its contact
    assert HOSTILE not in page and "&lt;script&gt;" in page
    r = client.get("/inbox/?label=negative", headers=FRAGMENT)
    html = r.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="mention-list">')
    assert "This is terrible" in html and "love it" not in html
    assert "love it" in client.get("/inbox/?matched=yes").get_data(as_text=True)
    unmatched = client.get("/inbox/?matched=no").get_data(as_text=True)
    assert "love it" not in unmatched and "terrible" in unmatched
    assert "terrible" in client.get(f"/inbox/?source={1}").get_data(as_text=True)


def test_support_links_and_unlinks_a_mention(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    contact = make_contact(rep, name="Marta Vidal")
    with app.app_context():
        stored = mentions.ingest(db.session, [incoming("1", handle="mvidal", name="Marta Vidal")])
        db.session.commit()
        mention_id = stored.stored[0]
    login(make_user("support"))
    page = client.get(f"/inbox/{mention_id}").get_data(as_text=True)
    assert "Marta Vidal" in page and f'name="contact_id" value="{contact.id}"' in page
    assert (
        client.post(f"/inbox/{mention_id}/link", data={"contact_id": contact.id}).status_code == 303
    )
    with app.app_context():
        assert db.session.get(Mention, mention_id).contact_id == contact.id
        assert count(Activity) == 1
    client.post(f"/inbox/{mention_id}/unlink")
    with app.app_context():
        assert db.session.get(Mention, mention_id).contact_id is None
        assert count(Activity) == 0
    assert client.post(f"/inbox/{mention_id}/link", data={"contact_id": 999}).status_code == 404
    assert client.post("/inbox/999/link", data={"contact_id": contact.id}).status_code == 404


def test_reps_and_marketers_read_but_do_not_triage(app, client, login, make_user, make_contact):
    contact = make_contact(make_user("rep"), name="Someone")
    with app.app_context():
        mention_id = mentions.ingest(db.session, [incoming("1")]).stored[0]
        db.session.commit()
    for role in ("rep", "marketer"):
        login(make_user(role))
        assert client.get("/inbox/").status_code == 200
        assert client.get(f"/inbox/{mention_id}").status_code == 200
        r = client.post(f"/inbox/{mention_id}/link", data={"contact_id": contact.id})
        assert r.status_code == 403
        client.post("/logout")


def test_manager_makes_a_contact_from_a_mention(app, client, login, make_user):
    with app.app_context():
        mention_id = mentions.ingest(
            db.session,
            [incoming("1", network="mastodon", handle="@New@Fosstodon.org", name="New Voice")],
        ).stored[0]
        db.session.commit()
    login(make_user("manager"))
    r = client.post(f"/inbox/{mention_id}/contact")
    assert r.status_code == 303
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "New Voice" in html and "@new@fosstodon.org" in html and "I love this product!" in html


ONE = {"external_id": "x", "author_handle": "a", "text": "t", "created_at": "2026-11-20T10:00:00Z"}


def _signed(secret, body, when=None):
    stamp = int(when or time.time())
    return {"X-CRM-Timestamp": str(stamp), "X-CRM-Signature": webhook.sign(secret, body, stamp)}


def test_webhook_stores_signed_mentions_once(app, client):
    with app.app_context():
        src = Source(name="Hook", kind="webhook", config={}, secret="s3cret-value")
        db.session.add(src)
        db.session.commit()
        url = f"/api/webhooks/{src.id}"
    body = json.dumps(
        [
            {
                "external_id": "w1",
                "author_handle": "fan",
                "text": "Nice!",
                "created_at": "2026-11-20T10:00:00Z",
                "campaign": "winter",
            },
            {
                "external_id": "w2",
                "author_handle": "fan",
                "text": "Bad.",
                "created_at": "2026-11-20T10:01:00Z",
            },
        ]
    ).encode()
    r = client.post(url, data=body, headers=_signed("s3cret-value", body))
    assert r.status_code == 202 and r.get_json() == {"stored": 2, "duplicates": 0}
    r = client.post(url, data=body, headers=_signed("s3cret-value", body))
    assert r.get_json() == {"stored": 0, "duplicates": 2}
    with app.app_context():
        stored = db.session.scalar(select(Mention).where(Mention.external_id == f"{src.id}:w1"))
        assert stored.network == "webhook" and stored.extra == {"campaign": "winter"}


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "X-CRM-Timestamp header is missing"),
        ("wrong-secret", 401, "does not match"),
        ("stale", 401, "too old"),
    ],
)
def test_webhook_refuses_unsigned_or_replayed_requests(app, client, headers, status, message):
    with app.app_context():
        src = Source(name="Hook", kind="webhook", config={}, secret="s3cret-value")
        db.session.add(src)
        db.session.commit()
        url = f"/api/webhooks/{src.id}"
    body = json.dumps(ONE).encode()
    if headers == "wrong-secret":
        headers = _signed("other", body)
    elif headers == "stale":
        headers = _signed("s3cret-value", body, time.time() - 3600)
    r = client.post(url, data=body, headers=headers)
    assert r.status_code == status
    assert message in r.get_json()["error"]
    with app.app_context():
        assert count(Mention) == 0


def test_webhook_rejects_malformed_items_and_stores_nothing(app, client):
    with app.app_context():
        src = Source(name="Hook", kind="webhook", config={}, secret="k")
        db.session.add(src)
        db.session.commit()
        url = f"/api/webhooks/{src.id}"
    body = json.dumps([ONE, {"external_id": "bad"}]).encode()
    r = client.post(url, data=body, headers=_signed("k", body))
    assert r.status_code == 422
    assert "2" in r.get_json()["error"]
    with app.app_context():
        assert count(Mention) == 0
    assert (
        client.post("/api/webhooks/999", data=body, headers=_signed("k", body)).status_code == 404
    )


def test_mentions_import_reports_stored_duplicates_and_rejected_lines(
    app, tmp_path, make_user, make_contact
):
    make_contact(make_user("rep"), name="Imported Match", handle_x="importfan")
    lines = [
        json.dumps(
            {
                "source": "x",
                "external_id": "1",
                "author_handle": "importfan",
                "author_name": "F",
                "text": "love it",
                "created_at": "2026-11-20T10:00:00Z",
                "url": "https://x.com/importfan/status/1",
                "author_followers": 10,
            }
        ),
        json.dumps(
            {
                "source": "x",
                "external_id": "1",
                "author_handle": "importfan",
                "text": "love it",
                "created_at": "2026-11-20T10:00:00Z",
            }
        ),
        "{not json",
        json.dumps(
            {
                "source": "x",
                "external_id": "2",
                "author_handle": "a",
                "text": "t",
                "created_at": "yesterday",
            }
        ),
        "",
        json.dumps(
            {
                "source": "myspace",
                "external_id": "3",
                "author_handle": "a",
                "text": "t",
                "created_at": "2026-11-20T10:00:00Z",
            }
        ),
        json.dumps(
            {
                "external_id": "4",
                "author_handle": "b",
                "text": "hello",
                "created_at": "2026-11-20T10:00:00+02:00",
                "mood": "ok",
            }
        ),
        # Half of a surrogate pair, escaped: valid JSON, but no database stores it.
        '{"source": "x", "external_id": "5", "author_handle": "c", "text": "half \\ud83d",'
        ' "created_at": "2026-11-20T10:00:00Z"}',
        # A NUL character, which PostgreSQL text refuses.
        '{"source": "x", "external_id": "6", "author_handle": "c", "text": "nul \\u0000",'
        ' "created_at": "2026-11-20T10:00:00Z"}',
    ]
    path = tmp_path / "mentions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = app.test_cli_runner().invoke(args=["mentions", "import", str(path)])
    assert result.exit_code == 1
    assert "2 stored, 1 duplicate, 5 rejected (1 attached to contacts)." in result.output
    assert "line 3: not valid JSON" in result.output
    assert "line 4: created_at is not an ISO 8601 time" in result.output
    assert "line 6: source must be one of" in result.output
    assert "line 8: text has an unpaired surrogate escape" in result.output
    assert "line 9: text has a NUL character" in result.output
    with app.app_context():
        imported = db.session.scalar(select(Mention).where(Mention.external_id == "4"))
        assert imported.network == "import" and imported.extra == {"mood": "ok"}
        assert imported.posted_at == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    again = app.test_cli_runner().invoke(args=["mentions", "import", str(path)])
    assert "0 stored, 3 duplicate, 5 rejected" in again.output


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


def test_a_new_handle_brings_the_authors_earlier_mentions(
    app, client, login, make_user, make_contact
):
    """Support turns one mention into a contact, or adds a handle to a contact: that
    author's other unmatched mentions join the timeline too; a mention someone linked
    elsewhere by hand stays where it is."""
    other = make_contact(make_user("rep"), name="Somebody Else")
    bob = make_contact(make_user("rep"), name="Bob Builder")
    with app.app_context():
        stored = mentions.ingest(
            db.session,
            [
                incoming("1", network="mastodon", handle="@Fan@Fosstodon.org", name="Fan"),
                incoming("2", network="mastodon", handle="fan@fosstodon.org", text="Meh."),
                incoming("3", network="mastodon", handle="fan@fosstodon.org", text="Again!"),
                incoming("4", handle="BobTheBuilder", name="Bob", text="Can we fix it?"),
                incoming("5", handle="bobthebuilder", text="Yes we can"),
                incoming("6", handle="someoneelse", text="Not Bob"),
            ],
        ).stored
        db.session.commit()
        assert count(Activity) == 0
        # Someone linked mention 5 to another contact by hand: it stays there.
        mention5 = db.session.get(Mention, stored[4])
        mentions.link(db.session, make_user("support"), mention5, db.session.get(Contact, other.id))
        db.session.commit()
    login(make_user("manager"))
    r = client.post(f"/inbox/{stored[0]}/contact")
    assert r.status_code == 303
    timeline = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "I love this product!" in timeline and "Meh." in timeline and "Again!" in timeline
    login(make_user("support"))
    r = client.post(f"/contacts/{bob.id}/edit", data={"handle_x": "@bobthebuilder"})
    assert r.status_code in (200, 303), r.get_data(as_text=True)
    with app.app_context():
        on_bob = db.session.scalars(select(Mention).where(Mention.contact_id == bob.id)).all()
        assert [m.external_id for m in on_bob] == ["4"]
        assert db.session.get(Mention, stored[4]).contact_id == other.id
        assert db.session.get(Mention, stored[5]).contact_id is None
        # One timeline entry per attached mention, never two.
        assert count(Activity) == 5


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


def test_source_names_are_for_those_who_may_see_sources(app, client, login, make_user):
    with app.app_context():
        src = Source(name="Secret Campaign Listener", kind="x", config={})
        db.session.add(src)
        db.session.flush()
        mention_id = mentions.ingest(db.session, [incoming("1", text="Hello there")], src).stored[0]
        mentions.ingest(db.session, [incoming("m1", network="mastodon", handle="a@b.social")])
        db.session.commit()
    for role in ("rep", "support", "marketer"):
        login(make_user(role))
        for page in (client.get("/inbox/"), client.get(f"/inbox/{mention_id}")):
            assert "Secret Campaign Listener" not in page.get_data(as_text=True), role
        only_mastodon = client.get("/inbox/?network=mastodon").get_data(as_text=True)
        assert "a@b.social" in only_mastodon and "Hello there" not in only_mastodon
        client.post("/logout")
    login(make_user("manager"))
    assert "Secret Campaign Listener" in client.get(f"/inbox/{mention_id}").get_data(as_text=True)
    assert "Secret Campaign Listener" in client.get("/inbox/").get_data(as_text=True)


def test_suggestions_take_wildcards_in_names_literally(app, make_user, make_contact):
    rep = make_user("rep")
    make_contact(rep, name="Unrelated Person")
    make_contact(rep, name="Percy 100% Real")
    with app.app_context():
        mention_id = mentions.ingest(
            db.session, [incoming("1", handle="___", name="___ %%%")]
        ).stored[0]
        db.session.commit()
        found = contacts.suggestions(db.session, db.session.get(Mention, mention_id))
        assert [c.name for c in found] == []


def test_support_lands_on_the_inbox_and_others_on_contacts(client, make_user):
    from tests.conftest import sign_in

    support, rep = make_user("support"), make_user("rep")
    assert sign_in(client, support).headers["Location"] == "/inbox/"
    assert client.get("/").headers["Location"].endswith("/inbox/")
    client.post("/logout")
    assert sign_in(client, rep).headers["Location"] == "/contacts"


def test_suggestions_want_the_whole_name_or_the_handle(app, make_user, make_contact):
    rep = make_user("rep")
    for name in ("Samuel Smith", "Samuel Okafor", "Sam Jones", "Samantha Lee", "Samir Haddad"):
        make_contact(rep, name=name)
    beans = make_contact(rep, name="Samuel Beans")
    by_email = make_contact(rep, name="Jo Roaster", email="beanjunkie@example.com")
    by_handle = make_contact(rep, name="Jo Elsewhere", handle_bluesky="beanjunkie.bsky.social")
    with app.app_context():
        mention_id = mentions.ingest(
            db.session, [incoming("1", handle="beanjunkie", name="Sam Beans")]
        ).stored[0]
        db.session.commit()
        found = contacts.suggestions(db.session, db.session.get(Mention, mention_id))
        assert sorted(c.id for c in found) == sorted([beans.id, by_email.id, by_handle.id])
        assert found[0].id == beans.id


def test_support_finds_any_contact_links_and_undoes(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    first = make_contact(rep, name="Orla Quinn", company="Quayside Marine")
    second = make_contact(rep, name="Pavel Novak")
    with app.app_context():
        mention_id = mentions.ingest(db.session, [incoming("1", handle="zz9", name="Z")]).stored[0]
        db.session.commit()
    login(make_user("support"))
    page = client.get(f"/inbox/{mention_id}?q=quayside").get_data(as_text=True)
    assert "Orla Quinn" in page and f'name="contact_id" value="{first.id}"' in page
    fragment = client.get(f"/inbox/{mention_id}?q=novak", headers=FRAGMENT).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="link-search">') and "Pavel Novak" in fragment

    r = client.post(f"/inbox/{mention_id}/link", data={"contact_id": first.id})
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Linked to Orla Quinn." in page and f'action="/inbox/{mention_id}/unlink"' in page
    # Moved to another contact, then undone: back on the first one's timeline.
    client.post(f"/inbox/{mention_id}/link", data={"contact_id": second.id})
    client.post(f"/inbox/{mention_id}/link", data={"contact_id": first.id})
    with app.app_context():
        assert db.session.get(Mention, mention_id).contact_id == first.id
        assert count(Activity) == 1
    # Undo of the first link: the mention is unmatched again.
    client.post(f"/inbox/{mention_id}/unlink")
    with app.app_context():
        assert db.session.get(Mention, mention_id).contact_id is None
        assert count(Activity) == 0


def test_support_may_make_a_contact_from_a_mention(app, client, login, make_user):
    with app.app_context():
        mention_id = mentions.ingest(
            db.session, [incoming("1", handle="newvoice", name="New Voice")]
        ).stored[0]
        db.session.commit()
    login(make_user("support"))
    page = client.get(f"/inbox/{mention_id}").get_data(as_text=True)
    assert "Make New Voice a new contact" in page
    r = client.post(f"/inbox/{mention_id}/contact")
    assert r.status_code == 303
    with app.app_context():
        made = db.session.scalar(select(Contact).where(Contact.name == "New Voice"))
        assert db.session.get(Mention, mention_id).contact_id == made.id
        assert [h.handle for h in made.handles] == ["newvoice"]


@pytest.mark.parametrize("author", ["Jürgen Müller", "Jurgen Muller", "JÜRGEN MÜLLER"])
def test_suggestions_fold_accents_as_search_does(app, make_user, make_contact, author):
    rep = make_user("rep")
    make_contact(rep, name="Jürgen Müller")
    make_contact(rep, name="Unrelated Person")
    with app.app_context():
        mention_id = mentions.ingest(
            db.session, [incoming("1", handle="jm_1980", name=author)]
        ).stored[0]
        db.session.commit()
        found = contacts.suggestions(db.session, db.session.get(Mention, mention_id))
        assert [c.name for c in found] == ["Jürgen Müller"]
