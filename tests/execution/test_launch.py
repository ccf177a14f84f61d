"""campaign_launch: planning steps into groups from the split rule and the registry, freezing selections."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from campaigns.choices import CampaignStatus, GroupStatus, HistoryAction, StepStatus
from campaigns.execution import campaign_launch, step_split_set
from campaigns.execution.planning import clean_split
from campaigns.models import GroupTransition
from tests.execution.conftest import SCIENCE

pytestmark = pytest.mark.django_db


def test_launch_splits_step1_by_night_and_starts_only_steps_without_dependencies(make_exec_campaign, owner):
    campaign = make_exec_campaign()
    campaign = campaign_launch(user=owner, campaign_id=campaign.pk, comment="go")
    assert campaign.status == CampaignStatus.RUNNING
    base = f"u/{owner.username}/{campaign.name}"
    assert campaign.output_collection == base
    step1, step2 = campaign.steps.order_by("position")
    assert step1.status == StepStatus.READY and step2.status == StepStatus.WAITING
    assert step1.output_collection == f"{base}/step1"
    groups = list(step1.groups.order_by("position"))
    assert [g.name for g in groups] == ["night-20251121", "night-20251122"]
    assert all(g.status == GroupStatus.READY for g in groups)
    assert groups[0].where == f"((instrument = 'DemoCam') AND ({SCIENCE})) AND (day_obs = 20251121)"
    assert groups[0].output_collection == f"{base}/step1/night-20251121"
    assert {g.status for g in step2.groups.all()} == {GroupStatus.WAITING}
    assert GroupTransition.objects.filter(
        group=groups[0], from_status="waiting", to_status="ready", actor=owner
    ).exists()
    launch = campaign.history.get(action=HistoryAction.LAUNCH)
    assert launch.changes["status"] == ["draft", "running"] and "step1: 2 group(s)" in launch.comment


def test_split_by_exposure_visit_and_list(make_exec_campaign, owner):
    campaign = make_exec_campaign()
    step1, step2 = campaign.steps.order_by("position")
    step_split_set(user=owner, step_id=step1.pk, split={"by": "exposure", "max_size": 3})
    step_split_set(user=owner, step_id=step2.pk, split={"by": "list", "groups": [{"name": "a", "where": "visit > 0"}]})
    campaign_launch(user=owner, campaign_id=campaign.pk)
    wheres = list(step1.groups.order_by("position").values_list("name", "where"))
    assert [n for n, _ in wheres] == ["exposures-001", "exposures-002"]
    assert wheres[0][1].endswith("(exposure IN (2025112100150, 2025112100151, 2025112200150))")
    assert list(step2.groups.values_list("name", "where")) == [
        ("a", f"((instrument = 'DemoCam') AND ({SCIENCE})) AND (visit > 0)")
    ]

    other = make_exec_campaign()
    first = other.steps.order_by("position").first()
    step_split_set(user=owner, step_id=first.pk, split={"by": "visit", "max_size": 10})
    campaign_launch(user=owner, campaign_id=other.pk)
    (group,) = first.groups.all()
    assert group.where.endswith("(visit IN (2025112100150, 2025112100151, 2025112200150, 2025112200151))")


def test_split_rules_are_validated():
    assert clean_split(None) == {"by": "night"}
    for bad in ({"by": "tract"}, {"by": "exposure", "max_size": 0}, {"by": "list", "groups": []}, {"x": 1}):
        with pytest.raises(ValidationError):
            clean_split(bad)
    with pytest.raises(ValidationError, match="used by another group"):
        clean_split({"by": "list", "groups": [{"name": "a", "where": "x=1"}, {"name": "a", "where": "x=2"}]})


def test_launch_is_refused_without_rights_twice_or_with_a_missing_pipeline(
    make_exec_campaign, owner, other_staff, science_user
):
    campaign = make_exec_campaign()
    with pytest.raises(PermissionDenied):
        campaign_launch(user=other_staff, campaign_id=campaign.pk)  # may view (public) but not change
    with pytest.raises((PermissionDenied, Http404)):
        campaign_launch(user=science_user, campaign_id=campaign.pk)
    broken = make_exec_campaign(pipeline="demo/pipelines/nope.yaml")
    with pytest.raises(ValidationError, match="does not exist"):
        campaign_launch(user=owner, campaign_id=broken.pk)
    campaign_launch(user=owner, campaign_id=campaign.pk)
    with pytest.raises(ValidationError, match="draft or ready"):
        campaign_launch(user=owner, campaign_id=campaign.pk)


def test_launch_refuses_a_selection_without_data(make_exec_campaign, owner):
    campaign = make_exec_campaign(data_query="exposure.observation_type = 'science' AND exposure.seq_num = 999")
    with pytest.raises(ValidationError, match="selects no data"):
        campaign_launch(user=owner, campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
