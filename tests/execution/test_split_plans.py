"""Split rules against the session's real Butler repo (DemoCam with the demo skymap): the groups each rule
makes, the refusal of a split that drops or duplicates data (naming the data IDs, how many, and the groups),
and the plan of a launched campaign (each group's frozen where and tables, its own estimate, what ran).

The repo's science exposures in SCIENCE (seq 150 and 151 of two nights, detectors 0 and 1): night 1 points
at DEEP-A (tracts 0 and 1 of demo_sky_v1), night 2 at DEEP-B (tracts 2 and 3); detectors 0 and 1 are the
west column of a visit, so they reach only the west tracts (0 and 2), patches 1 and 3 of each."""

from __future__ import annotations

import pytest
import yaml
from django.core.exceptions import ValidationError

from campaigns import services
from campaigns.execution import campaign_launch
from campaigns.execution.plan import campaign_plan
from campaigns.models import Campaign, Group
from campaigns.yaml_io import campaign_to_yaml
from tagging.services.dataids import UploadSource, dataidset_create

pytestmark = pytest.mark.django_db

SKYMAP = "demo_sky_v1"
DRP = [
    {"name": "step1", "pipeline_subset": "step1"},
    {"name": "step2", "pipeline_subset": "step2", "depends_on": ["step1"]},
    {"name": "step3", "pipeline_subset": "step3", "depends_on": ["step2"], "split": {"by": "tract", "skymap": SKYMAP}},
    {"name": "step4", "pipeline_subset": "step4", "depends_on": ["step3"], "split": {"by": "tract", "skymap": SKYMAP}},
]  # fmt: skip


def E(night: int, seq: int) -> int:
    return night * 100000 + seq


def plan_error(campaign: Campaign, owner) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        campaign_plan(user=owner, campaign_id=campaign.pk)
    return info.value.message_dict


def test_each_rule_makes_the_groups_of_the_data_it_names(make_exec_campaign, owner):
    steps = [
        {"name": "nights", "pipeline_subset": "step1"},
        {"name": "bands", "pipeline_subset": "step1", "split": {"by": "band"}},
        {"name": "detectors", "pipeline_subset": "step1", "split": {"by": "detector", "max_size": 1}},
        {"name": "visits", "pipeline_subset": "step2", "where": "band = 'g'", "split": {"by": "visit", "max_size": 1}},
        {"name": "coadds", "pipeline_subset": "step3", "split": {"by": "tract", "skymap": SKYMAP, "max_size": 1}},
        {"name": "tracts", "pipeline_subset": "step4", "split": {"by": "tract", "skymap": SKYMAP}},
    ]
    plan = campaign_plan(user=owner, campaign_id=make_exec_campaign(steps=steps).pk)
    groups = {s.step.name: {g.name: g for g in s.groups} for s in plan.steps}
    assert list(groups["nights"]) == ["night-20251121", "night-20251122"]
    assert list(groups["bands"]) == ["band-g", "band-r", "band-u"]
    assert groups["bands"]["band-g"].quanta == {"step1": 4}  # N1-151 and N2-150, two detectors each
    assert list(groups["detectors"]) == ["detectors-001", "detectors-002"]
    assert groups["detectors"]["detectors-002"].where.endswith("(detector IN (1))")
    # The step's own where is ANDed for its groups only: two g-band visits.
    visits = list(groups["visits"].values())
    assert all("(band = 'g')" in g.where for g in visits)
    assert [g.where.rsplit(" AND ", 1)[1] for g in visits] == [
        f"(visit IN ({E(20251121, 151)}))",
        f"(visit IN ({E(20251122, 150)}))",
    ]
    # Tracts from the registry's spatial join, cut into groups of one patch; each group's own estimate.
    assert {n: g.quanta for n, g in groups["coadds"].items()} == {
        "tract-0-001": {"step3": 2},  # patch 1 in u and g
        "tract-0-002": {"step3": 2},  # patch 3
        "tract-2-001": {"step3": 2},  # patch 1 in g and r
        "tract-2-002": {"step3": 2},
    }
    assert groups["coadds"]["tract-0-002"].where.endswith(f"(skymap = '{SKYMAP}' AND tract = 0 AND patch IN (3))")
    assert {n: g.quanta for n, g in groups["tracts"].items()} == {"tract-0": {"step4": 1}, "tract-2": {"step4": 1}}
    checks = {s.step.name: s.split_check["state"] for s in plan.steps}
    assert set(checks.values()) == {"partition"}  # every rule's key is in its tasks' data IDs


def test_a_list_split_that_drops_data_is_refused_naming_what_and_how_much(make_exec_campaign, owner):
    steps = [{"name": "step1", "pipeline_subset": "step1", "split": {
        "by": "list", "groups": [{"name": "first-night", "where": "day_obs = 20251121"}],
    }}]  # fmt: skip
    campaign = make_exec_campaign(steps=steps)
    (message,) = plan_error(campaign, owner)["steps[0].split"]
    assert message.startswith("Step step1 (1 named group: first-night) drops data: 4 of the 8 data IDs of task step1")
    for exposure, detector in ((E(20251122, 150), 0), (E(20251122, 150), 1), (E(20251122, 151), 0)):
        assert f"{{detector: {detector}, exposure: {exposure}}}" in message
    # The launch refuses it the same way, and nothing is written.
    with pytest.raises(ValidationError, match="drops data"):
        campaign_launch(user=owner, campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == "draft" and not Group.objects.filter(step__campaign=campaign).exists()


def test_overlapping_wheres_are_refused_naming_the_duplicated_data_ids_and_their_groups(make_exec_campaign, owner):
    groups = [
        {"name": "n1", "where": "day_obs = 20251121"},
        {"name": "n2", "where": "day_obs = 20251122"},
        {"name": "det1", "where": "detector = 1"},
    ]
    campaign = make_exec_campaign(
        steps=[{"name": "step1", "pipeline_subset": "step1", "split": {"by": "list", "groups": groups}}]
    )
    (message,) = plan_error(campaign, owner)["steps[0].split"]
    assert "duplicates data: 4 data IDs of task step1 (detector, exposure) are in more than one group" in message
    assert f"{{detector: 1, exposure: {E(20251121, 150)}}} in n1, det1" in message
    assert f"{{detector: 1, exposure: {E(20251122, 151)}}} in n2, det1" in message
    assert "drops" not in message


def test_a_night_split_of_a_per_tract_step_is_refused_when_a_tract_spans_nights(make_exec_campaign, owner):
    # Every science exposure of detectors 0 and 1: DEEP-B (tract 2) is observed on both nights.
    query = "exposure.observation_type = 'science' AND detector IN (0, 1)"
    per_tract = make_exec_campaign(data_query=query, steps=[{"name": "step4", "pipeline_subset": "step4"}])
    (message,) = plan_error(per_tract, owner)["steps[0].split"]
    assert f"{{skymap: {SKYMAP}, tract: 2}} in night-20251121, night-20251122" in message
    assert "A night split cuts a step into a partition only when every task's data IDs have a day_obs" in message
    # Cut by tract, the same step is a partition.
    by_tract = make_exec_campaign(data_query=query, steps=[DRP[3] | {"depends_on": []}])
    plan = campaign_plan(user=owner, campaign_id=by_tract.pk)
    assert [g.name for g in plan.steps[0].groups] == ["tract-0", "tract-2", "tract-4"]


def test_a_list_split_that_covers_the_data_once_is_checked_and_launched(make_exec_campaign, owner):
    groups = [{"name": "deep-a", "where": "exposure.target_name = 'DEEP-A'"},
              {"name": "other", "where": "exposure.target_name != 'DEEP-A'"}]  # fmt: skip
    campaign = make_exec_campaign(
        steps=[{"name": "step1", "pipeline_subset": "step1", "split": {"by": "list", "groups": groups}}]
    )
    plan = campaign_plan(user=owner, campaign_id=campaign.pk)
    assert plan.steps[0].split_check["state"] == "checked"
    assert [(g.name, g.total) for g in plan.steps[0].groups] == [("deep-a", 4), ("other", 4)]
    campaign_launch(user=owner, campaign_id=campaign.pk)
    assert Group.objects.filter(step__campaign=campaign).count() == 2


def test_an_unknown_skymap_is_named_on_the_split(make_exec_campaign, owner):
    campaign = make_exec_campaign(
        steps=[{"name": "step3", "pipeline_subset": "step3", "split": {"by": "tract", "skymap": "nope"}}]
    )
    errors = plan_error(campaign, owner)
    assert errors == {"steps[0].split.skymap": [f"Step step3: The repo has no skymap 'nope' (it has: {SKYMAP})."]}


def test_a_dataid_set_split_runs_each_chunk_with_its_own_table(make_exec_campaign, owner, butler_repo):
    records = [{"instrument": "DemoCam", "exposure": E(n, s), "detector": d}
               for n in (20251121, 20251122) for s in (150, 151) for d in (0, 1)]  # fmt: skip
    dataidset_create(
        user=owner, repo_label="demo", name="eight", reason="chunks",
        source=UploadSource(kind="records", records=records, dimensions=["instrument", "exposure", "detector"]),
        visibility="public",
    )  # fmt: skip
    split = {"by": "dataid_set", "dataid_set": "eight", "max_size": 3}
    campaign = make_exec_campaign(steps=[{"name": "step1", "pipeline_subset": "step1", "split": split}])
    assert yaml.safe_load(campaign_to_yaml(campaign))["steps"][0]["split"] == {
        "by": "dataid_set", "dataid_set": "eight", "version": 1, "max_size": 3,
    }  # fmt: skip
    plan = campaign_plan(user=owner, campaign_id=campaign.pk)
    assert [(g.name, g.total, g.tables) for g in plan.steps[0].groups] == [
        ("chunk-001", 3, [{"name": "eight@v1 chunk 1", "rows": 3}]),
        ("chunk-002", 3, [{"name": "eight@v1 chunk 2", "rows": 3}]),
        ("chunk-003", 2, [{"name": "eight@v1 chunk 3", "rows": 2}]),
    ]
    assert plan.steps[0].split_check["state"] == "partition"
    campaign_launch(user=owner, campaign_id=campaign.pk)
    launched = campaign_plan(user=owner, campaign_id=campaign.pk)
    assert launched.launched and [(g.name, g.total) for g in launched.steps[0].groups] == [
        ("chunk-001", 3), ("chunk-002", 3), ("chunk-003", 2),
    ]  # fmt: skip
    assert launched.steps[0].groups[2].tables[0]["rows"] == 2
    assert launched.steps[0].groups[2].tables[0]["name"].startswith("split-step1-chunk-003-")  # a file name, no path


def test_the_plan_of_a_launched_campaign_shows_its_frozen_groups_not_the_current_query(
    make_exec_campaign, owner, client
):
    campaign = make_exec_campaign(steps=DRP)
    campaign_launch(user=owner, campaign_id=campaign.pk)
    campaign.refresh_from_db()
    # An edit after launch changes the definition, not what the groups were frozen with.
    services.campaign_update(
        user=owner, campaign_id=campaign.pk, version=campaign.version, data={"data_query": "exposure.seq_num = 150"}
    )
    plan = campaign_plan(user=owner, campaign_id=campaign.pk)
    assert plan.launched and not plan.launchable
    frozen = {s.step.name: {g.name: g for g in s.groups} for s in plan.steps}
    assert {n: g.total for n, g in frozen["step1"].items()} == {"night-20251121": 4, "night-20251122": 4}
    assert {n: g.total for n, g in frozen["step3"].items()} == {"tract-0": 4, "tract-2": 4}
    assert {n: g.total for n, g in frozen["step4"].items()} == {"tract-0": 1, "tract-2": 1}
    group = frozen["step3"]["tract-2"]
    assert "exposure.seq_num IN (150, 151)" in group.where and group.status == "waiting"
    assert group.ran == {"attempts": 0, "quanta_total": 0, "succeeded": 0, "failed": 0, "per_task": None,
                         "failed_per_task": {}}  # fmt: skip
    assert [s.pipeline for s in plan.steps] == [f"demo/pipelines/drp.yaml#step{i}" for i in (1, 2, 3, 4)]

    client.force_login(owner)
    page = client.get(f"/campaigns/{campaign.pk}/plan/").content.decode()
    assert "frozen at launch" in page and "demo/pipelines/drp.yaml#step3" in page and "tract-2" in page
    assert "/tmp" not in page and "does not exist" not in page
    body = client.get(f"/api/v1/campaigns/{campaign.pk}/plan/").json()
    assert body["launched"] is True and body["steps"][2]["groups"][1]["quanta_total"] == 4


def test_a_finished_campaign_whose_pipeline_is_gone_still_shows_its_groups(make_exec_campaign, owner):
    campaign = make_exec_campaign()
    campaign_launch(user=owner, campaign_id=campaign.pk)
    Campaign.objects.filter(pk=campaign.pk).update(status="succeeded", pipeline="demo/pipelines/retired.yaml")
    plan = campaign_plan(user=owner, campaign_id=campaign.pk)
    assert plan.pipeline_problem == "The pipeline file demo/pipelines/retired.yaml is no longer there"
    assert [g.name for g in plan.steps[0].groups] == ["night-20251121", "night-20251122"]
    assert plan.steps[0].groups[0].quanta is None and "no longer there" in plan.steps[0].groups[0].estimate_note


def test_a_clone_and_a_recurring_copy_keep_the_splits(owner, make_exec_campaign):
    from campaigns.recurring import recurring_create, recurring_run

    steps = [
        {"name": "step1", "pipeline_subset": "step1", "split": {"by": "exposure", "max_size": 3}},
        {"name": "step2", "pipeline_subset": "step2", "depends_on": ["step1"], "where": "band = 'g'",
         "split": {"by": "visit", "max_size": 1}},
    ]  # fmt: skip
    source = make_exec_campaign(name="to-clone", steps=steps)
    clone = services.campaign_clone(user=owner, campaign_id=source.pk, name="the-clone")
    assert [(s.name, s.split, s.where) for s in clone.steps.order_by("position")] == [
        ("step1", {"by": "exposure", "max_size": 3}, ""),
        ("step2", {"by": "visit", "max_size": 1}, "band = 'g'"),
    ]
    assert campaign_to_yaml(clone).split("\nsteps:\n")[1] == campaign_to_yaml(source).split("\nsteps:\n")[1]

    # A schedule's copy is cut the same way when it is launched.
    schedule = recurring_create(
        user=owner, template_id=source.pk, name_prefix="nightly", cron="0 12 * * *", last_nights=2
    )
    made = recurring_run(recurring_id=schedule.pk)
    assert made is not None and made.status == "running", made and made.status
    groups = {s.name: list(s.groups.order_by("position").values_list("name", flat=True)) for s in made.steps.all()}
    # 4 science exposures (2 nights x seq 150, 151) in groups of 3; step2 only the g-band visits, one per group.
    assert groups == {"step1": ["exposures-001", "exposures-002"], "step2": ["visits-001", "visits-002"]}


def test_a_campaigns_config_overrides_reach_only_the_steps_whose_tasks_they_name(make_exec_campaign, owner):
    """pipetask refuses ``-c LABEL:...`` for a label its pipeline subset lacks: a fault injected into step1
    must not stop step3 (a multi-step campaign keeps one set of overrides)."""
    from campaigns.execution.runner import build_spec, submission_claim

    overrides = {"step1": {"failDataIds": ["exposure:1"]}, "step3": {"failProbability": 0.5}}
    campaign = make_exec_campaign(
        steps=[DRP[2] | {"depends_on": []}, DRP[0]],
        bps={"compute_site": "local_threads", "wms": "parsl", "extra": {"config_overrides": overrides}},
    )
    campaign_launch(user=owner, campaign_id=campaign.pk)
    specs = {}
    for group in Group.objects.filter(step__campaign=campaign, name__in=["tract-0", "night-20251121"]):
        submission = submission_claim(group_id=group.pk, worker_name="test")
        assert submission is not None
        specs[group.step.name] = build_spec(submission)
    assert specs["step3"].config_overrides == {"step3": {"failProbability": 0.5}}
    assert specs["step1"].config_overrides == {"step1": {"failDataIds": ["exposure:1"]}}


def test_a_pipeline_that_cannot_be_read_is_named_as_written(make_exec_campaign, owner, settings, tmp_path):
    settings.CM_PIPELINE_ROOT = tmp_path
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "broken.yaml").write_text("tasks: [\n")
    campaign = make_exec_campaign(pipeline="pipelines/broken.yaml")
    errors = plan_error(campaign, owner)
    (message,) = errors["pipeline"]
    assert message.startswith("Cannot read the pipeline pipelines/broken.yaml#step1: while parsing")
    assert '"pipelines/broken.yaml", line 2' in message and str(tmp_path) not in message
