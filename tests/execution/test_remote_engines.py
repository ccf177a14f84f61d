"""Production engines: groups submitted through the real ctrl_bps HTCondor and PanDA plugins.

What really runs: the executor (claim, submit YAML, preflight), BPS (``pipetask qgraph`` on the
test repo, clustering, generic workflow), the plugin's ``prepare`` (HTCondor DAG files; the
PanDA/iDDS workflow and its file distribution), its ``submit``, its ``report`` (reading the
DAGMan files / iDDS task records into a ``WmsRunReport``) through ``ctrl_bps``'s report API,
and ``ctrl_bps``'s cancel API. Replaced: only what would leave the machine (``remote_wms``:
the HTCondor schedd and its DAGMan, the PanDA/iDDS HTTP client). The status poll is the
periodic beat task's function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from campaigns import services
from campaigns.choices import GroupStatus, SubmissionState
from campaigns.execution import campaign_launch, group_cancel
from campaigns.execution.runner import poll_running_groups
from campaigns.models import Group, Submission
from tests.execution.conftest import run_ready_groups
from tests.execution.remote_wms import FakeCondorPool, FakeIdds

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

GROUPS = [
    {"name": "ok", "where": "exposure.day_obs = 20251121 AND exposure.seq_num = 150"},
    {"name": "bad", "where": "exposure.day_obs = 20251121 AND exposure.seq_num = 151"},
    {"name": "stop", "where": "exposure.day_obs = 20251122 AND exposure.seq_num = 150"},
]


@pytest.fixture
def condor(monkeypatch, tmp_path) -> FakeCondorPool:
    # htcondor.Submit.from_dag() (local, in the plugin's submit) looks for the condor_dagman
    # program of the submit host's HTCondor installation; there is none here.
    bin_dir = tmp_path / "condor-bin"
    bin_dir.mkdir()
    (bin_dir / "condor_dagman").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "condor_dagman").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path('/usr/bin')}:" + __import__("os").environ["PATH"])
    return FakeCondorPool().install(monkeypatch)


@pytest.fixture
def idds(monkeypatch) -> FakeIdds:
    return FakeIdds().install(monkeypatch)


def _campaign(make_exec_campaign, owner, wms: str, extra: dict[str, Any]):
    campaign = make_exec_campaign(bps={"compute_site": "SLAC" if wms == "panda" else "local", "wms": wms,
                                       "extra": extra})  # fmt: skip
    step1 = campaign.steps.order_by("position").first()
    # Pre-defined groups: three of the four exposure-nights (a list split leaving one out is refused at launch).
    services.step_groups_define(
        user=owner,
        campaign_id=campaign.pk,
        step_name=step1.name,
        groups=[{"name": g["name"], "data_query": g["where"]} for g in GROUPS],
    )
    campaign_launch(user=owner, campaign_id=campaign.pk)
    return campaign, step1


def _submission(group: Group) -> Submission:
    return group.submissions.order_by("-number").first()


def _cancel_eagerly(monkeypatch, django_capture_on_commit_callbacks, owner, group: Group) -> None:
    from campaigns.tasks import wms_cancel

    monkeypatch.setitem(wms_cancel.app.conf, "task_always_eager", True)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        group_cancel(user=owner, group_id=group.pk, comment="wrong selection")
    assert len(callbacks) == 1


def _check_results(step1, progress_checked: dict[str, int]) -> None:
    ok, bad, stop = (step1.groups.get(name=g["name"]) for g in GROUPS)
    ok.refresh_from_db(), bad.refresh_from_db(), stop.refresh_from_db()
    # Counts come from the plugin's report: 2 jobs (one quantum each) per group, init/final jobs left out.
    assert progress_checked == {"total": 2, "succeeded": 1}
    assert ok.status == GroupStatus.SUCCEEDED
    assert (ok.quanta_total, ok.quanta_succeeded, ok.quanta_failed) == (2, 2, 0)
    assert _submission(ok).state == SubmissionState.SUCCEEDED
    assert bad.status == GroupStatus.FAILED
    assert (bad.quanta_total, bad.quanta_succeeded, bad.quanta_failed) == (2, 1, 1)
    sub = _submission(bad)
    assert sub.state == SubmissionState.FAILED
    errors = list(sub.quantum_errors.all())
    assert len(errors) == 1, [(e.task_label, e.message) for e in errors]
    error = errors[0]
    assert error.task_label == "step1" and "fail" in error.message
    assert stop.status == GroupStatus.CANCELLED
    assert "WMS cancel of" in _submission(stop).error and "done" in _submission(stop).error


def test_htcondor_group_runs_succeeds_fails_and_cancels(
    make_exec_campaign, owner, condor, monkeypatch, django_capture_on_commit_callbacks
):
    campaign, step1 = _campaign(make_exec_campaign, owner, "htcondor", {})
    assert run_ready_groups(campaign) == ["submitted"] * 3
    groups = {g.name: g for g in step1.groups.all()}
    subs = {name: _submission(g) for name, g in groups.items()}
    assert {g.status for g in groups.values()} == {GroupStatus.RUNNING}
    assert all(s.state == SubmissionState.RUNNING and s.wms == "htcondor" for s in subs.values())
    assert sorted(float(s.wms_run_id) for s in subs.values()) == [9001.0, 9002.0, 9003.0]
    # The plugin wrote a real DAG into the submit directory, with one node per quantum.
    dag = next(Path(subs["ok"].submit_dir).glob("*.dag")).read_text()
    assert dag.count("\nJOB ") == 3 and "FINAL finalJob" in dag  # pipetaskInit + one node per quantum

    # DAGMan has finished one node of "ok": the beat task's poll records it.
    condor.progress(subs["ok"].wms_run_id, done=2)  # pipetaskInit and the first step1 node
    assert poll_running_groups()["polled"] == 3
    groups["ok"].refresh_from_db()
    seen = {"total": groups["ok"].quanta_total, "succeeded": groups["ok"].quanta_succeeded}
    assert groups["ok"].status == GroupStatus.RUNNING

    _cancel_eagerly(monkeypatch, django_capture_on_commit_callbacks, owner, groups["stop"])
    assert condor.removed == [subs["stop"].wms_run_id]

    condor.finish(subs["ok"].wms_run_id)
    bad_node = next(n for n in condor.run_of(subs["bad"].wms_run_id).nodes if n not in ("pipetaskInit", "finalJob"))
    condor.finish(subs["bad"].wms_run_id, failed_nodes=(bad_node,))
    assert poll_running_groups() == {"polled": 2, "finished": 2}
    _check_results(step1, seen)
    assert poll_running_groups() == {"polled": 0, "finished": 0}  # nothing left to watch


def test_panda_group_runs_succeeds_fails_and_cancels(
    make_exec_campaign, owner, idds, monkeypatch, django_capture_on_commit_callbacks, tmp_path
):
    site = {
        # Where the PanDA jobs fetch the files BPS stages (a shared file system here).
        "fileDistributionEndPoint": f"file://{tmp_path}/panda-files/{{uniqProcName}}/",
        "runnerCommand": "bash -c '_cmd_line_'",
        "computeCloud": "US",
    }
    campaign, step1 = _campaign(make_exec_campaign, owner, "panda", site)
    assert run_ready_groups(campaign) == ["submitted"] * 3
    groups = {g.name: g for g in step1.groups.all()}
    subs = {name: _submission(g) for name, g in groups.items()}
    assert sorted(int(s.wms_run_id) for s in subs.values()) == [501, 502, 503]
    request = idds.requests[int(subs["ok"].wms_run_id)]
    assert [t.rsplit("_", 2)[-2] for t in request.tasks] == ["pipetaskInit", "step1", "finalJob"]
    staged = list((tmp_path / "panda-files").glob("*/*"))
    assert staged, "the plugin staged the workflow's files for the PanDA jobs"

    request.done[request.tasks[0]], request.done[request.tasks[1]] = 1, 1
    assert poll_running_groups()["polled"] == 3
    groups["ok"].refresh_from_db()
    seen = {"total": groups["ok"].quanta_total, "succeeded": groups["ok"].quanta_succeeded}

    _cancel_eagerly(monkeypatch, django_capture_on_commit_callbacks, owner, groups["stop"])
    assert idds.aborted == [int(subs["stop"].wms_run_id)]

    idds.finish(subs["ok"].wms_run_id)
    idds.finish(subs["bad"].wms_run_id, failed_tasks=("step1",))
    assert poll_running_groups() == {"polled": 2, "finished": 2}
    _check_results(step1, seen)
