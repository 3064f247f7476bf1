"""The migration of invites, removed users, the audit log and soft-deleted sources runs
on a database with data in it, both ways, on SQLite and PostgreSQL alike."""

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from webapp.extensions import db

NOW = "2026-12-01 10:00:00"


def test_upgrade_and_downgrade_keep_the_data(app, backend):
    with app.app_context():
        downgrade(revision="0004")
        assert "audit_events" not in inspect(db.engine).get_table_names()
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, name, role, password_hash, created_at)"
                    " VALUES (1, 'ada@example.com', 'Ada', 'admin', 'x', :now),"
                    " (2, 'rita@example.com', 'Rita', 'rep', 'x', :now)"
                ),
                {"now": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO contacts (id, name, sort_name, search_text, owner_id,"
                    " created_at, updated_at) VALUES (1, 'Jane', 'jane', 'jane', 2, :now, :now)"
                ),
                {"now": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO sources (id, name, kind, config, enabled, interval_seconds,"
                    " mentions_stored, reads_this_month, created_at)"
                    " VALUES (1, 'Feed', 'demo', '{}', true, 300, 0, 0, :now),"
                    " (2, 'Gone', 'demo', '{}', true, 300, 0, 0, :now)"
                ),
                {"now": NOW},
            )
        upgrade()
        with db.engine.begin() as conn:
            assert conn.execute(text("SELECT owner_id FROM contacts")).scalar() == 2
            # Rita is removed and a source deleted, as the app does it.
            conn.execute(
                text(
                    "UPDATE users SET removed_at = :now, former_email = email,"
                    " email = 'removed:2' WHERE id = 2"
                ),
                {"now": NOW},
            )
            conn.execute(text("UPDATE sources SET deleted_at = :now WHERE id = 2"), {"now": NOW})
        downgrade(revision="0004")
        with db.engine.begin() as conn:
            users = conn.execute(text("SELECT id, disabled_at FROM users ORDER BY id")).all()
            assert users[0][1] is None and users[1][1] is not None
            assert conn.execute(text("SELECT id FROM sources")).scalars().all() == [1]
            assert conn.execute(text("SELECT owner_id FROM contacts")).scalar() == 2
        upgrade()
        assert {"audit_events", "account_links"} <= set(inspect(db.engine).get_table_names())
