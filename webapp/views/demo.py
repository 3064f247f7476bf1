"""The demo source's sample posts: the page each demo mention links to as its original.

A fictional post has no page on its network, so the app shows the sample as the
network would, and says that it is a sample. Only signed-in users see it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, render_template, request
from flask_login import login_required
from werkzeug.exceptions import BadRequest

from social import demo, networks

bp = Blueprint("demo", __name__, url_prefix="/demo")


@bp.before_request
@login_required
def signed_in():
    """Every demo page needs a signed-in user."""


def _posted_at() -> datetime | None:
    """The time in ?at= (as the demo source writes it), or None when there is none.

    :raise BadRequest: a value that is not such a time, named in the message.
    """
    raw = request.args.get("at")
    if not raw:
        return None
    try:
        return datetime.strptime(raw, demo.TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise BadRequest("“at” must be a UTC time like 2025-05-01T12:00:00Z.") from None


@bp.get("/posts/<sample_id>")
def post(sample_id: str):
    """One sample post, as its network would show it. :raise 404: an unknown sample."""
    sample = demo.find_sample(sample_id)
    if sample is None:
        abort(404)
    return render_template(
        "demo/post.html",
        sample=sample,
        posted_at=_posted_at(),
        network=networks.label(sample["network"]),
        brand=demo.DEMO_BRAND,
    )
