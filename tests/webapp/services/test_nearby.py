"""Nearby: nearest first by true distance, own or all, across the antimeridian and near a
pole, bounded by the widest radius; and the coordinates the app accepts."""

from __future__ import annotations

import math

import pytest

from webapp.extensions import db
from webapp.models import Contact, User
from webapp.services import nearby
from webapp.services.errors import PermissionDenied, ValidationError
from webapp.services.nearby import Point

LEEDS = Point(53.7997, -1.5492)


def _place(app, owner, name, lat, lon, **extra) -> int:
    with app.app_context():
        contact = Contact(
            name=name, sort_name=name.lower(), owner_id=owner.id, latitude=lat, longitude=lon
        )
        for k, v in extra.items():
            setattr(contact, k, v)
        db.session.add(contact)
        db.session.commit()
        return contact.id


def _names(app, user, centre, mine=True, limit=nearby.PAGE):
    with app.app_context():
        page = nearby.nearest(db.session, db.session.get(User, user.id), centre, mine, limit)
        return [(e.contact.name, round(e.distance_m)) for e in page.entries]


def test_nearest_first_with_true_distances(app, make_user):
    rep = make_user("rep")
    _place(app, rep, "Far", 53.95, -1.08)  # York, about 36 km
    _place(app, rep, "Near", 53.8008, -1.5491)  # about 120 m north
    _place(app, rep, "Middle", 53.7997, -1.5000)  # about 3.2 km east
    _place(app, rep, "Nowhere", None, None)
    found = _names(app, rep, LEEDS)
    assert [n for n, _ in found] == ["Near", "Middle", "Far"]
    assert 100 < found[0][1] < 140
    assert 3000 < found[1][1] < 3400
    assert 30_000 < found[2][1] < 40_000


def test_mine_or_all_and_never_the_deleted(app, make_user):
    rep, other = make_user("rep"), make_user("rep")
    _place(app, rep, "Own", 53.80, -1.55)
    _place(app, other, "Theirs", 53.80, -1.551)
    from webapp.models.base import utcnow

    _place(app, rep, "Gone", 53.80, -1.5495, deleted_at=utcnow())
    assert [n for n, _ in _names(app, rep, LEEDS)] == ["Own"]
    assert sorted(n for n, _ in _names(app, rep, LEEDS, mine=False)) == ["Own", "Theirs"]


def test_enough_found_in_a_small_box_still_sorted_by_distance(app, make_user):
    rep = make_user("rep")
    # 30 contacts on a line eastwards, 50 m apart: the first page is the 5 nearest.
    for i in range(30):
        _place(app, rep, f"P{i:02d}", LEEDS.latitude, LEEDS.longitude + i * 0.00076)
    found = _names(app, rep, LEEDS, limit=5)
    assert [n for n, _ in found] == ["P00", "P01", "P02", "P03", "P04"]
    assert [d for _, d in found] == sorted(d for _, d in found)


def test_a_box_full_at_its_corners_is_widened_to_find_the_nearest(app, make_user):
    rep = make_user("rep")
    north, east = 0.09 / 111.2, 0.09 / (111.2 * math.cos(math.radians(LEEDS.latitude)))
    # Three in the corners of the smallest box (about 127 m away, outside its circle)
    # and one 200 m north: the box holds a page, its circle none.
    for i, (dn, de) in enumerate([(1, 1), (-1, 1), (1, -1)]):
        _place(app, rep, f"Corner {i}", LEEDS.latitude + dn * north, LEEDS.longitude + de * east)
    _place(app, rep, "North", LEEDS.latitude + 0.2 / 111.2, LEEDS.longitude)
    found = _names(app, rep, LEEDS, limit=3)
    assert sorted(n for n, _ in found) == ["Corner 0", "Corner 1", "Corner 2"]
    assert all(120 < d < 135 for _, d in found)


def test_the_antimeridian_is_one_place(app, make_user):
    rep = make_user("rep")
    _place(app, rep, "West of the line", -16.5, 179.95)  # Fiji
    _place(app, rep, "East of the line", -16.5, -179.95)
    _place(app, rep, "Far west", -16.5, 170.0)
    found = _names(app, rep, Point(-16.5, 179.99))
    assert [n for n, _ in found][:2] == ["West of the line", "East of the line"]
    assert found[1][1] < 10_000
    assert "Far west" not in [n for n, _ in found][:2]


def test_near_the_pole_every_longitude_counts(app, make_user):
    rep = make_user("rep")
    _place(app, rep, "Across the pole", 89.99, 180.0)
    _place(app, rep, "Same side", 89.97, 0.0)
    found = _names(app, rep, Point(89.995, 0.0))
    assert [n for n, _ in found] == ["Across the pole", "Same side"]
    assert found[0][1] < 2000


def test_the_middle_of_the_ocean_finds_nothing_nearer_than_the_widest_radius(app, make_user):
    rep = make_user("rep")
    _place(app, rep, "Leeds", LEEDS.latitude, LEEDS.longitude)
    with app.app_context():
        page = nearby.nearest(db.session, db.session.get(User, rep.id), Point(-30.0, -30.0))
        assert page.entries == []
        assert page.radius_km == nearby.MAX_RADIUS_KM


def test_only_roles_in_the_field_see_nearby(app, make_user):
    support = make_user("support")
    with app.app_context(), pytest.raises(PermissionDenied):
        nearby.nearest(db.session, db.session.get(User, support.id), LEEDS)


def test_distance_is_the_haversine_of_a_known_pair():
    # London to Paris, about 343.5 km on the mean sphere.
    metres = nearby.distance_m(Point(51.5074, -0.1278), Point(48.8566, 2.3522))
    assert 343_000 < metres < 344_500
    assert nearby.distance_m(LEEDS, LEEDS) == 0


@pytest.mark.parametrize(
    ("lat", "lon", "field"),
    [
        ("91", "0", "latitude"),
        ("-90.0001", "0", "latitude"),
        ("0", "180.5", "longitude"),
        ("nan", "0", "latitude"),
        ("0", "inf", "longitude"),
        ("1e400", "0", "latitude"),
        ("12°", "0", "latitude"),
        ("", "3", "latitude"),
        ("3", "", "longitude"),
        (True, "3", "latitude"),
        ([1], "3", "latitude"),
        (math.nan, 0.0, "latitude"),
        ("\u0661\u0662", "0", "latitude"),  # Arabic-Indic digits
    ],
)
def test_bad_coordinates_are_refused_by_field(lat, lon, field):
    with pytest.raises(ValidationError) as exc:
        nearby.parse_point(lat, lon)
    assert field in exc.value.errors


def test_good_coordinates_are_read_with_a_comma_or_a_point():
    assert nearby.parse_point(" 53,7997 ", "-1.5492") == Point(53.7997, -1.5492)
    assert nearby.parse_point(90, -180) == Point(90.0, -180.0)
    assert nearby.parse_point("", None) is None


@pytest.mark.parametrize("value", ["-1", "nan", "1e9", "x", True, {}])
def test_bad_accuracy_is_refused(value):
    with pytest.raises(ValidationError):
        nearby.parse_accuracy(value)
