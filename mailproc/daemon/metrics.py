"""The desk's figures as Prometheus metrics, read from the database at each scrape.

The same figures `mailproc status` judges (mailproc.store.figures), so `mailproc metrics` (for
node_exporter's textfile collector or a cron job) and the daemon's `metrics_listen` endpoint
agree with each other and with every daemon of a scale-out: the numbers live in the database,
not in one process. Names follow Prometheus' conventions (docs/admin/monitoring.md): a
`mailproc_` prefix, base units in the name (`_seconds`), `_total` on counters only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mailproc.config.paths import database_name
from mailproc.config.settings import Settings
from mailproc.safety.limits import ALL
from mailproc.sources.health import source_checks
from mailproc.store.figures import Figures, figures

log = logging.getLogger(__name__)

#: What the collector reads at each scrape: the settings and the engine in use now (the
#: daemon's change on reload).
Target = Callable[[], tuple[Settings, Engine]]

MAIL_OUTCOMES = ("processed", "quarantined", "automatic", "pending")
NOTICE_STATES = ("pending", "sent", "failed", "suppressed")


class DeskCollector(Collector):
    def __init__(self, target: Target, clock: Callable[[], datetime] | None = None) -> None:
        self._target = target
        self._clock = clock or (lambda: datetime.now(UTC))

    def collect(self) -> Iterator[Metric]:
        settings, engine = self._target()
        up = GaugeMetricFamily(
            "mailproc_database_up", "1 when the database answered this scrape, else 0."
        )
        try:
            found = figures(engine, self._clock())
        except SQLAlchemyError as exc:
            log.warning(
                "metrics: database unavailable: %s: %s",
                database_name(settings.database_url),
                getattr(exc, "orig", None) or exc,
            )
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _mail(found)
        yield from _outbox(found)
        yield from _incidents(settings, found)
        yield from _sources(settings, found)
        yield from _breakers(found)


def registry_for(target: Target, clock: Callable[[], datetime] | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeskCollector(target, clock))
    return registry


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _mail(found: Figures) -> Iterator[Metric]:
    mails = CounterMetricFamily(
        "mailproc_mails",
        "Incoming mails stored, by outcome (automatic: bounces, auto-replies, lists).",
        labels=["outcome"],
    )
    for outcome in sorted({*MAIL_OUTCOMES, *found.messages}):
        mails.add_metric([outcome], found.messages.get(outcome, 0))
    yield mails
    if found.last_received_at is not None:
        last = _gauge(
            "mailproc_last_mail_received_timestamp_seconds",
            "When the newest stored mail was received (Unix time).",
        )
        last.add_metric([], found.last_received_at.timestamp())
        yield last


def _outbox(found: Figures) -> Iterator[Metric]:
    notices = _gauge(
        "mailproc_notices", "Notifications in the outbox, by status.", labels=["status"]
    )
    for status in sorted({*NOTICE_STATES, *found.notices}):
        notices.add_metric([status], found.notices.get(status, 0))
    yield notices
    oldest = _gauge(
        "mailproc_outbox_oldest_due_age_seconds",
        "How long the longest-due pending notification has waited (0: none due).",
    )
    oldest.add_metric([], found.age(found.oldest_due_at) or 0.0)
    yield oldest


def _incidents(settings: Settings, found: Figures) -> Iterator[Metric]:
    families: dict[str, Any] = {
        "open": _gauge("mailproc_incidents_open", "Incidents not closed.", ["service"]),
        "at_risk": _gauge(
            "mailproc_incidents_at_risk",
            "Open incidents past the at-risk point of a running target.",
            ["service"],
        ),
        "breached": _gauge(
            "mailproc_incidents_breached",
            "Open incidents past a running target's due time.",
            ["service"],
        ),
    }
    for service in sorted({*settings.services, *found.services}):
        counts = found.services.get(service)
        for field, family in families.items():
            family.add_metric([service], getattr(counts, field, 0) if counts else 0)
    yield from families.values()


def _sources(settings: Settings, found: Figures) -> Iterator[Metric]:
    if not settings.sources:
        return
    healthy = _gauge(
        "mailproc_source_up",
        "1 while the source polls successfully within daemon.status_max_age_seconds.",
        ["source"],
    )
    backlog = _gauge("mailproc_source_backlog", "Mails waiting in the source.", ["source"])
    last_ok = _gauge(
        "mailproc_source_last_success_timestamp_seconds",
        "When the source last completed a pass (Unix time).",
        ["source"],
    )
    checks = source_checks(
        list(settings.sources), found.sources, found.now, settings.daemon.status_max_age_seconds
    )
    for check in checks:
        healthy.add_metric([check.name], 1 if check.healthy else 0)
        record = found.sources.get(check.name)
        backlog.add_metric([check.name], record.backlog if record else 0)
        if record is not None and record.last_ok_at is not None:
            last_ok.add_metric([check.name], record.last_ok_at.timestamp())
    yield from (healthy, backlog, last_ok)


def _breakers(found: Figures) -> Iterator[Metric]:
    count = _gauge(
        "mailproc_breakers_open",
        "Storm breakers open now (answers held back: to everyone, or to one correspondent).",
    )
    count.add_metric([], len(found.open_breakers))
    yield count
    everyone = _gauge(
        "mailproc_breaker_all_open", "1 while the breaker for all answers is open, else 0."
    )
    everyone.add_metric([], 1 if ALL in found.open_breakers else 0)
    yield everyone
