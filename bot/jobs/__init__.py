"""Durable jobs: the store, its migrations, the queues, workers and limits."""
