"""Contacts: search, pages and fragments, add, edit, handles, delete and undo."""

import re
import uuid
from datetime import timedelta
from html import unescape

import pytest

from webapp.extensions import db
from webapp.models import Contact, ContactHandle
from webapp.models.base import utcnow
from webapp.services import search_text

FRAGMENT = {"HX-Request": "true", "HX-Request-Type": "partial"}
# With the apostrophe a phone keyboard types.
OBRIEN = "Siobhán O\u2019Brien"


def names(html: str, candidates) -> set[str]:
    return {n for n in candidates if n in html}


@pytest.fixture
def people(make_user, make_contact):
    rep = make_user("rep")
    other = make_user("rep")
    made = {
        "Alice Archer": make_contact(
            rep,
            name="Alice Archer",
            company="Acme Tools",
            phone="+44 20 7946 0101",
            email="alice@acme.example",
        ),
        "Bob Baker": make_contact(
            rep,
            name="Bob Baker",
            company="Bakehouse",
            phone="(020) 7946-0202",
            email="bob@bakehouse.example",
        ),
        "Carla Acosta": make_contact(
            other,
            name="Carla Acosta",
            company="Northwind",
            phone="555 0303",
            email="carla@northwind.example",
        ),
    }
    return rep, other, made


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("alice", {"Alice Archer"}),
        ("ARCH", {"Alice Archer"}),
        ("acme", {"Alice Archer"}),
        ("bakehouse", {"Bob Baker"}),
        ("northwind.example", {"Carla Acosta"}),
        ("7946", {"Alice Archer", "Bob Baker"}),
        ("7946 0202", {"Bob Baker"}),
        ("020-7946-0202", {"Bob Baker"}),
        ("aco", {"Carla Acosta"}),
        ("al ar", {"Alice Archer"}),
        ("ca", {"Carla Acosta"}),
        ("alice baker", set()),
        ("zzz", set()),
        ("100%", set()),
        ('"quoted', set()),
    ],
)
def test_search_over_name_company_email_phone(client, login, people, query, expected):
    rep, _, made = people
    login(rep)
    html = client.get("/contacts", query_string={"q": query}).get_data(as_text=True)
    assert names(html, made) == expected


def found(html: str) -> set[str]:
    """The names of the contacts a list page shows (not the search box's own text)."""
    return {unescape(n) for n in re.findall(r'<span class="row-title">([^<]*)</span>', html)}


@pytest.fixture
def typed(make_user, make_contact):
    """Contacts whose names, titles and numbers are written as people write them."""
    rep = make_user("rep")
    for fields in [
        {"name": "Søren Ørsted", "company": "Vindkraft"},
        {"name": "Hans Muller"},
        {"name": "Jürgen Müller"},
        {"name": "Greta Mueller"},
        {"name": OBRIEN, "company": "Łódź Motors"},
        {"name": "王小明", "company": "北京贸易"},
        {"name": "李明"},
        {"name": "김민준"},
        {"name": "山田さくら"},
        {"name": "Dana Ward", "title": "Procurement Lead", "company": "Northwind"},
        {"name": "Intl Number", "phone": "+44 20 7946 3999"},
        {"name": "National Number", "phone": "020 7946 4111"},
        {"name": "Belfast Number", "phone": "+44 28 2000 1234"},
        {"name": "Abroad Number", "phone": "0044 161 496 0222"},
        {"name": "Newyork Number", "phone": "+1 (212) 555-0199"},
    ]:
        make_contact(rep, **fields)
    return rep


def _search(client, query: str) -> set[str]:
    r = client.get("/contacts", query_string={"q": query})
    assert r.status_code == 200
    return found(r.get_data(as_text=True))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # A national number with its trunk prefix finds the international form, and the
        # other way round; the digits as typed still find a part of a number.
        ("020 7946 3999", {"Intl Number"}),
        ("02079463999", {"Intl Number"}),
        ("(020) 7946-3999", {"Intl Number"}),
        ("+44 20 7946 4111", {"National Number"}),
        ("+44 (0)20 7946 4111", {"National Number"}),
        ("0044 20 7946 4111", {"National Number"}),
        ("0161 496 0222", {"Abroad Number"}),
        ("+44 161 496 0222", {"Abroad Number"}),
        ("7946 3999", {"Intl Number"}),
        ("028 200", {"Belfast Number"}),
        ("2820001234", {"Belfast Number"}),
        ("212 555 0199", {"Newyork Number"}),
        ("+1 212-555-0199", {"Newyork Number"}),
        ("020 7946", {"Intl Number", "National Number"}),
        ("020 7946 3998", set()),
        ("+44 20 7946 4112", set()),
        ("+44 28 2000 1235", set()),
        ("0121 496 0222", set()),
    ],
)
def test_search_finds_a_phone_number_in_any_form(client, login, typed, query, expected):
    login(typed)
    assert _search(client, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Ørsted", {"Søren Ørsted"}),
        ("orsted", {"Søren Ørsted"}),
        ("Orsted", {"Søren Ørsted"}),
        ("ØRSTED", {"Søren Ørsted"}),
        ("Örsted", {"Søren Ørsted"}),
        ("soren", {"Søren Ørsted"}),
        ("sø", {"Søren Ørsted"}),
        ("Sø Ør", {"Søren Ørsted"}),
        ("Müller", {"Hans Muller", "Jürgen Müller"}),
        ("muller", {"Hans Muller", "Jürgen Müller"}),
        ("MULLER", {"Hans Muller", "Jürgen Müller"}),
        ("jurgen", {"Jürgen Müller"}),
        # ü is not spelt ue: that is German alone, and would make Samuel samul.
        ("Mueller", {"Greta Mueller"}),
        ("o'brien", {OBRIEN}),
        ("O\u2019Brien", {OBRIEN}),
        ("siobhan", {OBRIEN}),
        ("lodz", {OBRIEN}),
        ("Oersted", set()),
        ("ørstad", set()),
        ("müler", set()),
    ],
)
def test_search_folds_accents_both_ways(client, login, typed, query, expected):
    login(typed)
    assert _search(client, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("小明", {"王小明"}),
        ("王小明", {"王小明"}),
        ("王小", {"王小明"}),
        ("王", {"王小明"}),
        ("明", {"王小明", "李明"}),
        ("李", {"李明"}),
        ("贸易", {"王小明"}),
        ("王 明", {"王小明"}),
        ("민준", {"김민준"}),
        ("김", {"김민준"}),
        ("さくら", {"山田さくら"}),
        ("くら", {"山田さくら"}),
        ("田さ", {"山田さくら"}),
        ("小李", set()),
        ("明小", set()),
        ("王明", set()),
        ("준민", set()),
        ("東", set()),
        # A voicing mark makes another syllable, not an accent to drop: ざ is not さ.
        ("ざくら", set()),
    ],
)
def test_search_finds_short_cjk_terms_anywhere(client, login, typed, query, expected):
    login(typed)
    assert _search(client, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("procurement", {"Dana Ward"}),
        ("Lead", {"Dana Ward"}),
        ("procurement lead", {"Dana Ward"}),
        ("dana procurement", {"Dana Ward"}),
        ("procurement boss", set()),
        ("purchasing", set()),
    ],
)
def test_search_looks_in_job_titles(client, login, typed, query, expected):
    login(typed)
    assert _search(client, query) == expected


def test_search_follows_an_edited_title_and_number(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Edna Edit", title="Buyer", phone="+44 20 7946 5000")
    login(rep)
    client.post(
        f"/contacts/{c.id}/edit",
        data={"name": "Edna Edit", "title": "Head of Sales", "phone": "+44 113 496 0001"},
    )
    assert _search(client, "head of sales") == {"Edna Edit"}
    assert _search(client, "0113 496 0001") == {"Edna Edit"}
    assert _search(client, "buyer") == set()
    assert _search(client, "020 7946 5000") == set()


@pytest.fixture
def us_region():
    """Read numbers written without + as US numbers, as DEFAULT_PHONE_REGION=US does."""
    search_text.configure("US")
    yield
    search_text.configure(None)


def test_a_default_region_reads_numbers_dialled_from_it(client, login, us_region, make_user,
                                                        make_contact):  # fmt: skip
    rep = make_user("rep")
    # Dialled from the US (011 for abroad): only a US reading knows this is +44.
    make_contact(rep, name="Dialled Abroad", phone="011 44 20 7946 3999")
    make_contact(rep, name="Local Number", phone="(212) 555-0142")
    login(rep)
    assert _search(client, "020 7946 3999") == {"Dialled Abroad"}
    assert _search(client, "+44 20 7946 3999") == {"Dialled Abroad"}
    assert _search(client, "+1 212 555 0142") == {"Local Number"}
    assert _search(client, "1 212 555 0142") == {"Local Number"}
    assert _search(client, "020 7946 3990") == set()


def test_without_a_region_no_country_is_guessed(client, login, make_user, make_contact):
    rep = make_user("rep")
    # Read as a GB number, (207) 946-3999 would be the London 020 7946 3999.
    make_contact(rep, name="Maine Number", phone="(207) 946-3999")
    login(rep)
    assert _search(client, "020 7946 3999") == set()
    assert _search(client, "207 946 3999") == {"Maine Number"}


def test_search_as_you_type_answers_with_the_list_fragment(client, login, people):
    rep, _, made = people
    login(rep)
    r = client.get("/contacts", query_string={"q": "bob"}, headers=FRAGMENT)
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert html.lstrip().startswith('<div id="contact-list">')
    assert "<html" not in html
    assert names(html, made) == {"Bob Baker"}
    assert "HX-Request" in r.headers["Vary"]


def test_boosted_navigation_gets_the_whole_page(client, login, people):
    rep, _, _ = people
    login(rep)
    r = client.get(
        "/contacts", headers={"HX-Request": "true", "HX-Request-Type": "full", "HX-Boosted": "true"}
    )
    assert "<html" in r.get_data(as_text=True)


def test_history_restore_gets_the_whole_page(client, login, people):
    rep, _, _ = people
    login(rep)
    r = client.get("/contacts", headers={**FRAGMENT, "HX-History-Restore-Request": "true"})
    assert "<html" in r.get_data(as_text=True)


def test_mine_shows_only_my_contacts(client, login, people):
    rep, _, made = people
    login(rep)
    html = client.get("/contacts?mine=1").get_data(as_text=True)
    assert names(html, made) == {"Alice Archer", "Bob Baker"}


def test_list_pages_by_keyset_without_gaps_or_repeats(app, client, login, make_user):
    rep = make_user("rep")
    with app.app_context():
        for i in range(120):
            # Same names on purpose: the id breaks ties.
            db.session.add(
                Contact(
                    name=f"Person {i % 7}",
                    sort_name=f"person {i % 7}",
                    search_text="",
                    owner_id=rep.id,
                )
            )
        db.session.commit()
    login(rep)
    seen: list[str] = []
    url = "/contacts"
    pages = 0
    while url:
        html = client.get(url, headers=FRAGMENT if pages else {}).get_data(as_text=True)
        seen += [
            line.split("/contacts/")[1].split('"')[0]
            for line in html.splitlines()
            if 'class="row-main"' in line
        ]
        more = [line for line in html.splitlines() if "hx-get=" in line and "after=" in line]
        url = more[0].split('hx-get="')[1].split('"')[0].replace("&amp;", "&") if more else None
        pages += 1
    assert len(seen) == 120
    assert len(set(seen)) == 120
    assert pages == 3


def test_quick_add_creates_and_opens_the_contact(client, login, make_user):
    login(make_user("rep"))
    r = client.post(
        "/contacts",
        data={"name": "  Dana   Diaz ", "phone": "+1 555 0100", "uuid": str(uuid.uuid4())},
    )
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Dana Diaz" in page
    assert 'href="tel:+15550100"' in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "Enter a name."),
        ("name", "x" * 201, "At most 200 characters (this has 201)."),
        ("email", "not-an-email", "Enter an email address like name@example.com."),
        ("email", "a@b", "Enter an email address like name@example.com."),
        (
            "email",
            "sales@example.com?cc=attacker@evil.example&subject=Invoice",
            "Enter an email address like name@example.com.",
        ),
        ("email", "sales@example.com?cc=x", "Enter an email address like name@example.com."),
        ("email", "a@example.com#x", "Enter an email address like name@example.com."),
        ("phone", "call me maybe", "Enter a phone number"),
        ("phone", "12", "Enter a phone number"),
        ("company", "c" * 201, "At most 200 characters"),
        ("name", "bell\x07", "Remove the control characters."),
    ],
)
def test_quick_add_rejects_bad_input_next_to_the_field(
    app, client, login, make_user, field, value, message
):
    login(make_user("rep"))
    data = {"name": "Valid Name", "phone": "", "email": "", "company": "Kept Company"}
    data["uuid"] = str(uuid.uuid4())
    data[field] = value
    r = client.post("/contacts", data=data)
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert f'id="e-{field}"' in html
    assert message in html
    assert 'aria-invalid="true"' in html
    if field != "company":
        assert 'value="Kept Company"' in html
    with app.app_context():
        assert db.session.query(Contact).count() == 0


def test_edit_keeps_input_on_error_and_saves_nothing(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    contact = make_contact(rep, name="Eve Edit", company="Old Co")
    login(rep)
    r = client.post(
        f"/contacts/{contact.id}/edit",
        data={
            "name": "Eve Changed",
            "company": "New Co",
            "email": "broken@",
            "handle_x": "@ok_handle",
        },
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert 'value="Eve Changed"' in html and 'value="New Co"' in html and 'value="broken@"' in html
    with app.app_context():
        fresh = db.session.get(Contact, contact.id)
        assert (fresh.name, fresh.company, fresh.handles) == ("Eve Edit", "Old Co", [])


def test_edit_saves_fields_tags_and_normalized_handles(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    contact = make_contact(rep, name="Finn")
    login(rep)
    r = client.post(
        f"/contacts/{contact.id}/edit",
        data={
            "name": "Finn Fox",
            "tags": "VIP, renewal , vip,",
            "handle_x": "https://x.com/FinnFox",
            "handle_mastodon": "@Finn@Mastodon.Social",
            "handle_bluesky": "@finn.bsky.social",
        },
    )
    assert r.status_code == 303
    with app.app_context():
        fresh = db.session.get(Contact, contact.id)
        assert fresh.name == "Finn Fox"
        assert fresh.tag_list == ["vip", "renewal"]
        assert {(h.network, h.handle) for h in fresh.handles} == {
            ("x", "finnfox"),
            ("mastodon", "finn@mastodon.social"),
            ("bluesky", "finn.bsky.social"),
        }
    # Clearing a field removes that handle.
    client.post(f"/contacts/{contact.id}/edit", data={"name": "Finn Fox", "handle_x": "finnfox"})
    with app.app_context():
        assert db.session.query(ContactHandle).count() == 1


def test_a_handle_belongs_to_one_contact(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    make_contact(rep, name="First Owner", handle_x="shared")
    second = make_contact(rep, name="Second")
    login(rep)
    r = client.post(f"/contacts/{second.id}/edit", data={"name": "Second", "handle_x": "@SHARED"})
    assert r.status_code == 422
    assert "This X handle already belongs to First Owner." in r.get_data(as_text=True)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("handle_x", "way_too_long_handle_here", "1 to 15 letters"),
        ("handle_x", "https://evil.example/someone", "not an X profile link"),
        ("handle_mastodon", "justauser", "needs its server"),
        ("handle_bluesky", "not a handle", "looks like name.bsky.social"),
    ],
)
def test_bad_handles_are_explained(client, login, make_user, make_contact, field, value, message):
    rep = make_user("rep")
    contact = make_contact(rep, name="Hal")
    login(rep)
    r = client.post(f"/contacts/{contact.id}/edit", data={"name": "Hal", field: value})
    assert r.status_code == 422
    assert message in r.get_data(as_text=True)


def test_contact_page_has_call_mail_map_and_handles(client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(
        rep,
        name="Gina",
        phone="+44 20 7946 0999",
        email="gina@example.com",
        address="1 High Street, Leeds",
        handle_mastodon="gina@mastodon.social",
    )
    login(rep)
    html = client.get(f"/contacts/{c.id}").get_data(as_text=True)
    assert 'href="tel:+442079460999"' in html
    assert 'href="mailto:gina@example.com"' in html
    assert "maps/search/?api=1&amp;query=1%20High%20Street%2C%20Leeds" in html
    assert "@gina@mastodon.social" in html


def test_delete_hides_the_contact_and_undo_brings_it_back(client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Ivy Undo")
    login(rep)
    r = client.post(f"/contacts/{c.id}/delete", follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "Deleted Ivy Undo." in html
    assert f'action="/contacts/{c.id}/restore"' in html
    assert client.get(f"/contacts/{c.id}").status_code == 404
    assert "Ivy Undo" not in client.get("/contacts?q=ivy").get_data(as_text=True)
    assert client.post(f"/contacts/{c.id}/restore").status_code == 303
    assert client.get(f"/contacts/{c.id}").status_code == 200


def test_undo_expires(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Late Undo")
    login(rep)
    client.post(f"/contacts/{c.id}/delete")
    with app.app_context():
        db.session.get(Contact, c.id).deleted_at = utcnow() - timedelta(
            minutes=app.config["UNDO_MINUTES"] + 1
        )
        db.session.commit()
    assert client.post(f"/contacts/{c.id}/restore").status_code == 404


def test_unknown_contact_is_404_on_every_route(client, login, make_user):
    login(make_user("admin"))
    for method, url in [
        ("get", "/contacts/999"),
        ("get", "/contacts/999/edit"),
        ("post", "/contacts/999/edit"),
        ("post", "/contacts/999/delete"),
        ("post", "/contacts/999/restore"),
        ("post", "/contacts/999/activities"),
    ]:
        assert getattr(client, method)(url).status_code == 404, url


@pytest.mark.parametrize(
    "email", ["o'brien+leads@example.ie", "名前@例え.jp", "ana@xn--bcher-kva.example"]
)
def test_real_addresses_are_kept_and_mailed_safely(client, login, make_user, make_contact, email):
    rep = make_user("rep")
    contact = make_contact(rep, name="Mail Me", email=email)
    login(rep)
    html = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert contact.email == email.lower()
    link = html.split('href="mailto:')[1].split('"')[0]
    assert "?" not in link and "&" not in link.replace("&amp;", "").replace("&#39;", "")


def _add_form_uuid(html: str) -> str:
    form = html.partition('method="post" action="/contacts"')[2]
    return form.split('name="uuid" value="')[1].split('"')[0]


def test_a_double_tap_on_add_makes_one_contact(app, make_user):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from tests.conftest import sign_in

    rep = make_user("rep")
    taps = [app.test_client(), app.test_client()]
    for tap in taps:
        sign_in(tap, rep)
    page = taps[0].get("/contacts")
    assert page.status_code == 200, page.headers
    key = _add_form_uuid(page.get_data(as_text=True))
    barrier = Barrier(2)

    def tap(client):
        barrier.wait()
        return client.post("/contacts", data={"name": "Twice Tapped", "uuid": key})

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(tap, taps))
    assert [a.status_code for a in answers] == [303, 303]
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    # Sent again later (Back, then submit): still the one contact.
    assert taps[0].post("/contacts", data={"name": "Twice Tapped", "uuid": key}).status_code == 303
    with app.app_context():
        assert db.session.query(Contact).filter_by(name="Twice Tapped").count() == 1


@pytest.mark.parametrize(
    ("field", "existing", "typed", "message"),
    [
        ("email", "jane@example.com", "Jane@Example.com", "has this email already"),
        ("phone", "+44 20 7946 3999", "020 7946 3999", "has this phone number already"),
    ],
)
def test_adding_someone_already_there_says_so_and_offers_to_open_them(
    app, client, login, make_user, make_contact, field, existing, typed, message
):
    rep = make_user("rep")
    jane = make_contact(rep, name="Jane Existing", **{field: existing})
    login(rep)
    key = _add_form_uuid(client.get("/contacts").get_data(as_text=True))
    r = client.post("/contacts", data={"name": "Jane New", field: typed, "uuid": key})
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert f"Jane Existing {message}" in html
    assert f'href="/contacts/{jane.id}"' in html and "Open Jane Existing" in html
    with app.app_context():
        assert db.session.query(Contact).count() == 1
    again = client.post(
        "/contacts", data={"name": "Jane New", field: typed, "uuid": key, "duplicate_ok": "1"}
    )
    assert again.status_code == 303
    with app.app_context():
        assert db.session.query(Contact).count() == 2
