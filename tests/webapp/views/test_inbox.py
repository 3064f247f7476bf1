"""The inbox pages: lists and filters, escaped; linking, unlinking and undo; making a
contact from a mention; who may read, triage, and see source names."""

from sqlalchemy import event, select

from tests.webapp.incoming import count, incoming
from webapp.extensions import db
from webapp.models import Activity, Contact, Mention, Source
from webapp.services import mentions

FRAGMENT = {"HX-Request": "true", "HX-Request-Type": "partial"}


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
    assert "love it" in client.get("/inbox/?status=all&matched=yes").get_data(as_text=True)
    unmatched = client.get("/inbox/?status=all&matched=no").get_data(as_text=True)
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


def test_support_lands_on_the_inbox_and_others_on_their_start_page(client, make_user):
    from tests.conftest import sign_in

    support, rep, marketer = make_user("support"), make_user("rep"), make_user("marketer")
    assert sign_in(client, support).headers["Location"] == "/inbox/"
    assert client.get("/").headers["Location"].endswith("/inbox/")
    client.post("/logout")
    assert sign_in(client, rep).headers["Location"] == "/today"
    client.post("/logout")
    assert sign_in(client, marketer).headers["Location"] == "/contacts"


def test_an_inbox_page_costs_the_same_statements_however_many_contacts_it_shows(
    app, client, login, make_user, make_contact
):
    owner = make_user("rep")
    for i in range(12):
        make_contact(owner, name=f"Author {i:02d}", handle_x=f"author{i:02d}")
    with app.app_context():
        mentions.ingest(
            db.session,
            [incoming(str(i), handle=f"author{i % 12:02d}") for i in range(30)]
            + [incoming(f"u{i}", handle=f"stranger{i}") for i in range(10)],
        )
        db.session.commit()
    login(make_user("support"))
    client.get("/inbox/")  # the first request of a session loads what later ones keep

    def statements(url):
        seen = []
        with app.app_context():
            engine = db.engine

        def record(conn, cursor, statement, *args):
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            page = client.get(url, headers=FRAGMENT).get_data(as_text=True)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return len(seen), page

    few, page = statements("/inbox/?status=all&matched=no")
    assert "unmatched" in page and "Author" not in page
    for url in (
        "/inbox/?status=all",
        "/inbox/?status=all&matched=yes",
        "/inbox/?status=all&label=positive&matched=yes",
    ):
        many, page = statements(url)
        assert page.count("Author ") >= 12, url
        # One statement more for all the page's contacts, not one per contact.
        assert many <= few + 1, (url, many, few)
