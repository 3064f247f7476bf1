"""Every route, walked with hostile ids, values and bodies as each kind of visitor: the
answer is always a clear 4xx (or the page), never a 500."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import sign_in

MAX_ID = 2**31 - 1
HOSTILE_IDS = [
    str(MAX_ID + 1),
    str(2**63),
    "9" * 40,
    "\u00b2",  # a superscript two: str.isdigit() says yes, int() says no
    "0",
]
HOSTILE_VALUES = [
    "\x00",
    "a\x00b",
    str(2**63),
    "\u00b2\u00b3",
    "x" * 20_000,
    "%_\\'\"<script>",
    "\ufffd\U0001f600",
]
# The fields of every form the app has: each request sends all of them at once.
FIELDS = (
    "name email phone company title address notes tags handle_x handle_mastodon "
    "handle_bluesky kind body uuid contact_id password next interval_seconds mode user_id "
    "query instance tag handle service url monthly_cap_usd secret batch q after before "
    "source label matched mine since polling occurred_at amount currency stage_id "
    "expected_close next_step from_stage prev_id next_id lost_reason lost_note move_to "
    "position probability rotting_days title due_date due_time time_zone "
    "assignee_id deal_id preset logged latitude longitude accuracy_m when at tz outcome all "
    "contact"
).split()
HOSTILE_JSON = [
    b"1",
    b"[]",
    b"true",
    b'"text"',
    b"null",
    b"{",
    b"[" * 30_000 + b"]" * 30_000,
    b'{"contact_id": "\\u00b2", "kind": "call", "uuid": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}',
    json.dumps({"contact_id": 2**63, "kind": "call"}).encode(),
    json.dumps({"contact_id": MAX_ID + 1, "kind": "call"}).encode(),
    b'{"contact_id": 1, "kind": "note", "body": "\\ud800",'
    b' "uuid": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "occurred_at": "2026-01-01T00:00:00Z"}',
    b'{"contact_id": 1, "kind": "note", "body": "a\\u0000b",'
    b' "uuid": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "occurred_at": "2026-01-01T00:00:00Z"}',
    json.dumps(
        {"contact_id": 1, "kind": {}, "body": [], "uuid": 5, "occurred_at": 7, "x": None}
    ).encode(),
    json.dumps({"contact_id": True, "kind": "call", "body": {"a": 1}}).encode(),
    # A task ticked on a phone, and a push subscription, with wrong types and values.
    json.dumps({"task_id": MAX_ID + 1, "done_at": "2026-01-01T00:00:00Z", "uuid": "x"}).encode(),
    json.dumps({"task_id": [], "done_at": {}, "uuid": None}).encode(),
    b'{"task_id": 1, "done_at": "\\ud800", "uuid": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}',
    json.dumps({"endpoint": 5, "keys": []}).encode(),
    json.dumps({"endpoint": "https://fcm.googleapis.com/\u0000", "keys": {"p256dh": 1}}).encode(),
    b'{"endpoint": "https://fcm.googleapis.com/x\\ud800", "keys": {"p256dh": "", "auth": ""}}',
    b'{"contact_id": 1, "kind": "visit", "uuid": "7c9e6679-7425-40de-944b-e07fc1f90ae7",'
    b' "occurred_at": "2026-01-01T00:00:00Z", "latitude": 1e400, "longitude": -1e400,'
    b' "accuracy_m": NaN}',
    json.dumps(
        {"contact_id": 1, "kind": "visit", "latitude": [], "longitude": {}, "accuracy_m": "x"}
    ).encode(),
]
# Routes that end the session come last, so the walk stays signed in until then.
LAST = ("auth.logout", "auth.sign_out_everywhere")


def _urls(app, rule) -> list[str]:
    """The rule's URL with each hostile id in each of its integer parts."""
    names = [name for name, conv in rule._converters.items() if conv.__class__.__name__]
    if not names:
        return [rule.rule]
    urls = []
    for hostile in HOSTILE_IDS:
        path = rule.rule
        for name in names:
            path = re.sub(rf"<(?:int:)?{name}>", hostile, path)
        urls.append(path)
    return urls


def _rules(app):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint != "static"]
    return sorted(rules, key=lambda r: (r.endpoint in LAST, r.endpoint))


def _walk(client, app) -> list[tuple[str, str, int]]:
    """Send every hostile request; return (method, url, status) of each answer."""
    seen = []
    for rule in _rules(app):
        for url in _urls(app, rule):
            if "GET" in rule.methods:
                for value in HOSTILE_VALUES:
                    response = client.get(url, query_string={f: value for f in FIELDS})
                    response.close()
                    seen.append(("GET", url, response.status_code))
            if "POST" in rule.methods:
                for value in HOSTILE_VALUES:
                    response = client.post(url, data={f: value for f in FIELDS})
                    seen.append(("POST", url, response.status_code))
                for body in HOSTILE_JSON:
                    response = client.post(
                        url,
                        data=body,
                        headers={
                            "Content-Type": "application/json",
                            "X-CRM-Timestamp": "\u00b2\u00b3",
                            "X-CRM-Signature": "sha256=00",
                        },
                    )
                    seen.append(("POST json", url, response.status_code))
    return seen


def _assert_no_server_errors(seen):
    broken = [s for s in seen if s[2] >= 500]
    assert not broken, f"{len(broken)} server errors, e.g. {broken[:5]}"
    assert len(seen) > 500


@pytest.mark.parametrize("role", [None, "admin", "rep", "support"])
def test_every_route_answers_hostile_input_with_4xx(app, client, make_user, make_contact, role):
    owner = make_user("manager")
    make_contact(owner, name="Target Contact")
    if role:
        user = make_user(role)
        assert sign_in(client, user).status_code == 303
    _assert_no_server_errors(_walk(client, app))


def test_out_of_range_ids_are_not_found(client, login, make_user):
    login(make_user("admin"))
    for path in (
        f"/contacts/{MAX_ID + 1}",
        f"/inbox/{2**63}",
        f"/sources/{MAX_ID + 1}",
        f"/contacts/{'9' * 40}/edit",
        f"/tasks/{MAX_ID + 1}",
        f"/notifications/{2**63}",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/users/{MAX_ID + 1}/disable").status_code == 404
    assert client.post(f"/tasks/{MAX_ID + 1}/done").status_code == 404
    assert client.post(f"/api/webhooks/{2**63}", data=b"{}").status_code == 404


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        ("/contacts", {"after": str(2**63)}, "after"),
        ("/inbox/", {"before": "\u00b2"}, "before"),
        ("/inbox/", {"source": "-1"}, "source"),
    ],
)
def test_a_broken_page_cursor_is_a_clear_400(client, login, make_user, path, query, message):
    login(make_user("rep"))
    response = client.get(path, query_string=query)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_nul_in_a_query_or_form_is_refused_and_named(client, login, make_user):
    login(make_user("rep"))
    response = client.get("/contacts", query_string={"q": "ann\x00"})
    assert response.status_code == 400
    assert "q" in response.get_data(as_text=True)
    assert "NUL" in response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["admin", "rep", "marketer"])
def test_deal_routes_answer_hostile_values_for_a_real_deal_with_4xx(
    app, client, make_user, make_contact, role
):
    """The walk above sends out-of-range ids; here each deal and stage route gets a real
    deal, contact and stage, so the hostile values reach the forms' own checks."""
    from webapp.extensions import db
    from webapp.models import Deal, Stage, User
    from webapp.services import deals, once

    user = make_user(role)
    owner = user if role == "rep" else make_user("rep")
    contact = make_contact(owner, name="Target Contact")
    with app.app_context():
        stage = db.session.query(Stage).order_by(Stage.position).first()
        deal, _ = deals.create_deal(
            db.session,
            db.session.get(User, owner.id),
            None,
            {"title": "Target deal", "stage_id": str(stage.id)},
            once.new_key(),
            "EUR",
        )
        db.session.commit()
        ids = {"deal_id": deal.id, "contact_id": contact.id, "stage_id": stage.id}
    assert sign_in(client, user).status_code == 303
    seen = []
    for rule in _rules(app):
        if not rule.endpoint.startswith("deals.") or rule.endpoint == "deals.delete":
            continue
        url = rule.rule
        for name, value in ids.items():
            url = url.replace(f"<int:{name}>", str(value))
        for value in HOSTILE_VALUES:
            method = client.post if "POST" in rule.methods else client.get
            key = "data" if "POST" in rule.methods else "query_string"
            response = method(url, **{key: {f: value for f in FIELDS}})
            seen.append((rule.endpoint, url, response.status_code))
            response = method(url, **{key: {"stage_id": value, "after": value}})
            seen.append((rule.endpoint, url, response.status_code))
    broken = [s for s in seen if s[2] >= 500]
    assert not broken, broken[:5]
    with app.app_context():
        kept = db.session.get(Deal, deal.id)
        # (Mark won takes no input: it may have run.)
        assert (kept.title, kept.deleted_at, kept.lost_reason) == ("Target deal", None, None)
        assert db.session.query(Stage).count() == 6
