"""Background work on RQ: queues (the only code that touches Redis), jobs and the scheduler."""
