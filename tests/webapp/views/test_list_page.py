"""What the contact list page keeps from one request to the next (the header per role
and page, addresses built once a page) must never show one person what belongs to
another, or a page what belongs to another page; and a signed-in page sends no cookie."""

import re
from datetime import timedelta
from email.utils import parsedate_to_datetime

from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.services import notifications


def _tabs(page: str) -> dict[str, bool]:
    """The navigation's places on a page: label -> whether it is marked as the current one."""
    header = page[page.index('<header class="bar">') : page.index("</header>")]
    return {
        label: bool(current)
        for current, label in re.findall(
            r'<a href="[^"]*"( aria-current="page")?><svg[^>]*><use[^>]*></use></svg>'
            r"<span>([^<]+)</span>",
            header,
        )
    }


def test_each_role_and_page_gets_its_own_header(app, client, login, make_user):
    rep, admin = make_user("rep"), make_user("admin")
    login(rep)
    on_contacts = _tabs(client.get("/contacts").get_data(as_text=True))
    assert on_contacts["Contacts"] and not on_contacts["Today"]
    assert "Users" not in on_contacts
    on_tasks = _tabs(client.get("/tasks").get_data(as_text=True))
    assert on_tasks["Tasks"] and not on_tasks["Contacts"]
    client.post("/logout")

    login(admin)
    theirs = _tabs(client.get("/contacts").get_data(as_text=True))
    assert "Users" in theirs and "Audit log" in theirs and theirs["Contacts"]
    client.post("/logout")

    login(rep)
    assert "Users" not in _tabs(client.get("/contacts").get_data(as_text=True))


def test_the_badge_follows_new_notifications_on_a_kept_header(app, client, login, make_user):
    rep = make_user("rep")
    login(rep)
    assert "unread-count" not in client.get("/contacts").get_data(as_text=True)
    with app.app_context():
        notifications.add(db.session, rep.id, "list-1", "task-due", "Call Ada")
        db.session.commit()
    assert 'aria-label="1 unread"' in client.get("/contacts").get_data(as_text=True)


def test_each_row_opens_its_own_contact_and_calls_its_number(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    made = {
        make_contact(rep, name=f"Person {i:02d}", phone=f"+44 113 496 00{i:02d}").id: i
        for i in range(12)
    }
    login(rep)
    page = client.get("/contacts").get_data(as_text=True)
    rows = re.findall(
        r'<li class="row" data-id="(\d+)">\s*<a class="row-main" href="([^"]+)">'
        r'\s*<span class="row-title">([^<]+)</span>.*?href="tel:([^"]+)"'
        r'.*?<use href="([^"]+)">',
        page,
        re.S,
    )
    assert len(rows) == 12
    for contact_id, href, name, tel, icon in rows:
        i = made[int(contact_id)]
        assert href == f"/contacts/{contact_id}" and name == f"Person {i:02d}"
        assert tel == f"+4411349600{i:02d}"
        assert icon.endswith("/icons/sprite.svg#phone")
        assert name in client.get(href).get_data(as_text=True)


def test_a_signed_in_page_sends_no_cookie_and_the_sign_in_lasts_its_days(app, client, make_user):
    from tests.conftest import sign_in

    rep = make_user("rep")
    signed = sign_in(client, rep)
    cookie = next(c for c in signed.headers.getlist("Set-Cookie") if "crm_session=" in c)
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie)[1])
    days = app.config["PERMANENT_SESSION_LIFETIME"]
    assert abs(expires - (utcnow() + days)) < timedelta(minutes=5)
    client.get("/contacts")  # the first page stores the session's CSRF secret
    for _ in range(2):
        page = client.get("/contacts")
        assert page.status_code == 200 and 'id="contact-list"' in page.get_data(as_text=True)
        assert not [c for c in page.headers.getlist("Set-Cookie") if "crm_session=" in c]
    client.post("/logout")
    assert client.get("/contacts").status_code == 302


def test_a_list_page_costs_two_statements_the_badge_included(
    app, client, login, make_user, make_contact
):
    """The user, their unread count and the page's contacts: one statement for the
    first two, one for the rows, however many rows and notifications there are."""
    from sqlalchemy import event

    rep = make_user("rep")
    for i in range(30):
        make_contact(rep, name=f"Person {i:02d}", phone=f"+44 113 496 00{i:02d}")
    with app.app_context():
        for i in range(3):
            notifications.add(db.session, rep.id, f"count-{i}", "task-due", f"Call {i}")
        db.session.commit()
        engine = db.engine
    login(rep)
    client.get("/contacts")  # the first page of a session stores what later ones keep
    seen = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        page = client.get("/contacts").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert 'aria-label="3 unread"' in page and page.count('class="row"') == 30
    assert len(seen) == 2, seen
