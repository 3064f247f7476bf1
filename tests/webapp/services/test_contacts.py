"""The contacts service's suggestions for a mention: the contacts its author may be."""

import pytest

from tests.webapp.incoming import incoming
from webapp.extensions import db
from webapp.models import Mention
from webapp.services import contact_search, mentions


def test_suggestions_take_wildcards_in_names_literally(app, make_user, make_contact):
    rep = make_user("rep")
    make_contact(rep, name="Unrelated Person")
    make_contact(rep, name="Percy 100% Real")
    with app.app_context():
        mention_id = mentions.ingest(
            db.session, [incoming("1", handle="___", name="___ %%%")]
        ).stored[0]
        db.session.commit()
        found = contact_search.suggestions(db.session, db.session.get(Mention, mention_id))
        assert [c.name for c in found] == []


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
        found = contact_search.suggestions(db.session, db.session.get(Mention, mention_id))
        assert sorted(c.id for c in found) == sorted([beans.id, by_email.id, by_handle.id])
        assert found[0].id == beans.id


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
        found = contact_search.suggestions(db.session, db.session.get(Mention, mention_id))
        assert [c.name for c in found] == ["Jürgen Müller"]
