"""SQLAlchemy models, one module per aggregate; importing this package registers them all."""

from webapp.models.activities import ACTIVITY_KINDS, Activity
from webapp.models.audit import AuditEvent
from webapp.models.contacts import Contact, ContactHandle
from webapp.models.deals import Deal, DealChange, DealTotal, Stage
from webapp.models.forms import FormSubmission
from webapp.models.mentions import Mention
from webapp.models.notifications import AppSecret, Notification, PushSubscription
from webapp.models.sources import SOURCE_KINDS, Source
from webapp.models.tasks import Task
from webapp.models.triage import (
    CannedReply,
    LabelCorrection,
    LexiconRule,
    MentionNote,
    Reply,
    SlaPolicy,
)
from webapp.models.users import ROLES, AccountLink, LoginFailure, User, UserSession

__all__ = [
    "ACTIVITY_KINDS",
    "ROLES",
    "SOURCE_KINDS",
    "AccountLink",
    "Activity",
    "AppSecret",
    "AuditEvent",
    "CannedReply",
    "Contact",
    "ContactHandle",
    "Deal",
    "DealChange",
    "DealTotal",
    "FormSubmission",
    "LabelCorrection",
    "LexiconRule",
    "LoginFailure",
    "Mention",
    "MentionNote",
    "Notification",
    "PushSubscription",
    "Reply",
    "SlaPolicy",
    "Source",
    "Stage",
    "Task",
    "User",
    "UserSession",
]
