"""Prometheus metrics at ``/metrics``: django-prometheus's request and database counters, and gauges of our own.

The gauges are read when Prometheus scrapes, from the database and the broker, so every web process
answers the same whatever it served. Apps add theirs with ``register_collector`` (the campaigns app
registers groups by state, the oldest ready group, worker heartbeats and quanta done); this module adds
the length of each Celery queue.

Under gunicorn with several workers, django-prometheus's per-process counters are merged from
``PROMETHEUS_MULTIPROC_DIR`` (``config/gunicorn.conf.py`` sets it up); without it the process's own
registry is read.

If ``CM_METRICS_TOKEN`` is set, a scrape must send ``Authorization: Bearer <token>``; the endpoint is also
left out of the Ingress (``deploy/``), so only the cluster's Prometheus reaches it.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from kombu.exceptions import ChannelError
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

CollectFunction = Callable[[], Iterable[Metric]]
_collectors: list[CollectFunction] = []


def register_collector(collect: CollectFunction) -> None:
    """Add a function yielding metric families at each scrape (registering twice is harmless)."""
    if collect not in _collectors:
        _collectors.append(collect)


def queue_names() -> list[str]:
    """The Celery queues workers consume: the configured ones, else the default queue."""
    from config.celery import app

    queues = app.conf.task_queues
    if queues:
        return sorted(q.name for q in queues)
    return [app.conf.task_default_queue]


def collect_queue_lengths() -> Iterable[Metric]:
    from config.celery import app

    gauge = GaugeMetricFamily("cm_celery_queue_length", "Messages waiting in each Celery queue.", labels=["queue"])
    try:
        with app.connection_for_read(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            channel = conn.default_channel
            for name in queue_names():
                try:
                    _, count, _ = channel.queue_declare(queue=name, passive=True)
                except ChannelError:
                    count = 0  # not declared yet: no worker has consumed it and nothing was sent to it
                gauge.add_metric([name], count)
    except Exception as exc:  # a scrape must answer even when the broker is down: the gauge is left out
        logger.warning("metrics: could not read the queue lengths: %s", type(exc).__name__)
        return []
    return [gauge]


class _Scraped:
    """Adapter: our collect functions as one prometheus_client collector."""

    def collect(self) -> Iterable[Metric]:
        yield from collect_queue_lengths()
        for collect in _collectors:
            try:
                yield from collect()
            except Exception:
                logger.exception("metrics: collector %s failed", getattr(collect, "__name__", collect))


class _Process:
    """The process's default registry (django-prometheus's metrics) when not merging gunicorn workers."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Process())  # type: ignore[arg-type]
    registry.register(_Scraped())  # type: ignore[arg-type]
    return generate_latest(registry)


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = getattr(settings, "CM_METRICS_TOKEN", "")
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)
