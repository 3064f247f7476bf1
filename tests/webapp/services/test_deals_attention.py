"""The deals that need their owner (what the Today page lists): no next step, stuck in
a stage past its rotting days, close date passed; each with its reasons, own deals only."""

from __future__ import annotations

from datetime import date, timedelta

from webapp.extensions import db
from webapp.models import User
from webapp.models.base import utcnow
from webapp.services import deals


def _deal(user, contact_id=None, **data):
    stage = deals.open_stages(db.session)[0]
    data.setdefault("title", "Deal")
    data.setdefault("stage_id", str(stage.id))
    deal, _ = deals.create_deal(
        db.session, user, None, data, deals.once.new_key(), default_currency="EUR"
    )
    return deal


def test_each_reason_is_found_and_said(app, make_user):
    rep = make_user("rep")
    other = make_user("rep")
    with app.app_context():
        rep, other = db.session.get(User, rep.id), db.session.get(User, other.id)
        now = utcnow()
        _deal(rep, title="Fine", next_step="Call Friday", expected_close="2099-01-01")
        no_step = _deal(rep, title="No step", expected_close="2099-01-01")
        overdue = _deal(
            rep,
            title="Overdue",
            next_step="Chase",
            expected_close=(date.today() - timedelta(days=3)).isoformat(),
        )
        stuck = _deal(rep, title="Stuck", next_step="Wait", expected_close="2099-01-01")
        stuck.stage_entered_at = now - timedelta(days=stuck.stage.rotting_days + 1)
        _deal(other, title="Someone else's")
        won = _deal(rep, title="Won already")
        deals.win_deal(db.session, rep, won)
        db.session.commit()

        found = {a.deal.title: a.reasons for a in deals.needing_attention(db.session, rep, now)}
        assert set(found) == {"No step", "Overdue", "Stuck"}
        assert found["No step"] == ["No next step"]
        assert found["Overdue"][0].startswith("Close date passed")
        assert found["Stuck"][0].startswith(f"In {stuck.stage.name} for ")
        # The longest overdue comes first; the limit holds.
        assert deals.needing_attention(db.session, rep, now, limit=1)[0].deal.id == overdue.id
        assert no_step.id in {a.deal.id for a in deals.needing_attention(db.session, rep, now)}


def test_a_role_without_deals_gets_none(app, make_user):
    support = make_user("support")
    with app.app_context():
        support = db.session.get(User, support.id)
        assert deals.needing_attention(db.session, support, utcnow()) == []


def test_today_lists_the_reps_deals_that_need_them_with_why(app, client, login, make_user):
    rep = make_user("rep")
    other = make_user("rep")
    with app.app_context():
        rep_row, other_row = db.session.get(User, rep.id), db.session.get(User, other.id)
        _deal(rep_row, title="Quiet <b>fleet</b>", amount="1200", expected_close="2099-01-01")
        _deal(rep_row, title="On track", next_step="Call Friday", expected_close="2099-01-01")
        _deal(other_row, title="Not theirs", expected_close="2099-01-01")
        db.session.commit()
    login(rep)
    page = client.get("/today").get_data(as_text=True)
    section = page[page.index('id="g-deals"') : page.index('id="g-complaints"')]
    assert "Quiet &lt;b&gt;fleet&lt;/b&gt;" in section and "No next step" in section
    assert "1,200.00" in section
    assert "On track" not in section and "Not theirs" not in section
