"""The networks a mention can come from, by the names people know them by: defined once
for the connectors, the app and its pages."""

from __future__ import annotations

LABELS = {
    "x": "X",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "rss": "RSS",
    "webhook": "Webhook",
    "demo": "Demo",
    "import": "Import",
}
NETWORKS = tuple(LABELS)
# Where an author has a handle a contact can hold, so their mentions find the contact.
HANDLE_NETWORKS = ("x", "mastodon", "bluesky")


def label(network: str) -> str:
    """The network's name as people write it ("x" is "X")."""
    return LABELS.get(network, network)
