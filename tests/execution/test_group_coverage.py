"""Which exposures each group covers (campaigns.coverage): recorded from the mirror by a task after launch,
for the group's where and its data-ID tables (the include/exclude DataID sets, a frozen metric input), again
when they change, and as unknown — nothing guessed — when the mirror cannot answer the where.

Real PostgreSQL, the session's real Butler repo and its mirror, the real Celery task (run eagerly)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from campaigns import services
from campaigns.choices import CoverageState
from campaigns.coverage import campaign_coverage_record, group_coverage_record, pending_groups
from campaigns.execution import campaign_launch
from campaigns.execution.services import step_input_table_set
from campaigns.models import Group, GroupCoverage, GroupExposure
from tagging.dataids.writers import ecsv_text
from tagging.services.dataids import UploadSource, dataidset_create

pytestmark = pytest.mark.django_db

N1, N2 = 20251121, 20251122


def E(night: int, seq: int) -> int:
    return night * 100000 + seq


def covered(group: Group) -> set[int]:
    return set(GroupExposure.objects.filter(group=group).values_list("exposure", flat=True))


@pytest.fixture
def eager_celery(monkeypatch):
    from config.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)


def launch(make_exec_campaign, owner, groups: dict[str, str], **overrides):
    """Groups with these wheres, overlapping or leaving data out on purpose: pre-defined groups (a list split
    that drops or duplicates data would be refused at launch)."""
    campaign = make_exec_campaign(steps=[{"name": "step1", "pipeline_subset": "step1"}], **overrides)
    step = campaign.steps.get()
    services.step_groups_define(
        user=owner,
        campaign_id=campaign.pk,
        step_name="step1",
        groups=[{"name": n, "data_query": w} for n, w in groups.items()],
    )
    campaign_launch(user=owner, campaign_id=campaign.pk)
    return {g.name: g for g in Group.objects.filter(step=step)}


def make_set(owner, name: str, records: list[dict]):
    return dataidset_create(
        user=owner, repo_label="demo", name=name, reason=f"test set {name}",
        source=UploadSource(kind="records", records=records, dimensions=list(records[0])), visibility="public",
    )  # fmt: skip


def test_a_launch_sends_the_task_that_records_each_groups_exposures_from_its_where(
    make_exec_campaign, owner, eager_celery, django_capture_on_commit_callbacks
):
    # The campaign's query names detectors (SCIENCE: detector IN (0, 1)): answered through the detector mirror.
    with django_capture_on_commit_callbacks() as callbacks:
        groups = launch(
            make_exec_campaign, owner,
            {"seq151": "exposure.seq_num = 151", "night2": f"day_obs = {N2}", "none": "exposure.seq_num = 999"},
        )  # fmt: skip
    assert all(not GroupCoverage.objects.filter(group=g).exists() for g in groups.values())  # not in the launch
    # Only the coverage task is run (the groups' own group_run tasks would run BPS).
    (send,) = [c for c in callbacks if "campaign_coverage_record_enqueue" in c.__qualname__]
    send()
    assert covered(groups["seq151"]) == {E(N1, 151), E(N2, 151)}
    assert covered(groups["night2"]) == {E(N2, 150), E(N2, 151)}  # SCIENCE keeps seq 150 and 151 only
    assert covered(groups["none"]) == set()
    states = dict(GroupCoverage.objects.filter(group__in=groups.values()).values_list("group__name", "state"))
    assert states == {"seq151": "recorded", "night2": "recorded", "none": "recorded"}
    assert GroupCoverage.objects.get(group=groups["seq151"]).exposures == 2
    assert not pending_groups().filter(pk__in=[g.pk for g in groups.values()]).exists()


def test_recording_again_changes_nothing_and_a_changed_table_makes_the_group_pending(
    make_exec_campaign, owner, tmp_path
):
    groups = launch(make_exec_campaign, owner, {"all": "exposure.seq_num IN (150, 151)"})
    group = groups["all"]
    assert pending_groups().filter(pk=group.pk).exists()  # no worker ran the task here
    assert campaign_coverage_record(campaign_id=group.step.campaign_id) == {"recorded": 1, "unknown": 0}
    assert campaign_coverage_record(campaign_id=group.step.campaign_id) == {"recorded": 0, "unknown": 0}
    assert covered(group) == {E(N1, 150), E(N1, 151), E(N2, 150), E(N2, 151)}

    # A metric-conditioned input frozen for the step: only night 1's 151 passed.
    path = tmp_path / "input.ecsv"
    path.write_text(ecsv_text(["instrument", "exposure"], [("DemoCam", E(N1, 151))]))
    step_input_table_set(step_id=group.step_id, path=str(path), comment="frozen")
    assert pending_groups().filter(pk=group.pk).exists()
    group_coverage_record(group_id=group.pk)
    assert covered(group) == {E(N1, 151)}
    assert GroupCoverage.objects.get(group=group).data_id_table == str(path)


def test_include_and_exclude_sets_are_honoured(make_exec_campaign, owner, butler_repo):
    inst = "DemoCam"
    make_set(owner, "first", [{"instrument": inst, "exposure": E(n, s)} for n, s in ((N1, 150), (N1, 151), (N2, 150))])
    make_set(owner, "drop-151", [{"instrument": inst, "exposure": E(N1, 151)}])
    make_set(owner, "hot-amp", [{"instrument": inst, "exposure": E(N2, 150), "detector": 1}])
    whole = launch(
        make_exec_campaign, owner, {"all": "exposure.seq_num > 0"}, include_sets=["first"], exclude_sets=["drop-151"]
    )["all"]
    # hot-amp leaves out one detector of night 2's 150: its detector 0 is still processed (SCIENCE: 0 and 1).
    partly = launch(make_exec_campaign, owner, {"all": "exposure.seq_num > 0"}, exclude_sets=["hot-amp"])["all"]
    only_hot = launch(
        make_exec_campaign, owner, {"all": "detector = 1"}, include_sets=["first"], exclude_sets=["hot-amp"]
    )["all"]
    for group in (whole, partly, only_hot):
        group_coverage_record(group_id=group.pk)
    assert covered(whole) == {E(N1, 150), E(N2, 150)}
    assert covered(partly) == {E(N1, 150), E(N1, 151), E(N2, 150), E(N2, 151)}
    assert covered(only_hot) == {E(N1, 150), E(N1, 151)}  # night 2's 150 only on detector 1, which is excluded


def test_a_where_the_mirror_cannot_answer_is_recorded_as_unknown_with_nothing_guessed(make_exec_campaign, owner):
    groups = launch(make_exec_campaign, owner, {"dark": "exposure.dark_time > 1", "plain": "exposure.seq_num = 150"})
    counts = campaign_coverage_record(campaign_id=groups["dark"].step.campaign_id)
    assert counts == {"recorded": 1, "unknown": 1}
    unknown = GroupCoverage.objects.get(group=groups["dark"])
    assert unknown.state == CoverageState.UNKNOWN and "dark_time" in unknown.reason
    assert covered(groups["dark"]) == set() and covered(groups["plain"]) == {E(N1, 150), E(N2, 150)}


def test_a_missing_data_id_table_is_unknown(make_exec_campaign, owner, tmp_path):
    group = launch(make_exec_campaign, owner, {"all": "exposure.seq_num = 150"})["all"]
    step_input_table_set(step_id=group.step_id, path=str(tmp_path / "gone.ecsv"), comment="frozen")
    coverage = group_coverage_record(group_id=group.pk)
    assert coverage.state == CoverageState.UNKNOWN and "gone.ecsv is missing" in coverage.reason


def test_the_management_command_records_groups_planned_before(make_exec_campaign, owner):
    group = launch(make_exec_campaign, owner, {"all": "exposure.seq_num = 150"})["all"]
    from io import StringIO

    out = StringIO()
    call_command("group_coverage_record", stdout=out)
    assert f"{group.step.campaign.name}: 1 group(s) recorded, 0 unknown" in out.getvalue()
    assert covered(group) == {E(N1, 150), E(N2, 150)}
    out = StringIO()
    call_command("group_coverage_record", stdout=out)
    assert "Coverage recorded for 0 campaign(s)." in out.getvalue()


def test_a_mirror_sync_that_adds_exposures_records_the_groups_again(
    make_exec_campaign, owner, eager_celery, django_capture_on_commit_callbacks
):
    from tagging.models import ButlerRepo, Exposure
    from tagging.services import repo_mirror_sync

    groups = launch(make_exec_campaign, owner, {"seq151": "exposure.seq_num = 151"})
    group = groups["seq151"]
    repo = ButlerRepo.objects.get(label="demo")
    # The mirror lacks an exposure the registry has (synced before it was ingested) when the group is recorded.
    Exposure.objects.filter(repo=repo, exposure_id=E(N2, 151)).delete()
    campaign_coverage_record(campaign_id=group.step.campaign_id)
    assert covered(group) == {E(N1, 151)}
    with django_capture_on_commit_callbacks(execute=True):
        repo_mirror_sync(repo=repo)  # brings the exposure back: the group is recorded again
    assert covered(group) == {E(N1, 151), E(N2, 151)}
    # A sync that changes nothing keeps what was recorded (and sends nothing).
    recorded = GroupCoverage.objects.get(group=group).recorded
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        repo_mirror_sync(repo=repo)
    assert callbacks == []
    assert GroupCoverage.objects.get(group=group).recorded == recorded


def test_between_a_mirror_change_and_the_new_record_the_group_is_pending_not_stale(make_exec_campaign, owner):
    from campaigns.coverage import repo_coverage_reset
    from tagging.models import ButlerRepo

    groups = launch(make_exec_campaign, owner, {"seq151": "exposure.seq_num = 151"})
    group = groups["seq151"]
    campaign_coverage_record(campaign_id=group.step.campaign_id)
    assert covered(group) and not pending_groups().filter(pk=group.pk).exists()
    assert repo_coverage_reset(repo=ButlerRepo.objects.get(label="demo")) >= 1  # no task run (not eager)
    assert pending_groups().filter(pk=group.pk).exists()
