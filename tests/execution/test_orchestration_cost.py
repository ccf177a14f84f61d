"""The executor's bookkeeping per group: how many SQL statements and commits, and what they record.

The remote-WMS path (HTCondor, PanDA) with the WMS answers ready-made (``bps.prepare``,
``bps.run_prepared`` and ``bps.report`` are the remote part; the real no-op WMS path is in
test_end_to_end.py). Everything else is real: PostgreSQL, the Butler repo (output-run check,
CHAINED collections), the submit files. Counts, not times (times are measured in benchmarks/).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from django.db import connection

from campaigns import services
from campaigns.choices import GroupStatus, HistoryAction, SubmissionState
from campaigns.execution import campaign_launch, runner
from campaigns.models import Campaign, Group, GroupTransition, HistoryEntry, Submission
from lsst_adapter import bps

pytestmark = pytest.mark.django_db(transaction=True)

GROUPS = 4
QUANTA = 9


class Counter:
    """SQL statements, and commits of transactions (``transaction.atomic`` blocks and autocommit writes)."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.commits = 0

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(sql)
        if not context["connection"].in_atomic_block and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "WITH")):
            self.commits += 1
        return execute(sql, params, many, context)


@pytest.fixture
def counted(monkeypatch):
    counter = Counter()
    real_commit = connection._commit

    def commit():
        counter.commits += 1
        return real_commit()

    monkeypatch.setattr(connection, "_commit", commit)
    with connection.execute_wrapper(counter):
        yield counter


@pytest.fixture
def remote_wms(monkeypatch):
    """``prepare``/``run_prepared``/``report`` answered as a remote WMS would (run id, later SUCCEEDED)."""

    def prepare(submit_yaml_path, *, env_extra=None):
        submit_dir = str(Path(submit_yaml_path).with_suffix(""))
        return bps.PreparedWorkflow(
            run_name=Path(submit_dir).name,
            submit_dir=submit_dir,
            qgraph_file=f"{submit_dir}/g.qg",
            quanta=QUANTA,
            quanta_by_task={"step1": QUANTA},
            jobs=QUANTA + 2,
            wms_service_class=bps.WMS_SERVICE_CLASSES["noop"],
            butler_config="",
            output="",
            output_run="",
            prepare_seconds=0.0,
        )

    def run_prepared(prepared, *, env_extra=None):
        return bps.SubmitResult(
            run_name=prepared.run_name,
            run_id=f"wms-{prepared.run_name}",
            submit_dir=prepared.submit_dir,
            qgraph_file=prepared.qgraph_file,
            quanta=prepared.quanta,
            state="RUNNING",
            finished=False,
        )

    done = bps.GroupProgress(total=QUANTA, succeeded=QUANTA, state="SUCCEEDED", unit="jobs", finished=True)
    monkeypatch.setattr(bps, "prepare", prepare)
    monkeypatch.setattr(bps, "run_prepared", run_prepared)
    monkeypatch.setattr(bps, "report", lambda wms, run_id, **kw: dataclasses.replace(done))


@pytest.fixture
def launched(make_exec_campaign, owner):
    campaign = make_exec_campaign(steps=[{"name": "step1", "pipeline_subset": "step1"}])
    Campaign.objects.filter(pk=campaign.pk).update(bps={"wms": "noop", "compute_site": "local"})
    step = campaign.steps.get()
    groups = [{"name": f"g{i}", "data_query": f"exposure.seq_num = 150 AND detector = {i}"} for i in range(GROUPS)]
    services.step_groups_define(user=owner, campaign_id=campaign.pk, step_name=step.name, groups=groups)
    campaign_launch(user=owner, campaign_id=campaign.pk)
    return campaign


def _ids(campaign):
    return list(Group.objects.filter(step__campaign=campaign).order_by("position").values_list("pk", flat=True))


def test_a_submission_costs_three_commits_and_a_few_statements_and_records_every_move(launched, remote_wms, counted):
    ids = _ids(launched)
    counted.statements.clear()
    for group_id in ids:
        assert runner.run_group(group_id=group_id, worker_name="w@host") == "submitted"
    # Claim (4; the first claim of a step also starts it), the step's dependencies (1), prepared (3), submitted (3).
    assert len(counted.statements) <= 11 * GROUPS + 1, "\n".join(counted.statements)
    # The claim, the run name (before the WMS is called) and the run id: one commit each, no more.
    assert counted.commits == 3 * GROUPS
    for group in Group.objects.filter(step__campaign=launched):
        sub = group.submissions.get()
        assert group.status == GroupStatus.RUNNING and group.attempts == 1 and group.quanta_total == QUANTA
        assert sub.state == SubmissionState.RUNNING and sub.wms_run_id == f"wms-{sub.bps_run_name}"
        assert group.run_collection == sub.run_collection and sub.worker_name == "w@host"
        moves = list(GroupTransition.objects.filter(group=group).order_by("pk").values_list("from_status", "to_status"))
        assert moves[-3:] == [("ready", "preflight"), ("preflight", "submitting"), ("submitting", "running")]
        assert set(
            GroupTransition.objects.filter(group=group, from_status="ready").values_list("submission", flat=True)
        ) == {sub.pk}
    entries = HistoryEntry.objects.filter(campaign=launched, action=HistoryAction.EXECUTION)
    g0 = f"group step1/{Group.objects.get(pk=_ids(launched)[0]).name}"
    changes = [e.changes[g0] for e in entries.order_by("pk") if g0 in e.changes and len(e.changes) == 1]
    assert changes == [["ready", "preflight"], ["preflight", "submitting"], ["submitting", "running"]]
    claimed = entries.filter(changes__has_key=g0, comment__startswith="attempt 1 (submit) → ").get()
    assert claimed.version == Campaign.objects.get(pk=launched.pk).version
    assert launched.steps.get().status == "running"


def test_a_poll_records_every_finished_run_in_one_commit(launched, remote_wms, counted):
    for group_id in _ids(launched):
        runner.run_group(group_id=group_id, worker_name="w@host")
    counted.statements.clear()
    counted.commits = 0
    assert runner.poll_running_groups() == {"polled": GROUPS, "finished": GROUPS}
    # The results: one transaction; the roll-up (step and campaign succeed, chains defined): one more.
    assert counted.commits == 2
    per_group = 4  # the submission locked, its update, the group's update, transition and history in one INSERT
    assert len(counted.statements) <= per_group * GROUPS + 20, "\n".join(counted.statements)
    assert set(Group.objects.filter(step__campaign=launched).values_list("status", flat=True)) == {"succeeded"}
    assert set(Submission.objects.filter(group__step__campaign=launched).values_list("state", flat=True)) == {
        "succeeded"
    }
    launched.refresh_from_db()
    assert launched.status == "succeeded"
    assert runner.poll_running_groups() == {"polled": 0, "finished": 0}  # nothing recorded twice


def test_a_result_that_cannot_be_recorded_does_not_hold_back_the_others(launched, remote_wms, monkeypatch):
    """One failure in the poll's shared transaction: it is rolled back, each result is recorded alone."""
    from metrics import services as metric_services

    ids = _ids(launched)
    for group_id in ids:
        runner.run_group(group_id=group_id, worker_name="w@host")
    bad = ids[1]
    real_enqueue = metric_services.group_metrics_ingest_enqueue

    def enqueue(group_id):
        if group_id == bad:
            raise RuntimeError("metrics queue unavailable")
        real_enqueue(group_id)

    monkeypatch.setattr(metric_services, "group_metrics_ingest_enqueue", enqueue)
    with pytest.raises(RuntimeError, match="metrics queue unavailable"):
        runner.poll_running_groups()
    status = dict(Group.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert status[bad] == "running"  # still watched: the next poll records it
    assert {status[i] for i in ids if i != bad} == {"succeeded"}
    assert Submission.objects.get(group_id=bad).state == SubmissionState.RUNNING
    assert launched.steps.get().status == "running"  # rolled up after the others: one group still runs
    monkeypatch.setattr(metric_services, "group_metrics_ingest_enqueue", real_enqueue)
    assert runner.poll_running_groups() == {"polled": 1, "finished": 1}
    assert Group.objects.get(pk=bad).status == "succeeded"
    launched.refresh_from_db()
    assert launched.status == "succeeded"
