"""Search gives the same pages whichever plan answers it.

On SQLite a term found in many contacts is answered by walking the name index
(bounded by WALK_ROWS), a rarer one through FTS5, and a walk that finds too few
matches falls back to FTS5. Every page must be exactly what plain filtering and
name order give, on either backend: for folded names, job titles, phone numbers in
any form and short CJK terms as for plain words.
"""

import pytest

from webapp.extensions import db
from webapp.models import Contact
from webapp.services import contact_search as search
from webapp.services import contacts as service
from webapp.services.search_text import sort_name_for

LIMIT = 5


def _add(owner_id: int, name: str, company: str, **fields: str) -> None:
    contact = Contact(name=name, company=company, owner_id=owner_id, **fields)
    contact.sort_name = sort_name_for(name)
    contact.search_text = service.search_text_for(contact)
    db.session.add(contact)


def _all_pages(user, query: str, mine: bool = False) -> list[int]:
    ids: list[int] = []
    after = None
    while True:
        page = search.list_contacts(db.session, user, query, after=after, mine=mine, limit=LIMIT)
        ids += [c.id for c in page.contacts]
        if page.next_after is None:
            return ids
        after = page.next_after


def _plain(rep_id: int, other_id: int) -> None:
    for i in range(100):
        _add(rep_id if i % 3 else other_id, f"Anna {i:03d} Acme", "Acme Tools")
    for i in range(50):
        _add(rep_id if i % 2 else other_id, f"Zed {i:03d} Zedson", "Acme Zed")
    for i in range(6):
        _add(rep_id, f"Mia {i} Midway", "Acme Tools")


def _typed(rep_id: int, other_id: int) -> None:
    """Accented names with job titles and numbers, and CJK names, which sort last."""
    for i in range(50):
        _add(rep_id if i % 3 else other_id, f"Anna {i:03d} Acme", "Acme Tools")
    for i in range(80):
        _add(
            rep_id if i % 2 else other_id,
            f"Ørjan {i:03d} Ørsted",
            "Vind",
            title="Procurement Lead" if i % 4 else "Buyer",
            phone=f"+44 20 7946 {i:04d}",
        )
    for i in range(120):
        name = f"王小明 {i:03d}" if i % 2 else f"李明 {i:03d}"
        _add(rep_id if i % 3 else other_id, name, "北京贸易")


@pytest.mark.parametrize(
    # terms: what plain filtering looks for in the search text, as search folds the query
    ("data", "query", "terms", "walked"),
    [
        (_plain, "acme", ["acme"], True),  # in every contact: the walk fills each page
        (
            _plain,
            "zed",
            ["zed"],
            True,
        ),  # common, but all sort last: the walk finds nothing, FTS5 answers
        (_plain, "mid", ["mid"], False),  # rare: FTS5 from the start
        (_plain, "acme zed", ["acme", "zed"], False),  # every term must match
        (_plain, "acme mi", ["acme", "mi"], False),  # a short term beside a long one
        (_typed, "ØRSTED", ["orsted"], True),  # folded to orsted: common, in names in the middle
        (
            _typed,
            "ør 00",
            ["or", "00"],
            False,
        ),  # short folded terms: the start of the name, and of a word
        (_typed, "procurement lead", ["procurement", "lead"], False),  # a job title
        (
            _typed,
            "020 7946 0013",
            ["02079460013"],
            False,
        ),  # a national number finds the stored +44 form
        (_typed, "+44 20 7946 0013", ["2079460013"], False),
        (_typed, "7946 001", ["7946001"], False),  # digits as typed: part of a number
        (_typed, "明", [" 明 "], True),  # a one-character CJK term, common, in names that sort last
        (_typed, "小明", [" 小明 "], False),  # two characters
        (_typed, "王小明 00", ["王小明", "00"], False),  # a CJK name and a short term
    ],
)
@pytest.mark.parametrize("mine", [False, True])
def test_search_pages_match_plain_filtering(app, make_user, monkeypatch, data, query, terms,
                                            walked, mine):  # fmt: skip
    rep = make_user("rep")
    other = make_user("rep")
    monkeypatch.setattr(search, "WALK_ROWS", {"sqlite": 40, "postgresql": 40})
    walks = []
    real_walk = search._walk_page
    monkeypatch.setattr(search, "_walk_page", lambda *a, **k: walks.append(1) or real_walk(*a, **k))
    with app.app_context():
        data(rep.id, other.id)
        db.session.commit()

        user = db.session.get(type(rep), rep.id)
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
        if walked:
            assert walks, "the walk along the name index was not tried"
