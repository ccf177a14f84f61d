"""The Celery application. Tasks live in each app's ``tasks.py``; the beat schedule is defined here, in one place."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("campaign_manager")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Beat runs django-celery-beat's DatabaseScheduler (settings.CELERY_BEAT_SCHEDULER): at start it syncs these
# entries into its PeriodicTask table; recurring campaigns (campaigns.recurring) add their own crontab entries.
app.conf.beat_schedule = {
    "worker-heartbeat": {"task": "campaigns.tasks.heartbeat", "schedule": 60.0},
    "poll-running-groups": {"task": "campaigns.tasks.poll_running_groups", "schedule": 30.0},
    "reconcile-groups": {"task": "campaigns.tasks.reconcile_groups", "schedule": 300.0},
}


class _QuietLibraries(logging.Filter):
    """Keep the worker's console readable: Parsl logs every poll of its job threads at DEBUG
    (it sets its own logger's level, so a level here would not hold); its files in the run directory keep all."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith("parsl")


@after_setup_logger.connect
@after_setup_task_logger.connect
def _console(logger, **kwargs) -> None:
    """Quiet Parsl, and with ``CM_LOG_FORMAT=json`` write the worker's lines in the project's JSON form."""
    from django.conf import settings

    from core.observability import json_formatter

    formatter = json_formatter() if settings.CM_LOG_FORMAT == "json" else None
    for handler in logger.handlers:
        handler.addFilter(_QuietLibraries())
        if formatter is not None:
            handler.setFormatter(formatter)


@task_prerun.connect
def _bind_log_context(task_id=None, task=None, args=None, kwargs=None, **_) -> None:
    """Every log line of a task carries its id, its name and the ids among its arguments (core.observability)."""
    from core.observability import bind_task_context

    named = dict(kwargs or {})
    with contextlib.suppress(TypeError, ValueError):  # not bindable: keep the keyword arguments
        named = dict(inspect.signature(task.run).bind_partial(*(args or ()), **named).arguments)
    bind_task_context(task_id, getattr(task, "name", ""), named)


@task_postrun.connect
def _clear_log_context(**_) -> None:
    from core.observability import clear_log_context

    clear_log_context()
