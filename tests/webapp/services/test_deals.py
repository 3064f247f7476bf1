"""The deals service on both databases: money typed by people, board order, the
forecast's sums, stuck deals, team activity and the stage rules."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Activity, Deal, DealChange, Stage, User
from webapp.models.base import utcnow
from webapp.services import board, deal_reports, deals, money, once, stages
from webapp.services.errors import PermissionDenied, ValidationError


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("1,234.50", "EUR", 123450),
        ("1234,50", "EUR", 123450),
        ("1.234,50", "EUR", 123450),
        ("1 234,5", "EUR", 123450),
        ("1'234.50", "CHF", 123450),
        ("1,234", "EUR", 123400),
        ("0,5", "EUR", 50),
        ("12", "EUR", 1200),
        ("", "EUR", 0),
        ("1,234,567", "JPY", 1234567),
        ("1.234", "KWD", 1234),
        ("2,5", "KWD", 2500),
    ],
)
def test_amounts_are_read_as_people_write_them(typed, currency, minor):
    assert money.parse_amount(typed, currency) == (minor, None)


@pytest.mark.parametrize(
    ("typed", "currency", "says"),
    [
        ("abc", "EUR", "in figures"),
        ("1.2.3,4,5", "EUR", "more than one way"),
        ("12,34,5", "EUR", "more than one way"),
        ("1.999", "JPY", None),
        ("1.5", "JPY", "no smaller unit"),
        ("1.2345", "EUR", "at most 2 decimals"),
        ("-3", "EUR", "zero or more"),
        ("1e5", "EUR", "in figures"),
        ("9" * 17, "EUR", "too large"),
        ("12.", "EUR", "in figures"),
    ],
)
def test_garbage_amounts_are_refused_with_a_reason(typed, currency, says):
    minor, problem = money.parse_amount(typed, currency)
    if says is None:  # "1.999" in yen: one thousand nine hundred and ninety-nine
        assert (minor, problem) == (1999, None)
    else:
        assert minor is None and says in problem


def test_amounts_are_shown_in_their_currency():
    assert money.format_money(123450, "EUR") == "€1,234.50"
    assert money.format_money(5000, "JPY") == "¥5,000"
    assert money.format_money(1234500, "KWD") == "1,234.500 KWD"
    assert money.currency_problem("eur") is None
    assert money.currency_problem("EURO")


def _user(app, make_user, role="rep"):
    made = make_user(role)
    return db.session.get(User, made.id)


def _stage(name) -> Stage:
    return db.session.query(Stage).filter_by(name=name).one()


def _add(user, title="Deal", stage="Qualified", **data) -> Deal:
    data = {"title": title, "stage_id": str(_stage(stage).id), **data}
    deal, _ = deals.create_deal(db.session, user, None, data, once.new_key(), "EUR")
    return deal


def test_the_forecast_weighs_each_currency_apart(app, make_user):
    with app.app_context():
        rep, other = _user(app, make_user), _user(app, make_user)
        manager = _user(app, make_user, "manager")
        today = utcnow().date()
        this_month = today.replace(day=1).isoformat()
        next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1).isoformat()
        _add(rep, stage="Qualified", amount="1000", expected_close=this_month)  # 20%
        _add(rep, stage="Negotiation", amount="500", expected_close=this_month)  # 80%
        _add(rep, stage="Proposal sent", amount="200", currency="USD", expected_close=this_month)
        _add(other, stage="Meeting booked", amount="300", expected_close=next_month)  # 40%
        won = _add(rep, amount="700", expected_close=this_month)
        deals.win_deal(db.session, rep, won)
        gone = _add(rep, amount="9999", expected_close=this_month)
        deals.delete_deal(db.session, rep, gone)
        db.session.commit()

        seen = deal_reports.forecast(db.session, manager, today, months=3)
        first, second, third = seen["by_month"]
        assert first.unweighted == {"EUR": 150000, "USD": 20000}
        assert first.weighted == {"EUR": 100000 * 20 // 100 + 50000 * 80 // 100, "USD": 12000}
        assert first.won == {"EUR": 70000}
        assert first.count == 3
        assert second.weighted == {"EUR": 12000} and second.unweighted == {"EUR": 30000}
        assert third.count == 0
        assert [name for name, _ in seen["by_owner"]] == sorted([rep.name, other.name])
        # A rep's forecast is their own.
        own = deal_reports.forecast(db.session, other, today, months=3)
        assert own["by_month"][0].count == 0 and own["by_month"][1].count == 1


def test_stuck_deals_use_each_stages_own_rotting_days(app, make_user):
    with app.app_context():
        rep = _user(app, make_user)
        now = utcnow()
        fresh = _add(rep, "Fresh")  # Qualified: 14 days
        old = _add(rep, "Old")
        older = _add(rep, "Proposal, 20 days", stage="Proposal sent")  # 21 days: not yet
        oldest = _add(rep, "Proposal, 30 days", stage="Proposal sent")
        fresh.stage_entered_at = now - timedelta(days=13)
        old.stage_entered_at = now - timedelta(days=15)
        older.stage_entered_at = now - timedelta(days=20)
        oldest.stage_entered_at = now - timedelta(days=30)
        won = _add(rep, "Won long ago")
        deals.win_deal(db.session, rep, won)
        won.stage_entered_at = now - timedelta(days=300)
        db.session.commit()
        found = [a.deal.title for a in deal_reports.stuck(db.session, rep, now)]
        assert found == ["Proposal, 30 days", "Old"]


def test_pipeline_totals_never_mix_currencies(app, make_user):
    with app.app_context():
        rep = _user(app, make_user)
        _add(rep, amount="10", currency="EUR")
        _add(rep, amount="5.5", currency="EUR")
        _add(rep, amount="3", currency="GBP")
        db.session.commit()
        qualified = deal_reports.pipeline(db.session, rep)[0]
        assert qualified["count"] == 3
        assert qualified["totals"] == {"EUR": 1550, "GBP": 300}
        assert qualified["weighted"] == {"EUR": 310, "GBP": 60}


def test_board_order_is_a_float_between_neighbours_and_survives_running_out(app, make_user):
    with app.app_context():
        rep = _user(app, make_user)
        a, b, c = (_add(rep, t) for t in "abc")
        db.session.commit()
        for _ in range(60):  # halve the gap until floats run out: positions are renumbered
            deals.move_deal(db.session, rep, c, a.stage_id, c.stage_id, a.id, b.id)
            deals.move_deal(db.session, rep, b, a.stage_id, b.stage_id, a.id, c.id)
        db.session.commit()
        cards, more = board.column_deals(db.session, rep, a.stage)
        assert [x.deal.title for x in cards] == ["a", "b", "c"] and not more
        positions = [x.deal.position for x in cards]
        assert positions == sorted(set(positions))


def test_a_column_pages_on_after_its_first_cards(app, make_user):
    with app.app_context():
        rep = _user(app, make_user)
        for i in range(board.PER_COLUMN + 3):
            _add(rep, f"Deal {i:02d}")
        db.session.commit()
        stage = _stage("Qualified")
        first, more = board.column_deals(db.session, rep, stage)
        assert len(first) == board.PER_COLUMN and more
        rest, more = board.column_deals(db.session, rep, stage, after=first[-1].deal.id)
        assert [c.deal.title for c in rest] == [f"Deal {i:02d}" for i in range(12, 15)]
        assert not more


def test_team_activity_counts_this_week_and_last(app, make_user, make_contact):
    with app.app_context():
        rep = _user(app, make_user)
        other = _user(app, make_user)
        manager = _user(app, make_user, "manager")
        contact = make_contact(rep)
        now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # a Wednesday
        for kind, when, who in (
            ("call", now - timedelta(hours=2), rep),
            ("call", now - timedelta(days=1), rep),
            ("visit", now - timedelta(days=4), rep),  # last Saturday: last week
            ("meeting", now - timedelta(days=9), rep),  # last week's Monday
            ("call", now - timedelta(days=10), rep),  # the week before: not counted
            ("note", now - timedelta(hours=1), rep),  # not a kind counted
            ("visit", now + timedelta(hours=1), rep),  # logged ahead: not yet
            ("meeting", now - timedelta(hours=3), other),
        ):
            db.session.add(
                Activity(
                    uuid=str(uuid.uuid4()),
                    contact_id=contact.id,
                    author_id=who.id,
                    kind=kind,
                    occurred_at=when,
                )
            )
        db.session.commit()
        rows = {r["user"].name: r for r in deal_reports.team_activity(db.session, manager, now)}
        assert rows[rep.name]["this_week"] == {"call": 2, "visit": 0, "meeting": 0}
        assert rows[rep.name]["last_week"] == {"call": 0, "visit": 1, "meeting": 1}
        assert rows[other.name]["this_week"]["meeting"] == 1
        assert manager.name in rows
        own = deal_reports.team_activity(db.session, other, now)
        assert [r["user"].name for r in own] == [other.name]
        with pytest.raises(PermissionDenied):
            deal_reports.team_activity(db.session, _user(app, make_user, "marketer"), now)


def test_weeks_and_months_of_the_reports_are_the_viewers_own(app, make_user, make_contact):
    """Monday 00:30 in Berlin is Sunday 23:30 UTC: this week for a manager in Berlin,
    last week in UTC; a deal won then is December's in Berlin, November's in UTC."""
    berlin = ZoneInfo("Europe/Berlin")
    with app.app_context():
        rep = _user(app, make_user)
        manager = _user(app, make_user, "manager")
        contact = make_contact(rep)
        now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # a Wednesday
        monday_night = datetime(2026, 11, 30, 0, 30, tzinfo=berlin)
        db.session.add(
            Activity(
                uuid=str(uuid.uuid4()),
                contact_id=contact.id,
                author_id=rep.id,
                kind="call",
                occurred_at=monday_night.astimezone(UTC),
            )
        )
        won = _add(rep, amount="40", expected_close="2026-12-15")
        deals.win_deal(db.session, rep, won)
        won.closed_at = datetime(2026, 12, 1, 0, 30, tzinfo=berlin).astimezone(UTC)
        db.session.commit()

        def team(tz):
            (row,) = [
                r
                for r in deal_reports.team_activity(db.session, manager, now, tz)
                if r["user"].id == rep.id
            ]
            return row["this_week"]["call"], row["last_week"]["call"]

        assert team(berlin) == (1, 0)
        assert team(UTC) == (0, 1)
        assert deal_reports.week_start(now, berlin) == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
        december = date(2026, 12, 2)
        in_berlin = deal_reports.forecast(db.session, manager, december, 1, tz=berlin)
        in_utc = deal_reports.forecast(db.session, manager, december, 1, tz=UTC)
        assert in_berlin["by_month"][0].won == {"EUR": 4000}
        assert in_utc["by_month"][0].won == {}


def test_stage_rules(app, make_user):
    with app.app_context():
        admin = _user(app, make_user, "admin")
        rep = _user(app, make_user)
        deal = _add(rep, stage="Meeting booked")
        db.session.commit()
        meeting, qualified = _stage("Meeting booked"), _stage("Qualified")
        with pytest.raises(ValidationError) as refused:
            stages.delete_stage(db.session, admin, meeting, None)
        assert "holds 1 deals" in refused.value.errors["move_to"]
        with pytest.raises(ValidationError):
            stages.delete_stage(db.session, admin, meeting, _stage("Won").id)  # another kind
        fields = {"name": "Meeting booked", "position": "2", "probability": "40", "kind": "won"}
        with pytest.raises(ValidationError) as refused:
            stages.save_stage(db.session, admin, meeting, fields)
        assert "move them" in refused.value.errors["kind"]
        assert stages.delete_stage(db.session, admin, meeting, qualified.id) == 1
        db.session.commit()
        db.session.refresh(deal)
        assert deal.stage_id == qualified.id
        last = db.session.query(DealChange).filter_by(deal_id=deal.id).order_by(DealChange.id)
        assert (last.all()[-1].before, last.all()[-1].after) == (str(meeting.id), str(qualified.id))
        with pytest.raises(ValidationError) as refused:
            stages.delete_stage(db.session, admin, _stage("Lost"), None)
        assert "at least one lost stage" in refused.value.errors["stage"]
        with pytest.raises(ValidationError) as refused:
            stages.save_stage(db.session, admin, None, {"name": "", "position": "x", "kind": "?"})
        assert set(refused.value.errors) == {"name", "position", "probability", "kind"}
        added = stages.save_stage(
            db.session,
            admin,
            None,
            {
                "name": "Trial",
                "position": "3",
                "probability": "50",
                "rotting_days": "",
                "kind": "open",
            },
        )
        assert added.rotting_days is None
        with pytest.raises(PermissionDenied):
            stages.save_stage(db.session, rep, added, {"name": "x"})


def test_a_closed_deal_keeps_its_stage_when_edited_and_reopens(app, make_user):
    with app.app_context():
        rep = _user(app, make_user)
        deal = _add(rep, amount="10")
        deals.lose_deal(db.session, rep, deal, "Timing", "")
        db.session.commit()
        form = deals.edit_form(deal)
        form["stage_id"] = str(_stage("Negotiation").id)
        with pytest.raises(ValidationError):
            deals.update_deal(db.session, rep, deal, form, "EUR")
        form["stage_id"] = str(deal.stage_id)
        form["title"] = "Renamed"
        deals.update_deal(db.session, rep, deal, form, "EUR")
        assert (deal.title, deal.lost_reason) == ("Renamed", "Timing")
        deals.reopen_deal(db.session, rep, deal, _stage("Negotiation").id)
        assert deal.closed_at is None and deal.lost_reason is None


def _plain_totals(user, stage_ids, mine=False) -> dict:
    """The board's totals the slow way: every live deal read and summed."""
    out: dict = {}
    for deal in db.session.scalars(
        sa.select(Deal).where(deals.live_deals(user, mine), Deal.stage_id.in_(stage_ids))
    ):
        n, sums = out.get(deal.stage_id, (0, {}))
        sums[deal.currency] = sums.get(deal.currency, 0) + deal.amount_minor
        out[deal.stage_id] = (n + 1, sums)
    return out


def test_the_totals_the_database_keeps_match_every_live_deal_after_every_kind_of_change(
    app, make_user
):
    """The board's and the pipeline's totals come from deal_totals, kept by triggers:
    after creating, moving, editing money and owner, winning, losing, reopening,
    deleting, undoing, a hard delete and an UPDATE by hand, they equal a plain sum."""
    with app.app_context():
        rep, other = _user(app, make_user), _user(app, make_user)
        manager = _user(app, make_user, "manager")
        ids = [s.id for s in deals.stages(db.session)]

        def check():
            db.session.commit()
            for who, mine in ((manager, False), (manager, True), (rep, False), (other, True)):
                kept = board.totals_by_stage(db.session, who, ids, mine)
                assert kept == _plain_totals(who, ids, mine), (who.role, mine)

        a = _add(rep, "A", amount="100")
        b = _add(rep, "B", amount="250.5", currency="GBP", stage="Negotiation")
        c = _add(other, "C", amount="75")
        check()
        deals.move_deal(db.session, rep, a, _stage("Proposal sent").id)
        check()
        data = {**deals.edit_form(b), "amount": "300", "currency": "EUR"}
        deals.update_deal(db.session, rep, b, data, "EUR")
        check()
        c.owner_id = rep.id  # a manager hands a deal over
        check()
        deals.win_deal(db.session, rep, a)
        deals.lose_deal(db.session, rep, b, "Price", None)
        check()
        deals.reopen_deal(db.session, rep, b, None)
        check()
        deals.delete_deal(db.session, rep, c)
        check()
        deals.restore_deal(db.session, rep, c.id, timedelta(minutes=5))
        check()
        db.session.delete(db.session.get(Deal, a.id))
        check()
        db.session.execute(sa.text("UPDATE deals SET amount_minor = amount_minor * 2"))
        check()
        assert board.totals_by_stage(db.session, manager, ids, False)  # not all empty
