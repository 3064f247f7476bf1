"""Today: where reps and managers land after signing in."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.services import today as today_service
from webapp.templating import user_zone

bp = Blueprint("today", __name__)


@bp.get("/today")
@login_required
def index():
    """Overdue and due-today tasks, visits planned, deals that need attention, and the
    user's contacts who complained in public since yesterday. :raise 403:"""
    zone = user_zone()
    day = today_service.today(db.session, current_user, utcnow(), zone)
    return render_template("today/index.html", day=day, zone=zone)
