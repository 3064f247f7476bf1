"""Redis as the workers use it (workers/queues.py): a lock only its holder extends or
releases."""

import uuid

from workers.queues import hold_lock, release_lock


def test_only_one_scheduler_enqueues(redis):
    key = f"test:lock:{uuid.uuid4().hex}"
    assert hold_lock(redis, key, "a", 30)
    assert not hold_lock(redis, key, "b", 30)
    assert hold_lock(redis, key, "a", 30)  # the holder extends it
    release_lock(redis, key, "b")  # not the holder: nothing happens
    assert not hold_lock(redis, key, "b", 30)
    release_lock(redis, key, "a")
    assert hold_lock(redis, key, "b", 30)
    redis.delete(key)
