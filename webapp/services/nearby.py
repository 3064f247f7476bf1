"""Nearby: the contacts closest to a point, and the coordinates the app accepts.

The query is bounded at any size: a box of latitude and longitude around the point (the
index ix_contacts_location answers it), widened step by step until it holds enough
contacts or reaches MAX_RADIUS_KM; the exact great-circle distance is then computed here
for the candidates only. A box that crosses the antimeridian is two ranges of longitude;
one that reaches a pole takes every longitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from webapp.models import Contact, User
from webapp.services.errors import ValidationError
from webapp.services.permissions import require

EARTH_RADIUS_KM = 6371.0088
PAGE = 20
# Each step widens the box; an empty ocean costs one index probe per step.
RADII_KM = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
MAX_RADIUS_KM = RADII_KM[-1]
# No box holds more than this many candidates: past it, a smaller box is used.
CANDIDATE_LIMIT = 4000
# A check-in less sure than this does not give a contact its coordinates.
POOR_ACCURACY_M = 200.0
MAX_ACCURACY_M = 100_000.0
_BOUNDS = {"latitude": 90.0, "longitude": 180.0}
_NAMES = {"latitude": "Latitude", "longitude": "Longitude"}


@dataclass(frozen=True)
class Point:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class NearbyContact:
    contact: Contact
    distance_m: float


@dataclass(frozen=True)
class NearbyPage:
    centre: Point
    entries: list[NearbyContact]
    radius_km: float
    mine: bool


def parse_coordinate(field: str, value: object) -> float | None:
    """A latitude or longitude in decimal degrees (a number, or text like "53.80" or
    "53,80"); None when empty.

    :raise ValidationError: not a number, not finite, or out of range.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    bound = _BOUNDS[field]
    message = f"{_NAMES[field]} is a number of degrees from -{bound:g} to {bound:g}."
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError({field: message})
    if isinstance(value, str):
        text = value.strip().replace(",", ".")
        if len(text) > 30 or not text.isascii():
            raise ValidationError({field: message})
        try:
            value = float(text)
        except ValueError:
            raise ValidationError({field: message}) from None
    number = float(value)
    if not math.isfinite(number) or not -bound <= number <= bound:
        raise ValidationError({field: message})
    return number


def parse_point(latitude: object, longitude: object) -> Point | None:
    """Both coordinates, or None when both are empty.

    :raise ValidationError: one without the other, or either one bad (by field).
    """
    errors: dict[str, str] = {}
    values: dict[str, float | None] = {}
    for field, raw in (("latitude", latitude), ("longitude", longitude)):
        try:
            values[field] = parse_coordinate(field, raw)
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    lat, lon = values["latitude"], values["longitude"]
    if lat is None and lon is None:
        return None
    if lat is None:
        raise ValidationError({"latitude": "Give the latitude with the longitude."})
    if lon is None:
        raise ValidationError({"longitude": "Give the longitude with the latitude."})
    return Point(lat, lon)


def parse_accuracy(value: object) -> float | None:
    """How sure a phone was of its position, in metres; None when not given.

    :raise ValidationError: not a finite number from 0 to MAX_ACCURACY_M.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    message = f"Accuracy is a number of metres from 0 to {MAX_ACCURACY_M:,.0f}."
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError({"accuracy_m": message})
    try:
        number = float(value.strip()[:30] if isinstance(value, str) else value)
    except ValueError:
        raise ValidationError({"accuracy_m": message}) from None
    if not math.isfinite(number) or not 0 <= number <= MAX_ACCURACY_M:
        raise ValidationError({"accuracy_m": message})
    return number


def distance_m(a: Point, b: Point) -> float:
    """The great-circle distance between two points (haversine), in metres."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * 1000 * math.asin(min(1.0, math.sqrt(h)))


def box(centre: Point, radius_km: float):
    """The condition on latitude and longitude of a box holding every point within
    radius_km of centre."""
    angle = radius_km / EARTH_RADIUS_KM
    dlat = math.degrees(angle)
    south, north = centre.latitude - dlat, centre.latitude + dlat
    in_latitude = Contact.latitude.between(max(south, -90.0), min(north, 90.0))
    if south <= -90.0 or north >= 90.0:
        return in_latitude
    # The widest longitude the circle reaches (at the latitude where it touches the
    # box's sides), exact on a sphere rather than dlat / cos(latitude).
    ratio = math.sin(angle) / math.cos(math.radians(centre.latitude))
    if ratio >= 1.0:
        return in_latitude
    dlon = math.degrees(math.asin(ratio))
    west, east = centre.longitude - dlon, centre.longitude + dlon
    if west < -180.0:
        in_longitude = or_(Contact.longitude >= west + 360.0, Contact.longitude <= east)
    elif east > 180.0:
        in_longitude = or_(Contact.longitude >= west, Contact.longitude <= east - 360.0)
    else:
        in_longitude = Contact.longitude.between(west, east)
    return and_(in_latitude, in_longitude)


def _candidates(session: Session, user: User, centre: Point, radius_km: float, mine: bool):
    stmt = select(Contact.id, Contact.latitude, Contact.longitude).where(
        Contact.latitude.is_not(None),
        Contact.longitude.is_not(None),
        Contact.deleted_at.is_(None),
        box(centre, radius_km),
    )
    if mine:
        stmt = stmt.where(Contact.owner_id == user.id)
    return session.execute(stmt.limit(CANDIDATE_LIMIT + 1)).all()


def nearest(
    session: Session, user: User, centre: Point, mine: bool = True, limit: int = PAGE
) -> NearbyPage:
    """The contacts user may see (their own when mine) closest to centre, nearest first,
    at most limit of them and none farther than MAX_RADIUS_KM."""
    require(user, "nearby.view")
    found: list[tuple[float, int]] = []
    used = 0.0
    for radius in RADII_KM:
        rows = _candidates(session, user, centre, radius, mine)
        crowded = len(rows) > CANDIDATE_LIMIT
        if crowded and used:
            # Denser than any town: the last box that fitted answers.
            break
        used = radius
        found = []
        for contact_id, lat, lon in rows:
            metres = distance_m(centre, Point(lat, lon))
            if metres <= radius * 1000:
                found.append((metres, contact_id))
        if len(found) >= limit or crowded:
            break
    found.sort()
    found = found[:limit]
    contacts = {
        c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(i for _, i in found)))
    }
    entries = [NearbyContact(contacts[i], m) for m, i in found if i in contacts]
    return NearbyPage(centre, entries, used, mine)


def centre_of(contact: Contact) -> Point | None:
    """Where a contact is, when it has coordinates."""
    if contact.latitude is None or contact.longitude is None:
        return None
    return Point(contact.latitude, contact.longitude)
