"""Celery tasks of the tagging app. Each takes ids only and calls a service."""

from __future__ import annotations

from celery import shared_task

from .services import dataidset_tag_run


@shared_task(name="tagging.tasks.dataidset_tag", acks_late=True)
def dataidset_tag(version_id: int) -> str:
    """Resolve a DataID set version into its TAGGED collection. Safe to run twice."""
    version = dataidset_tag_run(version_id=version_id)
    return "skipped (not pending)" if version is None else version.tag_status
