"""Prometheus metrics, in a registry of the app's own (tests build many apps in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from normalizer.errors import StoreUnavailable

QUEUE_SERIES = tuple((table, status) for table in ("inbox", "outbox") for status in ("pending", "processing", "failed"))


class _QueueDepth(Collector):
    """Pending rows, read from the database at scrape time (every process sees the same queue)."""

    def __init__(self, read_depths: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._read_depths = read_depths

    def collect(self) -> Iterable[GaugeMetricFamily]:
        up = GaugeMetricFamily("lapor_store_up", "1 when the central store answered this scrape, 0 when it did not")
        try:
            depths = self._read_depths()
        except (SQLAlchemyError, StoreUnavailable):
            # A store outage must not turn /metrics into a 500: the alert on lapor_store_up needs this answer.
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        gauge = GaugeMetricFamily("lapor_queue_depth", "Rows waiting, by table and status", labels=["table", "status"])
        # Every series always present (0 included), so alert rules and dashboards see no gaps.
        for table, status in QUEUE_SERIES:
            gauge.add_metric([table, status], depths.get((table, status), 0))
        for (table, status), count in sorted(depths.items()):
            if (table, status) not in QUEUE_SERIES:
                gauge.add_metric([table, status], count)
        yield gauge


class _Overdue(Collector):
    """Open complaints past their due date (working days), by status and agency, read at scrape time."""

    def __init__(self, read_counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._read_counts = read_counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "lapor_complaints_overdue", "Open complaints past their due date", labels=["status", "agency"]
        )
        try:
            counts = self._read_counts()
        except (SQLAlchemyError, StoreUnavailable):
            counts = {}  # the store is away: lapor_store_up says so, the scrape still answers
        for (status, agency), count in sorted(counts.items()):
            gauge.add_metric([status, agency], count)
        yield gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["channel", "provider"]
        self.accepted = Counter(
            "lapor_inbox_accepted", "Messages committed to the inbox", labels, registry=self.registry
        )
        self.duplicates = Counter(
            "lapor_inbox_duplicates", "Redeliveries of a message already in the inbox", labels, registry=self.registry
        )
        self.processed = Counter(
            "lapor_worker_processed", "Inbox rows processed into complaints or answers", labels, registry=self.registry
        )
        self.failed = Counter(
            "lapor_worker_failed",
            "Inbox rows that failed (retryable or not)",
            [*labels, "retryable"],
            registry=self.registry,
        )
        self.outbox_sent = Counter(
            "lapor_outbox_sent", "Outbox rows delivered", ["kind", "target"], registry=self.registry
        )
        self.outbox_failed = Counter(
            "lapor_outbox_failed",
            "Outbox deliveries that failed",
            ["kind", "target", "retryable"],
            registry=self.registry,
        )
        self.urgent = Counter(
            "lapor_complaints_urgent",
            "Complaints stored as urgent (they threaten safety)",
            ["channel"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lapor_processing_latency_seconds",
            "From the inbox commit to the complaint commit",
            ["channel"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )

    def watch_queue(self, read_depths: Callable[[], dict[tuple[str, str], int]]) -> None:
        self.registry.register(_QueueDepth(read_depths))

    def watch_overdue(self, read_counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        self.registry.register(_Overdue(read_counts))
