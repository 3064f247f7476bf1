"""Contacts and their social handles (the key later used to match social mentions)."""

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


class Contact(db.Model):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # lower(name), kept by the service: the list's sort key and its keyset cursor.
    sort_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[str | None] = mapped_column(String(500))
    # Lower-cased name, company, email and phone digits: what search looks in.
    search_text: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Where the contact is, entered or taken from a check-in (WGS 84 degrees): Nearby.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    located_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    owner = relationship("User")
    handles = relationship(
        "ContactHandle",
        back_populates="contact",
        order_by="ContactHandle.network",
        cascade="all, delete-orphan",
    )

    __table_args__ = (
        Index("ix_contacts_sort_name_id", "sort_name", "id"),
        Index("ix_contacts_owner_id_sort_name", "owner_id", "sort_name"),
        # Nearby: a box of latitude, then longitude, around where the phone is, among
        # the contacts it can show; and the same among one owner's.
        Index(
            "ix_contacts_location",
            "latitude",
            "longitude",
            sqlite_where=sql_text("latitude IS NOT NULL AND deleted_at IS NULL"),
            postgresql_where=sql_text("latitude IS NOT NULL AND deleted_at IS NULL"),
        ),
        Index(
            "ix_contacts_owner_location",
            "owner_id",
            "latitude",
            "longitude",
            sqlite_where=sql_text("latitude IS NOT NULL AND deleted_at IS NULL"),
            postgresql_where=sql_text("latitude IS NOT NULL AND deleted_at IS NULL"),
        ),
    )

    @property
    def tag_list(self) -> list[str]:
        """Tags as a list, in the order they were given."""
        return [t for t in (self.tags or "").split(",") if t]

    def __repr__(self) -> str:
        return f"<Contact {self.id} {self.name!r}>"


class ContactHandle(db.Model):
    """A contact's account on a social network, normalized so mentions can find it."""

    __tablename__ = "contact_handles"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    network: Mapped[str] = mapped_column(String(16))
    handle: Mapped[str] = mapped_column(String(320))

    contact = relationship("Contact", back_populates="handles")

    __table_args__ = (
        UniqueConstraint("network", "handle", name="uq_contact_handles_network_handle"),
        Index("ix_contact_handles_contact_id", "contact_id"),
    )
