"""The contacts benchmark in parts: common helpers, seeding, page timing, throughput."""
