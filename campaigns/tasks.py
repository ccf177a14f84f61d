"""Celery tasks of the campaigns app. Each takes ids only and calls a service."""

from __future__ import annotations

import logging
import socket

from celery import shared_task
from celery.signals import worker_ready

from .notifications import DeliveryError
from .services import worker_heartbeat_record

logger = logging.getLogger(__name__)


@shared_task(name="campaigns.tasks.heartbeat", ignore_result=True, bind=True)
def heartbeat(self) -> str:
    """Record that a worker is alive (the status page shows it). Safe to run twice."""
    beat = worker_heartbeat_record(hostname=self.request.hostname or socket.gethostname())
    return beat.hostname


# acks_late + reject_on_worker_lost: a message whose worker died is delivered again, but
# correctness comes from the database: group_run claims its group with a conditional update
# (ready -> preflight), so a second delivery of a claimed group does nothing, and
# reconcile_groups decides what happens to a group whose worker died.
@shared_task(
    name="campaigns.tasks.group_run", bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def group_run(self, group_id: int) -> str:
    """Run one ready group through BPS (for Parsl, the whole workflow runs in this task). Safe to run twice."""
    from .execution.runner import run_group

    return run_group(group_id=group_id, task_id=self.request.id or "", worker_name=self.request.hostname or "")


@shared_task(name="campaigns.tasks.poll_running_groups", ignore_result=True)
def poll_running_groups() -> dict:
    """Ask remote WMSs (HTCondor, PanDA) about running groups and refresh Parsl progress counts."""
    from .execution.runner import poll_running_groups as poll

    return poll()


@shared_task(name="campaigns.tasks.wms_cancel", ignore_result=True)
def wms_cancel(submission_id: int) -> str:
    """Cancel a cancelled group's run on its remote WMS (HTCondor, PanDA) through ctrl_bps."""
    from .execution.runner import submission_cancel_remote

    return submission_cancel_remote(submission_id=submission_id)


@shared_task(name="campaigns.tasks.reconcile_groups", ignore_result=True)
def reconcile_groups() -> dict:
    """Reconcile groups whose worker died (from what the database and the submit directory say)."""
    from .execution.runner import reconcile_groups as reconcile

    return reconcile()


@worker_ready.connect
def _reconcile_at_worker_start(sender=None, **kwargs) -> None:
    # Sent as a task, not run here: this is the worker's main process, before the pool forks.
    try:
        reconcile_groups.delay()
    except Exception:
        logger.exception("Could not send reconcile_groups at worker start")


@shared_task(
    name="campaigns.tasks.notify",
    bind=True,
    ignore_result=True,
    autoretry_for=(DeliveryError,),
    retry_backoff=30,
    retry_backoff_max=900,
    retry_jitter=True,
    max_retries=3,
)
def notify(self, notification_id: int) -> str:
    """Send one notification (e-mail or web hook). Safe to run twice: the row is claimed first.

    A failed attempt is retried with exponential backoff; the last one records the notification failed.
    """
    from .notifications import notification_deliver

    return notification_deliver(notification_id=notification_id, final=self.request.retries >= self.max_retries)


@shared_task(name="campaigns.tasks.recurring_run", ignore_result=True)
def recurring_run(recurring_id: int) -> str:
    """Clone a recurring campaign's template with a fresh selection and launch it (beat sends this from the
    schedule's PeriodicTask). Safe to run twice: a second run in the same minute does nothing."""
    from .recurring import recurring_run as run

    campaign = run(recurring_id=recurring_id)
    return campaign.name if campaign is not None else "nothing to do"


@shared_task(name="campaigns.tasks.group_coverage_record", ignore_result=True)
def group_coverage_record(campaign_id: int) -> dict:
    """Record which exposures the campaign's planned groups cover (campaigns.coverage). Safe to run twice."""
    from .coverage import campaign_coverage_record

    return campaign_coverage_record(campaign_id=campaign_id)
