"""Service-level targets: set by an admin, stamped on mentions as they arrive, counted
in business hours, stopped while pending, shown on the queue, and a warning and a
breach each told once, the breach to the leads too."""

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.webapp.incoming import incoming
from webapp.extensions import db
from webapp.models import Mention, Notification, SlaPolicy, User
from webapp.models.base import utcnow
from webapp.services import mentions, sla, triage

HOURS = {"zone": "Europe/Paris", "days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}


def test_business_time_skips_nights_and_weekends():
    friday_evening = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)  # 16:30 in Paris
    # 30 minutes on Friday, the other 30 from 09:00 on Monday.
    assert sla.add_working(friday_evening, 60, HOURS) == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert sla.add_working(saturday, 8 * 60 + 5, HOURS) == datetime(2026, 12, 1, 8, 5, tzinfo=UTC)
    assert sla.add_working(saturday, 90, None) == saturday + timedelta(minutes=90)


def _policy(client, **form):
    page = client.get("/inbox/sla").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    return client.post("/inbox/sla", data={"csrf_token": token, **form})


def test_an_admin_sets_the_policy_and_new_mentions_get_targets(app, client, login, make_user):
    login(make_user("admin"))
    bad = _policy(client, first_response_minutes="0", resolution_minutes="abc", warn_minutes="5")
    assert bad.status_code == 422 and "a number of minutes from 1" in bad.get_data(as_text=True)
    backwards = _policy(
        client, first_response_minutes="600", resolution_minutes="60", warn_minutes="5"
    )
    assert "Resolution cannot come before the first response." in backwards.get_data(as_text=True)
    ok = _policy(client, first_response_minutes="60", resolution_minutes="1440", warn_minutes="15")
    assert ok.status_code == 303
    assert "First response within 1 h 00 min, resolution within 24 h 00 min." in client.get(
        "/inbox/sla"
    ).get_data(as_text=True)
    before = utcnow()
    with app.app_context():
        (mention_id,) = mentions.ingest(db.session, [incoming("1")]).stored
        db.session.commit()
        mention = db.session.get(Mention, mention_id)
        assert timedelta(minutes=59) < mention.first_response_due - before < timedelta(minutes=61)
        assert timedelta(hours=23) < mention.resolution_due - before < timedelta(hours=25)
    page = client.get("/inbox/").get_data(as_text=True)
    assert "First response due in 59 min" in page or "First response due in 1 h 00 min" in page


def test_support_cannot_set_the_policy(client, login, make_user):
    login(make_user("support"))
    assert client.get("/inbox/sla").status_code == 403


def test_pending_stops_the_clock_and_a_breach_is_told_once_to_the_leads(
    app, client, login, make_user
):
    lead = make_user("manager", name="Lee Lead")
    agent = make_user("support", name="Sam Support")
    with app.app_context():
        (mention_id,) = mentions.ingest(db.session, [incoming("1", text="Still broken!")]).stored
        mention = db.session.get(Mention, mention_id)
        now = utcnow()
        mention.first_response_due = now + timedelta(minutes=10)
        mention.resolution_due = now + timedelta(hours=5)
        mention.assignee_id = agent.id
        db.session.commit()
        # Ten minutes before the target: a warning to the assignee, once.
        assert sla.sweep(db.session, now) == {"warned": 1, "breached": 0}
        assert sla.sweep(db.session, now + timedelta(minutes=1)) == {"warned": 0, "breached": 0}
        # Pending for an hour: the targets move by that hour.
        triage.set_status(
            db.session, db.session.get(type(agent), agent.id), mention, "pending", now=now
        )
        triage.set_status(
            db.session,
            db.session.get(type(agent), agent.id),
            mention,
            "open",
            now=now + timedelta(hours=1),
        )
        assert mention.first_response_due == now + timedelta(minutes=70)
        later = now + timedelta(minutes=71)
        assert sla.sweep(db.session, later) == {"warned": 0, "breached": 1}
        assert sla.sweep(db.session, later + timedelta(minutes=5)) == {"warned": 0, "breached": 0}
        db.session.commit()
        told = db.session.execute(
            select(Notification.user_id, Notification.title).order_by(Notification.id)
        ).all()
    assert told[0][0] == agent.id and told[0][1].startswith("First response due in")
    assert sorted(user for user, _ in told[1:]) == sorted([lead.id, agent.id])
    assert all(title == "SLA breached: first response for @someone" for _, title in told[1:])
    login(agent)
    # The page reads the clock at the real time: the target moved 70 minutes ahead.
    assert "First response due in 1 h" in client.get(f"/inbox/{mention_id}").get_data(as_text=True)


def test_a_pause_over_the_weekend_costs_no_business_time(app, make_user):
    # Friday 16:00 in Paris, a two-hour first response: due on Monday at 10:00.
    arrived = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    due = sla.add_working(arrived, 120, HOURS)
    assert due == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    support = make_user("support")
    with app.app_context():
        db.session.add(
            SlaPolicy(
                name="Office",
                first_response_minutes=120,
                resolution_minutes=600,
                warn_minutes=15,
                business_hours=HOURS,
                active=True,
                created_at=arrived,
            )
        )
        (mention_id,) = mentions.ingest(db.session, [incoming("1")]).stored
        mention = db.session.get(Mention, mention_id)
        mention.first_response_due = due
        mention.resolution_due = sla.add_working(arrived, 600, HOURS)
        who = db.session.get(User, support.id)
        # Pending at 16:30 on Friday (90 working minutes left), open again on Monday at
        # 09:00: due at 10:30, not moved by the 64 calendar hours it stood still.
        triage.set_status(db.session, who, mention, "pending", now=arrived + timedelta(minutes=30))
        monday = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
        triage.set_status(db.session, who, mention, "open", now=monday)
        assert mention.first_response_due == monday + timedelta(minutes=90)
        assert mention.resolution_due == sla.add_working(monday, 600 - 30, HOURS)
        assert mention.sla_paused_at is None
        assert sla.working_between(arrived, monday, HOURS) == timedelta(hours=1)
