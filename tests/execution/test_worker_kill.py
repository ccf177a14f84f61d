"""A real Celery worker is killed (SIGKILL, with its whole process group) while it runs a group through
BPS + Parsl. A new worker reconciles at start-up: the group is neither lost (it fails with "worker lost",
so an operator can rescue it) nor submitted twice (one Submission for the attempt; a redelivered task
claims nothing). The rescue then runs through the new worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from campaigns import services
from campaigns.choices import GroupStatus, SubmissionState
from campaigns.execution import campaign_launch, group_rescue, step_split_set
from campaigns.models import Group, Submission
from campaigns.tasks import group_run
from tests.execution.conftest import CLUSTER_BY_EXPOSURE
from tests.helpers import ROOT, child_env, python

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _start_worker(name: str, submit_root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [python(), "-m", "celery", "-A", "config", "worker", "--pool", "prefork", "--concurrency", "1",
         "--hostname", f"{name}@%h", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=ROOT,
        env=child_env(CM_SUBMIT_ROOT=str(submit_root)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: SIGKILL reaches the pool and the pipetask jobs too
    )  # fmt: skip


@pytest.fixture
def workers(submit_root) -> Iterator[list[subprocess.Popen]]:
    if settings.CELERY_BROKER_URL.startswith("memory"):
        pytest.skip("an in-process memory broker cannot reach a worker process")
    from config.celery import app

    app.control.purge()  # messages left by earlier runs
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _wait(predicate, timeout: float, what: str, worker: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if worker is not None:
            assert worker.poll() is None, "the worker died"
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_killed_worker_is_reconciled_without_losing_or_resubmitting_the_group(
    make_exec_campaign, owner, workers, submit_root
):
    campaign = make_exec_campaign(
        data_query="exposure.observation_type = 'science' AND detector IN (0, 1)",
        steps=[{"name": "step1", "pipeline_subset": "step1"}],
        # One job per quantum, one at a time: 16 quanta take long enough to be killed half-way.
        bps={"compute_site": "local_threads", "wms": "parsl", "extra": {"site.local_threads.cores": 1}},
    )
    step = campaign.steps.get()
    step_split_set(user=owner, step_id=step.pk, split={"by": "visit", "max_size": 100})
    first = _start_worker("killme", submit_root)
    workers.append(first)
    campaign_launch(user=owner, campaign_id=campaign.pk)  # sends group_run on commit
    group = Group.objects.get(step=step)

    def running_jobs():
        sub = Submission.objects.filter(group=group, state=SubmissionState.SUBMITTING).first()
        if sub is None or not (Path(sub.submit_dir) / "parsl_runinfo").exists():
            return None
        logs = list(Path(sub.submit_dir).rglob("*.stderr"))
        return sub if logs else None

    sub = _wait(running_jobs, 120, "the workflow to start its jobs", first)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    group.refresh_from_db()
    sub.refresh_from_db()
    assert group.status == GroupStatus.RUNNING and sub.state == SubmissionState.SUBMITTING
    assert sub.worker_pid and sub.bps_run_name and sub.submit_dir

    second = _start_worker("survivor", submit_root)
    workers.append(second)  # reconciles at start-up (worker_ready -> reconcile_groups)
    _wait(lambda: Group.objects.get(pk=group.pk).status == GroupStatus.FAILED, 90, "reconciliation", second)
    group.refresh_from_db()
    sub.refresh_from_db()
    assert sub.state == SubmissionState.LOST and "worker lost" in group.error
    assert Submission.objects.filter(group=group).count() == 1

    group_run.delay(group.pk)  # what Celery's redelivery would do: claims nothing
    campaign.refresh_from_db()
    services.campaign_update(
        user=owner,
        campaign_id=campaign.pk,
        version=campaign.version,
        data={"bps": {**campaign.bps, "extra": {**CLUSTER_BY_EXPOSURE, "site.local_threads.cores": 2}}},
    )
    rescue = group_rescue(user=owner, group_id=group.pk, comment="worker was killed")
    _wait(
        lambda: Group.objects.get(pk=group.pk).status in (GroupStatus.SUCCEEDED, GroupStatus.FAILED),
        180,
        "the rescue",
        second,
    )
    group.refresh_from_db()
    rescue.refresh_from_db()
    assert group.status == GroupStatus.SUCCEEDED, group.error
    assert list(Submission.objects.filter(group=group).values_list("number", "kind", "state")) == [
        (1, "submit", "lost"),
        (2, "rescue", "succeeded"),
    ]
    assert rescue.worker_name.startswith("survivor@")
