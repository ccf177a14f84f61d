"""A real Celery worker process picks up tasks from the configured broker (Redis on CI)."""

from __future__ import annotations

import subprocess
import time

import pytest
from django.conf import settings

from campaigns.models import WorkerHeartbeat
from campaigns.tasks import heartbeat
from tests.helpers import ROOT, child_env, python

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    if settings.CELERY_BROKER_URL.startswith("memory"):
        pytest.skip("an in-process memory broker cannot reach a worker process; make test uses Redis or SQLAlchemy")
    proc = subprocess.Popen(
        [
            python(),
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--hostname",
            "testworker@%h",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_a_real_worker_runs_the_heartbeat_task_and_records_it(worker):
    heartbeat.delay()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        beat = WorkerHeartbeat.objects.filter(hostname__startswith="testworker@").first()
        if beat is not None:
            break
        assert worker.poll() is None, f"the worker died: {worker.stdout.read() if worker.stdout else ''}"
        time.sleep(0.5)
    else:
        pytest.fail("no worker recorded the heartbeat within 60 s")
    assert beat.tasks_seen == 1

    heartbeat.delay()  # running it twice is harmless: same row, one more count
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        beat.refresh_from_db()
        if beat.tasks_seen == 2:
            break
        time.sleep(0.3)
    assert beat.tasks_seen == 2
    assert WorkerHeartbeat.objects.filter(hostname__startswith="testworker@").count() == 1
