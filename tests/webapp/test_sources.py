"""Sources admin: who may do what, validation, secrets never shown back, webhook setup."""

import uuid

import pytest
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Mention, Source


def test_admin_adds_edits_pauses_and_deletes_a_source(app, client, login, make_user):
    login(make_user("admin"))
    assert "Demo (sample mentions)" in client.get("/sources/").get_data(as_text=True)
    r = client.post(
        "/sources/",
        data={
            "uuid": str(uuid.uuid4()),
            "kind": "x",
            "name": "Brand mentions",
            "mode": "mentions",
            "user_id": "2244994945",
            "monthly_cap_usd": "25",
            "interval_seconds": "300",
            "secret": "AAAA-secret-token",
        },
    )
    assert r.status_code == 303
    url = r.headers["Location"]
    with app.app_context():
        source = db.session.scalar(select(Source))
        assert source.config == {"mode": "mentions", "user_id": "2244994945"}
        assert source.secret == "AAAA-secret-token" and source.monthly_cap_usd == 25
    for page in (client.get(url), client.get(f"{url}/edit"), client.get("/sources/")):
        html = page.get_data(as_text=True)
        assert "AAAA-secret-token" not in html
    assert "Stored (not shown)" in client.get(url).get_data(as_text=True)
    # An empty secret field keeps the stored secret.
    client.post(
        f"{url}/edit",
        data={
            "name": "Renamed",
            "mode": "search",
            "query": "#kestrel",
            "interval_seconds": "600",
            "secret": "",
        },
    )
    client.post(f"{url}/pause")
    with app.app_context():
        source = db.session.scalar(select(Source))
        assert (source.name, source.config["query"], source.secret) == (
            "Renamed",
            "#kestrel",
            "AAAA-secret-token",
        )
        assert source.enabled is False
    assert "Paused" in client.get(url).get_data(as_text=True)
    client.post(f"{url}/delete", data={"confirm": "yes"})
    with app.app_context():
        assert db.session.scalar(select(Source)).deleted_at is not None
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"kind": "x", "name": "X", "mode": "mentions", "user_id": "@brand"},
            "user_id",
            "numeric id",
        ),
        ({"kind": "x", "name": "X", "mode": "search", "query": ""}, "query", "search query"),
        (
            {"kind": "x", "name": "X", "mode": "search", "query": "a", "username": "kestrel home"},
            "username",
            "account @name",
        ),
        (
            {"kind": "x", "name": "X", "mode": "search", "query": "a", "monthly_cap_usd": "lots"},
            "monthly_cap_usd",
            "US dollars",
        ),
        *(
            (
                {"kind": "x", "name": "X", "mode": "search", "query": "a", "monthly_cap_usd": cap},
                "monthly_cap_usd",
                "US dollars",
            )
            # Each would pass every comparison with spend and so switch the cap off.
            for cap in ("nan", "inf", "-inf", "1e309", "-1")
        ),
        (
            {"kind": "rss", "name": "Feed", "url": "ftp://example.com/feed"},
            "url",
            "starting with https://",
        ),
        (
            {"kind": "mastodon", "name": "M", "instance": "", "mode": "mentions"},
            "instance",
            "Enter the server",
        ),
        ({"kind": "demo", "name": "", "interval_seconds": "5"}, "name", "Give the source a name"),
        ({"kind": "demo", "name": "D", "interval_seconds": "5"}, "interval_seconds", "60 to 86400"),
    ],
)
def test_bad_source_settings_are_explained(app, client, login, make_user, data, field, message):
    login(make_user("admin"))
    r = client.post("/sources/", data={**data, "uuid": str(uuid.uuid4())})
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert f'id="e-{field}"' in html and message in html
    with app.app_context():
        assert db.session.scalar(select(Source)) is None


def test_unknown_kind_is_refused(client, login, make_user):
    login(make_user("admin"))
    r = client.post("/sources/", data={"uuid": str(uuid.uuid4()), "kind": "myspace", "name": "Old"})
    assert r.status_code == 422
    assert "Choose what kind of source this is." in r.get_data(as_text=True)


def test_managers_view_others_may_not(app, client, login, make_user):
    with app.app_context():
        source = Source(name="Feed", kind="rss", config={"url": "https://example.com/feed"})
        db.session.add(source)
        db.session.commit()
        source_id = source.id
    login(make_user("manager"))
    assert client.get(f"/sources/{source_id}").status_code == 200
    assert client.get("/sources/new?kind=rss").status_code == 403
    assert (
        client.post(
            "/sources/", data={"uuid": str(uuid.uuid4()), "kind": "demo", "name": "D"}
        ).status_code
        == 403
    )
    assert client.post(f"/sources/{source_id}/pause").status_code == 403
    assert client.post(f"/sources/{source_id}/poll").status_code == 403
    client.post("/logout")
    for role in ("rep", "support", "marketer"):
        login(make_user(role))
        assert client.get("/sources/").status_code == 403
        assert client.get(f"/sources/{source_id}").status_code == 403
        client.post("/logout")
    login(make_user("admin"))
    assert client.get("/sources/999").status_code == 404


def test_webhook_source_shows_its_secret_once(app, client, login, make_user):
    login(make_user("admin"))
    r = client.post(
        "/sources/",
        data={"uuid": str(uuid.uuid4()), "kind": "webhook", "name": "Zapier"},
        follow_redirects=True,
    )
    html = r.get_data(as_text=True)
    with app.app_context():
        source = db.session.scalar(select(Source))
        secret = source.secret
    assert len(secret) >= 32 and secret in html
    assert f"/api/webhooks/{source.id}" in html
    assert secret not in client.get(f"/sources/{source.id}").get_data(as_text=True)


def test_deleting_a_source_keeps_its_mentions(app, client, login, make_user):
    from tests.webapp.incoming import incoming
    from webapp.services import mentions
    from workers import jobs

    with app.app_context():
        source = Source(name="Feed", kind="demo", config={"batch": 3})
        db.session.add(source)
        db.session.flush()
        mentions.ingest(db.session, [incoming("1")], source)
        db.session.commit()
        source_id = source.id
    login(make_user("admin"))
    client.post(f"/sources/{source_id}/delete", data={"confirm": "yes"})
    with app.app_context():
        assert db.session.scalar(select(Mention)).source_id == source_id
        source = db.session.get(Source, source_id)
        source.deleted_at -= jobs.PURGE_AFTER
        db.session.commit()
        assert jobs.purge_deleted_sources() == 1
    with app.app_context():
        assert db.session.get(Source, source_id) is None
        assert db.session.scalar(select(Mention)).source_id is None


def test_a_source_form_sent_twice_adds_one_source(app, client, login, make_user):
    login(make_user("admin"))
    form = client.get("/sources/new?kind=demo").get_data(as_text=True)
    key = form.split('name="uuid" value="')[1].split('"')[0]
    data = {"uuid": key, "kind": "demo", "name": "Demo twice", "interval_seconds": "300"}
    first, second = client.post("/sources/", data=data), client.post("/sources/", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    with app.app_context():
        assert db.session.query(Source).filter_by(name="Demo twice").count() == 1


@pytest.mark.parametrize("since", ["2026-01-01T00:00", "not a time", "", "2026-01-01T00:00+00:00"])
def test_the_poll_progress_page_takes_any_since(app, client, login, make_user, since):
    login(make_user("admin"))
    with app.app_context():
        from webapp.models.base import utcnow

        source = Source(name="Demo", kind="demo", config={"batch": 3}, last_polled_at=utcnow())
        db.session.add(source)
        db.session.commit()
        source_id = source.id
    r = client.get(f"/sources/{source_id}", query_string={"polling": "1", "since": since})
    assert r.status_code == 200
