"""`crm mentions import`: what it stores, what it counts as duplicates, and each
rejected line reported with its number."""

import json
from datetime import UTC, datetime

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Mention


def test_mentions_import_reports_stored_duplicates_and_rejected_lines(
    app, tmp_path, make_user, make_contact
):
    make_contact(make_user("rep"), name="Imported Match", handle_x="importfan")
    lines = [
        json.dumps(
            {
                "source": "x",
                "external_id": "1",
                "author_handle": "importfan",
                "author_name": "F",
                "text": "love it",
                "created_at": "2026-11-20T10:00:00Z",
                "url": "https://x.com/importfan/status/1",
                "author_followers": 10,
            }
        ),
        json.dumps(
            {
                "source": "x",
                "external_id": "1",
                "author_handle": "importfan",
                "text": "love it",
                "created_at": "2026-11-20T10:00:00Z",
            }
        ),
        "{not json",
        json.dumps(
            {
                "source": "x",
                "external_id": "2",
                "author_handle": "a",
                "text": "t",
                "created_at": "yesterday",
            }
        ),
        "",
        json.dumps(
            {
                "source": "myspace",
                "external_id": "3",
                "author_handle": "a",
                "text": "t",
                "created_at": "2026-11-20T10:00:00Z",
            }
        ),
        json.dumps(
            {
                "external_id": "4",
                "author_handle": "b",
                "text": "hello",
                "created_at": "2026-11-20T10:00:00+02:00",
                "mood": "ok",
            }
        ),
        # Half of a surrogate pair, escaped: valid JSON, but no database stores it.
        '{"source": "x", "external_id": "5", "author_handle": "c", "text": "half \\ud83d",'
        ' "created_at": "2026-11-20T10:00:00Z"}',
        # A NUL character, which PostgreSQL text refuses.
        '{"source": "x", "external_id": "6", "author_handle": "c", "text": "nul \\u0000",'
        ' "created_at": "2026-11-20T10:00:00Z"}',
    ]
    path = tmp_path / "mentions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = app.test_cli_runner().invoke(args=["mentions", "import", str(path)])
    assert result.exit_code == 1
    assert "2 stored, 1 duplicate, 5 rejected (1 attached to contacts)." in result.output
    assert "line 3: not valid JSON" in result.output
    assert "line 4: created_at is not an ISO 8601 time" in result.output
    assert "line 6: source must be one of" in result.output
    assert "line 8: text has an unpaired surrogate escape" in result.output
    assert "line 9: text has a NUL character" in result.output
    with app.app_context():
        imported = db.session.scalar(select(Mention).where(Mention.external_id == "4"))
        assert imported.network == "import" and imported.extra == {"mood": "ok"}
        assert imported.posted_at == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    again = app.test_cli_runner().invoke(args=["mentions", "import", str(path)])
    assert "0 stored, 3 duplicate, 5 rejected" in again.output
