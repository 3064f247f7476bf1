"""Fixtures of the workers' tests: a real Redis and a queue of each test's own."""

import uuid

import pytest
from rq import Queue

from workers.queues import connect


@pytest.fixture
def redis(redis_url):
    connection = connect(redis_url)
    connection.ping()
    return connection


@pytest.fixture
def queue_name(redis):
    """A queue name of this test's own, so a shared Redis (CI's) mixes nothing."""
    name = f"test-{uuid.uuid4().hex}"
    yield name
    Queue(name, connection=redis).empty()


@pytest.fixture
def isolated_queue(redis, queue_name):
    """The queue of queue_name."""
    return Queue(queue_name, connection=redis)
