"""The Celery application. Tasks live in each app's ``tasks.py``; the beat schedule is defined here, in one place."""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import after_setup_logger

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
def _quiet_console(logger, **kwargs) -> None:
    for handler in logger.handlers:
        handler.addFilter(_QuietLibraries())
