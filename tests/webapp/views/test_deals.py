"""The deals pages: from a contact, the board, moving, won and lost, delete and undo,
the reports and the stages, as each role sees them."""

from __future__ import annotations

import re
from datetime import date

import pytest

from webapp.extensions import db
from webapp.models import Deal, DealChange, Stage


def _stage(app, name):
    with app.app_context():
        return db.session.query(Stage).filter_by(name=name).one().id


def _new_deal(client, contact, **data):
    page = client.get(f"/contacts/{contact.id}/deals/new").get_data(as_text=True)
    uuid = re.search(r'name="uuid" value="([^"]+)"', page).group(1)
    form = {"uuid": uuid, "title": "Fifty chairs", "amount": "1,234.50", "currency": "EUR"}
    form["stage_id"] = re.search(r'<option value="(\d+)" selected', page).group(1)
    form.update(data)
    return client.post(f"/contacts/{contact.id}/deals", data=form)


def _deal(app, title="Fifty chairs"):
    with app.app_context():
        deal = db.session.query(Deal).filter_by(title=title).one()
        db.session.refresh(deal)
        db.session.expunge(deal)
        return deal


def test_a_rep_makes_a_deal_from_a_contact_and_sees_it_there(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    contact = make_contact(rep, name="Ada Byron", company="Analytical Ltd")
    login(rep)
    response = _new_deal(client, contact)
    assert response.status_code == 303
    deal = _deal(app)
    assert (deal.amount_minor, deal.currency, deal.company) == (123450, "EUR", "Analytical Ltd")
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Fifty chairs" in page and "€1,234.50" in page
    assert "Fifty chairs" in client.get("/deals").get_data(as_text=True)


def test_sending_the_form_twice_makes_one_deal(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    contact = make_contact(rep)
    login(rep)
    page = client.get(f"/contacts/{contact.id}/deals/new").get_data(as_text=True)
    uuid = re.search(r'name="uuid" value="([^"]+)"', page).group(1)
    stage = re.search(r'<option value="(\d+)" selected', page).group(1)
    form = {"uuid": uuid, "title": "Once", "amount": "10", "currency": "EUR", "stage_id": stage}
    assert client.post(f"/contacts/{contact.id}/deals", data=form).status_code == 303
    assert client.post(f"/contacts/{contact.id}/deals", data=form).status_code == 303
    with app.app_context():
        assert db.session.query(Deal).filter_by(title="Once").count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "", "Enter a title"),
        ("amount", "twelve", "Enter an amount in figures"),
        ("amount", "1.2.3,4,5", "can be read more than one way"),
        ("amount", "12.345", "at most 2 decimals"),
        ("amount", "-5", "zero or more"),
        ("currency", "XYZ", "ISO 4217"),
        ("expected_close", "31/12/2027", "like 2027-03-31"),
        ("expected_close", "1850-01-01", "from 2000"),
        ("stage_id", "999999", "Choose a stage"),
        ("title", "x" * 201, "At most 200 characters"),
    ],
)
def test_bad_input_is_named_and_nothing_is_made(
    app, client, login, make_user, make_contact, field, value, message
):
    rep = make_user("rep")
    contact = make_contact(rep)
    login(rep)
    data = {field: value}
    if field == "amount" and value == "12.345":
        data["amount"] = "12.3456"
    response = _new_deal(client, contact, **data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Deal).count() == 0


def test_japanese_yen_have_no_decimals_and_kuwaiti_dinars_three(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    contact = make_contact(rep)
    login(rep)
    assert (
        _new_deal(client, contact, title="Yen", amount="1,234", currency="JPY").status_code == 303
    )
    assert (
        _new_deal(client, contact, title="Dinar", amount="1.250", currency="KWD").status_code == 303
    )
    bad = _new_deal(client, contact, title="Bad", amount="12.5", currency="JPY")
    assert "no smaller unit" in bad.get_data(as_text=True)
    assert _deal(app, "Yen").amount_minor == 1234
    assert _deal(app, "Dinar").amount_minor == 1250
    assert "1.250 KWD" in client.get(f"/deals/{_deal(app, 'Dinar').id}").get_data(as_text=True)


def test_moving_writes_history_and_a_stale_move_is_refused(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    contact = make_contact(rep)
    login(rep)
    _new_deal(client, contact)
    deal = _deal(app)
    meeting = _stage(app, "Meeting booked")
    response = client.post(
        f"/deals/{deal.id}/move", data={"stage_id": meeting, "from_stage": deal.stage_id}
    )
    assert response.status_code == 303
    moved = _deal(app)
    assert moved.stage_id == meeting and moved.stage_entered_at > deal.stage_entered_at
    # The same move again from the old page: someone (here, the same rep) moved it.
    stale = client.post(
        f"/deals/{deal.id}/move",
        data={"stage_id": _stage(app, "Negotiation"), "from_stage": deal.stage_id},
        headers={"HX-Request": "true"},
    )
    assert stale.status_code == 409
    assert "Meeting booked meanwhile" in stale.get_data(as_text=True)
    assert _deal(app).stage_id == meeting
    with app.app_context():
        changes = db.session.query(DealChange).filter_by(deal_id=deal.id, field="stage").all()
        assert [(c.before, c.after) for c in changes] == [
            (None, str(deal.stage_id)),
            (str(deal.stage_id), str(meeting)),
        ]


def test_a_board_move_between_two_cards_returns_the_card(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    contact = make_contact(rep)
    login(rep)
    for title in ("A", "B", "C"):
        _new_deal(client, contact, title=title)
    a, b, c = (_deal(app, t) for t in "ABC")
    response = client.post(
        f"/deals/{c.id}/move",
        data={"stage_id": a.stage_id, "from_stage": c.stage_id, "prev_id": a.id, "next_id": b.id},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert f'id="deal-{c.id}"' in response.get_data(as_text=True)
    assert a.position < _deal(app, "C").position < b.position
    board = client.get("/deals").get_data(as_text=True)
    assert board.index(">A<") < board.index(">C<") < board.index(">B<")


def test_a_board_move_and_a_win_send_back_the_new_sums_of_the_columns_they_touched(
    app, client, login, make_user, make_contact
):
    """A manager's board shows everyone's totals, or their own with mine=1: what a move
    sends back counts the same way."""
    rep, manager = make_user("rep"), make_user("manager")
    login(rep)
    _new_deal(client, make_contact(rep), title="Rep's", amount="100")
    client.post("/logout")
    login(manager)
    _new_deal(client, make_contact(manager), title="Mine", amount="10")
    mine = _deal(app, "Mine")
    meeting = _stage(app, "Meeting booked")

    def sums(html: str) -> dict[int, str]:
        found = re.findall(r'<p class="column-sum" data-stage="(\d+)">(.*?)</p>', html)
        return {int(i): re.sub(r"<[^>]+>", "", text) for i, text in found}

    moved = client.post(
        f"/deals/{mine.id}/move",
        data={"stage_id": meeting, "from_stage": mine.stage_id},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert moved.lstrip().startswith("<li") and f'id="deal-{mine.id}"' in moved
    assert sums(moved) == {mine.stage_id: "1 · €100.00", meeting: "1 · €10.00"}
    won = client.post(
        f"/deals/{mine.id}/win", data={"mine": "1"}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert sums(won) == {meeting: "0 · 0"}


def test_won_and_lost_close_the_deal_and_a_loss_needs_a_reason(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    contact = make_contact(rep)
    login(rep)
    _new_deal(client, contact)
    deal = _deal(app)
    refused = client.post(f"/deals/{deal.id}/lose", data={"lost_note": "too dear"})
    assert refused.status_code == 422
    assert "Choose why the deal was lost" in refused.get_data(as_text=True)
    assert _deal(app).closed_at is None
    lost = client.post(
        f"/deals/{deal.id}/lose", data={"lost_reason": "Price", "lost_note": "too dear"}
    )
    assert lost.status_code == 303
    deal = _deal(app)
    assert deal.closed_at is not None and (deal.lost_reason, deal.lost_note) == (
        "Price",
        "too dear",
    )
    client.post(f"/deals/{deal.id}/reopen", data={})
    reopened = _deal(app)
    assert reopened.closed_at is None and reopened.lost_reason is None
    client.post(f"/deals/{deal.id}/win")
    assert _deal(app).closed_at is not None
    assert "Won" in client.get(f"/deals/{deal.id}").get_data(as_text=True)


def test_a_later_close_date_counts_as_a_push(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    contact = make_contact(rep)
    login(rep)
    _new_deal(client, contact, expected_close="2027-01-31")
    deal = _deal(app)
    for day, pushes in (("2027-02-28", 1), ("2027-01-15", 1), ("2027-03-31", 2), ("2027-04-30", 3)):
        form = {
            "title": deal.title,
            "amount": "1234.50",
            "currency": "EUR",
            "stage_id": deal.stage_id,
            "expected_close": day,
        }
        assert client.post(f"/deals/{deal.id}/edit", data=form).status_code == 303
        assert _deal(app).close_date_pushes == pushes
    page = client.get("/deals/stuck").get_data(as_text=True)
    assert "moved later 3 times" in page


def test_delete_and_undo(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    contact = make_contact(rep)
    login(rep)
    _new_deal(client, contact)
    deal = _deal(app)
    client.post(f"/deals/{deal.id}/delete")
    board = client.get("/deals").get_data(as_text=True)
    assert f'id="deal-{deal.id}"' not in board and "Undo" in board
    assert client.get(f"/deals/{deal.id}").status_code == 404
    client.post(f"/deals/{deal.id}/restore")
    assert f'id="deal-{deal.id}"' in client.get("/deals").get_data(as_text=True)


def test_reps_see_and_move_only_their_own(app, client, login, make_user, make_contact):
    rep, other = make_user("rep"), make_user("rep")
    contact = make_contact(rep)
    login(rep)
    _new_deal(client, contact, title="Mine")
    client.post("/logout")
    login(other)
    deal = _deal(app, "Mine")
    assert client.get(f"/deals/{deal.id}").status_code == 403
    assert client.post(f"/deals/{deal.id}/win").status_code == 403
    assert "Mine" not in client.get("/deals").get_data(as_text=True)
    assert "Mine" not in client.get("/deals/pipeline").get_data(as_text=True)


def test_a_marketer_reads_but_does_not_move(app, client, login, make_user, make_contact):
    rep, marketer = make_user("rep"), make_user("marketer")
    contact = make_contact(rep)
    login(rep)
    _new_deal(client, contact, title="Readable")
    client.post("/logout")
    login(marketer)
    deal = _deal(app, "Readable")
    page = client.get("/deals").get_data(as_text=True)
    assert "Readable" in page and "stage-pick" not in page
    assert (
        client.post(f"/deals/{deal.id}/move", data={"stage_id": deal.stage_id}).status_code == 403
    )
    assert client.get("/deals/forecast").status_code == 200
    assert client.get("/deals/team").status_code == 403
    assert client.get("/deals/stages").status_code == 403


def test_what_people_typed_is_shown_escaped(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    contact = make_contact(rep, name="<i>Eve</i>")
    login(rep)
    _new_deal(client, contact, title="<script>alert(1)</script>", next_step="<b>bold</b>")
    deal = _deal(app, "<script>alert(1)</script>")
    for path in ("/deals", f"/deals/{deal.id}", f"/contacts/{contact.id}", "/deals/stuck"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in page and "<b>bold</b>" not in page, path
        assert "<i>Eve</i>" not in page, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/deals").get_data(as_text=True)


def test_a_column_pages_on_as_rows_for_htmx_and_as_a_page_without(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    contact = make_contact(rep)
    login(rep)
    for i in range(15):
        _new_deal(client, contact, title=f"Deal {i:02d}")
    board = client.get("/deals").get_data(as_text=True)
    more = re.search(r'href="(/deals/columns/\d+\?after=\d+)"', board).group(1)
    assert "Deal 11" in board and "Deal 12" not in board
    rows = client.get(more, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Deal 12" in rows and "Deal 14" in rows and "<html" not in rows
    page = client.get(more).get_data(as_text=True)
    assert "<html" in page and "Deal 14" in page
    assert client.get(more.split("?")[0] + "?after=999999").status_code == 404


def test_managers_see_the_forecast_by_owner_and_the_team(
    app, client, login, make_user, make_contact
):
    rep, manager = make_user("rep", name="Rosa Rep"), make_user("manager")
    contact = make_contact(rep)
    login(rep)
    _new_deal(client, contact, expected_close=date.today().isoformat())
    assert "By owner" not in client.get("/deals/forecast").get_data(as_text=True)
    assert "Rosa Rep" in client.get("/deals/team").get_data(as_text=True)
    client.post("/logout")
    login(manager)
    forecast = client.get("/deals/forecast").get_data(as_text=True)
    assert "By owner" in forecast and "Rosa Rep" in forecast and "€246.90" in forecast
    team = client.get("/deals/team").get_data(as_text=True)
    assert "Rosa Rep" in team and manager.name in team


def test_admins_edit_stages_through_the_page(app, client, login, make_user, make_contact):
    admin = make_user("admin")
    login(admin)
    page = client.get("/deals/stages").get_data(as_text=True)
    assert page.count('class="card stage-edit"') == 6
    negotiation = _stage(app, "Negotiation")
    fields = {
        "name": "Contract",
        "position": "4",
        "probability": "90",
        "rotting_days": "30",
        "kind": "open",
    }
    assert client.post(f"/deals/stages/{negotiation}", data=fields).status_code == 303
    with app.app_context():
        stage = db.session.get(Stage, negotiation)
        assert (stage.name, stage.probability, stage.rotting_days) == ("Contract", 90, 30)
    bad = client.post(f"/deals/stages/{negotiation}", data={**fields, "probability": "101"})
    assert bad.status_code == 422 and "from 0 to 100" in bad.get_data(as_text=True)
    added = client.post("/deals/stages", data={**fields, "name": "Trial", "position": "5"})
    assert added.status_code == 303
    trial = _stage(app, "Trial")
    assert client.post(f"/deals/stages/{trial}/delete").status_code == 303
    with app.app_context():
        assert db.session.get(Stage, trial) is None
