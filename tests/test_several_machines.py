"""Several web machines on one database and one Redis: with the same settings and nothing
shared on disk, any machine serves any request of a person, and a job queued on one is
run by a worker of another."""

from __future__ import annotations

import uuid

import pytest
from rq import SimpleWorker

from tests.conftest import PASSWORD
from webapp import create_app
from webapp.extensions import db
from webapp.models import Contact, Source
from workers import jobs
from workers.queues import connect


@pytest.fixture
def machines(app, tmp_path, monkeypatch, redis_url):
    """Two apps as two machines would run them: each with an instance folder of its own
    (nothing on disk in common), the same SECRET_KEY, database and Redis."""
    made = []
    for name in ("web-1", "web-2"):
        monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / name))
        other = create_app({**app.config, "REDIS_URL": redis_url})
        made.append(other)
    yield made
    for other in made:
        with other.app_context():
            db.engine.dispose()


def test_a_session_started_on_one_machine_works_and_ends_on_another(machines, make_user):
    one, two = machines
    rep = make_user("rep")
    phone = one.test_client()
    assert phone.post("/login", data={"email": rep.email, "password": PASSWORD}).status_code == 303
    cookie = phone.get_cookie("__Host-crm_session").value
    elsewhere = two.test_client()
    elsewhere.set_cookie("__Host-crm_session", cookie, domain="localhost")
    assert elsewhere.get("/contacts").status_code == 200
    assert elsewhere.post("/logout").status_code == 303
    assert phone.get("/contacts").status_code == 302


def test_a_form_sent_to_two_machines_makes_one_contact(machines, make_user):
    one, two = machines
    rep = make_user("rep")
    clients = [one.test_client(), two.test_client()]
    for client in clients:
        client.post("/login", data={"email": rep.email, "password": PASSWORD})
    key = str(uuid.uuid4())
    answers = [c.post("/contacts", data={"name": "Twice Sent", "uuid": key}) for c in clients]
    assert [a.status_code for a in answers] == [303, 303]
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    with one.app_context():
        assert db.session.query(Contact).filter_by(name="Twice Sent").count() == 1


def test_a_poll_queued_on_one_machine_is_run_by_a_worker_of_another(machines, redis_url):
    one, two = machines
    with one.app_context():
        source = Source(name="Demo", kind="demo", config={"batch": 3})
        db.session.add(source)
        db.session.commit()
        source_id = source.id
        queue_name = f"test-{uuid.uuid4().hex}"
        connection = connect(redis_url)
        assert jobs.enqueue_poll(source_id, connection, queue_name) is not None
    with two.app_context():
        SimpleWorker([queue_name], connection=connection).work(burst=True)
        assert db.session.get(Source, source_id).mentions_stored == 3
