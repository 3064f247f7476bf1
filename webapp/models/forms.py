"""Form submissions already handled: each create form carries a UUID made when it was
rendered, and the record it made is kept under that UUID, so a double tap, a resent
form or Back-and-submit makes the record once and answers every copy with it."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


class FormSubmission(db.Model):
    __tablename__ = "form_submissions"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # What the form makes ("contact", "source", …) and the id of the one it made.
    kind: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
