"""Celery tasks of the campaigns app. Each takes ids only and calls a service."""

from __future__ import annotations

import socket

from celery import shared_task

from .services import worker_heartbeat_record


@shared_task(name="campaigns.tasks.heartbeat", ignore_result=True, bind=True)
def heartbeat(self) -> str:
    """Record that a worker is alive (the status page shows it). Safe to run twice."""
    beat = worker_heartbeat_record(hostname=self.request.hostname or socket.gethostname())
    return beat.hostname
