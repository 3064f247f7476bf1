"""Support's triage, as its people use it: the open queue most urgent first with why,
statuses with undo and snoozes that wake, assignment that two people cannot both win,
internal notes, label corrections that never touch VADER's score, and who may do what."""

import html
import itertools
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from social import sentiment
from tests.conftest import sign_in
from tests.webapp.incoming import count, incoming
from webapp.extensions import db
from webapp.models import (
    AuditEvent,
    Contact,
    Deal,
    LabelCorrection,
    Mention,
    MentionNote,
    Stage,
    User,
)
from webapp.models.base import utcnow
from webapp.models.triage import STATUSES
from webapp.services import contacts, deals, mentions, triage

FRAGMENT = {"HX-Request": "true", "HX-Request-Type": "partial"}
ANGRY = "This is the worst service ever, totally broken and useless!"
HAPPY = "Love it, works great, thank you!"


def _ingest(app, *items):
    with app.app_context():
        stored = mentions.ingest(db.session, list(items)).stored
        db.session.commit()
        return stored


def _csrf(client, url):
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def _post(client, url, back, **form):
    return client.post(url, data={"csrf_token": _csrf(client, back), **form})


def _mention(app, mention_id) -> Mention:
    with app.app_context():
        mention = db.session.get(Mention, mention_id)
        db.session.expunge(mention)
        return mention


def _order(page: str) -> list[str]:
    return re.findall(r'<li class="row mention" data-id="(\d+)"', page)


def test_the_open_queue_puts_the_angriest_loudest_first_and_says_why(app, client, login, make_user):
    now = utcnow()
    calm, angry, loud = _ingest(
        app,
        incoming("1", handle="calm", text=HAPPY, created_at=now),
        incoming("2", handle="angry", text=ANGRY, created_at=now),
        incoming("3", handle="loud", text=ANGRY, author_followers=2_000_000, created_at=now),
    )
    login(make_user("support"))
    page = client.get("/inbox/").get_data(as_text=True)
    assert _order(page) == [str(loud), str(angry), str(calm)]
    assert "2,000,000 followers +25" in page and "negative (" in page
    # The counts in the inbox's navigation: open, mine, unassigned.
    assert re.search(r"Open<span class=\"count\">3<", page)
    assert re.search(r"Mine<span class=\"count\">0<", page)
    assert re.search(r"Unassigned<span class=\"count\">3<", page)
    # The mention page says the same, part by part.
    detail = client.get(f"/inbox/{loud}").get_data(as_text=True)
    assert "priority " + str(_mention(app, loud).priority) in detail


def test_a_customer_outranks_a_stranger_and_a_won_deal_ranks_them_again(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    customer = make_contact(rep, name="Cora Customer", handle_x="cora")
    now = utcnow()
    stranger_id, cora_id = _ingest(
        app,
        incoming("1", handle="stranger", text=ANGRY, created_at=now),
        incoming("2", handle="cora", text=ANGRY, created_at=now),
    )
    assert _mention(app, cora_id).priority == _mention(app, stranger_id).priority + 5
    with app.app_context():
        stage = db.session.scalar(select(Stage).where(Stage.kind == "open"))
        deal, _ = deals.create_deal(
            db.session,
            db.session.get(User, rep.id),
            db.session.get(Contact, customer.id),
            {"title": "Fleet", "amount": "1000", "currency": "EUR", "stage_id": str(stage.id)},
            str(uuid.uuid4()),
            "EUR",
        )
        db.session.commit()
        assert _mention(app, cora_id).priority_parts["customer"] == 15
        deals.win_deal(db.session, db.session.get(User, rep.id), deal)
        db.session.commit()
    assert _mention(app, cora_id).priority_parts["customer"] == 20
    login(make_user("support"))
    page = client.get("/inbox/").get_data(as_text=True)
    assert _order(page)[0] == str(cora_id) and "customer +20" in page


def test_resolve_undo_pending_and_a_snooze_that_wakes(app, client, login, make_user):
    (mention_id,) = _ingest(app, incoming("1", text=ANGRY))
    login(make_user("support"))
    url = f"/inbox/{mention_id}"
    r = _post(client, f"{url}/status", url, status="resolved")
    assert r.status_code == 303
    assert _mention(app, mention_id).status == "resolved"
    page = client.get(url).get_data(as_text=True)
    assert "Marked resolved." in page and "Undo" in page
    assert str(mention_id) not in _order(client.get("/inbox/").get_data(as_text=True))
    assert _order(client.get("/inbox/?status=resolved").get_data(as_text=True)) == [str(mention_id)]
    _post(client, f"{url}/status", url, status="open")
    assert _mention(app, mention_id).status == "open"

    # A snooze in the past, or with no time, changes nothing and says why.
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    _post(client, f"{url}/status", url, status="snoozed", until=past)
    assert "Snooze it until a time in the future." in client.get(url).get_data(as_text=True)
    _post(client, f"{url}/status", url, status="snoozed", until="")
    assert _mention(app, mention_id).status == "open"

    soon = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    # A quick choice as htmx sends it: the empty field first, the tapped button's time after.
    _post(client, f"{url}/status", url, status="snoozed", until=["", soon.isoformat()])
    snoozed = _mention(app, mention_id)
    assert snoozed.status == "snoozed" and snoozed.snoozed_until == soon
    assert snoozed.sla_paused_at is not None  # the clock stands still while snoozed
    with app.app_context():
        assert triage.wake_snoozed(db.session, now=soon - timedelta(minutes=1)) == 0
        assert triage.wake_snoozed(db.session, now=soon + timedelta(seconds=1)) == 1
        db.session.commit()
    woken = _mention(app, mention_id)
    assert woken.status == "open" and woken.snoozed_until is None
    with app.app_context():
        changes = db.session.scalars(
            select(AuditEvent.changes).where(AuditEvent.action == "mention.status")
        ).all()
    assert [c["status"] for c in changes][-1] == ["snoozed", "open"]


def test_a_new_post_by_the_author_reopens_what_waits_on_them(app, client, login, make_user):
    first, other = _ingest(
        app, incoming("1", handle="waiting", text=ANGRY), incoming("2", handle="else")
    )
    login(make_user("support"))
    for mention_id in (first, other):
        url = f"/inbox/{mention_id}"
        _post(client, f"{url}/status", url, status="pending")
    _ingest(app, incoming("3", handle="waiting", text="Still broken, any news?"))
    assert _mention(app, first).status == "open"
    assert _mention(app, other).status == "pending"


def test_assignment_is_one_result_when_two_people_assign_at_once(app, make_user):
    (mention_id,) = _ingest(app, incoming("1", text=ANGRY))
    alice, bob = make_user("support", name="Alice Agent"), make_user("support", name="Bob Agent")
    first, second = app.test_client(), app.test_client()
    sign_in(first, alice)
    sign_in(second, bob)
    url = f"/inbox/{mention_id}"
    # Both loaded the page while it was unassigned, then both tapped "Assign to me".
    tokens = [_csrf(c, url) for c in (first, second)]
    for c, token in zip((first, second), tokens, strict=True):
        c.post(f"{url}/assign", data={"csrf_token": token, "assignee": "me", "seen": "none"})
    assert _mention(app, mention_id).assignee_id == alice.id
    page = second.get(url).get_data(as_text=True)
    assert "Someone changed it first: it is now assigned to Alice Agent." in page
    mine = first.get("/inbox/?status=open&assignee=me")
    assert _order(mine.get_data(as_text=True)) == [str(mention_id)]
    assert _order(second.get("/inbox/?assignee=me").get_data(as_text=True)) == []
    assert _order(second.get("/inbox/?assignee=none").get_data(as_text=True)) == []


def test_only_the_support_team_can_be_assigned(app, client, login, make_user):
    (mention_id,) = _ingest(app, incoming("1"))
    rep = make_user("rep")
    login(make_user("support"))
    url = f"/inbox/{mention_id}"
    _post(client, f"{url}/assign", url, assignee=str(rep.id), seen="none")
    assert "Choose someone on the support team." in client.get(url).get_data(as_text=True)
    assert _mention(app, mention_id).assignee_id is None
    assert _post(client, f"{url}/assign", url, assignee="x1").status_code == 400


def test_notes_are_kept_escaped_and_empty_ones_refused(app, client, login, make_user):
    (mention_id,) = _ingest(app, incoming("1"))
    login(make_user("support", name="Nora Notes"))
    url = f"/inbox/{mention_id}"
    _post(client, f"{url}/notes", url, note="   ")
    assert "Write the note first." in client.get(url).get_data(as_text=True)
    _post(client, f"{url}/notes", url, note="Called them <b>back</b>, refund on its way")
    page = client.get(url).get_data(as_text=True)
    assert "Called them &lt;b&gt;back&lt;/b&gt;, refund on its way" in page
    assert "Nora Notes" in page
    with app.app_context():
        assert count(MentionNote) == 1


def test_a_correction_is_shown_counted_and_leaves_vader_alone(app, client, login, make_user):
    (mention_id,) = _ingest(app, incoming("1", text="Oh great, another outage. Just great."))
    scored = _mention(app, mention_id)
    login(make_user("support", name="Sam Support"))
    url = f"/inbox/{mention_id}"
    _post(client, f"{url}/label", url, label="negative", reason="sarcasm")
    page = client.get(url).get_data(as_text=True)
    assert "Corrected to <strong>negative</strong> by Sam Support" in page and "sarcasm" in page
    after = _mention(app, mention_id)
    assert (after.compound, after.label) == (scored.compound, scored.label)
    assert after.priority_parts["sentiment"] >= 20 > scored.priority_parts["sentiment"]
    _post(client, f"{url}/label", url, label="sideways")
    assert "Choose positive, neutral or negative." in client.get(url).get_data(as_text=True)
    with app.app_context():
        assert count(LabelCorrection) == 1
        (row,) = triage.agreement(db.session)
    assert row == {"network": "x", "language": "unknown", "checked": 1, "agreed": 0}


@pytest.mark.parametrize("role", ["rep", "marketer"])
def test_readers_read_but_do_not_triage(app, client, login, make_user, role):
    (mention_id,) = _ingest(app, incoming("1", text=ANGRY))
    login(make_user(role))
    url = f"/inbox/{mention_id}"
    page = client.get(url).get_data(as_text=True)
    assert "Assign to me" not in page and "It is negative" not in page
    assert _order(client.get("/inbox/").get_data(as_text=True)) == [str(mention_id)]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    token = token[1] if token else ""
    for action, form in (
        ("status", {"status": "resolved"}),
        ("assign", {"assignee": "me"}),
        ("notes", {"note": "hi"}),
        ("label", {"label": "positive"}),
    ):
        r = client.post(f"{url}/{action}", data={"csrf_token": token, **form})
        assert r.status_code in (400, 403), action
    before = _mention(app, mention_id)
    assert (before.status, before.assignee_id) == ("open", None)


def test_scrolling_the_queue_shows_every_item_once_most_urgent_first(app, client, login, make_user):
    # 70 items over three priorities, many posted at the same second, so that pages end
    # inside a priority and inside a second.
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    _ingest(
        app,
        *[
            incoming(
                str(i),
                text=ANGRY,
                author_followers=10 ** (2 * (i % 3)),
                created_at=start + timedelta(seconds=i // 4),
            )
            for i in range(70)
        ],
    )
    with app.app_context():
        stored = sorted(
            db.session.scalars(select(Mention)), key=lambda m: (-m.priority, m.posted_at, m.id)
        )
        assert len({m.priority for m in stored}) == 3
        expected = [str(m.id) for m in stored]
    login(make_user("support"))
    seen, url, headers = [], "/inbox/", None
    while url:
        page = client.get(url, headers=headers).get_data(as_text=True)
        seen += _order(page)
        more = re.search(r'<li class="more">\s*<a href="([^"]+)"', page)
        url, headers = (html.unescape(more[1]), FRAGMENT) if more else (None, None)
    assert seen == expected and len(set(seen)) == 70


# What an inbox page may cost, whatever it shows: the session's user (with its unread
# count), the page's items, their contacts, the team (the bulk actions assign to it and
# the items' assignees come from it; a later page loads the assignees instead), the
# navigation's counts, the sources over their cap and the SLA policy. One statement per
# row shown (an N+1) would pass it by the page's size.
PAGE_STATEMENTS = 7
VIEWS = ("", "assignee=me", "assignee=none", *(f"status={s}" for s in (*STATUSES, "all")))
FILTERS = ("", "network=x", "label=negative", "network=x&label=negative")


def test_every_inbox_page_costs_a_fixed_number_of_statements_whatever_view_filter_or_page(
    app, client, login, make_user, make_contact
):
    owner = make_user("rep")
    agents = [make_user("support", name=f"Agent {i}") for i in range(5)]
    for i in range(7):
        make_contact(owner, name=f"Author {i}", handle_x=f"author{i}")
    # 40 items in each status, so that each view has a second page: most on X by the 7
    # contacts, one in ten on Mastodon by strangers, one in seven happy; two in three
    # held by one of the 5 agents.
    ids = _ingest(
        app,
        *[
            incoming(str(i), network="mastodon", handle=f"stranger{i}")
            if i % 10 == 9
            else incoming(str(i), handle=f"author{i % 7}", text=HAPPY if i % 7 == 3 else ANGRY)
            for i in range(40 * len(STATUSES))
        ],
    )
    with app.app_context():
        for n, mention_id in enumerate(ids):
            mention = db.session.get(Mention, mention_id)
            mention.status = STATUSES[n % len(STATUSES)]
            mention.snoozed_until = utcnow() + timedelta(days=1)
            mention.assignee_id = agents[n % 5].id if n % 3 else None
        db.session.commit()
    login(agents[0])
    client.get("/inbox/")  # the first request of a session loads what later ones keep
    with app.app_context():
        engine = db.engine

    def statements(url, headers=None):
        seen = []

        def record(*_args):
            seen.append(1)

        event.listen(engine, "before_cursor_execute", record)
        try:
            page = client.get(url, headers=headers)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert page.status_code == 200, url
        return len(seen), page.get_data(as_text=True)

    second_pages = 0
    for view, filters in itertools.product(VIEWS, FILTERS):
        url = "/inbox/?" + "&".join(part for part in (view, filters) if part)
        cost, page = statements(url)
        assert _order(page), url
        assert cost <= PAGE_STATEMENTS, (url, cost)
        if not filters and view not in ("assignee=none", "status=all"):
            # The rows name several people: a statement for each would pass the budget.
            rows = page.split('id="mention-rows"', 1)[1]
            assert sum(f"Agent {i}" in rows for i in range(5)) >= (1 if "me" in view else 3)
            assert sum(f"Author {i}" in rows for i in range(7)) >= 3, url
        more = re.search(r'<li class="more">\s*<a href="([^"]+)"', page)
        if more:
            second_pages += 1
            cost, page = statements(html.unescape(more[1]), FRAGMENT)
            assert _order(page), url
            assert cost <= PAGE_STATEMENTS, (url, "the second page", cost)
    assert second_pages >= len(VIEWS)


def test_mentions_from_before_the_upgrade_are_ranked_by_the_command(app):
    (mention_id,) = _ingest(app, incoming("1", text=ANGRY, author_followers=5000))
    with app.app_context():
        mention = db.session.get(Mention, mention_id)
        ranked = mention.priority
        mention.priority, mention.priority_parts = 0, None  # as the upgrade leaves them
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["triage", "refresh"])
    assert result.exit_code == 0 and "Ranked 1 mentions again." in result.output
    assert _mention(app, mention_id).priority == ranked > 0


def test_the_sweep_lets_waiting_count_and_wakes_snoozes(app):
    from workers import jobs

    posted = utcnow() - timedelta(hours=12)
    (mention_id,) = _ingest(app, incoming("1", text=HAPPY, created_at=posted))
    assert _mention(app, mention_id).priority_parts["waiting"] == 8  # half a day of 24 h
    with app.app_context():
        mention = db.session.get(Mention, mention_id)
        mention.priority_parts = {**mention.priority_parts, "waiting": 0}
        mention.status, mention.snoozed_until = "snoozed", utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert jobs.triage_sweep() == {
            "woken": 1,
            "assigned": 0,
            "refreshed": 1,
            "requeued": 0,
            "warned": 0,
            "breached": 0,
        }
    woken = _mention(app, mention_id)
    assert woken.status == "open" and woken.priority_parts["waiting"] == 8


def test_the_mention_page_explains_the_score_word_by_word(app, client, login, make_user):
    text = "The coffee is not good, but the staff are VERY friendly!"
    (mention_id,) = _ingest(app, incoming("1", text=text))
    login(make_user("rep"))  # reading the explanation is for everyone who reads mentions
    page = client.get(f"/inbox/{mention_id}").get_data(as_text=True)
    assert "Why VADER scored it so" in page
    explained = sentiment.explain(text)
    for c in explained.contributions:
        assert f'<td>{c.word}</td><td class="num">{c.valence:+.3f}</td>' in page
    assert "negated by &#39;not&#39;" in page and "booster &#39;VERY&#39; before it" in page
    assert "Punctuation (1 &#39;!&#39; and 0 &#39;?&#39;) adds emphasis" in page
    assert f"{_mention(app, mention_id).compound:+.3f}" in page


def test_the_author_panel_shows_what_they_wrote_before_and_what_they_are_worth(
    app, client, login, make_user
):
    rep = make_user("rep")
    now = utcnow()
    with app.app_context():
        contact = contacts.create_contact(
            db.session, db.session.get(User, rep.id), {"name": "Pat Buyer", "company": "Acme"}
        )
        db.session.flush()
        contact_id = contact.id
        db.session.commit()
    first, second, latest = _ingest(
        app,
        incoming("1", handle="pat", text=ANGRY, created_at=now - timedelta(days=3)),
        incoming("2", handle="pat", text=HAPPY, created_at=now - timedelta(days=2)),
        incoming("3", handle="pat", text="Where is my order?", created_at=now),
    )
    (stranger,) = _ingest(app, incoming("4", handle="someone_else", text=HAPPY, created_at=now))
    with app.app_context():
        db.session.get(Mention, latest).contact_id = contact_id
        stages = {s.kind: s for s in db.session.scalars(select(Stage).order_by(Stage.position))}
        for title, amount, kind in (("Renewal", 500_000, "open"), ("First order", 120_000, "won")):
            db.session.add(
                Deal(
                    title=title,
                    owner_id=rep.id,
                    contact_id=contact_id,
                    amount_minor=amount,
                    currency="EUR",
                    stage_id=stages[kind].id,
                )
            )
        db.session.commit()
    login(make_user("support"))
    page = client.get(f"/inbox/{latest}").get_data(as_text=True)
    assert "Wrote to us 2 times before, 1 negative." in page
    assert f'href="/inbox/{first}"' in page and f'href="/inbox/{second}"' in page
    assert f'href="/inbox/{stranger}"' not in page
    assert "a customer (1 won deal, €1,200.00)" in page
    assert "1 open deal worth €5,000.00" in page
    # Support sees what the deals are worth, not the deals (the role table).
    assert "Renewal" not in page
    login(make_user("manager"))
    page = client.get(f"/inbox/{latest}").get_data(as_text=True)
    assert "Renewal" in page and "First order" not in page
    assert "First time they write to us." in client.get(f"/inbox/{stranger}").get_data(as_text=True)


def test_an_item_held_by_someone_who_left_the_team_still_names_them(app, client, login, make_user):
    (mention_id,) = _ingest(app, incoming("1", text=ANGRY))
    gone = make_user("support", name="Gone Agent")
    with app.app_context():
        db.session.get(Mention, mention_id).assignee_id = gone.id
        db.session.get(User, gone.id).disabled_at = utcnow()
        db.session.commit()
    login(make_user("support"))
    page = client.get("/inbox/").get_data(as_text=True)
    rows = page.split('id="mention-rows"', 1)[1]
    assert "Gone Agent" in rows
    # Not offered for new assignments, though.
    assert f'<option value="{gone.id}">Gone Agent</option>' not in page
