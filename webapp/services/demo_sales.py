"""The demo's sales work: a pipeline of deals with their history, tasks with their
reminders for the demo rep and manager, and field work (contacts placed around one city,
check-ins with durations, call outcomes), so `make run` shows the sales core at once."""

from __future__ import annotations

import math
import random
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Activity, Contact, Deal, DealChange, Notification, Stage, Task, User
from webapp.models.base import utcnow
from webapp.models.deals import LOST_REASONS
from webapp.services.demo import BODIES, DOMAIN

# Leeds city centre: the demo's patch, where Nearby has something to show.
CITY = (53.7997, -1.5492)
DISTRICTS = ["LS1", "LS2", "LS3", "LS6", "LS7", "LS8", "LS9", "LS10", "LS11", "LS12"]


def seed_field(session: Session, rng: random.Random, now) -> None:
    """Contacts placed around CITY (dense in the centre, thinner in the suburbs, a few
    farms out of town, some not placed at all), the demo rep's check-ins with their
    durations (one still open), and an outcome on most calls."""
    rep = session.scalar(select(User).where(User.role == "rep"))
    people = list(session.scalars(select(Contact).order_by(Contact.id)))
    lat0, lon0 = CITY
    for contact in people:
        roll = rng.random()
        if roll < 0.08:
            continue
        spread = 1.2 if roll < 0.6 else 5.0 if roll < 0.92 else 18.0
        km, bearing = abs(rng.gauss(0, spread)), rng.uniform(0, 2 * math.pi)
        contact.latitude = round(lat0 + km * math.cos(bearing) / 111.2, 6)
        contact.longitude = round(
            lon0 + km * math.sin(bearing) / (111.2 * math.cos(math.radians(lat0))), 6
        )
        contact.located_at = now - timedelta(days=rng.randrange(1, 200))
        street = contact.address.split(",")[0] if contact.address else "1 High Street"
        contact.address = f"{street}, Leeds {rng.choice(DISTRICTS)} {rng.randrange(1, 9)}AB"
    own = [c for c in people if rep and c.owner_id == rep.id and c.latitude is not None]
    for i, contact in enumerate(own[:14]):
        start = now - timedelta(days=i * 2 + 1, minutes=rng.randrange(0, 600))
        session.add(
            Activity(
                uuid=str(uuid.UUID(int=rng.getrandbits(128))),
                contact_id=contact.id,
                author_id=rep.id,
                kind="visit",
                body=rng.choice(BODIES["visit"]),
                occurred_at=start,
                latitude=round(contact.latitude + rng.uniform(-2e-4, 2e-4), 6),
                longitude=round(contact.longitude + rng.uniform(-3e-4, 3e-4), 6),
                accuracy_m=float(rng.randrange(4, 45)),
                ended_at=start + timedelta(minutes=rng.randrange(8, 95)),
            )
        )
    if own:
        session.add(
            Activity(
                uuid=str(uuid.UUID(int=rng.getrandbits(128))),
                contact_id=own[-1].id,
                author_id=rep.id,
                kind="visit",
                occurred_at=now - timedelta(minutes=20),
                latitude=own[-1].latitude,
                longitude=own[-1].longitude,
                accuracy_m=9.0,
            )
        )
    for call in session.scalars(select(Activity).where(Activity.kind == "call")):
        if "voicemail" in call.body:
            call.outcome = "voicemail"
        elif rng.random() < 0.85:
            call.outcome = rng.choices(["reached", "no_answer", "voicemail"], [6, 3, 1])[0]
    session.flush()


# More reps than the one who signs in, so the forecast and team pages have people.
DEAL_REPS = [("leo.lindqvist", "Leo Lindqvist"), ("priya.nair", "Priya Nair")]
DEAL_TITLES = (
    "Fleet of {n} vans",
    "{n} site licences",
    "Annual service contract",
    "Warehouse racking",
    "{n} POS terminals",
    "Solar roof, phase {n}",
    "Cold-room refit",
    "{n} safety kits",
    "Forklift lease",
    "Office move",
    "Kitchen equipment",
    "{n} laptops",
    "CCTV upgrade",
)
NEXT_STEPS = (
    "Send the revised quote",
    "Book a site visit",
    "Call the buyer on Friday",
    "Demo for the finance team",
    "Chase the signed order",
    "Agree delivery dates",
)
CURRENCY_MIX = ("EUR",) * 16 + ("USD",) * 3 + ("GBP",)


def seed_deals(session: Session, rng: random.Random, people: list[User], count: int = 320) -> None:
    """A pipeline: open deals in every stage (some stuck past their rotting days, some
    with no next step, some pushed three times or more, some past their close date),
    won and lost deals over the last months, each with the history that got it there."""
    now = utcnow()
    today = now.date()
    reps = [u for u in people if u.role == "rep"]
    for local, name in DEAL_REPS:
        user = User(
            email=f"{local}@{DOMAIN}", name=name, role="rep", password_hash=people[0].password_hash
        )
        session.add(user)
        reps.append(user)
    session.flush()
    managers = [u for u in people if u.role in {"manager", "admin"}]
    owners = [reps[0]] * 4 + reps[1:] * 2 + managers
    stages = list(session.scalars(select(Stage).order_by(Stage.position)))
    open_stages = [s for s in stages if s.kind == "open"]
    won = next(s for s in stages if s.kind == "won")
    lost = next(s for s in stages if s.kind == "lost")
    contacts = session.execute(select(Contact.id, Contact.company)).all()
    positions: dict[int, float] = {}
    for _ in range(count):
        owner = rng.choice(owners)
        contact_id, company = rng.choice(contacts)
        created = now - timedelta(days=rng.randrange(20, 300), minutes=rng.randrange(1440))
        fate = rng.random()
        stage = rng.choice(open_stages) if fate < 0.55 else won if fate < 0.85 else lost
        path = (
            open_stages[: open_stages.index(stage) + 1]
            if stage.kind == "open"
            else ([*open_stages[: rng.randrange(1, len(open_stages) + 1)], stage])
        )
        if stage.kind == "open":
            entered = now - timedelta(days=rng.choice((1, 3, 6, 9, 12, 18, 25, 40)), hours=3)
            entered = max(entered, created + timedelta(hours=1))
            close = today + timedelta(days=rng.randrange(-20, 170))
        else:
            entered = created + (now - created) * rng.uniform(0.3, 0.98)
            close = entered.date() + timedelta(days=rng.randrange(-10, 10))
        deal = Deal(
            title=rng.choice(DEAL_TITLES).format(n=rng.randrange(2, 40)),
            owner_id=owner.id,
            contact_id=contact_id,
            company=company,
            amount_minor=rng.randrange(5, 800) * 10_000 + rng.choice((0, 0, 5000, 9900)),
            currency=rng.choice(CURRENCY_MIX),
            stage_id=stage.id,
            expected_close=close,
            position=positions.get(stage.id, 0.0) + 1.0,
            next_step=rng.choice(NEXT_STEPS) if rng.random() < 0.7 else None,
            stage_entered_at=entered,
            closed_at=entered if stage.kind != "open" else None,
            lost_reason=rng.choice(LOST_REASONS) if stage is lost else None,
            created_at=created,
            close_date_pushes=0,
        )
        positions[stage.id] = deal.position
        session.add(deal)
        session.flush()
        # The way it came: created in the first stage, moved along at even steps.
        step = (entered - created) / max(1, len(path) - 1)
        before = None
        for i, s in enumerate(path):
            when = created + step * i if i < len(path) - 1 else entered
            session.add(
                DealChange(
                    deal_id=deal.id,
                    field="stage",
                    before=before,
                    after=str(s.id),
                    changed_by_id=owner.id,
                    changed_at=when,
                )
            )
            before = str(s.id)
        # A close date that kept slipping: pushed a month each time.
        pushes = rng.choice((3, 4, 5)) if stage.kind == "open" and rng.random() < 0.12 else 0
        planned = close - timedelta(days=30 * pushes)
        session.add(
            DealChange(
                deal_id=deal.id,
                field="expected_close",
                after=planned.isoformat(),
                changed_by_id=owner.id,
                changed_at=created,
            )
        )
        for i in range(pushes):
            later = planned + timedelta(days=30 * (i + 1))
            session.add(
                DealChange(
                    deal_id=deal.id,
                    field="expected_close",
                    before=(planned + timedelta(days=30 * i)).isoformat(),
                    after=later.isoformat(),
                    changed_by_id=owner.id,
                    changed_at=created + (now - created) * ((i + 1) / (pushes + 1)),
                )
            )
        deal.close_date_pushes = pushes


# (title, kind, hours from now; negative is overdue); each on one of the user's contacts.
DEMO_TASKS = [
    ("Send the revised quote", "todo", -50),
    ("Call back about the delivery delay", "call", -26),
    ("Chase the signed order form", "todo", -4),
    ("Check in after the install", "call", 1),
    ("Visit the showroom: new range", "visit", 2),
    ("Prepare samples for the tasting", "todo", 3),
    ("Quarterly review meeting", "meeting", 5),
    ("Follow up on the trade-show lead", "call", 30),
    ("Visit the new branch", "visit", 75),
    ("Renewal conversation", "meeting", 24 * 6),
]


def seed_tasks(session: Session, rng: random.Random, users: list[User], now) -> None:
    """Tasks for the demo rep and manager: overdue, due in the next hours (a visit among
    them), coming up, a few done; and the reminders of the overdue ones, one read."""
    day_end = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    for user in users:
        own = list(session.scalars(select(Contact.id).where(Contact.owner_id == user.id).limit(40)))
        for n, (title, kind, hours) in enumerate(DEMO_TASKS):
            due = (now + timedelta(hours=hours)).replace(second=0, microsecond=0)
            if 0 < hours < 12:
                # Due today (UTC, the zone of a browser that sends none), even late at night.
                due = min(due, day_end - timedelta(minutes=10 * (12 - hours)))
            task = Task(
                uuid=str(uuid.UUID(int=rng.getrandbits(128))),
                title=title,
                kind=kind,
                due_at=due,
                time_zone="UTC",
                assignee_id=user.id,
                created_by_id=user.id,
                contact_id=own[n % len(own)] if own else None,
                created_at=due - timedelta(days=3),
            )
            session.add(task)
            session.flush()
            if hours < 0:
                session.add(
                    Notification(
                        user_id=user.id,
                        key=f"task-due:{task.id}:{task.due_at.isoformat()}",
                        kind="task-due",
                        title=title,
                        body=f"Due {due:%H:%M}",
                        url=f"/tasks/{task.id}",
                        task_id=task.id,
                        created_at=due,
                        read_at=now if hours < -40 else None,
                        pushed_at=due,
                    )
                )
        for title in ("Drop off the brochures", "Confirm the meeting room"):
            done_at = now - timedelta(hours=rng.randrange(2, 30))
            session.add(
                Task(
                    uuid=str(uuid.UUID(int=rng.getrandbits(128))),
                    title=title,
                    due_at=done_at,
                    assignee_id=user.id,
                    created_by_id=user.id,
                    status="done",
                    done_at=done_at,
                    created_at=done_at - timedelta(days=2),
                )
            )
