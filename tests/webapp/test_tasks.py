"""Tasks through their pages: made once per form, due in the zone they were given in,
follow-up chips after logging, the list's groups, done and undone, cancel, who may see
and give them; the outbox's task-done tick stored once; Today's sections."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Contact, Mention, Task, User
from webapp.models.base import utcnow
from webapp.services import tasks


def add_task(app, user, title="Call back", due=None, **fields) -> Task:
    with app.app_context():
        due = due or utcnow() + timedelta(hours=2)
        task = Task(
            uuid=str(uuid.uuid4()),
            title=title,
            due_at=due,
            time_zone=fields.pop("time_zone", "UTC"),
            assignee_id=fields.pop("assignee_id", user.id),
            created_by_id=user.id,
            created_at=fields.pop("created_at", utcnow() - timedelta(days=2)),
            **fields,
        )
        db.session.add(task)
        db.session.commit()
        db.session.refresh(task)
        db.session.expunge(task)
        return task


def all_tasks(app) -> list[Task]:
    with app.app_context():
        rows = list(db.session.scalars(select(Task).order_by(Task.id)))
        for r in rows:
            db.session.expunge(r)
        return rows


def test_a_task_form_makes_one_task_due_in_its_zone_however_often_it_is_sent(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Ada")
    login(rep)
    form = {
        "uuid": str(uuid.uuid4()),
        "title": "Bring the <b>samples</b>",
        "kind": "visit",
        "due_date": "2031-03-30",
        "due_time": "09:30",
        "time_zone": "Europe/Berlin",
        "contact_id": str(c.id),
    }
    for _ in range(3):
        response = client.post("/tasks", data=form)
        assert response.status_code == 303
    (task,) = all_tasks(app)
    # 09:30 in Berlin on the day summer time starts there is 07:30 UTC.
    assert task.due_at == datetime(2031, 3, 30, 7, 30, tzinfo=UTC)
    assert (task.time_zone, task.kind, task.contact_id, task.assignee_id) == (
        "Europe/Berlin",
        "visit",
        c.id,
        rep.id,
    )
    page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert 'value="09:30"' in page and "Europe/Berlin" in page
    assert "&lt;b&gt;samples&lt;/b&gt;" in page and "<b>samples" not in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "", "Say what has to be done."),
        ("title", "x" * 201, "At most 200 characters"),
        ("title", "a\x00b", "The field “title”"),
        ("due_date", "tomorrow", "Give the day it is due"),
        ("due_date", "1850-01-01", "between the years 2000 and 2100"),
        ("due_time", "25:00", "Give the time as HH:MM"),
        ("kind", "party", "Choose to do, call, visit or meeting."),
        ("assignee_id", "999", "You may give tasks only to yourself."),
    ],
)
def test_a_bad_task_form_says_why_and_stores_nothing(
    app, client, login, make_user, field, value, message
):
    rep = make_user("rep")
    login(rep)
    form = {"uuid": str(uuid.uuid4()), "title": "Call", "due_date": "2031-01-02"}
    form[field] = value
    response = client.post("/tasks", data=form)
    assert response.status_code in (400, 422)
    assert message in response.get_data(as_text=True)
    assert all_tasks(app) == []


def test_a_manager_gives_a_task_to_a_rep_who_sees_it_and_another_rep_does_not(
    app, client, login, make_user
):
    manager, rep, other = make_user("manager"), make_user("rep"), make_user("rep")
    login(manager)
    form = {"uuid": str(uuid.uuid4()), "title": "Visit the depot", "due_date": "2031-01-02"}
    assert client.post("/tasks", data={**form, "assignee_id": str(rep.id)}).status_code == 303
    (task,) = all_tasks(app)
    assert task.assignee_id == rep.id and task.created_by_id == manager.id
    client.post("/logout")
    login(other)
    assert client.get(f"/tasks/{task.id}").status_code == 403
    assert "Visit the depot" not in client.get("/tasks").get_data(as_text=True)
    client.post("/logout")
    login(rep)
    assert "Visit the depot" in client.get("/tasks").get_data(as_text=True)


def test_support_and_marketers_make_no_tasks(client, login, make_user):
    login(make_user("support"))
    form = {"uuid": str(uuid.uuid4()), "title": "x", "due_date": "2031-01-02"}
    assert client.post("/tasks", data=form).status_code == 403
    assert client.get("/today").status_code == 403


def test_the_list_groups_tasks_in_the_users_zone_and_done_moves_one_and_undone_back(
    app, client, login, make_user
):
    rep = make_user("rep")
    now = utcnow()
    late = add_task(app, rep, "Late one", now - timedelta(days=2))
    soon = add_task(app, rep, "Later one", now + timedelta(days=3))
    login(rep)
    page = client.get("/tasks").get_data(as_text=True)
    overdue = page.index('id="g-overdue"')
    upcoming = page.index('id="g-upcoming"')
    assert overdue < page.index("Late one") < page.index('id="g-today"')
    assert upcoming < page.index("Later one") < page.index('id="g-done"')

    assert client.post(f"/tasks/{late.id}/done").status_code == 303
    (done_task,) = [t for t in all_tasks(app) if t.id == late.id]
    first_done = done_task.done_at
    assert done_task.status == "done" and first_done is not None
    client.post(f"/tasks/{late.id}/done")
    assert next(t for t in all_tasks(app) if t.id == late.id).done_at == first_done
    page = client.get("/tasks").get_data(as_text=True)
    assert "Late one" in page.split('id="g-done"')[1]
    assert "Late one" not in page.split('id="g-overdue"')[1].split("</section>")[0]

    client.post(f"/tasks/{late.id}/undone")
    client.post(f"/tasks/{soon.id}/cancel")
    states = {t.title: (t.status, t.done_at) for t in all_tasks(app)}
    assert states == {"Late one": ("todo", None), "Later one": ("cancelled", None)}
    page = client.get("/tasks").get_data(as_text=True)
    assert "Cancelled: Later one." in page
    assert "Later one" not in page.split('class="task-columns"')[1]


def test_a_follow_up_chip_makes_one_task_at_nine_local_on_the_chosen_day(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Grace")
    login(rep)
    logged = client.post(
        f"/contacts/{c.id}/activities",
        data={"kind": "call", "body": "", "uuid": str(uuid.uuid4())},
        headers={"HX-Request": "true"},
    )
    page = logged.get_data(as_text=True)
    assert (
        'id="follow-up"' in page
        and 'value="3days"' in page
        and "hidden" not in page.split('id="follow-up"')[1].split(">")[0]
    )
    chip = {"contact_id": str(c.id), "uuid": str(uuid.uuid4()), "time_zone": "America/New_York"}
    for _ in range(2):
        answer = client.post(
            "/tasks/follow-up", data={**chip, "preset": "3days"}, headers={"HX-Request": "true"}
        )
        assert answer.status_code == 200
        assert "Follow up with Grace" in answer.get_data(as_text=True)
    (task,) = all_tasks(app)
    local = task.due_at.astimezone(tasks.zone("America/New_York"))
    today_there = utcnow().astimezone(tasks.zone("America/New_York")).date()
    assert (local.date() - today_there).days == 3 and (local.hour, local.minute) == (9, 0)
    assert (task.contact_id, task.kind) == (c.id, "call")
    bad = client.post(
        "/tasks/follow-up", data={**chip, "preset": "someday", "uuid": str(uuid.uuid4())}
    )
    assert bad.status_code == 422 and len(all_tasks(app)) == 1


def test_without_javascript_the_logged_entry_page_offers_the_chips(
    client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Grace")
    login(rep)
    logged = client.post(
        f"/contacts/{c.id}/activities", data={"kind": "visit", "uuid": str(uuid.uuid4())}
    )
    assert logged.status_code == 303
    page = client.get(logged.headers["Location"]).get_data(as_text=True)
    form = page.split('id="follow-up"')[1].split(">")[0]
    assert "hidden" not in form
    assert 'name="kind" value="visit"' in page
    plain = client.get(f"/contacts/{c.id}").get_data(as_text=True)
    assert "hidden" in plain.split('id="follow-up"')[1].split(">")[0]


def test_a_tick_from_the_outbox_is_stored_once_with_the_time_the_phone_says(
    app, client, login, make_user
):
    rep = make_user("rep")
    task = add_task(app, rep, "Tick me")
    login(rep)
    at = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    tick = {"uuid": str(uuid.uuid4()), "task_id": task.id, "done_at": at.isoformat()}
    for _ in range(2):
        answer = client.post("/api/tasks/done", json=tick)
        assert answer.status_code == 200
        assert answer.get_json()["uuid"] == tick["uuid"]
        assert answer.get_json()["status"] == "stored"
    later = {**tick, "uuid": str(uuid.uuid4()), "done_at": utcnow().isoformat()}
    assert client.post("/api/tasks/done", json=later).status_code == 200
    (stored,) = all_tasks(app)
    assert stored.status == "done" and stored.done_at == at


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"task_id": "x"}, 422, "task_id"),
        ({"done_at": "yesterday"}, 422, "done_at"),
        ({"done_at": "2030-01-01T00:00:00"}, 422, "done_at"),
        ({"done_at": "2001-01-01T00:00:00+00:00"}, 422, "done_at"),
        ({"uuid": 5}, 422, "uuid"),
        ({"task_id": 2**31 - 1}, 404, None),
    ],
)
def test_a_bad_tick_is_refused_by_name_and_changes_nothing(
    app, client, login, make_user, body, status, field
):
    rep = make_user("rep")
    task = add_task(app, rep, "Tick me")
    login(rep)
    tick = {"uuid": str(uuid.uuid4()), "task_id": task.id, "done_at": utcnow().isoformat()}
    answer = client.post("/api/tasks/done", json={**tick, **body})
    assert answer.status_code == status
    if field:
        assert field in answer.get_json()["errors"]
    assert all_tasks(app)[0].status == "todo"


def test_another_reps_task_cannot_be_ticked(app, client, login, make_user):
    owner, other = make_user("rep"), make_user("rep")
    task = add_task(app, owner, "Mine")
    login(other)
    tick = {"uuid": str(uuid.uuid4()), "task_id": task.id, "done_at": utcnow().isoformat()}
    assert client.post("/api/tasks/done", json=tick).status_code == 404
    assert client.post(f"/tasks/{task.id}/done").status_code == 403
    assert all_tasks(app)[0].status == "todo"


def test_reps_and_managers_land_on_today_and_support_on_the_inbox(client, make_user):
    from tests.conftest import sign_in

    for role, place in (("rep", "/today"), ("manager", "/today"), ("support", "/inbox/")):
        user = make_user(role)
        assert sign_in(client, user).status_code == 303
        assert client.get("/").headers["Location"].endswith(place)
        client.post("/logout")


def test_today_shows_overdue_due_today_visits_and_complaints_since_yesterday(
    app, client, login, make_user, make_contact
):
    rep, other = make_user("rep"), make_user("rep")
    mine = make_contact(rep, name="Unhappy Customer")
    theirs = make_contact(other, name="Someone Else")
    zone = tasks.zone("Pacific/Auckland")
    now = utcnow()
    start, end = tasks.day_bounds(now, zone)
    add_task(app, rep, "Overdue call", start - timedelta(hours=1))
    add_task(app, rep, "Due later today", end - timedelta(minutes=1))
    add_task(app, rep, "Visit the shop", start + timedelta(minutes=1), kind="visit")
    add_task(app, rep, "Next week", end + timedelta(days=6))
    add_task(app, other, "Not mine", start + timedelta(minutes=5))
    with app.app_context():
        for n, (contact, label, when, text) in enumerate(
            [
                (mine, "negative", now - timedelta(hours=1), "Broken again, angry"),
                (mine, "negative", start - timedelta(days=1, minutes=5), "Old complaint"),
                (mine, "positive", now, "Lovely service"),
                (theirs, "negative", now, "Their complaint"),
            ]
        ):
            db.session.add(
                Mention(
                    network="x",
                    external_id=f"m{n}",
                    author_handle="someone",
                    text=text,
                    posted_at=when,
                    label=label,
                    sentiment_status="scored",
                    contact_id=contact.id,
                    compound=-0.5,
                )
            )
        db.session.commit()
    login(rep)
    client.set_cookie("tz", "Pacific/Auckland", domain="localhost")
    page = client.get("/today").get_data(as_text=True)

    def section(name: str) -> str:
        return page.split(f'id="g-{name}"')[1].split("</section>")[0]

    assert "Overdue call" in section("overdue")
    assert "Due later today" in section("due") and "Visit the shop" not in section("due")
    assert "Visit the shop" in section("visits")
    assert "Next week" in section("coming") and "Not mine" not in page
    assert "Broken again, angry" in section("complaints")
    assert "Old complaint" not in page and "Lovely service" not in page
    assert "Their complaint" not in page
    assert Contact  # the contacts above are the rep's and the other rep's


def test_the_demo_rep_lands_on_a_full_today(app, client):
    from tests.conftest import sign_in
    from webapp.services import demo

    with app.app_context():
        demo.seed(db.session, contacts=40)
        db.session.commit()
        rep = db.session.scalar(select(User).where(User.role == "rep"))
        db.session.expunge(rep)
    assert sign_in(client, rep, demo.PASSWORD).status_code == 303
    page = client.get("/today").get_data(as_text=True)
    sections = {
        name: page.split(f'id="g-{name}"')[1].split("</section>")[0]
        for name in ("overdue", "due", "visits", "coming")
    }
    assert "Call back about the delivery delay" in sections["overdue"]
    # Due in two hours, or (seeded just before midnight) a little earlier today.
    assert "Visit the showroom" in sections["visits"] + sections["overdue"]
    assert "Renewal conversation" in sections["coming"]
    assert 'aria-label="2 unread"' in page


def test_a_long_task_list_shows_each_group_a_page_at_a_time_in_a_fixed_number_of_statements(
    app, client, login, make_user, make_contact
):
    """A rep far behind still sees today's tasks; each group shows its first page and
    scrolls on; the page costs the same number of statements with 5 tasks or 65."""
    from sqlalchemy import event

    rep, other = make_user("rep"), make_user("rep")
    contact = make_contact(rep, name="Ada Quarry", phone="+44 113 496 0000")
    now = utcnow()
    login(rep)

    def statements() -> int:
        count = []
        with app.app_context():
            engine = db.engine
        listen = lambda *a: count.append(1)  # noqa: E731
        event.listen(engine, "before_cursor_execute", listen)
        try:
            assert client.get("/tasks").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        return len(count)

    limit = tasks.GROUP_LIMIT

    def late(i: int) -> Task:
        return add_task(
            app, rep, f"Late {i:03}", now - timedelta(days=2, minutes=i), contact_id=contact.id
        )

    for i in range(3):
        late(i)
    add_task(app, rep, "Call today", now + timedelta(minutes=5), contact_id=contact.id)
    few = statements()
    for i in range(3, limit + 10):
        late(i)
    assert statements() == few

    page = client.get("/tasks").get_data(as_text=True)
    overdue = page.split('id="g-overdue"')[1].split("</section>")[0]
    assert f'<span class="count">{limit}+</span>' in overdue
    assert overdue.count('class="row task ') == limit
    # The oldest first: the first page ends at the limit-th oldest.
    oldest, last_shown, first_left = limit + 9, 10, 9
    assert f"Late {oldest:03}" in overdue and f"Late {last_shown:03}" in overdue
    assert f"Late {first_left:03}" not in overdue
    assert "Call today" in page.split('id="g-today"')[1].split("</section>")[0]
    more = re.search(r'<a href="(/tasks\?group=overdue&amp;after=\d+)"', overdue)
    assert more, overdue[-400:]
    rest = client.get(more[1].replace("&amp;", "&"), headers={"HX-Request": "true"})
    rows = rest.get_data(as_text=True)
    assert rows.count('class="row task ') == 10 and "Late 009" in rows and "Late 000" in rows
    assert "group=overdue" not in rows  # the last page says no more
    # Without JavaScript the link is a page of its own.
    assert "<h1>Overdue</h1>" in client.get(more[1].replace("&amp;", "&")).get_data(as_text=True)

    theirs = add_task(app, other, "Not yours", now - timedelta(days=1))
    for bad in (
        "/tasks?group=someday",
        f"/tasks?group=overdue&after={theirs.id}",
        "/tasks?group=overdue&after=99999999",
        "/tasks?group=overdue&after=x",
    ):
        assert client.get(bad).status_code in (400, 404), bad


def test_a_follow_up_from_the_outbox_makes_one_task_however_often_it_arrives(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Grace Hopper")
    login(rep)
    chip = {
        "uuid": str(uuid.uuid4()),
        "contact_id": c.id,
        "preset": "3days",
        "time_zone": "Europe/London",
        "kind": "visit",
    }
    first = client.post("/api/tasks/follow-up", json=chip)
    assert first.status_code == 201 and first.get_json()["status"] == "stored"
    again = client.post("/api/tasks/follow-up", json=chip)
    assert again.status_code == 200 and again.get_json()["task_id"] == first.get_json()["task_id"]
    (task,) = all_tasks(app)
    assert task.title == "Follow up with Grace Hopper" and task.contact_id == c.id
    assert task.time_zone == "Europe/London" and task.kind == "visit"
    local = task.due_at.astimezone(ZoneInfo("Europe/London"))
    assert (local.hour, local.minute) == (9, 0)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"preset": "someday"}, 422, "preset"),
        ({"contact_id": "7"}, 422, "contact_id"),
        ({"contact_id": True}, 422, "contact_id"),
        ({"contact_id": 2**40}, 422, "contact_id"),
        ({"uuid": "not-a-uuid"}, 422, "uuid"),
        ({"contact_id": 2**31 - 1}, 404, None),
    ],
)
def test_a_bad_follow_up_is_refused_by_name_and_makes_nothing(
    app, client, login, make_user, make_contact, body, status, field
):
    rep = make_user("rep")
    c = make_contact(rep, name="Grace")
    login(rep)
    chip = {"uuid": str(uuid.uuid4()), "contact_id": c.id, "preset": "tomorrow", "time_zone": "UTC"}
    answer = client.post("/api/tasks/follow-up", json={**chip, **body})
    assert answer.status_code == status
    if field:
        assert field in answer.get_json()["errors"]
    assert all_tasks(app) == []


def test_support_cannot_make_follow_up_tasks_from_the_outbox(
    app, client, login, make_user, make_contact
):
    c = make_contact(make_user("rep"), name="Grace")
    login(make_user("support"))
    chip = {"uuid": str(uuid.uuid4()), "contact_id": c.id, "preset": "tomorrow", "time_zone": "UTC"}
    answer = client.post("/api/tasks/follow-up", json=chip)
    assert answer.status_code == 403 and "may not add tasks" in answer.get_json()["error"]
    assert all_tasks(app) == []
