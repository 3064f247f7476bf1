"""The schema comes from the migrations alone, on SQLite and PostgreSQL alike."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select, text

from webapp.extensions import db
from webapp.models import Contact
from webapp.models.base import utcnow


def _diff(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_object": lambda obj, name, type_, *_: (
                    not (
                        name
                        and (name.startswith("contacts_fts") or name == "ix_contacts_search_trgm")
                    )
                ),
            },
        )
        return compare_metadata(context, db.metadata)


def test_migrations_match_the_models(app):
    assert _diff(app) == []


def test_downgrade_and_upgrade_again(app, backend):
    with app.app_context():
        downgrade(revision="base")
        tables = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        upgrade()
        assert {"users", "contacts", "contact_handles", "activities"} <= set(
            inspect(db.engine).get_table_names()
        )
        if backend == "sqlite":
            assert "contacts_fts" in inspect(db.engine).get_table_names()
        else:
            indexes = {i["name"] for i in inspect(db.engine).get_indexes("contacts")}
            assert "ix_contacts_search_trgm" in indexes
    assert _diff(app) == []


def test_search_index_follows_edits_and_deletes(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Oldname Person", company="Firstco")
    login(rep)
    client.post(f"/contacts/{c.id}/edit", data={"name": "Newname Person", "company": "Secondco"})
    assert "Newname" in client.get("/contacts?q=newname").get_data(as_text=True)
    assert "Newname" not in client.get("/contacts?q=oldname").get_data(as_text=True)
    assert "Newname" in client.get("/contacts?q=secondco").get_data(as_text=True)
    assert "Newname" not in client.get("/contacts?q=firstco").get_data(as_text=True)


def test_upgrades_keep_data_that_refers_to_rebuilt_tables(app, backend):
    """SQLite rebuilds a table to drop a column: rows elsewhere that refer to it (a
    contact's owner) must not stop the upgrade, nor be lost."""
    from sqlalchemy import text

    with app.app_context():
        downgrade(revision="0003")
        db.session.execute(
            text(
                "INSERT INTO users (id, email, name, role, password_hash, session_version,"
                " created_at) VALUES (1, 'o@example.com', 'Owner', 'rep', 'x', 1,"
                " CURRENT_TIMESTAMP)"
            )
        )
        db.session.execute(
            text(
                "INSERT INTO contacts (id, name, sort_name, search_text, owner_id, created_at,"
                " updated_at) VALUES (1, 'Kept', 'kept', 'kept', 1, CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP)"
            )
        )
        db.session.commit()
        db.session.remove()
        upgrade()
        assert db.session.execute(text("SELECT owner_id FROM contacts")).scalar() == 1
        if backend == "sqlite":
            assert db.session.execute(text("PRAGMA foreign_key_check")).all() == []


def _old_row(i: int, name: str, **fields) -> dict:
    """A contact as revision 0004's code stored it: lower-cased, no job title searched."""
    phone = fields.get("phone")
    parts = [name, fields.get("company"), "".join(ch for ch in phone or "" if ch.isdigit())]
    return {
        "id": i,
        "name": name,
        "sort_name": name.lower(),
        "search_text": " ".join(p for p in parts if p).lower(),
        "company": fields.get("company"),
        "title": fields.get("title"),
        "phone": phone,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }


def test_upgrade_makes_contacts_stored_before_it_findable_as_typed(
    app, backend, client, login, make_user
):
    rep = make_user("rep")
    rows = [_old_row(i, f"Ørjan {i:04d} Ørsted", company="Vind") for i in range(1, 2501)]
    rows += [
        _old_row(3001, "王小明", company="北京贸易"),
        _old_row(3002, "Dana Ward", title="Procurement Lead"),
        _old_row(3003, "Intl Number", phone="+44 20 7946 3999"),
    ]
    with app.app_context():
        downgrade(revision="0004")
        db.session.execute(Contact.__table__.insert(), rows)
        db.session.commit()
        upgrade()
    login(rep)
    for query, name in [
        ("Orsted 0001", "Ørjan 0001 Ørsted"),
        ("orsted 2500", "Ørjan 2500 Ørsted"),
        ("小明", "王小明"),
        ("procurement", "Dana Ward"),
        ("020 7946 3999", "Intl Number"),
    ]:
        html = client.get("/contacts", query_string={"q": query}).get_data(as_text=True)
        assert name in html, query
    with app.app_context():
        # Every batch was rewritten, and on SQLite the FTS5 index followed each row.
        folded = db.session.scalar(
            select(func.count()).where(Contact.search_text.like("orjan % orsted vind"))
        )
        assert folded == 2500
        if backend == "sqlite":
            indexed = db.session.scalar(
                text("SELECT count(*) FROM contacts_fts WHERE contacts_fts MATCH '\"orsted\"'")
            )
            assert indexed == 2500
        db.session.commit()  # the reads above must not hold locks the downgrade waits on
        downgrade(revision="0004")
        old = db.session.execute(
            select(Contact.sort_name, Contact.search_text).where(Contact.id.in_([1, 3003]))
        ).all()
        assert sorted(old) == [
            ("intl number", "intl number 442079463999"),
            ("ørjan 0001 ørsted", "ørjan 0001 ørsted vind"),
        ]
        db.session.commit()
        upgrade()
