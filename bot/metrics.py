"""What ``/metrics`` exposes (prometheus-client), and the one place each is counted.

The counters live in one registry per process (``METRICS``), as Prometheus expects of a
process; the queue gauges are read from the database when ``/metrics`` is scraped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Webhook acknowledgements are meant to be milliseconds; jobs take minutes.
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PHASE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800)


@dataclass(frozen=True)
class QueueStats:
    depth: int
    oldest_queued_at: dt.datetime | None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhooks = Counter(
            "plugin_bot_webhooks",
            "Webhook deliveries received, by event and outcome.",
            ["event", "outcome"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "plugin_bot_webhook_ack_seconds",
            "Time from the request to the webhook's answer.",
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.jobs = Counter(
            "plugin_bot_jobs_finished", "Jobs by final state.", ["state"], registry=r
        )
        self.phase_seconds = Histogram(
            "plugin_bot_phase_seconds",
            "Wall time of a pipeline phase, by phase and how it ended.",
            ["phase", "state"],
            buckets=PHASE_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("plugin_bot_queue_depth", "Jobs waiting to run.", registry=r)
        self.queue_oldest_age = Gauge(
            "plugin_bot_queue_oldest_age_seconds",
            "How long the oldest queued job has waited (0 when none).",
            registry=r,
        )
        self.tokens = Counter(
            "plugin_bot_model_tokens", "Model tokens used by jobs, by kind.", ["kind"], registry=r
        )
        self.cost = Counter("plugin_bot_model_cost_usd", "Model cost of jobs.", registry=r)
        self.rate_limit = Gauge(
            "plugin_bot_github_rate_limit_remaining",
            "GitHub's x-ratelimit-remaining on the last answer, by resource.",
            ["resource"],
            registry=r,
        )
        self.sandbox_kills = Counter(
            "plugin_bot_sandbox_kills", "Sandboxed runs killed, by reason.", ["reason"], registry=r
        )

    def webhook(self, event: str, outcome: str, seconds: float) -> None:
        self.webhooks.labels(event=event or "unknown", outcome=outcome).inc()
        self.ack_seconds.observe(seconds)

    def job_finished(self, state: str, usage: Mapping[str, int], cost_usd: float) -> None:
        self.jobs.labels(state=state).inc()
        for kind, count in usage.items():
            if count:
                self.tokens.labels(kind=kind.removesuffix("_tokens")).inc(count)
        if cost_usd > 0:
            self.cost.inc(cost_usd)

    def phase(self, phase: str, state: str, seconds: float) -> None:
        self.phase_seconds.labels(phase=phase, state=state).observe(seconds)

    def github_answer(self, headers: Mapping[str, str]) -> None:
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.isdigit():
            resource = headers.get("x-ratelimit-resource", "core")
            self.rate_limit.labels(resource=resource).set(int(remaining))

    def sandbox_killed(self, reason: str) -> None:
        self.sandbox_kills.labels(reason=reason).inc()

    def queue(self, stats: QueueStats, now: dt.datetime) -> None:
        self.queue_depth.set(stats.depth)
        oldest = stats.oldest_queued_at
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        self.queue_oldest_age.set(0 if oldest is None else (now - oldest).total_seconds())

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = Metrics()
