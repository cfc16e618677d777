"""Prometheus metrics of the API process, through prometheus-client.

Request counts and latencies per route and status, predictions and their batch sizes are
recorded as they happen; jobs by status, queue lengths, the images/s of running jobs and the
feature-cache outcome of jobs are read from the database and the broker at each scrape. With
several API processes, set PROMETHEUS_MULTIPROC_DIR and the registry collects across them.
"""

from __future__ import annotations

import logging
import os
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Receive, Scope, Send

from core.states import JOB_VISIBLE, JobStatus

log = logging.getLogger(__name__)

REQUESTS = Counter("finetune_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "finetune_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)
PREDICTIONS = Counter("finetune_predictions_total", "Images classified at /predict", ["model"])
PREDICT_SECONDS = Histogram(
    "finetune_predict_duration_seconds", "Latency of /predict requests that answered 200", ["model"]
)
BATCH_IMAGES = Histogram(
    "finetune_predict_batch_images",
    "Images per shared forward pass, padding included",
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024),  # the padded sizes
)


class RequestMetrics:
    """ASGI middleware: one count and one latency observation per HTTP request."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), {"code": 500}

        async def record_status(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], route, str(status["code"])).inc()
            REQUEST_SECONDS.labels(scope["method"], route).observe(time.perf_counter() - started)


class ServiceCollector:
    """Gauges read at scrape time: the job rows and the broker are the truth, not this process.

    With `owner`, only that owner's jobs are counted and named (a user's token); without, all."""

    def __init__(self, owner: str | None = None):
        self.owner = owner

    def collect(self):
        from sqlalchemy import func, select

        from core.db import session_scope
        from core.queue import PREPARE_QUEUE, TRAIN_QUEUE, queued_message_count
        from core.tables import JobRow

        jobs = GaugeMetricFamily("finetune_jobs", "Jobs by status", labels=["status"])
        speed = GaugeMetricFamily(
            "finetune_job_images_per_second", "Training speed of running jobs", labels=["job"]
        )
        cache = GaugeMetricFamily(
            "finetune_feature_cache_jobs",
            "Jobs that found their features cached (hit) or computed them (miss)",
            labels=["result"],
        )
        queues = GaugeMetricFamily(
            "finetune_queue_messages", "Messages waiting in a broker queue", labels=["queue"]
        )
        try:
            mine = [JobRow.owner == self.owner] if self.owner is not None else []
            with session_scope() as session:
                counts = dict(
                    session.execute(
                        select(JobRow.status, func.count()).where(*mine).group_by(JobRow.status)
                    ).all()
                )
                rows = session.execute(select(JobRow.id, JobRow.status, JobRow.progress).where(*mine)).all()
        except Exception as exc:  # noqa: BLE001 - a scrape during an outage still answers
            log.warning("metrics: database unavailable (%s)", exc.__class__.__name__)
            counts, rows = {}, []
        for status in JOB_VISIBLE:
            jobs.add_metric([status], counts.get(status, 0))
        outcomes = {"hit": 0, "miss": 0}
        for job_id, status, progress in rows:
            progress = progress or {}
            if status == JobStatus.RUNNING and progress.get("images_per_second") is not None:
                speed.add_metric([job_id], progress["images_per_second"])
            if progress.get("feature_cache") in outcomes:
                outcomes[progress["feature_cache"]] += 1
        for result, count in outcomes.items():
            cache.add_metric([result], count)
        for queue in (TRAIN_QUEUE, PREPARE_QUEUE):
            try:
                queues.add_metric([queue], queued_message_count(queue))
            except Exception as exc:  # noqa: BLE001 - the broker may be away
                log.warning("metrics: broker unavailable (%s)", exc.__class__.__name__)
        yield from (jobs, speed, cache, queues)


def make_registry(owner: str | None = None) -> CollectorRegistry:
    """One scrape's registry: this process's counters (a multiprocess collector when several serve)
    and the service's gauges, for `owner`'s jobs only when one is given."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (REQUESTS, REQUEST_SECONDS, PREDICTIONS, PREDICT_SECONDS, BATCH_IMAGES):
            registry.register(collector)
    registry.register(ServiceCollector(owner))
    return registry
