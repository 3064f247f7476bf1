"""Demo data for `make run`: a user per role, a few hundred contacts, past activities,
and a pipeline of a few hundred deals with their history; the field's share: contacts
placed around one city, check-ins with their durations and call outcomes."""

from __future__ import annotations

import random
import unicodedata
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from social.demo import DEMO_AUTHORS
from webapp.models import (
    Activity,
    CannedReply,
    Contact,
    ContactHandle,
    LexiconRule,
    SlaPolicy,
    Source,
    User,
)
from webapp.models.base import utcnow
from webapp.services.contacts import search_text_for
from webapp.services.passwords import hash_password
from webapp.services.search_text import sort_name_for

PASSWORD = "demo-password"  # noqa: S105 - printed on the console for the demo logins
DOMAIN = "demo.fieldcrm.test"
USERS = [
    ("admin", "Ada Admin"),
    ("manager", "Maya Manager"),
    ("rep", "Ravi Rep"),
    ("support", "Sam Support"),
    ("marketer", "Mia Marketer"),
]
FIRST = (
    "Olivia Liam Amelia Noah Isla Oliver Ava Elijah Mia James Sofia Lucas Aisha Mateo "
    "Zara Ethan Chloe Kenji Priya Omar Freya Diego Hannah Yusuf Grace Tomasz Leila Arjun "
    "Emma Kwame Nora Ivan Lucia Samuel Mei Felix Ingrid Rahul Sara Jonas Fatima Hugo "
    "Elena Malik Clara Andrei Naomi Luca Imani Pedro Alice Dmitri Rosa Tariq Julia Kofi "
    "Anna Sven"
).split()
LAST = (
    "Smith Okafor García Müller Nguyen Rossi Kowalski Johansson Patel Tanaka O'Brien "
    "Silva Dubois Haddad Novak Fernández Kim Schmidt Mensah Costa Ivanova Jensen Ahmed "
    "Moreau Lindqvist Bianchi Walsh Yamamoto Herrera Nowak Andersen Chen Reyes Murphy "
    "Kaur Petrov Laine Santos Fischer Oyelaran Brennan Vogel Ramos Larsen Mahmoud Duarte "
    "Hughes Sato"
).split()
COMPANIES = [
    ("Northwind Traders", "northwind.example"),
    ("Harbor Logistics", "harborlog.example"),
    ("Bluebell Dairy", "bluebell.example"),
    ("Greenfield Farms", "greenfield.example"),
    ("Apex Tooling", "apextool.example"),
    ("Riverside Clinic", "riverside.example"),
    ("Summit Builders", "summit.example"),
    ("Copperleaf Cafés", "copperleaf.example"),
    ("Ironbridge Motors", "ironbridge.example"),
    ("Lumen Solar", "lumensolar.example"),
    ("Oakridge Schools", "oakridge.example"),
    ("Pinecrest Hotels", "pinecrest.example"),
    ("Quayside Marine", "quayside.example"),
    ("Redwood Pharmacy", "redwood.example"),
    ("Silverline Telecom", "silverline.example"),
    ("Tidewater Foods", "tidewater.example"),
    ("Union Hardware", "unionhw.example"),
    ("Vantage Print", "vantage.example"),
    ("Willow Veterinary", "willowvet.example"),
    ("Zenith Fitness", "zenith.example"),
]
TITLES = [
    "Owner",
    "Store Manager",
    "Buyer",
    "Head of Operations",
    "Procurement Lead",
    "Office Manager",
    "Site Supervisor",
    "Purchasing Director",
    "Practice Manager",
    "CFO",
]
STREETS = [
    "High Street",
    "Station Road",
    "Mill Lane",
    "Church Street",
    "Harbour Way",
    "Market Square",
    "Park Avenue",
    "Queen's Road",
    "Bridge Street",
    "Orchard Close",
]
CITIES = [
    "Leeds LS1 4AP",
    "Bristol BS1 5TR",
    "Cork T12 X70A",
    "Manchester M1 2HF",
    "Glasgow G1 3SL",
    "Cardiff CF10 1EP",
    "Galway H91 E2K3",
    "York YO1 7HH",
]
TAGS = ["key-account", "prospect", "renewal-q1", "trade-show", "vip", "new-site", "follow-up"]
BODIES = {
    "call": [
        "Left a voicemail about the spring order.",
        "Confirmed delivery for Thursday.",
        "Asked for a revised quote on 40 units.",
        "",
        "Discussed the price increase; wants it in writing.",
    ],
    "visit": [
        "Walked the new site with the foreman.",
        "Checked the display; restocked samples.",
        "Met the new store manager.",
        "",
    ],
    "meeting": [
        "Quarterly review: volumes up 12%.",
        "Demo of the new range; keen on the compact model.",
        "Contract renewal meeting, legal to follow up.",
    ],
    "email": [
        "Sent the price list and delivery terms.",
        "Forwarded the warranty details.",
        "Shared the case study they asked for.",
    ],
    "note": [
        "Prefers calls after 2pm.",
        "Budget is set in March.",
        "Competitor visited last week.",
        "Parking is round the back.",
    ],
}


def seed(session: Session, contacts: int = 300, rng_seed: int = 7) -> None:
    """Add the demo users, contacts (with handles) and a history of activities."""
    rng = random.Random(rng_seed)
    people = []
    for role, name in USERS:
        user = User(
            email=f"{role}@{DOMAIN}", name=name, role=role, password_hash=hash_password(PASSWORD)
        )
        session.add(user)
        people.append(user)
    session.flush()
    owners = [u for u in people if u.role in {"rep", "manager", "admin"}]
    loggers = [u for u in people if u.role in {"rep", "manager", "support"}]
    now = utcnow()
    used_handles = {(network, handle) for _, network, handle in DEMO_AUTHORS}
    _seed_demo_authors(session, rng, owners, now)
    for i in range(contacts):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company, domain = rng.choice(COMPANIES)
        local = _ascii(f"{first}.{last}".lower())
        contact = Contact(
            name=f"{first} {last}",
            email=f"{local}@{domain}",
            phone=f"+44 20 7946 {rng.randrange(0, 1000):03d}{i % 10}",
            company=company,
            title=rng.choice(TITLES),
            address=f"{rng.randrange(1, 200)} {rng.choice(STREETS)}, {rng.choice(CITIES)}",
            tags=",".join(rng.sample(TAGS, rng.randrange(0, 3))) or None,
            owner_id=rng.choice(owners).id,
            created_at=now - timedelta(days=rng.randrange(30, 400)),
        )
        contact.sort_name = sort_name_for(contact.name)
        contact.search_text = search_text_for(contact)
        for network, handle in _handles(rng, local):
            if (network, handle) not in used_handles:
                used_handles.add((network, handle))
                contact.handles.append(ContactHandle(network=network, handle=handle))
        session.add(contact)
        session.flush()
        for _ in range(rng.randrange(0, 9)):
            kind = rng.choice(list(BODIES))
            session.add(
                Activity(
                    uuid=str(uuid.UUID(int=rng.getrandbits(128))),
                    contact_id=contact.id,
                    author_id=rng.choice(loggers).id,
                    kind=kind,
                    body=rng.choice(BODIES[kind]),
                    occurred_at=now - timedelta(minutes=rng.randrange(60, 60 * 24 * 80)),
                )
            )
    session.flush()
    from webapp.services import demo_sales  # it builds on this module's names

    demo_sales.seed_deals(session, random.Random(rng_seed + 1), people)
    demo_sales.seed_tasks(session, rng, [u for u in people if u.role in {"rep", "manager"}], now)
    demo_sales.seed_field(session, random.Random(rng_seed * 31 + 4), now)
    _seed_triage(session, people, now)


# Ready replies and an SLA policy, so the inbox shows its clocks and /codes at once.
DEMO_CANNED = (
    (
        "sorry",
        "Hi {first_name}, sorry about this. {agent_name} here: I'm on it and will come back"
        " to you today.",
    ),
    ("thanks", "Thank you {first_name}, that is lovely to hear! We'll pass it on to the team."),
    (
        "dm",
        "Hi {first_name}, could you send us your order number in a direct message? {agent_name}",
    ),
)


# A rule for what VADER misreads in this shop's mentions: "Fight me" closes a boast.
DEMO_RULES = (("fight me", 0.0),)


def _seed_triage(session: Session, people: list[User], now) -> None:
    support = next(u for u in people if u.role == "support")
    admin = next(u for u in people if u.role == "admin")
    # Sam takes new items from the round robin, five open at a time.
    support.available, support.triage_limit, support.round_robin_at = True, 5, now
    session.add_all(
        LexiconRule(phrase=phrase, valence=valence, created_by_id=admin.id, created_at=now)
        for phrase, valence in DEMO_RULES
    )
    session.add_all(
        CannedReply(
            short_code=code, body=body, created_by_id=support.id, created_at=now, updated_at=now
        )
        for code, body in DEMO_CANNED
    )
    session.add(
        SlaPolicy(
            name="Support",
            first_response_minutes=60,
            resolution_minutes=24 * 60,
            warn_minutes=15,
            business_hours=None,
            active=True,
            created_at=now,
        )
    )


def _seed_demo_authors(session: Session, rng: random.Random, owners: list[User], now) -> None:
    """The contacts whose handles the demo source's sample mentions come from, and the
    demo source itself, so `make run` shows mentions landing on timelines."""
    by_name: dict[str, list[tuple[str, str]]] = {}
    for name, network, handle in DEMO_AUTHORS:
        by_name.setdefault(name, []).append((network, handle))
    for name, handles in by_name.items():
        company, domain = rng.choice(COMPANIES)
        contact = Contact(
            name=name,
            email=f"{_ascii(name.lower()).replace(' ', '.')}@{domain}",
            phone=f"+44 20 7946 {rng.randrange(0, 10000):04d}",
            company=company,
            title=rng.choice(TITLES),
            owner_id=rng.choice(owners).id,
            created_at=now - timedelta(days=rng.randrange(30, 400)),
        )
        contact.sort_name = sort_name_for(contact.name)
        contact.search_text = search_text_for(contact)
        contact.handles = [ContactHandle(network=n, handle=h) for n, h in handles]
        session.add(contact)
    session.add(Source(name="Demo mentions", kind="demo", config={"batch": 3}, interval_seconds=60))
    session.flush()


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return folded.replace("'", "")


def _handles(rng: random.Random, local: str) -> list[tuple[str, str]]:
    plain = local.replace(".", "_").replace("-", "")[:15]
    found = []
    if rng.random() < 0.45:
        found.append(("x", plain))
    if rng.random() < 0.25:
        found.append(("mastodon", f"{plain}@mastodon.social"))
    if rng.random() < 0.25:
        found.append(("bluesky", f"{local.replace('_', '')}.bsky.social"))
    return found


def logins(session: Session) -> list[tuple[str, str]]:
    """(email, role) of the demo users that exist in this database."""
    emails = [f"{role}@{DOMAIN}" for role, _ in USERS]
    rows = session.execute(select(User.email, User.role).where(User.email.in_(emails))).all()
    order = {e: i for i, e in enumerate(emails)}
    return sorted(((e, r) for e, r in rows), key=lambda row: order[row[0]])
