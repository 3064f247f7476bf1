"""Search gives the same pages whichever plan answers it.

On SQLite a term found in many contacts is answered by walking the name index
(bounded by WALK_ROWS), a rarer one through FTS5, and a walk that finds too few
matches falls back to FTS5. Every page must be exactly what plain filtering and
name order give, on either backend.
"""

import pytest

from webapp.extensions import db
from webapp.models import Contact
from webapp.services import contacts as service

LIMIT = 5


def _add(owner_id: int, name: str, company: str) -> None:
    contact = Contact(name=name, company=company, owner_id=owner_id)
    contact.sort_name = name.lower()
    contact.search_text = service.search_text_for(contact)
    db.session.add(contact)


def _all_pages(user, query: str, mine: bool = False) -> list[int]:
    ids: list[int] = []
    after = None
    while True:
        page = service.list_contacts(db.session, user, query, after=after, mine=mine, limit=LIMIT)
        ids += [c.id for c in page.contacts]
        if page.next_after is None:
            return ids
        after = page.next_after


@pytest.mark.parametrize(
    "query",
    [
        "acme",  # in every contact: the walk fills each page
        "zed",  # common, but all sort last: the walk finds nothing, FTS5 answers
        "mid",  # rare: FTS5 from the start
        "acme zed",  # every term must match
        "acme mi",  # a short term beside a long one
    ],
)
@pytest.mark.parametrize("mine", [False, True])
def test_search_pages_match_plain_filtering(app, make_user, monkeypatch, query, mine):
    rep = make_user("rep")
    other = make_user("rep")
    monkeypatch.setattr(service, "WALK_ROWS", {"sqlite": 40, "postgresql": 40})
    walks = []
    real_walk = service._walk_page
    monkeypatch.setattr(
        service, "_walk_page", lambda *a, **k: walks.append(1) or real_walk(*a, **k)
    )
    with app.app_context():
        for i in range(100):
            _add(rep.id if i % 3 else other.id, f"Anna {i:03d} Acme", "Acme Tools")
        for i in range(50):
            _add(rep.id if i % 2 else other.id, f"Zed {i:03d} Zedson", "Acme Zed")
        for i in range(6):
            _add(rep.id, f"Mia {i} Midway", "Acme Tools")
        db.session.commit()

        user = db.session.get(type(rep), rep.id)
        terms = query.split()
        expected = [
            c.id
            for c in db.session.scalars(db.select(Contact).order_by(Contact.sort_name, Contact.id))
            if all(
                t in c.search_text
                if len(t) >= 3
                else any(w.startswith(t) for w in c.search_text.split())
                for t in terms
            )
            and (not mine or c.owner_id == rep.id)
        ]
        assert expected
        assert _all_pages(user, query, mine) == expected
        if query in {"acme", "zed"}:
            assert walks, "the walk along the name index was not tried"
