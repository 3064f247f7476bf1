"""Nearby: the contacts closest to a point, and the coordinates the app accepts.

The query is bounded at any size: boxes of latitude and longitude around the point (the
indexes ix_contacts_location and ix_contacts_owner_location answer them), widened step
by step until one holds enough contacts or MAX_RADIUS_KM is reached; how many each box
holds is asked in one round trip, each count stopping at a page. The exact great-circle
distance is then computed here for the chosen box's candidates only. A box that crosses
the antimeridian is two ranges of longitude; one that reaches a pole takes every
longitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from webapp.models import Contact, User
from webapp.services.errors import ValidationError
from webapp.services.permissions import require

EARTH_RADIUS_KM = 6371.0088
PAGE = 20
# Each step widens the box; an empty ocean costs one index probe per step.
RADII_KM = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
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


def _within(centre: Point, rows, radius_km: float) -> list[tuple[float, int]]:
    """(haversine term, id) of the rows within radius_km of centre: the term orders
    points as their distance does, and costs no square root or arcsine per row."""
    lat0, lon0 = math.radians(centre.latitude), math.radians(centre.longitude)
    cos0 = math.cos(lat0)
    limit = math.sin(radius_km / EARTH_RADIUS_KM / 2) ** 2
    sin, cos, rad = math.sin, math.cos, math.radians
    found = []
    for contact_id, lat, lon in rows:
        lat1 = rad(lat)
        h = sin((lat1 - lat0) / 2) ** 2 + cos0 * cos(lat1) * sin((rad(lon) - lon0) / 2) ** 2
        if h <= limit:
            found.append((h, contact_id))
    return found


def _metres(h: float) -> float:
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


def _shown(user: User, mine: bool) -> list:
    conditions = [
        Contact.latitude.is_not(None),
        Contact.longitude.is_not(None),
        Contact.deleted_at.is_(None),
    ]
    if mine:
        conditions.append(Contact.owner_id == user.id)
    return conditions


def _counts(session: Session, user: User, centre: Point, mine: bool, limit: int) -> list[int]:
    """How many contacts each box of RADII_KM holds, up to limit: every step in one
    round trip, each stopping at limit rows of its index."""
    shown = _shown(user, mine)
    columns = [
        select(func.count())
        .select_from(select(Contact.id).where(*shown, box(centre, r)).limit(limit).subquery())
        .scalar_subquery()
        for r in RADII_KM
    ]
    return list(session.execute(select(*columns)).one())


def _candidates(session: Session, user: User, centre: Point, radius_km: float, mine: bool):
    stmt = select(Contact.id, Contact.latitude, Contact.longitude).where(
        *_shown(user, mine), box(centre, radius_km)
    )
    return session.execute(stmt.limit(CANDIDATE_LIMIT + 1)).all()


def nearest(
    session: Session, user: User, centre: Point, mine: bool = True, limit: int = PAGE
) -> NearbyPage:
    """The contacts user may see (their own when mine) closest to centre, nearest first,
    at most limit of them and none farther than MAX_RADIUS_KM.

    The first box holding limit contacts is read (a box holds more than its circle, so
    the next one is read when the circle holds too few); one that is far too crowded
    gives way to the box before it.
    """
    require(user, "nearby.view")
    counts = _counts(session, user, centre, mine, limit)
    first = next((i for i, n in enumerate(counts) if n >= limit), len(RADII_KM) - 1)
    found: list[tuple[float, int]] = []
    used = RADII_KM[first] if counts[-1] else MAX_RADIUS_KM
    for step in range(first, len(RADII_KM)) if counts[-1] else ():
        radius = RADII_KM[step]
        rows = _candidates(session, user, centre, radius, mine)
        if len(rows) > CANDIDATE_LIMIT and step > 0:
            # Denser than any town: the box before, with fewer than limit, answers.
            radius = RADII_KM[step - 1]
            rows = _candidates(session, user, centre, radius, mine)
        used = radius
        found = _within(centre, rows, radius)
        if len(found) >= limit or radius != RADII_KM[step]:
            break
    found.sort()
    found = [(_metres(h), contact_id) for h, contact_id in found[:limit]]
    ids = [i for _, i in found]
    contacts = (
        {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))}
        if ids
        else {}
    )
    entries = [NearbyContact(contacts[i], m) for m, i in found if i in contacts]
    return NearbyPage(centre, entries, used, mine)


def centre_of(contact: Contact) -> Point | None:
    """Where a contact is, when it has coordinates."""
    if contact.latitude is None or contact.longitude is None:
        return None
    return Point(contact.latitude, contact.longitude)
