"""A source's health says what its last poll did: how many mentions it fetched, how many
were new and stored, how many were stored already."""

from __future__ import annotations

from social import demo
from social.mention import SourceError
from webapp.extensions import db
from webapp.models import Source
from webapp.services import polls


def _poll(app, source_id: int, fetch=demo.fetch) -> None:
    with app.app_context():
        polls.poll(db.session, db.session.get(Source, source_id), fetch)
        db.session.commit()


def _health(client, source_id: int) -> str:
    html = client.get(f"/sources/{source_id}", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    return html.split("<dt>Last poll brought</dt><dd>")[1].split("</dd>")[0]


def test_a_demo_source_whose_samples_are_stored_already_says_so(app, client, login, make_user):
    with app.app_context():
        first = Source(name="Demo", kind="demo", config={"batch": 3})
        second = Source(name="Second demo", kind="demo", config={"batch": 3})
        db.session.add_all([first, second])
        db.session.commit()
        first_id, second_id = first.id, second.id
    login(make_user("manager"))
    assert _health(client, first_id) == "No poll yet"
    _poll(app, first_id)
    assert _health(client, first_id) == "3 fetched, 3 stored"
    # The same samples through another source: nothing new, and the page says why.
    _poll(app, second_id)
    assert _health(client, second_id) == "3 fetched, 3 already stored"
    assert "<dt>Mentions stored</dt><dd>0</dd>" in client.get(f"/sources/{second_id}").get_data(
        as_text=True
    )


def test_a_failed_poll_brings_nothing_and_says_where_to_look(app, client, login, make_user):
    def broken(config, cursor):
        raise SourceError("The feed answered 500.")

    with app.app_context():
        source = Source(name="Demo", kind="demo", config={"batch": 3})
        db.session.add(source)
        db.session.commit()
        source_id = source.id
    _poll(app, source_id)
    _poll(app, source_id, broken)
    login(make_user("admin"))
    assert (
        _health(client, source_id) == "Nothing: the poll did not get through (see the last error)"
    )


def test_a_poll_that_fetched_nothing_says_so(app, client, login, make_user):
    from social.mention import FetchResult

    with app.app_context():
        source = Source(name="Quiet", kind="demo", config={"batch": 3})
        db.session.add(source)
        db.session.commit()
        source_id = source.id
    _poll(app, source_id, lambda config, cursor: FetchResult([], cursor))
    login(make_user("admin"))
    assert _health(client, source_id) == "0 fetched: nothing new since the poll before"
