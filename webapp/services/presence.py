"""Who else has a mention open, and whether they are writing a reply: collision warnings.

Each open mention page says "I am here" every few seconds; what it says lives in one
Redis hash per mention (person -> what they do, and when), which expires a little after
the last word, so a closed tab drops out within PRESENCE_TTL seconds and nothing is
left to clean up. Presence is a courtesy, not a lock: when Redis cannot be reached the
page shows nobody (the reply is still held back if the thread changed, by the
database). Nothing here touches the database.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

VIEWING, REPLYING = "viewing", "replying"
# A page reports every PRESENCE_POLL_SECONDS (10 by default); someone silent for
# PRESENCE_TTL seconds has gone.
PRESENCE_TTL = 25
_KEY = "crm:presence:mention:{}"


@dataclass(frozen=True, order=True)
class Present:
    name: str
    doing: str


@functools.lru_cache(maxsize=4)
def _client(url: str) -> Redis:
    # Short timeouts: a slow Redis must not hold up the page that asks.
    return Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def here(
    url: str | None, mention_id: int, user_id: int, name: str, doing: str, now: float | None = None
) -> list[Present] | None:
    """Record that user is on the mention (doing: viewing or replying) and return the
    others there, by name; None when presence cannot be known (no Redis)."""
    if not url:
        return None
    now = time.time() if now is None else now
    key = _KEY.format(mention_id)
    doing = REPLYING if doing == REPLYING else VIEWING
    try:
        client = _client(url)
        pipe = client.pipeline()
        pipe.hset(key, str(user_id), json.dumps({"name": name, "doing": doing, "at": now}))
        pipe.expire(key, PRESENCE_TTL)
        pipe.hgetall(key)
        *_, everyone = pipe.execute()
    except RedisError:
        return None
    others = []
    gone = []
    for field, raw in everyone.items():
        if field.decode() == str(user_id):
            continue
        try:
            seen = json.loads(raw)
            fresh = now - float(seen["at"]) <= PRESENCE_TTL
        except (ValueError, KeyError, TypeError):
            fresh = False
        if fresh:
            doing_there = REPLYING if seen["doing"] == REPLYING else VIEWING
            others.append(Present(str(seen["name"]), doing_there))
        else:
            gone.append(field)
    if gone:
        with contextlib.suppress(RedisError):
            _client(url).hdel(key, *gone)
    return sorted(set(others))
