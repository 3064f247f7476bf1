"""Admins' sentiment page: lexicon rules that score mentions arriving after them (never
those already scored), explained by the rules that scored each mention, with their
history; how often staff agree with VADER; and bad rules refused with the reason."""

import re

from sqlalchemy import func, select

from social import sentiment
from tests.webapp.incoming import incoming
from webapp.extensions import db
from webapp.models import AuditEvent, LexiconRule, Mention
from webapp.services import mentions, triage

PAGE = "/inbox/sentiment"
TEXT = "The shop floor was a war zone on Saturday."


def _csrf(client, url=PAGE):
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def _ingest(app, n: str, text: str = TEXT) -> int:
    with app.app_context():
        [stored] = mentions.ingest(db.session, [incoming(n, handle=f"fan{n}", text=text)]).stored
        db.session.commit()
        return stored


def _compound(app, mention_id: int) -> float:
    with app.app_context():
        return db.session.get(Mention, mention_id).compound


def _add(client, phrase, valence):
    return client.post(
        f"{PAGE}/rules", data={"csrf_token": _csrf(client), "phrase": phrase, "valence": valence}
    )


def test_a_rule_scores_new_mentions_and_explains_them_and_leaves_old_ones(
    app, client, login, make_user
):
    vader = sentiment.score([TEXT])[0].compound
    assert vader < -0.05  # VADER reads "war" as negative
    before = _ingest(app, "1")
    login(make_user("admin", name="Ada Admin"))
    r = _add(client, "War Zone", "0")
    assert r.status_code == 303
    page = client.get(PAGE).get_data(as_text=True)
    assert "war zone" in page and "Ada Admin" in page
    after = _ingest(app, "2")
    assert _compound(app, before) == vader
    assert _compound(app, after) == 0.0
    # Each mention is explained by the rules that scored it.
    assert "your rule: &#39;war zone&#39;" in client.get(f"/inbox/{after}").get_data(as_text=True)
    assert "your rule" not in client.get(f"/inbox/{before}").get_data(as_text=True)
    # Trying a sentence on the page uses the rules in force.
    tried = client.get(PAGE, query_string={"try": TEXT}).get_data(as_text=True)
    assert "your rule: &#39;war zone&#39;" in tried and "compound +0.000" in tried


def test_changing_and_removing_a_rule_keeps_its_history(app, client, login, make_user):
    login(make_user("admin", name="Ada Admin"))
    assert _add(client, "war zone", "-1").status_code == 303
    assert _add(client, "war zone", "1.5").status_code == 303
    with app.app_context():
        rules = db.session.scalars(select(LexiconRule).order_by(LexiconRule.id)).all()
        assert [(r.valence, r.removed_at is not None) for r in rules] == [(-1, True), (1.5, False)]
        live_id = rules[1].id
    scored_with_rule = _ingest(app, "3")
    assert _compound(app, scored_with_rule) > 0
    token = _csrf(client)
    remove = f"{PAGE}/rules/{live_id}/remove"
    assert client.post(remove, data={"csrf_token": token}).status_code == 303
    # A second tap on Remove says so and changes nothing.
    again = client.post(
        f"{PAGE}/rules/{live_id}/remove", data={"csrf_token": token}, follow_redirects=True
    )
    assert "not in force" in again.get_data(as_text=True)
    page = client.get(PAGE).get_data(as_text=True)
    assert "No rules yet" in page and "Removed or changed" in page
    assert _compound(app, _ingest(app, "4")) == sentiment.score([TEXT])[0].compound
    # The mention scored while the rule stood is still explained with it.
    assert "your rule" in client.get(f"/inbox/{scored_with_rule}").get_data(as_text=True)
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("lexicon.%"))
        ).all()
        assert sorted(actions) == ["lexicon.remove", "lexicon.save", "lexicon.save"]


def test_rules_the_scorer_cannot_take_are_refused_with_the_reason(app, client, login, make_user):
    login(make_user("admin"))
    cases = {
        ("war zone", "loud"): "number from -4 to 4",
        ("war zone", "9"): "-4 to 4",
        ("war zone", "nan"): "-4 to 4",
        ("not", "2"): "negation",
        ("", "1"): "1 to 60",
        ("x" * 61, "1"): "1 to 60",
        ("war\tzone", "1"): "control or invisible character",
    }
    for (phrase, valence), message in cases.items():
        r = _add(client, phrase, valence)
        assert r.status_code == 422, (phrase, valence)
        assert message in r.get_data(as_text=True), (phrase, valence)
    # A NUL byte is refused before any form is read, as on every route.
    assert _add(client, "war\x00zone", "1").status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LexiconRule)) == 0


def test_the_agreement_figures_count_what_staff_kept_and_changed(app, client, login, make_user):
    angry = _ingest(app, "5", "This is the worst, totally broken!")
    happy = _ingest(app, "6", "Love it, thank you!")
    support = make_user("support")
    with app.app_context():
        triage.correct_label(db.session, support, db.session.get(Mention, angry), "negative")
        triage.correct_label(db.session, support, db.session.get(Mention, happy), "neutral")
        db.session.commit()
    login(make_user("admin"))
    page = client.get(PAGE).get_data(as_text=True)
    assert "checked 2 mentions and kept VADER's label on 1 (50%)" in page


def test_only_admins_see_the_sentiment_page(app, client, login, make_user):
    for role in ("support", "manager", "rep", "marketer"):
        login(make_user(role))
        assert client.get(PAGE).status_code == 403, role
    login(make_user("admin"))
    assert client.get(PAGE).status_code == 200
