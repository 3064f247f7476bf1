"""The social inbox in a real browser: hostile mention text stays inert everywhere it is
shown (invariant 2); support staff link a mention to a contact on a phone and unlink it,
and do the same with JavaScript off (invariant 4); an admin adds a demo source, polls it,
and watches its health update itself while a real worker runs the poll."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from social import demo
from social.mention import Mention as Incoming
from tests.browser.conftest import LiveServer, open_place, sign_in
from webapp.extensions import db
from webapp.models import Activity, Mention, Source
from webapp.services import mentions

pytestmark = pytest.mark.browser

PAYLOADS = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '<a href="javascript:window.__pwned=1">x</a>',
    '<div hx-post="/logout" hx-trigger="load">x</div>',
    '<form hx-post="/logout" hx-trigger="load">',
    '<div hx-get="/logout" hx-trigger="load">x</div>',
]
JS_URL = "javascript:window.__pwned=1"
# A real address that tries to break out of its href attribute.
QUOTE_URL = 'https://example.com/post?a=1" onmouseover="window.__pwned=1'
# Anything the payloads would create if they reached the DOM as markup.
INJECTED = ", ".join(
    [
        "body script",
        'img[src="x"]',
        "[onerror]",
        "[onmouseover]",
        '[href^="javascript:"]',
        '[hx-trigger="load"]',
        '[hx-get="/logout"]',
        '[hx-post="/logout"]',
    ]
)
NOW = datetime.now(UTC).replace(microsecond=0)


def _incoming(external_id: str, handle: str, name: str, text: str, **kw) -> Incoming:
    kw.setdefault("network", "x")
    kw.setdefault("created_at", NOW - timedelta(hours=1))
    return Incoming(
        external_id=external_id, author_handle=handle, author_name=name, text=text, **kw
    )


def _ingest(live_server: LiveServer, items: list[Incoming], source_id: int | None = None):
    """Store, score and match mentions as a poll would; return their ids in order."""
    with live_server.app.app_context():
        source = db.session.get(Source, source_id) if source_id else None
        result = mentions.ingest(db.session, items, source)
        db.session.commit()
        assert len(result.stored) == len(items)
        by_id = {
            m.external_id: m.id
            for m in db.session.scalars(select(Mention).where(Mention.id.in_(result.stored)))
        }
        return [by_id[m.external_id] for m in items]


def _add_source(live_server: LiveServer, name: str, kind: str) -> int:
    with live_server.app.app_context():
        source = Source(name=name, kind=kind, config={})
        db.session.add(source)
        db.session.commit()
        return source.id


def _labels(live_server: LiveServer) -> dict[int, str | None]:
    with live_server.app.app_context():
        return dict(db.session.execute(select(Mention.id, Mention.label)).all())


def _assert_inert(page: Page, logout_requests: list[str]) -> None:
    """Nothing ran, no payload became an element, and no request went to /logout."""
    assert page.evaluate("typeof window.__pwned") == "undefined"
    found = page.evaluate(
        "(sel) => [...document.querySelectorAll(sel)].map((el) => el.outerHTML)", INJECTED
    )
    assert found == [], f"payload markup reached the DOM: {found}"
    assert logout_requests == [], f"a payload requested {logout_requests}"
    assert page.console_errors == [], "a CSP violation means something tried to run"


def _watch_logout(page: Page) -> list[str]:
    requests: list[str] = []
    page.on("request", lambda r: "/logout" in r.url and requests.append(r.url))
    return requests


def _rows(page: Page):
    return page.locator("#mention-list li.row")


def _titles(page: Page):
    return page.locator("#mention-list li.row .mention-text")


def _seed_hostile(live_server: LiveServer):
    """A rep's contact Eve Hostile (X handle eve_hostile), a source named with a payload,
    one hostile mention per payload in text, author name and (off X) handle, and a plain
    one from another source."""
    rep = live_server.add_user("rep", name="Rita Rep")
    eve = live_server.add_contact(rep, name="Eve Hostile", handle_x="eve_hostile")
    hostile_source = _add_source(live_server, f"Hooks {PAYLOADS[1]}", "webhook")
    plain_source = _add_source(live_server, "Plain feed", "rss")
    items = []
    for i, payload in enumerate(PAYLOADS):
        matched = i == 0
        items.append(
            _incoming(
                f"hostile-{i}",
                "eve_hostile" if matched else f"anon{i} {payload}",
                f"Eve {i} {payload}",
                # The matched one carries every payload onto the contact's timeline.
                "\n".join(PAYLOADS) if matched else f"Post {i}: {payload}",
                network="x" if matched else "webhook",
                url=JS_URL if matched else (QUOTE_URL if i == 1 else None),
                created_at=NOW - timedelta(minutes=10 + i),
            )
        )
    hostile_ids = _ingest(live_server, items, hostile_source)
    (plain_id,) = _ingest(
        live_server,
        [
            _incoming(
                "plain-1",
                "happy_customer",
                "Happy Customer",
                "I love the new grinder, great work!",
                url="https://example.com/happy",
                created_at=NOW - timedelta(minutes=1),
            )
        ],
        plain_source,
    )
    return rep, eve, items, hostile_ids, plain_id, hostile_source


def _expect_rows(page: Page, texts: list[str]) -> None:
    """The inbox lists exactly these mention texts, in this order (whitespace collapsed)."""
    expect(_titles(page)).to_have_text([re.sub(r"\s+", " ", t) for t in texts])


def test_hostile_mentions_are_shown_literally_and_never_run(live_server, page, new_page):
    _, eve, items, ids, plain_id, hostile_source = _seed_hostile(live_server)
    # A manager: the source names (one of them hostile) are shown to those who may see
    # sources.
    support = live_server.add_user("manager", name="Max Manager")
    plain_text = "I love the new grinder, great work!"
    newest_first = [plain_text] + [m.text for m in items]
    logout_requests = _watch_logout(page)
    sign_in(page, live_server, support.email, support.password)

    # The inbox, reached through the navigation (under More on a phone with a full tab bar).
    open_place(page, "Inbox")
    expect(page).to_have_url(f"{live_server.url}/inbox/")
    # Triage staff land on the open queue; every mention, newest first, is a tap away.
    page.get_by_role("navigation", name="Inbox").get_by_role("link", name="All, newest first").tap()
    expect(page).to_have_url(f"{live_server.url}/inbox/?status=all")
    _expect_rows(page, newest_first)
    for m in items:
        row = _rows(page).filter(has_text=m.author_name)
        expect(row).to_have_count(1)
        expect(row.locator(".row-title")).to_contain_text(f"{m.author_name} @")
        if m.network == "webhook":
            expect(row.locator(".row-title .muted")).to_have_text(f"@{m.author_handle} · Webhook")
    expect(page.get_by_label("Source")).to_contain_text(f"Hooks {PAYLOADS[1]}")
    _assert_inert(page, logout_requests)

    # Filters swap in the list as an htmx fragment; the page stays.
    page.evaluate("window.__samePage = true")
    page.get_by_label("Contact").select_option(label="Matched")
    _expect_rows(page, [items[0].text])
    expect(page).to_have_url(re.compile(r"/inbox/\?.*matched=yes"))
    _assert_inert(page, logout_requests)
    page.get_by_label("Contact").select_option(label="Unmatched")
    _expect_rows(page, newest_first[:1] + [m.text for m in items[1:]])
    page.get_by_label("Source").select_option(label=f"Hooks {PAYLOADS[1]}")
    _expect_rows(page, [m.text for m in items[1:]])
    expect(page).to_have_url(re.compile(rf"source={hostile_source}"))
    _assert_inert(page, logout_requests)
    labels = _labels(live_server)
    assert labels[plain_id] == "positive"
    # Two changes in quick succession: the list ends up matching the form as it is last.
    page.get_by_label("Source").select_option(label="All sources")
    page.get_by_label("Sentiment").select_option(label="Positive")
    unmatched = zip([plain_id, *ids[1:]], [plain_text] + [m.text for m in items[1:]], strict=True)
    _expect_rows(page, [text for i, text in unmatched if labels[i] == "positive"])
    assert "negative" not in labels.values()
    page.get_by_label("Contact").select_option(label="Matched or not")
    page.get_by_label("Sentiment").select_option(label="Negative")
    expect(page.locator("#mention-list")).to_have_text("No mentions match these filters.")
    page.get_by_label("Sentiment").select_option(label="Any")
    _expect_rows(page, newest_first)
    assert page.evaluate("window.__samePage") is True, "a filter reloaded the whole page"
    _assert_inert(page, logout_requests)

    # Each mention's page, reached by a tap on its row.
    for mention_id, m in zip(ids, items, strict=True):
        page.goto(f"{live_server.url}/inbox/")
        _rows(page).filter(has_text=m.author_name).locator("a.row-main").tap()
        expect(page).to_have_url(f"{live_server.url}/inbox/{mention_id}")
        expect(page.get_by_role("heading", level=1)).to_have_text(m.author_name)
        expect(page.locator(".mention-body")).to_have_text(re.sub(r"\s+", " ", m.text))
        network = "X" if m.network == "x" else "Webhook"
        expect(page.locator(".mention-detail .sub")).to_have_text(
            f"@{m.author_handle} on {network}"
        )
        original = page.get_by_role("link", name="Open the original post")
        if m.url == QUOTE_URL:
            expect(original).to_have_attribute("href", QUOTE_URL)
        else:
            expect(original).to_have_count(0)
        if m.author_handle == "eve_hostile":
            expect(page.get_by_role("link", name="Eve Hostile")).to_be_visible()
        _assert_inert(page, logout_requests)

    # The matched contact's timeline shows the mention with every payload as text.
    page.goto(f"{live_server.url}/inbox/{ids[0]}")
    page.get_by_role("link", name="Eve Hostile").tap()
    expect(page).to_have_url(f"{live_server.url}/contacts/{eve}")
    entry = page.locator("#timeline-entries > li.entry-mention")
    expect(entry).to_have_count(1)
    expect(entry.locator(".entry-body")).to_have_text(" ".join(PAYLOADS))
    expect(entry.locator(".by")).to_have_text("· @eve_hostile on X")
    _assert_inert(page, logout_requests)

    # Still signed in: no logout payload fired.
    page.goto(f"{live_server.url}/account")
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator("main")).to_contain_text(support.email)

    # An admin also sees each author name on the "make a new contact" button, and the
    # hostile source's name in the sources list.
    admin = live_server.add_user("admin", name="Ada Admin")
    admin_page = new_page()
    admin_logout = _watch_logout(admin_page)
    sign_in(admin_page, live_server, admin.email, admin.password)
    for mention_id, m in zip(ids[1:], items[1:], strict=True):
        admin_page.goto(f"{live_server.url}/inbox/{mention_id}")
        expect(
            admin_page.get_by_role("button", name=f"Make {m.author_name} a new contact")
        ).to_be_visible()
        _assert_inert(admin_page, admin_logout)
    admin_page.goto(f"{live_server.url}/sources/")
    expect(admin_page.locator("main .row-title").first).to_have_text(f"Hooks {PAYLOADS[1]}")
    _assert_inert(admin_page, admin_logout)


def _seed_triage(live_server: LiveServer):
    """Margaret and Harriet Holloway and Zed Plain; an unmatched mention from "Maggie
    Holloway" (a handle no contact has), and a negative one from a stranger."""
    rep = live_server.add_user("rep", name="Rita Rep")
    margaret = live_server.add_contact(rep, name="Margaret Holloway", company="Holloway Bakery")
    live_server.add_contact(rep, name="Harriet Holloway", company="Holloway Hardware")
    live_server.add_contact(rep, name="Zed Plain", company="Plain Co")
    maggie, stranger = _ingest(
        live_server,
        [
            _incoming(
                "maggie-1",
                "maggieh_bakes",
                "Maggie Holloway",
                "Love the new Kestrel grinder, brilliant service from your team!",
                created_at=NOW - timedelta(minutes=5),
            ),
            _incoming(
                "stranger-1",
                "grumpy_gus",
                "Gus Grump",
                "Worst support ever, my machine broke again. Terrible.",
                created_at=NOW - timedelta(minutes=20),
            ),
        ],
    )
    return margaret, maggie, stranger


def _timeline_mentions(page: Page):
    return page.locator("#timeline-entries > li.entry-mention")


def _linked_contact(live_server: LiveServer, mention_id: int) -> int | None:
    with live_server.app.app_context():
        mention = db.session.get(Mention, mention_id)
        entries = db.session.scalars(
            select(Activity.contact_id).where(Activity.mention_id == mention_id)
        ).all()
        assert entries == ([mention.contact_id] if mention.contact_id else [])
        return mention.contact_id


def test_support_links_a_mention_to_a_suggested_contact_and_unlinks_it(live_server, page):
    margaret, maggie, _ = _seed_triage(live_server)
    support = live_server.add_user("support", name="Sam Support")
    sign_in(page, live_server, support.email, support.password)

    page.get_by_role("banner").get_by_role("link", name="Inbox").tap()
    expect(_rows(page)).to_have_count(2)
    row = _rows(page).filter(has_text="Maggie Holloway")
    expect(row.locator(".row-sub")).to_contain_text("unmatched")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    row.locator("a.row-main").tap()

    expect(page).to_have_url(f"{live_server.url}/inbox/{maggie}")
    contact_section = page.locator("section[aria-labelledby=contact-h]")
    expect(contact_section).to_contain_text("Not linked to a contact.")
    # Both Holloways are suggested, the closer name first; Zed Plain is not.
    suggestions = contact_section.locator("li.row .row-title")
    expect(suggestions).to_have_text(["Margaret Holloway", "Harriet Holloway"])
    link = page.get_by_role("button", name="Link to Margaret Holloway")
    box = link.bounding_box()
    assert box and box["height"] >= 44, f"the Link button is too small to tap: {box}"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    link.tap()

    expect(page).to_have_url(f"{live_server.url}/inbox/{maggie}")
    expect(page.locator(".flashes")).to_contain_text("Linked to Margaret Holloway.")
    expect(contact_section).to_contain_text("On the timeline of Margaret Holloway.")
    assert _linked_contact(live_server, maggie) == margaret

    contact_section.get_by_role("link", name="Margaret Holloway").tap()
    expect(page).to_have_url(f"{live_server.url}/contacts/{margaret}")
    entry = _timeline_mentions(page)
    expect(entry).to_have_count(1)
    expect(entry.locator(".entry-body")).to_have_text(
        "Love the new Kestrel grinder, brilliant service from your team!"
    )
    expect(entry.locator(".by")).to_have_text("· @maggieh_bakes on X")
    badge = entry.locator(".badge")
    expect(badge).to_have_text("positive")
    expect(badge).to_have_class(re.compile(r"\bbadge-positive\b"))

    entry.get_by_role("link", name="In the inbox").tap()
    expect(page).to_have_url(f"{live_server.url}/inbox/{maggie}")
    page.get_by_role("button", name="Unlink").tap()
    expect(page.locator(".flashes")).to_contain_text("Unlinked.")
    expect(contact_section).to_contain_text("Not linked to a contact.")
    expect(page.get_by_role("button", name="Link to Margaret Holloway")).to_be_visible()
    assert _linked_contact(live_server, maggie) is None

    page.goto(f"{live_server.url}/contacts/{margaret}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Margaret Holloway")
    expect(_timeline_mentions(page)).to_have_count(0)
    assert page.console_errors == []


def test_inbox_filters_and_linking_work_as_plain_forms_without_javascript(live_server, new_page):
    margaret, maggie, stranger = _seed_triage(live_server)
    support = live_server.add_user("support", name="Sam Support")
    page = new_page(java_script_enabled=False)
    sign_in(page, live_server, support.email, support.password)

    page.goto(f"{live_server.url}/inbox/?status=all")
    expect(_rows(page)).to_have_count(2)
    page.get_by_label("Sentiment").select_option(label="Negative")
    page.get_by_label("Contact").select_option(label="Unmatched")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/inbox/\?.*label=negative"))
    assert "matched=no" in page.url
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page)).to_contain_text("Gus Grump")
    expect(page.get_by_label("Sentiment")).to_have_value("negative")
    expect(page.get_by_label("Contact")).to_have_value("no")

    page.get_by_label("Sentiment").select_option(label="Positive")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"label=positive"))
    expect(_rows(page)).to_have_count(1)
    _rows(page).filter(has_text="Maggie Holloway").locator("a.row-main").click()
    expect(page).to_have_url(f"{live_server.url}/inbox/{maggie}")
    page.get_by_role("button", name="Link to Margaret Holloway").click()
    expect(page.locator(".flashes")).to_contain_text("Linked to Margaret Holloway.")
    assert _linked_contact(live_server, maggie) == margaret

    page.goto(f"{live_server.url}/inbox/?status=all&label=positive&matched=no")
    expect(page.locator("#mention-list")).to_have_text("No mentions match these filters.")
    page.get_by_label("Contact").select_option(label="Matched")
    page.get_by_role("button", name="Filter").click()
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).locator(".row-sub")).to_contain_text("Margaret Holloway")

    page.goto(f"{live_server.url}/inbox/{maggie}")
    page.get_by_role("button", name="Unlink").click()
    expect(page.locator(".flashes")).to_contain_text("Unlinked.")
    assert _linked_contact(live_server, maggie) is None
    assert _linked_contact(live_server, stranger) is None
    assert page.console_errors == []


def _health(page: Page, term: str):
    """The value next to a term in the source's health section."""
    return page.locator(f'#source-health dt:text-is("{term}") + dd')


def test_admin_adds_a_demo_source_and_watches_a_poll_complete(live_server, page, start_worker):
    admin = live_server.add_user("admin", name="Ada Admin")
    sign_in(page, live_server, admin.email, admin.password)

    open_place(page, "Sources")  # under More on a phone, Deals having joined the tabs
    expect(page).to_have_url(f"{live_server.url}/sources/")
    expect(page.locator("main")).to_contain_text("No sources yet.")
    page.get_by_label("Add a source").select_option(label="Demo (sample mentions)")
    page.get_by_role("button", name="Next").tap()
    expect(page).to_have_url(f"{live_server.url}/sources/new?kind=demo")
    expect(page.get_by_role("heading", level=1)).to_have_text("Add: Demo (sample mentions)")
    page.get_by_label("Name").fill("Kestrel demo")
    page.get_by_role("button", name="Save").tap()

    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/sources/\d+$"))
    source_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator(".flashes")).to_contain_text("Added Kestrel demo.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Kestrel demo")
    expect(_health(page, "Last poll")).to_have_text("Never")
    expect(_health(page, "Mentions stored")).to_have_text("0")

    health_requests: list[str] = []
    page.on(
        "request",
        lambda r: (
            f"/sources/{source_id}?polling=1" in r.url
            and r.headers.get("hx-request") == "true"
            and health_requests.append(r.url)
        ),
    )
    page.get_by_role("button", name="Poll now").tap()
    expect(page.locator(".flashes")).to_contain_text("Polling now…")
    expect(page.locator("#source-health")).to_contain_text("Polling… this updates by itself.")
    page.evaluate("window.__samePage = true")

    worker = start_worker()
    expect(_health(page, "Mentions stored")).to_have_text("3", timeout=30_000)
    expect(page.locator("#source-health")).not_to_contain_text("Polling…")
    polled_at = _health(page, "Last poll").locator("time")
    expect(polled_at).to_have_count(1)
    when = datetime.fromisoformat(polled_at.get_attribute("datetime"))
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=2), when
    expect(_health(page, "Last error")).to_have_text("None")
    assert page.evaluate("window.__samePage") is True, "the health part needed a reload"
    assert health_requests, "the health section never polled itself"
    worker.finish()

    page.get_by_role("link", name="This source's mentions").tap()
    expect(page).to_have_url(re.compile(rf"/inbox/\?source={source_id}&status=all$"))
    newest_first = [s["text"] for s in reversed(demo.samples()[:3])]
    _expect_rows(page, newest_first)
    page.get_by_label("Source").select_option(label="All sources")
    _expect_rows(page, newest_first)
    with live_server.app.app_context():
        source = db.session.get(Source, source_id)
        assert (source.mentions_stored, source.cursor) == (3, "3")
    assert page.console_errors == []
