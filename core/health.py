"""Liveness and readiness, as a load balancer or Kubernetes asks them.

- ``/healthz`` (liveness) answers as long as the process serves requests; it touches nothing else, so that a
  database outage never makes an orchestrator restart every web process at once.
- ``/readyz`` (readiness) runs django-health-check's database check, our broker check, and whatever the apps
  register with ``register_readiness_check`` (the tagging app registers its Butler repositories).
  It answers 200 when all pass and 503 otherwise, as JSON, with a short reason per check and never a
  traceback, a password or a path.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.exceptions import HealthCheckException, ServiceUnavailable

logger = logging.getLogger(__name__)
_registered: list[type[HealthCheck]] = []


def register_readiness_check(check: type[HealthCheck]) -> None:
    """Add a check to ``/readyz`` (apps call this from ``AppConfig.ready``; registering twice is harmless)."""
    if check not in _registered:
        _registered.append(check)


def broker_location(url: str) -> str:
    """``redis (host:port)`` of a broker URL: its scheme and place, never its password."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqla"):
        return "SQLAlchemy transport (no server)"
    if parts.scheme == "memory":
        return "in-process memory"
    place = parts.hostname or ""
    if parts.port:
        place += f":{parts.port}"
    return f"{parts.scheme} ({place})" if place else parts.scheme


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (Redis, or the SQLAlchemy transport of ``make run``)."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=3), repr=False)

    def run(self) -> None:
        from config.celery import app

        try:
            with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
                conn.ensure_connection(max_retries=1, timeout=self.timeout.total_seconds())
        except Exception as exc:  # kombu raises many kinds; the operator needs the place, not the stack
            raise ServiceUnavailable(
                f"cannot reach the broker at {broker_location(settings.CELERY_BROKER_URL)}"
            ) from exc


def readiness_checks() -> list[HealthCheck]:
    return [Database(), Broker(), *(check() for check in _registered)]


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """``/readyz``: each check's answer by name, ``"OK"`` or its short reason; 200 when all pass, else 503.

    The checks run one after another in this thread (each has its own client timeout), as a plain view: no event
    loop, so the answer does not depend on how the server runs Django.
    """
    answers: dict[str, str] = {}
    for check in readiness_checks():
        try:
            # Our checks and the library's Database check are synchronous (register only such checks).
            check.run()  # type: ignore[unused-coroutine]
        except HealthCheckException as exc:
            answers[repr(check)] = str(exc)
        except Exception:
            logger.exception("Readiness check %r failed unexpectedly", check)
            answers[repr(check)] = "unknown error"
        else:
            answers[repr(check)] = "OK"
    failing = any(answer != "OK" for answer in answers.values())
    return JsonResponse(answers, status=503 if failing else 200)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Nothing else is touched (see the module docstring)."""
    return JsonResponse({"ok": True})
