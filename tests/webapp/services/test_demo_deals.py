"""The demo pipeline shows what the deals pages are for: every stage filled, stuck and
pushed deals, a forecast, won and lost deals with history, and deals that need the demo
rep."""

from __future__ import annotations

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import Deal, DealChange, Stage, User
from webapp.models.base import utcnow
from webapp.services import deal_reports, deals, demo


def test_the_demo_pipeline_has_something_on_every_page(app):
    with app.app_context():
        demo.seed(db.session, contacts=40)
        db.session.commit()
        now = utcnow()
        rep = db.session.scalar(select(User).where(User.email == f"rep@{demo.DOMAIN}"))
        manager = db.session.scalar(select(User).where(User.role == "manager"))
        per_stage = dict(
            db.session.execute(select(Deal.stage_id, func.count()).group_by(Deal.stage_id)).all()
        )
        assert set(per_stage) == set(db.session.scalars(select(Stage.id)))
        assert sum(per_stage.values()) >= 300
        assert len(deal_reports.stuck(db.session, manager, now)) >= 5
        assert len(deal_reports.pushed(db.session, manager)) >= 5
        forecast = deal_reports.forecast(db.session, manager, now.date())
        assert all(cell.weighted for cell in forecast["by_month"][:4])
        assert len(forecast["by_owner"]) >= 4
        assert deals.needing_attention(db.session, rep, now)
        assert db.session.scalar(select(func.count()).select_from(DealChange)) > 600
        owned = db.session.scalar(select(func.count()).where(Deal.owner_id == rep.id))
        assert owned >= 60
